"""Downloads ahead of pip's resolver, through the page tap, the files it will most likely ask for.

pip resolves one project at a time: a page, then the file it picks (a whole wheel, where the
index has no PEP 658 metadata), then the pages of that file's dependencies. Nearly all of that
time is waiting on the network. The prefetcher walks the same graph with many downloads at
once: for each requirement it guesses pip's file (the newest version allowed, chosen as pip
chooses among its files), downloads it into the cache, hash-checked, and reads its
dependencies from it to go on. pip, reading through the tap, then finds each file already
here. The guesses decide nothing: pip's resolver resolves, and a file it wants that was not
guessed is fetched for it as before.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    NormalizedName,
)

from wheelhouse._base._http import strip_credentials
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.urls import file_url_path
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched, Fetcher
from wheelhouse.download.pins import Pin
from wheelhouse.house.manifest import Sha256
from wheelhouse.inputs.requirements import InputSet
from wheelhouse.resolve._pagetap import PageTap
from wheelhouse.resolve.from_pins import Guesses, Wish

__all__ = ["Prefetcher"]

logger = logging.getLogger(__name__)

# Projects guessed at most: a bound on what a wrong turn can cost.
_MAX_PROJECTS = 1000


@dataclass
class _Project:
    specifier: SpecifierSet
    extras: set[str]
    pin: Pin | None = None
    fetched: Fetched | None = None
    guessed_again: bool = False


class _Stopped(Exception):
    """Raised in a download's progress callback once pip is done."""


class Prefetcher:
    """Guesses and downloads for pip, reading pages from ``index_url`` through ``tap``.

    Use as a context manager around pip's run: leaving it stops new downloads and cuts those
    under way short (their partial files are removed by the fetcher).
    """

    def __init__(
        self,
        tap: PageTap,
        guesses: Guesses,
        index_url: str,
        cache: Cache,
        *,
        pip: PipSettings,
        allowed: Mapping[NormalizedName, frozenset[Sha256]],
        jobs: int,
    ) -> None:
        self._tap = tap
        self.guesses = guesses
        self._fetcher = Fetcher(
            cache, pip=pip, allowed=allowed, jobs=jobs, progress=self._stop_if_done
        )
        self._index_url = strip_credentials(index_url).rstrip("/")
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="prefetch")
        self._projects: dict[NormalizedName, _Project] = {}
        # Each file offered to pip, by file name, once in the cache.
        self.given: dict[str, Fetched] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def start(self, inputs: InputSet) -> Prefetcher:
        for wish in self.guesses.requested(inputs):
            self._want(wish)
        return self

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _stop_if_done(self, pin: Pin, size: int) -> None:
        """A download's progress callback: raises once pip has finished."""
        if self._stopped.is_set():
            raise _Stopped(pin.filename)

    def _want(self, wish: Wish) -> None:
        follow: list[Wish] = []
        with self._lock:
            if self._stopped.is_set():
                return
            project = self._projects.get(wish.name)
            if project is None:
                if len(self._projects) >= _MAX_PROJECTS:
                    return
                self._projects[wish.name] = _Project(wish.specifier, set(wish.extras))
                self._submit(wish.name)
                return
            new = set(wish.extras) - project.extras
            project.extras |= new
            project.specifier &= wish.specifier
            if project.fetched is not None and new:
                follow = self.guesses.dependencies(project.fetched, new) or []
            pin = project.pin
            if (
                pin is not None
                and not project.guessed_again
                and not project.specifier.contains(pin.version, prereleases=True)
            ):
                # Another requirement rules the first guess out: the file pip will need is
                # the newest that all of them allow.
                project.guessed_again = True
                self._submit(wish.name)
        for more in follow:
            self._want(more)

    def _submit(self, name: NormalizedName) -> None:
        with contextlib.suppress(RuntimeError):  # shut down: pip is done
            self._pool.submit(self._guess, name)

    def _guess(self, name: NormalizedName) -> None:
        try:
            self._guess_and_fetch(name)
        except _Stopped:
            pass
        except Exception as exc:  # a guess never fails the build: pip resolves regardless
            logger.debug("prefetching %s: %s", name, exc)

    def _guess_and_fetch(self, name: NormalizedName) -> None:
        if self._stopped.is_set():
            return
        # pip's URL for a project page: the index URL, the quoted canonical name, a slash.
        self._tap.page(f"{self._index_url}/{quote(name)}/")
        with self._lock:
            specifier = self._projects[name].specifier
        pin = self.guesses.choose(name, specifier)
        if pin is None or self._stopped.is_set():
            return
        with self._lock:
            self._projects[name].pin = pin
        if urlsplit(pin.url).scheme == "file":
            path = file_url_path(pin.url)
            fetched = Fetched(pin, path, Sha256(pin.sha256 or ""), 0)
        else:
            download: Future[Path] = Future()
            if not self._tap.offer(pin.url, download):
                return  # pip is fetching it already
            try:
                fetched = self._fetcher.fetch(pin)
            except BaseException as exc:
                download.set_exception(exc)
                raise
            with self._lock:
                self.given[pin.filename] = fetched
            download.set_result(fetched.path)
            logger.debug("prefetched %s", pin.filename)
        with self._lock:
            project = self._projects[name]
            project.fetched = fetched
            extras = {""} | project.extras
        for wish in self.guesses.dependencies(fetched, extras) or []:
            self._want(wish)
