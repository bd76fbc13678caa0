"""Parallel, hash-verified downloads of the resolved files into the content-addressed cache."""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlsplit

import urllib3
from packaging.utils import NormalizedName

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base._pip import online_env, run_pip
from wheelhouse._base._subprocess import tail
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.urls import file_url_path
from wheelhouse.download.cache import Cache
from wheelhouse.download.pins import Pin
from wheelhouse.download.stream import CHUNK, Received, download
from wheelhouse.errors import DownloadError, FetchError, HashMismatchError
from wheelhouse.house.manifest import Sha256

__all__ = ["Fetched", "Fetcher", "fetch_all"]

logger = logging.getLogger(__name__)


Progress = Callable[[Pin, int], None]


@dataclass(frozen=True)
class Fetched:
    """A resolved file, verified and stored in the cache."""

    pin: Pin
    path: Path
    sha256: Sha256
    size: int
    downloaded: bool = False  # False when the cache already had it


def fetch_all(
    pins: Sequence[Pin],
    cache: Cache,
    *,
    pip: PipSettings,
    allowed: Mapping[NormalizedName, frozenset[Sha256]],
    jobs: int,
    progress: Progress | None = None,
) -> list[Fetched]:
    """Fetch every pin (cached ones are not downloaded again), in parallel, in ``pins`` order."""
    fetcher = Fetcher(cache, pip=pip, allowed=allowed, jobs=jobs, progress=progress)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(pins)))) as pool:
        return list(pool.map(fetcher.fetch, pins))


class Fetcher:
    """Fetches one pin at a time from any thread, over one shared connection pool."""

    def __init__(
        self,
        cache: Cache,
        *,
        pip: PipSettings,
        allowed: Mapping[NormalizedName, frozenset[Sha256]],
        jobs: int,
        progress: Progress | None = None,
        client: HttpClient | None = None,
    ) -> None:
        self._cache = cache
        self._allowed = allowed
        self._pip = pip
        self._jobs = jobs
        self._progress = progress
        # A client made from the same ``pip`` (the pinned path's page client): files then
        # share its connections, one pool per host, instead of opening their own.
        self._client = client
        self._download: _Fetcher | None = None
        self._lock = threading.Lock()

    def fetch(self, pin: Pin) -> Fetched:
        """The cached file if the cache has it, else a verified download."""
        cached = self._cache.lookup(pin.sha256, pin.filename) if pin.sha256 else None
        if cached is not None:
            _check_allowed(pin, pin.sha256 or Sha256(""), self._allowed)
            return Fetched(pin, cached, Sha256(pin.sha256 or ""), cached.stat().st_size)
        return self._downloader()(pin)

    def _downloader(self) -> _Fetcher:
        # The HTTP client (and its SSL context) is made only when something is not cached.
        with self._lock:
            if self._download is None:
                client = self._client or HttpClient(self._pip, pool_size=max(self._jobs, 1))
                self._download = _Fetcher(client, self._cache, self._allowed, self._progress)
            return self._download


