"""The proxy's store on disk: upstream pages, files by sha256, wheel METADATA, and single-flight
downloads that several threads and worker processes can read while they are being written.

Layout under the store root::

    pages/<key>/<project>.json      what upstream said about a project (+ validators, time)
    rendered/<key>/<project>/<form>.<version>.<etag>
                                    that page as served (``json``/``html``), per page version
    files/<aa>/<sha256>             a file, verified against its sha256 before it got here
    upstream-metadata/<key>/<aa>/<sha256>
                                    the METADATA of the wheel <sha256> as these upstreams gave
                                    it; ``.sha256`` beside it
    partial/<sha256>                a download in progress (readers follow it as it grows),
                                    flock()ed by its writer for as long as it writes
    locks/<sha256>.lock             held by the one process downloading <sha256>

``<key>`` names the list of upstreams, so a store never mixes answers of other indexes. Files
are shared: their bytes are checked against the sha256 they are stored under. METADATA is not:
read with range requests or taken from upstream's PEP 658 file, it is only as good as the
upstream that gave it, so another upstream list never sees it. (Stores written before kept it
in ``metadata/<aa>/<sha256>`` for every upstream; that folder is never read.)

About 930 lines: a stored page's codec (``PageRecord``: two lines of JSON, its head and its
files, so that a status or one file is read without parsing the page), then the one class
``Store``, whose methods all keep the same invariants of this layout (a file appears only
verified and whole, a page and its renderings change together, one writer per download
across processes); the bucket's store (``_bucket.py``) extends it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import urllib3
from urllib3.util import Retry

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.files import atomic_writer, write_atomic
from wheelhouse.download.stream import receive
from wheelhouse.errors import DownloadError, HashMismatchError, UpstreamError
from wheelhouse.serve._upstream import open_file
from wheelhouse.simple.model import PROJECT_STATUSES, PageFile, ProjectPage, ProjectStatus
from wheelhouse.simple.parse import parse_json_page
from wheelhouse.simple.relay import Relay, find_relayed

__all__ = ["DownloadFailed", "PageHead", "PageRecord", "PageStamp", "Relayed", "Stats", "Store"]

logger = logging.getLogger(__name__)

# Parsed stored pages kept per process, counted in files: a parsed file costs ~0.8 KB, and
# one project (pydantic-core) lists 15,000. Clients read pages from ``rendered/``; a parsed
# page is needed to render one and to find a file that is not stored yet.
_PARSED_FILES = 16_000


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
    page_absent_hits: int = 0  # answered 404 from the memory of upstream's recent 404
    upstream_deadlines: int = 0  # clients answered 504: upstream did not answer in time
    file_hits: int = 0
    file_misses: int = 0
    metadata_hits: int = 0
    metadata_misses: int = 0
    upstream_requests: int = 0
    upstream_bytes: int = 0
    upstream_errors: int = 0
    hash_mismatches: int = 0
    pages_rendered: int = 0  # renderings made: one per stored page version and form
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
class Relayed:
    """An upstream's JSON page kept as it came, passed on relinked (``simple.relay``)."""

    body: bytes
    relay: Relay
    url: str  # the page's URL, without credentials (its file links carry none either)
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class PageRecord:
    """A project's page as one upstream gave it, and when we last heard from upstream: parsed
    (``parsed``), or kept as it came to be relayed (``relayed``) and parsed when asked."""

    project: str
    upstream: int  # index into the configured upstreams
    fetched: float  # time.time() of the last answer (200 or 304)
    parsed: ProjectPage | None
    relayed: Relayed | None = None

    @functools.cached_property
    def page(self) -> ProjectPage:
        if self.parsed is not None:
            return self.parsed
        assert self.relayed is not None
        kept = self.relayed
        page = parse_json_page(kept.body, kept.url, self.project)
        return dataclasses.replace(page, etag=kept.etag, last_modified=kept.last_modified)

    @property
    def weight(self) -> int:
        """What this record holds in memory, in parsed files (a parsed file takes ~0.8 KB; a
        relayed page's bytes ~0.45 KB a file, and it may be parsed too)."""
        parsed = self.relayed is None or "page" in vars(self)
        relayed = self.relayed.relay.files // 2 if self.relayed is not None else 0
        return (len(self.page.files) if parsed else 0) + relayed

    @property
    def head_of(self) -> PageHead:
        """The project's status (a relayed page has none: pages naming one are parsed)."""
        if self.relayed is not None:
            return PageHead("active", None)
        return PageHead(self.page.status, self.page.status_reason)

    @property
    def etag(self) -> str | None:
        return self.relayed.etag if self.relayed is not None else self.page.etag

    @property
    def last_modified(self) -> str | None:
        return self.relayed.last_modified if self.relayed is not None else self.page.last_modified

    def revalidated(self, etag: str | None, last_modified: str | None) -> PageRecord:
        """This record, fetched now, upstream having said "not modified" with these
        validators (None: the old ones hold)."""
        etag, last_modified = etag or self.etag, last_modified or self.last_modified
        if self.relayed is not None:
            kept = dataclasses.replace(self.relayed, etag=etag, last_modified=last_modified)
            return PageRecord(self.project, self.upstream, time.time(), None, kept)
        page = dataclasses.replace(self.page, etag=etag, last_modified=last_modified)
        return PageRecord(self.project, self.upstream, time.time(), page)

    def find(self, sha256: str, filename: str) -> PageFile | None:
        return next(
            (f for f in self.page.files if f.sha256 == sha256 and f.filename == filename), None
        )

    def find_link(self, path: str) -> PageFile | None:
        """The file a relayed page links as its origin + ``path``; None when none is (or
        the page is not relayed)."""
        kept = self.relayed
        if kept is None:
            return None
        item = find_relayed(kept.body, kept.relay, path)
        if item is None:
            return None
        # The one object read as a page of one file: the same checks as every page's.
        files = parse_json_page(_COMPACT.encode({"files": [item]}).encode(), kept.url, self.project)
        return files.files[0] if files.files else None

    def to_bytes(self) -> bytes:
        """Two lines of JSON: the head (everything but the files), then the files (or the
        relayed page as it came). A file of a page, or the project's status, is read without
        parsing the whole page (``head``, ``find_in``): pydantic-core's lists 15,000 files."""
        return b"".join(self.to_lines())

    def to_lines(self) -> tuple[bytes, bytes, bytes]:
        """``to_bytes`` in three parts: the head, a newline, the files."""
        if self.relayed is not None:
            kept = self.relayed
            relayed = {
                "project": self.project,
                "upstream": self.upstream,
                "fetched": self.fetched,
                "url": kept.url,
                "etag": kept.etag,
                "last_modified": kept.last_modified,
                "relay": {
                    "needle": kept.relay.needle.decode("ascii"),
                    "origin": kept.relay.origin,
                    "files": kept.relay.files,
                    "offer_metadata": kept.relay.offer_metadata,
                },
            }
            return _COMPACT.encode(relayed).encode(), b"\n", kept.body
        page = self.page
        head = {
            "project": self.project,
            "upstream": self.upstream,
            "fetched": self.fetched,
            "url": strip_credentials(page.url),
            "api_version": page.api_version,
            "versions": list(page.versions) if page.versions is not None else None,
            "etag": page.etag,
            "last_modified": page.last_modified,
            # PEP 792: kept, so the proxy goes on refusing a quarantined project's files.
            "status": page.status,
            "status_reason": page.status_reason,
        }
        # Credentials are added back per host by the HTTP client: none on disk. (A URL
        # without "@" has none: most of 15,000 URLs need no urlsplit.)
        files = [
            {**f.to_json(), "url": strip_credentials(f.url)} if "@" in f.url else f.to_json()
            for f in page.files
        ]
        # Compact JSON holds no raw newline (json escapes them in strings): one per line.
        return _COMPACT.encode(head).encode(), b"\n", _COMPACT.encode(files).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PageRecord:
        """Reads ``to_bytes``, and the one-line form stores written before it."""
        first, newline, rest = data.partition(b"\n")
        head = json.loads(first)
        project, upstream, fetched = head["project"], int(head["upstream"]), float(head["fetched"])
        relay = head.get("relay")
        if relay is not None:
            found = Relay(
                str(relay["needle"]).encode("ascii"),
                str(relay["origin"]),
                int(relay["files"]),
                relay.get("offer_metadata") is True,
            )
            url, etag, modified = str(head["url"]), head.get("etag"), head.get("last_modified")
            kept = Relayed(rest, found, url, etag, modified)
            return cls(project, upstream, fetched, None, kept)
        files = json.loads(rest) if newline else head["files"]
        versions = head.get("versions")
        status = _status(head)
        page = ProjectPage(
            name=head["project"],
            url=head["url"],
            files=tuple(PageFile.from_json(f) for f in files),
            versions=tuple(versions) if versions is not None else None,
            api_version=head.get("api_version", "1.0"),
            etag=head.get("etag"),
            last_modified=head.get("last_modified"),
            status=status,
            status_reason=head.get("status_reason"),
        )
        return cls(project, upstream, fetched, page)

    @staticmethod
    def head(data: bytes) -> PageHead:
        """The status of the page ``data`` holds, from its first line alone (a relayed page
        names none: pages with a status are parsed)."""
        head = json.loads(data.partition(b"\n")[0])
        return PageHead(_status(head), head.get("status_reason"))

    @staticmethod
    def is_relayed(data: bytes) -> bool:
        """Whether ``data`` holds a relayed page (its head says how it is relayed)."""
        return b'"relay":' in data[: data.find(b"\n")]

    @staticmethod
    def find_in(data: bytes, sha256: str, filename: str) -> PageFile | None:
        """File ``sha256`` named ``filename`` of the page ``data`` holds: only that file's
        object is decoded (a hostile or odd page falls back to reading all of them)."""
        if PageRecord.is_relayed(data):
            return PageRecord.from_bytes(data).find(sha256, filename)
        first, newline, rest = data.partition(b"\n")
        if newline:
            needle = b'"sha256":' + json.dumps(sha256).encode()
            at = rest.find(needle)
            while at >= 0:
                # Compact JSON has no '{"filename":' inside a string (its quote would be
                # escaped): the nearest one before the hash opens this file's object, which
                # is decoded alone (the line is ASCII: a slice cuts no character).
                start = rest.rfind(b'{"filename":', 0, at)
                if start >= 0:
                    for window in (rest[start : at + _OBJECT], rest[start:]):
                        with contextlib.suppress(ValueError):
                            item, _ = _DECODER.raw_decode(window.decode())
                            if _matches(item, sha256, filename):
                                return PageFile.from_json(item)
                            break
                at = rest.find(needle, at + 1)
            items = json.loads(rest)
        else:
            items = json.loads(first)["files"]
        return next((PageFile.from_json(i) for i in items if _matches(i, sha256, filename)), None)


