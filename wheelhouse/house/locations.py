"""Where wheelhouse keeps things: the cache, and the default wheelhouse directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from wheelhouse.house.manifest import MANIFEST_NAME

__all__ = ["FALLBACK_DIR_NAME", "cache_root", "default_wheelhouse_dir"]

DEFAULT_DIR_NAME = "wheelhouse"
# Used when ./wheelhouse already holds something else, typically this project's own source
# package when run from a checkout; never writing into another project's directory matters more
# than the name.
FALLBACK_DIR_NAME = "wheelhouse-out"


def cache_root(override: Path | None = None) -> Path:
    """The cache directory: ``override``, else ``$WHEELHOUSE_CACHE_DIR``, else the user cache."""
    if override is not None:
        return override.expanduser().absolute()
    env = os.environ.get("WHEELHOUSE_CACHE_DIR")
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("wheelhouse", appauthor=False))


def default_wheelhouse_dir(cwd: Path | None = None) -> Path:
    """``./wheelhouse``, unless that is a non-empty directory that is not a wheelhouse."""
    base = cwd or Path.cwd()
    preferred = base / DEFAULT_DIR_NAME
    if _usable(preferred):
        return preferred
    return base / FALLBACK_DIR_NAME


def _usable(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    if (path / MANIFEST_NAME).is_file():
        return True
    return not any(path.iterdir())
