"""Wheels built from sdists and local project directories, through PyPA's ``build`` (PEP 517)."""