@dataclass(frozen=True)
class PageHead:
    """What a stored page says of the project as a whole."""

    status: ProjectStatus
    status_reason: str | None


def _status(head: Mapping[str, Any]) -> ProjectStatus:
    status = head.get("status", "active")
    for known in PROJECT_STATUSES:
        if status == known:
            return known
    raise ValueError(f"unknown project status {str(status)[:40]!r}")


def _matches(item: object, sha256: str, filename: str) -> bool:
    return (
        isinstance(item, dict)
        and item.get("filename") == filename
        and isinstance(item.get("hashes"), dict)
        and item["hashes"].get("sha256") == sha256
    )


_COMPACT = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder()
_OBJECT = 16 * 1024  # past a file's hash, more than the rest of its object takes


class _Flock:
    """An exclusive flock() on a file of ``locks/``, made if need be: held by one descriptor
    (so by one thread, as with filelock's separate instances) until ``release``.

    The store's partial files are already flock()ed, so its file system has flock. filelock,
    portable to file systems without it, took about 15 system calls an acquisition (the path
    resolved, the folder probed for flock, the mode fixed), each one a hand-off of the GIL:
    a cold uv run takes about 90 of these locks among 40 threads. This takes three."""

    _POLL = 0.05  # seconds between tries while another holds it (filelock's default)

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> bool:
        """Whether the lock was taken within ``timeout`` seconds (0: only if free now)."""
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # locks/ removed under a running proxy: made again
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        until = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    left = until - time.monotonic()
                    if left <= 0:
                        os.close(fd)
                        return False
                    time.sleep(min(self._POLL, left))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the flock goes with the descriptor


