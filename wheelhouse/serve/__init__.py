"""The servers: a wheelhouse's static index and files (``serve DIR``, static.py) and the
caching index proxy (``serve --upstream``, proxy.py: upstream pages and files kept on disk or in
a shared bucket, and the private upload index of ``wheelhouse.upload`` mounted on it when
``--upload`` asks), both run by the one ASGI runner in _asgi.py."""
