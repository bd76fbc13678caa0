"""``wheelhouse mirror``: chosen projects of an index copied into a static tree (or a bucket).

A run (``run.py``) reads what it is asked (``settings.py``) and what it kept last time
(``state.py``, ``selection.py``), reads the index's pages (``pages.py``), chooses each
project's files (``candidates.py``, ``project.py``), downloads them through the one download
path (``download.py``), then writes the pages, state and manifest (``write.py``); ``store.py``
publishes the tree to a bucket.
"""
