"""``wheelhouse mirror``: chosen projects of an index copied into a static tree (or a bucket)."""