@dataclass(frozen=True)
class PageStamp:
    """Which version of a stored page is on disk, and when upstream last answered for it."""

    version: str  # changes whenever the stored page is written again
    fetched: float


class Store:
    """One proxy store directory; safe to share between threads and processes."""

    # Whether ``page_stamp`` sees every page this store holds (a bucket's are elsewhere): a
    # page without a stamp then needs no thread to learn that it is not stored.
    stamps_all_pages = True

    def __init__(self, root: Path, key: str, client: HttpClient, stats: Stats, timeout: float):
        self.root = root
        self._pages = root / "pages" / key
        self._files = root / "files"
        self.key = key
        self._metadata = root / "upstream-metadata" / key
        self._partial = root / "partial"
        self._locks = root / "locks"
        self._rendered = root / "rendered" / key
        for directory in (self._pages, self._files, self._metadata, self._partial, self._locks):
            directory.mkdir(parents=True, exist_ok=True)
        self.client = client
        self.stats = stats
        self.timeout = timeout
        self._inflight: dict[str, threading.Thread] = {}
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[tuple[int, int, int], PageRecord]] = {}
        self._parse_locks: dict[str, threading.Lock] = {}
        self._metadata_hashes: dict[str, str] = {}
        # metadata/<aa>/ listed once per change of the directory: a page of 15,000 wheels
        # asks for each wheel whether its METADATA is stored, and most are not.
        self._metadata_names: dict[str, tuple[int, frozenset[str]]] = {}
        # Called (in the downloading thread) with each file once it is stored, verified.
        self.on_stored: Callable[[PageFile, str], None] | None = None

    # -- pages ----------------------------------------------------------------------------

    def read_page(self, project: str) -> PageRecord | None:
        path = self._pages / f"{project}.json"
        if not path.exists():
            # Asked for every name clients send: a lock per name that has no page would let
            # a client grow this process's memory with names.
            return None
        # One parse at a time per project: 20 clients asking for files of a page that was
        # dropped from memory must not parse 20 copies of it at once.
        with self._parse_locks.setdefault(project, threading.Lock()):
            try:
                # Parsed once per version of the file (another worker may have replaced it):
                # parsing pydantic-core's stored page takes 0.5 s.
                info = path.stat()
                seen = (info.st_mtime_ns, info.st_size, info.st_ino)
                cached = self._parsed.get(project)
                if cached is not None and cached[0] == seen:
                    return cached[1]
                record = PageRecord.from_bytes(path.read_bytes())
            except FileNotFoundError:
                return None
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
                return None
            self._keep_parsed(project, seen, record)
            return record

    def _keep_parsed(self, project: str, seen: tuple[int, int, int], record: PageRecord) -> None:
        with self._lock:
            self._parsed.pop(project, None)
            self._parsed[project] = (seen, record)  # the most recent last
            total = sum(r.weight for _, r in self._parsed.values())
            while total > _PARSED_FILES and len(self._parsed) > 1:
                oldest = next(iter(self._parsed))
                total -= self._parsed.pop(oldest)[1].weight

    def find_file(self, project: str, sha256: str, filename: str) -> PageFile | None:
        """File ``sha256`` named ``filename`` of ``project``'s stored page, or None. A page
        not parsed here is searched, and only the file found is made an object: parsing
        pydantic-core's page whole for one of its wheels took 0.5 s."""
        path = self._pages / f"{project}.json"
        try:
            info = path.stat()
            cached = self._parsed.get(project)
            if cached is not None and cached[0] == (info.st_mtime_ns, info.st_size, info.st_ino):
                return cached[1].find(sha256, filename)  # a relayed page is parsed once
            data = path.read_bytes()
            if PageRecord.is_relayed(data):
                # Linked by sha256 only by its HTML rendering: parsed once, and kept.
                record = self.read_page(project)
                return None if record is None else record.find(sha256, filename)
            return PageRecord.find_in(data, sha256, filename)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
        return None

    def find_link(self, project: str, path: str) -> PageFile | None:
        """The file ``project``'s stored page, relayed, links as its origin + ``path``; None
        when it links none (or is not relayed)."""
        record = self.read_page(project)  # relayed: kept as bytes, never parsed for this
        if record is None:
            return None
        try:
            return record.find_link(path)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
            return None

    def page_head(self, project: str) -> PageHead | None:
        """The status ``project``'s stored page gives, read from its first line; None when
        no page (or no readable one) is stored."""
        path = self._pages / f"{project}.json"
        try:
            cached = self._parsed.get(project)
            if cached is not None:
                info = path.stat()
                if cached[0] == (info.st_mtime_ns, info.st_size, info.st_ino):
                    return cached[1].head_of
            with path.open("rb") as f:
                return PageRecord.head(f.readline())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
            return None

    def page_stamp(self, project: str) -> PageStamp | None:
        """The version of ``project``'s stored page, without reading it; None when there is
        none here (a store that keeps its pages elsewhere always answers None)."""
        try:
            info = (self._pages / f"{project}.json").stat()
        except FileNotFoundError:
            return None
        # Written when upstream answered (``write_page``): the mtime is the record's time.
        version = f"{info.st_mtime_ns:x}-{info.st_size:x}-{info.st_ino:x}"
        return PageStamp(version, info.st_mtime_ns / 1e9)

    def write_page(self, record: PageRecord) -> None:
        path = self._pages / f"{record.project}.json"
        with atomic_writer(path) as handle:
            # Line by line: a relayed page's megabytes are written as they came, not copied.
            for line in record.to_lines():
                handle.write(line)
        with contextlib.suppress(FileNotFoundError):
            info = path.stat()  # the next read of this version needs no parse
            self._keep_parsed(record.project, (info.st_mtime_ns, info.st_size, info.st_ino), record)

    # -- pages as served ------------------------------------------------------------------

    def open_rendered(self, project: str, form: str, version: str) -> tuple[int, str] | None:
        """A descriptor of ``project``'s page rendered as ``form`` from page ``version``, and
        its ETag; None when it was not rendered (or was dropped because the page changed)."""
        directory = self._rendered / project
        prefix = f"{form}.{version}."
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return None
        for name in names:
            if name.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    # Opened now: a rendering replaced or dropped meanwhile is still read whole.
                    return os.open(directory / name, os.O_RDONLY), name[len(prefix) :]
        return None

    def write_rendered(self, project: str, form: str, version: str, body: bytes) -> Path:
        """Keep ``body`` as ``project``'s page ``version`` in ``form``, replacing the older
        renderings in that form; where it was written."""
        directory = self._rendered / project
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{form}.{version}.{hashlib.sha256(body).hexdigest()[:32]}"
        write_atomic(directory / name, body)
        for other in os.listdir(directory):
            if other.startswith(f"{form}.") and other != name:
                (directory / other).unlink(missing_ok=True)
        return directory / name

    def keep_rendered(self, project: str, old: PageStamp, new: PageStamp) -> None:
        """The page ``old`` was rewritten as ``new`` with the same files (upstream said "not
        modified"): its renderings still show it, so they move to the new version instead of
        being rendered again."""
        directory = self._rendered / project
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(directory):
                form, _, rest = name.partition(".")
                if rest.startswith(f"{old.version}."):
                    etag = rest[len(old.version) + 1 :]
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(directory / name, directory / f"{form}.{new.version}.{etag}")

    def forget_rendered(self, project: str) -> None:
        """Drop ``project``'s rendered pages: what they show changed (a METADATA hash)."""
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self._rendered / project):
                if not name.startswith("."):  # write_atomic's temporary files are not ours
                    (self._rendered / project / name).unlink(missing_ok=True)

    def forget_page(self, project: str) -> None:
        (self._pages / f"{project}.json").unlink(missing_ok=True)
        self.forget_rendered(project)

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

    def create_partial(self, sha256: str) -> int:
        """A new, empty partial file for ``sha256`` in place of any older one, open for writing
        and flock()ed for as long as it stays open. Readers follow only a partial file whose
        writer holds that lock: one left by a process that died is never taken for a download
        under way (its bytes would be served as the file's)."""
        partial = self.partial_path(sha256)
        temporary = partial.with_name(f".{sha256}.{uuid.uuid4().hex}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # before anyone can see it under its name
            os.replace(temporary, partial)
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        return fd

    def open_source(self, sha256: str) -> tuple[int, bool] | None:
        """A descriptor to read file ``sha256`` from, and whether it is complete: the stored
        file, or the partial file of a download under way. None when there is neither (a
        partial file nobody writes is a dead process's leftover: never read)."""
        with contextlib.suppress(FileNotFoundError):
            return os.open(self.file_path(sha256), os.O_RDONLY), True
        try:
            fd = os.open(self.partial_path(sha256), os.O_RDONLY)
        except FileNotFoundError:
            return None
        state = self.partial_state(fd, sha256)
        if state == "abandoned":
            os.close(fd)
            return None
        return fd, state == "complete"

    def partial_state(self, fd: int, sha256: str) -> Literal["writing", "complete", "abandoned"]:
        """What became of the partial file open at ``fd``: still being written; renamed into
        place once its sha256 matched; or abandoned (thrown away after a mismatch or a failed
        read, or its writer died): its bytes must not complete any response."""
        info = os.fstat(fd)
        if self._is_stored(info, sha256):
            return "complete"
        if info.st_nlink == 0:
            return "abandoned"
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return "writing"
        fcntl.flock(fd, fcntl.LOCK_UN)
        # Nobody writes it: its writer renamed it into place since we looked, or died.
        return "complete" if self._is_stored(info, sha256) else "abandoned"

    def _is_stored(self, info: os.stat_result, sha256: str) -> bool:
        try:
            stored = os.stat(self.file_path(sha256))
        except FileNotFoundError:
            return False
        return (stored.st_ino, stored.st_dev) == (info.st_ino, info.st_dev)

    def start_download(self, file: PageFile) -> None:
        """Make sure ``file`` is being downloaded into the store, unless it is there already.

        One thread per file per process; across processes the file lock lets one download
        while the others' readers follow its partial file.
        """
        sha256 = file.sha256
        assert sha256 is not None
        thread = threading.Thread(
            target=self._download, args=(file, sha256), name=f"download {sha256[:12]}"
        )
        thread.daemon = True
        self._claim(sha256, thread)

    def _claim(self, sha256: str, thread: threading.Thread) -> bool:
        """Make ``thread`` this process's one download of ``sha256`` (started here, under
        the lock, if it is new), unless another one runs; whether it did."""
        with self._lock:
            running = self._inflight.get(sha256)
            if running is not None and running.is_alive():
                return False
            self._failures.pop(sha256, None)
            self._inflight[sha256] = thread
            if thread.ident is None:
                thread.start()
            return True

    def download_active(self, sha256: str) -> bool:
        with self._lock:
            running = self._inflight.get(sha256)
            return running is not None and running.is_alive()

    def failure(self, sha256: str) -> str | None:
        with self._lock:
            return self._failures.get(sha256)

    def _download(self, file: PageFile, sha256: str) -> None:
        lock = _Flock(self._locks / f"{sha256}.lock")
        try:
            if not lock.acquire():
                return  # another process downloads it; our readers follow its partial file
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

    def download_from(self, file: PageFile, response: urllib3.BaseHTTPResponse) -> Path:
        """Store ``file`` from an upstream ``response`` already under way (a 200 answer to a
        range request); if another process downloads it, wait for that one instead."""
        sha256 = file.sha256
        assert sha256 is not None
        lock = _Flock(self._locks / f"{sha256}.lock")
        if not lock.acquire():
            response.release_conn()
            return self.wait_for_file(file, stall=self.timeout * 2)
        try:
            if not self.has_file(sha256):
                self._download_locked(file, sha256, response)
        finally:
            lock.release()
        return self.file_path(sha256)

    def _download_locked(
        self, file: PageFile, sha256: str, response: urllib3.BaseHTTPResponse | None = None
    ) -> None:
        partial = self.partial_path(sha256)
        shown = strip_credentials(file.url)

        def opener(headers: Mapping[str, str], retries: Retry) -> urllib3.BaseHTTPResponse:
            # The whole file again on a retry (readers follow the partial file: what they
            # read must not change); redirects followed by the shared page client's policy.
            self.stats.add(upstream_requests=1)
            return open_file(self.client, file.url, timeout=self.timeout)

        def too_big(size: int) -> str | None:
            if file.size is not None and size > file.size:
                return f"it sent more than the {file.size} bytes its page gives"
            return None

        # Replaces a partial file left by a process that died: its readers see it abandoned.
        fd = self.create_partial(sha256)
        try:
            # Unbuffered: readers follow the partial file as each chunk is written.
            with open(fd, "wb", buffering=0, closefd=False) as out:
                try:
                    received = receive(
                        self.client, file.url, out, sha256=sha256, name=file.filename,
                        too_big=too_big, opener=opener, response=response,
                        progress=lambda size: self.stats.add(upstream_bytes=size),
                    )  # fmt: skip
                except HashMismatchError as exc:
                    self.stats.add(hash_mismatches=1)
                    raise DownloadFailed(
                        f"{shown} sent {out.tell()} bytes with sha256 {exc.actual}, "
                        f"not the {sha256} its page promises; nothing was stored"
                    ) from None
                except DownloadError as exc:
                    self.stats.add(upstream_errors=1)
                    raise DownloadFailed(f"reading {shown} failed: {exc.reason}") from exc
            if file.size is not None and received.size != file.size:
                self.stats.add(hash_mismatches=1)
                raise DownloadFailed(
                    f"{shown} sent {received.size} bytes with sha256 {sha256}, not the "
                    f"{file.size} bytes its page gives; nothing was stored"
                )
            os.fsync(fd)
            target = self.file_path(sha256)
            target.parent.mkdir(exist_ok=True)
            os.replace(partial, target)
            logger.info("stored %s (%d bytes, sha256 %s)", file.filename, received.size, sha256)
            self.stored(file, sha256)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def stored(self, file: PageFile, sha256: str) -> None:
        """Tell ``on_stored`` that ``file`` is in the store; what it does cannot undo that."""
        if self.on_stored is None:
            return
        try:
            self.on_stored(file, sha256)
        except Exception:  # a check after the fact must not fail the download
            logger.exception("after storing %s", file.filename)

    def fetch_file(self, file: PageFile, *, stall: float) -> Path:
        """``file`` in the store, downloaded by the calling thread unless another thread of
        this process downloads it already (then waited for, as ``wait_for_file`` does).

        A cold uv run asks for the METADATA of 36 small wheels at once, each fetched whole:
        a download thread each, polled every 20 ms by the thread that waited for it, was
        twice the threads taking turns with the GIL while the event loop waited for it."""
        sha256 = file.sha256
        assert sha256 is not None
        if self._claim(sha256, threading.current_thread()):
            self._download(file, sha256)  # a failure is recorded, as a download thread's
            if self.has_file(sha256):
                return self.file_path(sha256)
        return self.wait_for_file(file, stall=stall)

    def wait_for_file(self, file: PageFile, *, stall: float) -> Path:
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
                # The other process's download ended badly. Ours may have just failed too:
                # its reason is recorded before it stops being active.
                if not self.download_active(sha256) and self.failure(sha256) is None:
                    self.start_download(file)
            if size != last[0]:
                last = (size, time.monotonic())
            elif time.monotonic() - last[1] > stall:
                raise DownloadFailed(f"the download of {file.filename} stalled")
            thread = self._inflight.get(sha256)
            if thread is not None and thread.is_alive():
                thread.join(0.02)  # back as soon as this process's download ends
            else:
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
        if f"{sha256}.sha256" not in self._listed_metadata(sha256[:2]):
            return None
        try:
            value = self.metadata_path(sha256).with_suffix(".sha256").read_text().strip()
        except FileNotFoundError:
            return None
        self._metadata_hashes[sha256] = value
        return value

    def metadata_sha256s(self, sha256s: Iterable[str]) -> dict[str, str]:
        """``metadata_sha256`` of many wheels at once (those with METADATA stored): each of
        the folders is looked at once, not once per wheel (15,000 stat calls a page)."""
        listed: dict[str, frozenset[str]] = {}
        found: dict[str, str] = {}
        try:  # the folders that exist: asking for each of 256 that does not costs an exception
            present = frozenset(os.listdir(self._metadata))
        except FileNotFoundError:
            present = frozenset()
        for sha256 in sha256s:
            known = self._metadata_hashes.get(sha256)
            if known is None:
                prefix = sha256[:2]
                if prefix not in present:
                    continue
                names = listed.get(prefix)
                if names is None:
                    names = listed[prefix] = self._listed_metadata(prefix)
                if f"{sha256}.sha256" not in names:
                    continue
                known = self.metadata_sha256(sha256)
            if known is not None:
                found[sha256] = known
        return found

    def _listed_metadata(self, prefix: str) -> frozenset[str]:
        directory = self._metadata / prefix
        try:
            changed = directory.stat().st_mtime_ns
        except FileNotFoundError:
            return frozenset()
        cached = self._metadata_names.get(prefix)
        if cached is not None and cached[0] == changed:
            return cached[1]
        names = frozenset(os.listdir(directory))
        self._metadata_names[prefix] = (changed, names)
        return names

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
        """Held by the one process reading the METADATA of wheel ``sha256`` for these
        upstreams; TimeoutError when another holds it longer than ``timeout``."""
        lock = _Flock(self._locks / f"{self.key}.{sha256}.metadata.lock")
        if not lock.acquire(timeout):
            raise TimeoutError(f"the METADATA of {sha256} is being read by another process")
        try:
            yield
        finally:
            lock.release()
