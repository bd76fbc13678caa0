"""The proxy's store on disk: upstream pages, files by sha256, wheel METADATA, and single-flight
downloads that several threads and worker processes can read while they are being written.

Layout under the store root::

    pages/<key>/<project>.json      what upstream said about a project (+ validators, time)
    files/<aa>/<sha256>             a file, verified against its sha256 before it got here
    metadata/<aa>/<sha256>          the METADATA of the wheel <sha256>; ``.sha256`` beside it
    partial/<sha256>                a download in progress (readers follow it as it grows)
    locks/<sha256>.lock             held by the one process downloading <sha256>

``<key>`` names the list of upstreams, so a store never mixes answers of other indexes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import urllib3

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.files import write_atomic
from wheelhouse.serve._upstream import ProjectPage, UpstreamError, UpstreamFile, open_file

__all__ = ["DownloadFailed", "PageRecord", "Stats", "Store"]

logger = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_PARSED_PAGES = 256  # parsed stored pages kept per process


class DownloadFailed(Exception):
    """A download ended without a verified file (the reason is the message)."""


@dataclass
class Stats:
    """Counters of one server process, shown at ``/-/stats``."""

    page_hits: int = 0
    page_misses: int = 0
    page_stale: int = 0
    page_revalidations: int = 0
    page_not_modified: int = 0
    file_hits: int = 0
    file_misses: int = 0
    metadata_hits: int = 0
    metadata_misses: int = 0
    upstream_requests: int = 0
    upstream_bytes: int = 0
    upstream_errors: int = 0
    hash_mismatches: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class PageRecord:
    """A project's page as one upstream gave it, and when we last heard from upstream."""

    project: str
    upstream: int  # index into the configured upstreams
    fetched: float  # time.time() of the last answer (200 or 304)
    page: ProjectPage

    def to_json(self) -> dict[str, Any]:
        page = self.page
        return {
            "project": self.project,
            "upstream": self.upstream,
            "fetched": self.fetched,
            "url": strip_credentials(page.url),
            "api_version": page.api_version,
            "versions": list(page.versions) if page.versions is not None else None,
            "etag": page.etag,
            "last_modified": page.last_modified,
            # Credentials are added back per host by the HTTP client: none on disk.
            "files": [{**f.to_json(), "url": strip_credentials(f.url)} for f in self.page.files],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageRecord:
        versions = data.get("versions")
        page = ProjectPage(
            name=data["project"],
            url=data["url"],
            files=tuple(UpstreamFile.from_json(f) for f in data["files"]),
            versions=tuple(versions) if versions is not None else None,
            api_version=data.get("api_version", "1.0"),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
        )
        return cls(data["project"], int(data["upstream"]), float(data["fetched"]), page)


class Store:
    """One proxy store directory; safe to share between threads and processes."""

    def __init__(self, root: Path, key: str, client: HttpClient, stats: Stats, timeout: float):
        self.root = root
        self._pages = root / "pages" / key
        self._files = root / "files"
        self._metadata = root / "metadata"
        self._partial = root / "partial"
        self._locks = root / "locks"
        for directory in (self._pages, self._files, self._metadata, self._partial, self._locks):
            directory.mkdir(parents=True, exist_ok=True)
        self.client = client
        self.stats = stats
        self.timeout = timeout
        self._inflight: dict[str, threading.Thread] = {}
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[tuple[int, int, int], PageRecord]] = {}
        self._metadata_hashes: dict[str, str] = {}

    # -- pages ----------------------------------------------------------------------------

    def read_page(self, project: str) -> PageRecord | None:
        path = self._pages / f"{project}.json"
        try:
            # Parsed once per version of the file (another worker may have replaced it):
            # parsing botocore's stored page took 0.06 s, on every request for it.
            info = path.stat()
            seen = (info.st_mtime_ns, info.st_size, info.st_ino)
            cached = self._parsed.get(project)
            if cached is not None and cached[0] == seen:
                return cached[1]
            record = PageRecord.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
            return None
        if len(self._parsed) >= _PARSED_PAGES:
            self._parsed.pop(next(iter(self._parsed)), None)
        self._parsed[project] = (seen, record)
        return record

    def write_page(self, record: PageRecord) -> None:
        data = json.dumps(record.to_json(), separators=(",", ":")).encode()
        write_atomic(self._pages / f"{record.project}.json", data)

    def forget_page(self, project: str) -> None:
        (self._pages / f"{project}.json").unlink(missing_ok=True)

    @contextlib.contextmanager
    def page_lease(self, project: str, *, wait: bool) -> Iterator[bool]:
        """Whether this process may ask upstream for ``project``'s page now. One store on one
        disk needs no lease across machines: always yes (threads are kept apart by the app)."""
        yield True

    def stored_projects(self) -> list[str]:
        return sorted(p.stem for p in self._pages.glob("*.json"))

    # -- files ----------------------------------------------------------------------------

    def file_path(self, sha256: str) -> Path:
        return self._files / sha256[:2] / sha256

    def partial_path(self, sha256: str) -> Path:
        return self._partial / sha256

    def has_file(self, sha256: str) -> bool:
        return self.file_path(sha256).is_file()

    def start_download(self, file: UpstreamFile) -> None:
        """Make sure ``file`` is being downloaded into the store, unless it is there already.

        One thread per file per process; across processes the file lock lets one download
        while the others' readers follow its partial file.
        """
        sha256 = file.sha256
        assert sha256 is not None
        with self._lock:
            running = self._inflight.get(sha256)
            if running is not None and running.is_alive():
                return
            self._failures.pop(sha256, None)
            thread = threading.Thread(
                target=self._download, args=(file, sha256), name=f"download {sha256[:12]}"
            )
            thread.daemon = True
            self._inflight[sha256] = thread
            thread.start()

    def download_active(self, sha256: str) -> bool:
        with self._lock:
            running = self._inflight.get(sha256)
            return running is not None and running.is_alive()

    def failure(self, sha256: str) -> str | None:
        with self._lock:
            return self._failures.get(sha256)

    def _download(self, file: UpstreamFile, sha256: str) -> None:
        lock = filelock.FileLock(self._locks / f"{sha256}.lock", is_singleton=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            return  # another process downloads it; our readers follow its partial file
        try:
            if self.has_file(sha256):
                return
            self._download_locked(file, sha256)
        except (DownloadFailed, UpstreamError, OSError) as exc:
            reason = exc.message if isinstance(exc, UpstreamError) else str(exc)
            with self._lock:
                self._failures[sha256] = reason
            self.stats.add(errors=1)
            logger.error("download of %s failed: %s", file.filename, reason)
        finally:
            lock.release()
            with self._lock:
                if self._inflight.get(sha256) is threading.current_thread():
                    del self._inflight[sha256]

    def download_from(self, file: UpstreamFile, response: urllib3.BaseHTTPResponse) -> Path:
        """Store ``file`` from an upstream ``response`` already under way (a 200 answer to a
        range request); if another process downloads it, wait for that one instead."""
        sha256 = file.sha256
        assert sha256 is not None
        lock = filelock.FileLock(self._locks / f"{sha256}.lock", is_singleton=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            response.release_conn()
            return self.wait_for_file(file, stall=self.timeout * 2)
        try:
            if not self.has_file(sha256):
                self._download_locked(file, sha256, response)
        finally:
            lock.release()
        return self.file_path(sha256)

    def _download_locked(
        self, file: UpstreamFile, sha256: str, response: urllib3.BaseHTTPResponse | None = None
    ) -> None:
        partial = self.partial_path(sha256)
        # A partial file left by a process that died: its readers see it unlinked and fail.
        partial.unlink(missing_ok=True)
        shown = strip_credentials(file.url)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if response is None:
                self.stats.add(upstream_requests=1)
                response = open_file(self.client, file.url, timeout=self.timeout)
            digest = hashlib.sha256()
            size = 0
            try:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except urllib3.exceptions.HTTPError as exc:
                        self.stats.add(upstream_errors=1)
                        raise DownloadFailed(f"reading {shown} failed: {exc}") from exc
                    if not chunk:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                    os.write(fd, chunk)
                    self.stats.add(upstream_bytes=len(chunk))
            finally:
                response.release_conn()
            if digest.hexdigest() != sha256 or (file.size is not None and size != file.size):
                self.stats.add(hash_mismatches=1)
                raise DownloadFailed(
                    f"{shown} sent {size} bytes with sha256 {digest.hexdigest()}, "
                    f"not the {sha256} its page promises; nothing was stored"
                )
            os.fsync(fd)
            target = self.file_path(sha256)
            target.parent.mkdir(exist_ok=True)
            os.replace(partial, target)
            logger.info("stored %s (%d bytes, sha256 %s)", file.filename, size, sha256)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def wait_for_file(self, file: UpstreamFile, *, stall: float) -> Path:
        """Download ``file`` (or wait for whoever does) and return its path in the store."""
        sha256 = file.sha256
        assert sha256 is not None
        self.start_download(file)
        last = (-1, time.monotonic())
        while not self.has_file(sha256):
            reason = self.failure(sha256)
            if reason is not None and not self.download_active(sha256):
                raise DownloadFailed(reason)
            try:
                size = self.partial_path(sha256).stat().st_size
            except FileNotFoundError:
                size = -1
                if not self.download_active(sha256):
                    self.start_download(file)  # the other process's download ended badly
            if size != last[0]:
                last = (size, time.monotonic())
            elif time.monotonic() - last[1] > stall:
                raise DownloadFailed(f"the download of {file.filename} stalled")
            time.sleep(0.02)
        return self.file_path(sha256)

    # -- metadata -------------------------------------------------------------------------

    def metadata_path(self, sha256: str) -> Path:
        return self._metadata / sha256[:2] / sha256

    def read_metadata(self, sha256: str) -> bytes | None:
        """The stored METADATA of wheel ``sha256``, or None if not stored."""
        try:
            return self.metadata_path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def metadata_sha256(self, sha256: str) -> str | None:
        """The sha256 of the stored METADATA of wheel ``sha256``, or None if not stored."""
        known = self._metadata_hashes.get(sha256)
        if known is not None:
            return known
        try:
            value = self.metadata_path(sha256).with_suffix(".sha256").read_text().strip()
        except FileNotFoundError:
            return None
        self._metadata_hashes[sha256] = value
        return value

    def write_metadata(self, sha256: str, data: bytes) -> str:
        path = self.metadata_path(sha256)
        path.parent.mkdir(exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        # The data first: a reader that finds the hash finds the bytes it names.
        write_atomic(path, data)
        write_atomic(path.with_suffix(".sha256"), digest.encode())
        self._metadata_hashes[sha256] = digest
        return digest

    @contextlib.contextmanager
    def metadata_lease(self, sha256: str, *, timeout: float) -> Iterator[None]:
        """Held by the one process reading the METADATA of wheel ``sha256``; TimeoutError
        when another holds it longer than ``timeout``."""
        lock = filelock.FileLock(self._locks / f"{sha256}.metadata.lock", is_singleton=False)
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout as exc:
            raise TimeoutError(str(exc)) from exc
        try:
            yield
        finally:
            lock.release()
