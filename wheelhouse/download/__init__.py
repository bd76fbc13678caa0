"""Files from an index into the content-addressed cache, each verified against its sha256.

``stream.py`` is the one download path (hash, size limit, retries, rename) that the build's
fetch (``fetch.py``), the mirror and the proxy's store all use; ``cache.py`` is the cache.
"""
