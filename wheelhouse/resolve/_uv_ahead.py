"""Downloads, while ``uv pip compile`` resolves, of the files uv reads metadata from."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.wheels import distribution_of
from wheelhouse.download.cache import Cache
from wheelhouse.download.pins import Pin
from wheelhouse.house.manifest import FileKind, Sha256

if TYPE_CHECKING:
    from wheelhouse.download.fetch import Fetched, Fetcher
    from wheelhouse.resolve.from_pins import Metadata

__all__ = ["AheadOfUv"]

logger = logging.getLogger(__name__)


class AheadOfUv:
    """Downloads into the cache, while ``uv pip compile`` runs, each file uv reads metadata
    from: uv's own choices, as it makes them. uv keeps no files, so wheelhouse downloads the
    locked ones after it anyway; started early, the downloads overlap uv's resolution.

    A file is stored under the sha256 of its bytes (the cache is content-addressed), so no hash
    need be known yet: the lock's sha256 finds it afterwards, or misses it and the file is
    downloaded then, and checked. A file whose name the cache holds already is not fetched.
    Each file's metadata is read here too (``read``, by sha256), for the check of uv's graph.
    Use as a context manager around uv's run, calling it with each URL; leaving waits for the
    downloads under way (they are the lock's files, which would be downloaded next anyway).
    """

    def __init__(self, cache: Cache, *, pip: PipSettings, jobs: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="ahead-of-uv")
        # The pool's first job loads the downloader and the metadata reader (urllib3, TLS,
        # the pinned path's modules: 0.1 s) and lists the cache, while uv starts, instead of
        # before it does.
        self._loaded = self._pool.submit(_load, cache, pip, jobs)
        self._seen: set[str] = set()  # file names asked for, once each
        self._lock = threading.Lock()
        # What was downloaded (not found in the cache), by sha256.
        self.downloaded: set[Sha256] = set()
        self.read: dict[Sha256, Metadata] = {}

    def __enter__(self) -> AheadOfUv:
        return self

    def __exit__(self, *exc: object) -> None:
        # After uv failed, nothing it read will be wanted: the build stops without waiting.
        failed = exc[0] is not None
        self._pool.shutdown(wait=not failed, cancel_futures=failed)

    def __call__(self, url: str) -> None:
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        pin = _unverified_pin(url, filename)
        with self._lock:
            if pin is None or filename in self._seen:
                return
            self._seen.add(filename)
        with contextlib.suppress(RuntimeError):  # shut down: uv is done
            self._pool.submit(self._fetch, pin)

    def _fetch(self, pin: Pin) -> None:
        try:
            fetcher, known_metadata, cached = self._loaded.result()
            if pin.filename in cached:
                return
            fetched = fetcher.fetch(pin)
            metadata = known_metadata(fetched)
            with self._lock:
                self.downloaded.add(fetched.sha256)
                if metadata is not None:
                    self.read[fetched.sha256] = metadata
        except Exception as exc:  # the download after uv fetches (and explains) it again
            logger.debug("fetching %s ahead of uv: %s", pin.filename, exc)


def _load(
    cache: Cache, pip: PipSettings, jobs: int
) -> tuple[Fetcher, Callable[[Fetched], Metadata | None], frozenset[str]]:
    """The fetcher, the metadata reader, and the names of the files the cache holds."""
    # Imported here: see AheadOfUv.__init__.
    from wheelhouse.download.fetch import Fetcher
    from wheelhouse.resolve.from_pins import known_metadata

    files = cache.root / "files"
    cached = frozenset(p.name for p in files.glob("*/*/*")) if files.is_dir() else frozenset()
    fetcher = Fetcher(cache, pip=pip, allowed={}, jobs=jobs)
    return fetcher, known_metadata, cached


def _unverified_pin(url: str, filename: str) -> Pin | None:
    """A pin for a file known by URL alone (its hash is learnt by downloading it)."""
    found = distribution_of(filename)
    if found is None:
        return None
    kind: FileKind = "wheel" if filename.endswith(".whl") else "sdist"
    return Pin(found[0], str(found[1]), url, filename, kind, None, None, False)