@dataclass
class _Fetcher:
    client: HttpClient
    cache: Cache
    allowed: Mapping[NormalizedName, frozenset[Sha256]]
    progress: Progress | None

    def __call__(self, pin: Pin) -> Fetched:
        def place(received: Received) -> Path:
            return self.cache.file_path(received.sha256, pin.filename)

        def allowed(_: Path, received: Received) -> None:
            _check_allowed(pin, received.sha256, self.allowed)

        progress = self.progress
        options = _Options(
            sha256=pin.sha256,
            name=pin.filename,
            progress=(lambda n: progress(pin, n)) if progress is not None else None,
            before=allowed,
        )
        partial = self.cache.new_tmp_file()
        try:
            if urlsplit(pin.url).scheme == "file":
                path, received = self._copy_local(pin, partial, place, options)
            else:
                try:
                    path, received = download(self.client, pin.url, partial, place, **options)
                except DownloadError as exc:
                    why = _pip_may_do_better(exc)
                    if why is None:
                        raise
                    path, received = self._via_pip(pin, partial, place, options, why=why)
        finally:
            partial.unlink(missing_ok=True)  # a source that could not be opened
        logger.info("fetched %s (%d bytes)", pin.filename, received.size)
        return Fetched(pin, path, received.sha256, received.size, downloaded=True)

    def _via_pip(
        self, pin: Pin, partial: Path, place: _Place, options: _Options, *, why: str
    ) -> tuple[Path, Received]:
        """Let pip fetch what our client could not: pip may know an authentication (keyring)
        or a trust store that we do not. The file is hash-checked here all the same."""
        logger.warning("fetching %s directly failed (%s); asking pip", pin.filename, why)
        # Without credentials: every local user reads pip's command line. pip finds them where
        # its configuration gives them (an index URL of the same host), as for any download.
        url = strip_credentials(pin.url.split("#", 1)[0])
        url += f"#sha256={pin.sha256}" if pin.sha256 else ""
        work = self.cache.new_tmp_dir("pip-download-")
        try:
            args = ["download", "--no-deps", "--progress-bar", "off", "--dest", str(work), url]
            result = run_pip(args, env=online_env())
            found = [p for p in work.iterdir() if p.name == pin.filename]
            got = re.search(r"^\s*Got\s+([0-9a-f]{64})\s*$", result.stderr, re.MULTILINE)
            if got is not None and pin.sha256:
                raise _mismatch(pin, Sha256(got[1]))
            if not result.ok or not found:
                raise FetchError(
                    f"cannot download {strip_credentials(pin.url)} ({why}), nor could pip: "
                    f"{tail(result.stderr or result.stdout, 2) or 'no output'}",
                    url=strip_credentials(pin.url),
                    hint="check the index's credentials, proxy and certificates",
                )
            with found[0].open("rb") as handle:
                chunks = iter(lambda: handle.read(CHUNK), b"")
                return download(self.client, pin.url, partial, place, source=chunks, **options)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _copy_local(
        self, pin: Pin, partial: Path, place: _Place, options: _Options
    ) -> tuple[Path, Received]:
        source = file_url_path(pin.url)
        try:
            with source.open("rb") as handle:
                chunks = iter(lambda: handle.read(CHUNK), b"")
                return download(self.client, pin.url, partial, place, source=chunks, **options)
        except OSError as exc:
            raise FetchError(f"cannot read {str(source)!r}: {exc.strerror}", url=pin.url) from exc


_Place = Callable[[Received], Path]


class _Options(TypedDict):
    sha256: str | None
    name: str
    progress: Callable[[int], None] | None
    before: Callable[[Path, Received], None]


def _pip_may_do_better(exc: DownloadError) -> str | None:
    """Why pip, with its keyring support and its own trust store, may get what our client
    could not (a TLS failure, a 401/403/407), or None."""
    cause = exc.__cause__
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.SSLError):
        return str(cause)
    if exc.status in _PIP_MAY_DO_BETTER:
        return f"HTTP {exc.status}"
    return None


def _mismatch(pin: Pin, digest: Sha256) -> HashMismatchError:
    return HashMismatchError(
        f"{pin.filename} from {strip_credentials(pin.url)} has sha256 {digest}, "
        f"but the index promised {pin.sha256}",
        filename=pin.filename,
        expected=pin.sha256 or "",
        actual=digest,
        hint="the file or the index is corrupt or was tampered with; nothing was "
        "written: retry later or report it to the index's operator",
    )


# Refusals that pip, with its keyring support and its own trust store, may get past.
_PIP_MAY_DO_BETTER = frozenset({401, 403, 407})


def _check_allowed(
    pin: Pin, digest: Sha256, allowed: Mapping[NormalizedName, frozenset[Sha256]]
) -> None:
    expected = allowed.get(pin.name)
    if expected and digest not in expected:
        raise HashMismatchError(
            f"{pin.filename} ({pin.name}=={pin.version}) has sha256 {digest}, which is not among "
            f"the hashes the requirements pin: {', '.join(sorted(expected))}",
            filename=pin.filename,
            expected=", ".join(sorted(expected)),
            actual=digest,
            hint="the pinned hash is for another file or release; regenerate the pins "
            "(e.g. pip-compile --generate-hashes) if the change is expected",
        )
