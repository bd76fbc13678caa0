"""The content-addressed cache: files by sha256, built wheels by sdist sha256 and target."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from wheelhouse.house.manifest import Sha256

__all__ = ["Cache", "CacheInfo", "CachePart"]

_STALE_SECONDS = 3600


@dataclass(frozen=True)
class CacheInfo:
    """Counts and sizes of what the cache holds."""

    path: Path
    files: int
    files_bytes: int
    built: int
    built_bytes: int


@dataclass(frozen=True)
class CachePart:
    """One part of the cache that a purge removes: what it is, where, and how much it holds."""

    label: str
    path: Path
    files: int
    size: int


# What `cache purge` removes, in the order it says so; the proxy's store only when asked.
_PURGED = (
    ("files", "downloaded files"),
    ("built", "built wheels"),
    ("uv", "uv's cache"),
    ("tmp", "partial downloads and builds"),
)
_PROXY_STORES = (
    ("proxy", "the proxy's store (serve --upstream)"),
    ("proxy-bucket", "the proxy's copies of bucket stores"),
)


@dataclass(frozen=True)
class Cache:
    """A cache directory; every entry is complete, because it is renamed into place."""

    root: Path

    @property
    def tmp(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def file_path(self, sha256: Sha256, filename: str) -> Path:
        return self.root / "files" / sha256[:2] / sha256 / filename

    def lookup(self, sha256: Sha256, filename: str) -> Path | None:
        path = self.file_path(sha256, filename)
        return path if path.is_file() else None

    def store(self, partial: Path, sha256: Sha256, filename: str) -> Path:
        """Move a verified file into the cache (atomically; a concurrent store is harmless)."""
        final = self.file_path(sha256, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        return final

    def built_dir(self, sdist_sha256: Sha256, target_key: str) -> Path:
        return self.root / "built" / sdist_sha256[:2] / sdist_sha256 / target_key

    @property
    def uv_dir(self) -> Path:
        """uv's own cache, for the build environments it makes (wheels of setuptools etc.)."""
        return self.root / "uv"

    def new_tmp_file(self, suffix: str = ".part") -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp, suffix=suffix)
        os.close(fd)
        return Path(name)

    def new_tmp_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(dir=self.tmp, prefix=prefix))

    def info(self) -> CacheInfo:
        """What the cache holds: counts and sizes of downloaded files and built wheels."""
        files = [p for p in (self.root / "files").rglob("*") if p.is_file()]
        built = [p for p in (self.root / "built").rglob("*.whl") if p.is_file()]
        return CacheInfo(
            path=self.root,
            files=len(files),
            files_bytes=sum(p.stat().st_size for p in files),
            built=len(built),
            built_bytes=sum(p.stat().st_size for p in built),
        )

    def parts(self, *, proxy_store: bool = False) -> list[CachePart]:
        """The parts a purge removes that exist now, with their counts and sizes."""
        names = _PURGED + (_PROXY_STORES if proxy_store else ())
        found = []
        for name, label in names:
            path = self.root / name
            if path.is_dir():
                sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file()]
                found.append(CachePart(label, path, len(sizes), sum(sizes)))
        return found

    def proxy_stores(self) -> list[CachePart]:
        """The proxy's stores under the cache, which a plain purge keeps."""
        kept = {p.path for p in self.parts()}
        return [p for p in self.parts(proxy_store=True) if p.path not in kept]

    def purge(self, parts: list[CachePart] | None = None) -> int:
        """Remove ``parts`` (by default every entry wheelhouse wrote but the proxy's store);
        returns the bytes freed."""
        freed = 0
        for part in self.parts() if parts is None else parts:
            if part.path.is_dir():
                shutil.rmtree(part.path)
                freed += part.size
        return freed

    def clean_stale(self) -> None:
        """Remove partial files and build dirs that an interrupted run left (ours alone)."""
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return
        cutoff = time.time() - _STALE_SECONDS
        for entry in tmp.iterdir():
            try:
                if entry.stat().st_mtime > cutoff:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
            except OSError:
                continue
