"""A loopback PEP 503 index serving every dist in a directory, with hooks to make it misbehave."""

from __future__ import annotations

import hashlib
import html
import json
import posixpath
import re
import socketserver
import ssl
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import HeaderParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

__all__ = ["Answer", "IndexServer", "Intercept", "ServedDist"]

# The upload-time JSON pages give a file that ``IndexServer.upload_times`` does not name.
DEFAULT_UPLOAD_TIME = "2026-01-01T00:00:00.000000Z"

# (status, headers, body), as IndexServer._route answers.
Answer = tuple[int, dict[str, str], bytes]
# A test's own answer to a request (path, request headers), or None to let the index answer.
Intercept = Callable[[str, Mapping[str, str]], Answer | None]


@dataclass(frozen=True)
class ServedDist:
    """One file the index lists: its project (normalized), hash and Requires-Python."""

    filename: str
    project: str
    sha256: str
    requires_python: str | None


def ago(delta: timedelta) -> str:
    """The upload-time of a file uploaded ``delta`` ago, as an index writes it."""
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _project_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        pass
    return None


def _metadata_text(path: Path) -> str | None:
    """METADATA of a wheel or PKG-INFO of an sdist (the top-level one), or None."""
    if path.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as archive:
            wanted = "METADATA" if path.name.endswith(".whl") else "PKG-INFO"
            for name in archive.namelist():
                top, _, rest = name.partition("/")
                in_dist_info = wanted == "PKG-INFO" or top.endswith(".dist-info")
                if rest == wanted and in_dist_info:
                    return archive.read(name).decode("utf-8")
        return None
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                extracted = archive.extractfile(member)
                return extracted.read().decode("utf-8") if extracted else None
    return None


def _requires_python(path: Path) -> str | None:
    # A deliberately broken dist is still served; it just advertises no Requires-Python.
    try:
        text = _metadata_text(path)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, UnicodeDecodeError):
        return None
    if text is None:
        return None
    value = HeaderParser().parsestr(text).get("Requires-Python")
    return str(value).strip() if value else None


def _corrupted(data: bytes) -> bytes:
    # Same length, different bytes: only a hash check can tell.
    head = bytes(b ^ 0xFF for b in data[:16])
    return head + data[16:] if data else b"corrupt"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    index: IndexServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-response (pip cancelling, a test closing early) is normal.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, *, head: bool) -> None:
        index = self.server.index
        index._record(self.path)
        with index._lock:
            # Header names title-cased ("authorization" -> "Authorization"): clients differ.
            index.received.append((self.path, {k.title(): v for k, v in self.headers.items()}))
            intercepts = list(index._intercepts)
        answer = None
        for intercept in intercepts:
            answer = intercept(self.path, self.headers)
            if answer is not None:
                break
        status, headers, body = answer or index._route_request(
            urlsplit(self.path).path, self.headers
        )
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class IndexServer:
    """A PEP 503 "simple" index on ``127.0.0.1`` serving every dist in ``root``.

    ``root`` is re-scanned on every request, so tests may add files after the server started.
    Use as a context manager (or call ``start()``/``stop()``).
    """

    def __init__(self, root: Path, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.root = Path(root)
        # With a server-side context the index speaks HTTPS (base_url says https://).
        self.ssl_context = ssl_context
        self.requests: list[str] = []
        # Every request's path and headers, in order (to check what credentials were sent).
        self.received: list[tuple[str, dict[str, str]]] = []
        self._intercepts: list[Intercept] = []
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int, int], ServedDist] = {}
        self._corrupt: set[str] = set()
        self._failures: dict[str, int] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._delays: dict[str, float] = {}
        self._last_port = 0
        # Opt-in behaviours of real indexes (off by default, so older tests see plain PEP 503).
        self.etags = False  # ETag/Last-Modified on pages, 304 for If-None-Match
        self.ranges = False  # 206 answers to "Range: bytes=..." on files
        self.json_pages = False  # PEP 691 JSON (with size, upload-time) when Accept asks
        self.metadata_files = False  # PEP 658: serve and advertise each wheel's METADATA
        self.absolute_links = False  # file links as absolute URLs (PyPI's), not relative
        self.yanked: dict[str, str] = {}  # PEP 592: filename -> reason ("" for none)
        # PEP 700 upload-time in JSON pages: filename -> value (None: left out); the default
        # for a file not named is DEFAULT_UPLOAD_TIME.
        self.upload_times: dict[str, object] = {}
        # PEP 792: project -> (status, reason or None); a quarantined project lists no files.
        self.project_status: dict[str, tuple[str, str | None]] = {}
        # PEP 740: filename -> its provenance object, served by the integrity API
        # (/integrity/<project>/<version>/<filename>/provenance) and named by the pages.
        self.provenance: dict[str, bytes] = {}
        # filename -> the provenance URL the pages name instead (a hostile page's).
        self.provenance_urls: dict[str, str] = {}
        # (path, If-None-Match or None) of every page or file request: who asked conditionally.
        self.conditional: list[tuple[str, str | None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, same_port: bool = False) -> IndexServer:
        """Start serving; ``same_port`` restarts on the port of the last run (after stop())."""
        if self._server is not None:
            raise RuntimeError("IndexServer already started")
        server = _Server(("127.0.0.1", self._last_port if same_port else 0), _Handler)
        server.index = self
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._last_port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"IndexServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("IndexServer is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The index URL, for ``--index-url``."""
        return f"{self.base_url}simple/"

    @property
    def files_url(self) -> str:
        """Where files are served from (``files_url + filename``)."""
        return f"{self.base_url}files/"

    def project_url(self, name: str) -> str:
        return f"{self.url}{canonicalize_name(name)}/"

    # -- test hooks ------------------------------------------------------------------------

    def corrupt(self, filename: str) -> None:
        """Serve other bytes for ``filename`` while its page still advertises the true hash."""
        with self._lock:
            self._corrupt.add(filename)

    def fail(self, path_prefix: str, status: int = 500) -> None:
        """Answer every request whose path starts with ``path_prefix`` with ``status``."""
        with self._lock:
            self._failures[path_prefix] = status

    def intercept(self, hook: Intercept) -> None:
        """Let ``hook`` answer requests first (it returns None to let the index answer)."""
        with self._lock:
            self._intercepts.append(hook)

    def delay(self, path_prefix: str, seconds: float) -> None:
        """Answer requests whose path starts with ``path_prefix`` after ``seconds``."""
        with self._lock:
            self._delays[path_prefix] = seconds

    def yank(self, filename: str, reason: str = "") -> None:
        """Mark ``filename`` yanked on its project's pages (PEP 592), with ``reason``."""
        with self._lock:
            self.yanked[filename] = reason

    def clear_hooks(self) -> None:
        with self._lock:
            self._corrupt.clear()
            self._failures.clear()
            self._intercepts.clear()
            self._delays.clear()

    def count(self, path: str, *, prefix: bool = False) -> int:
        """How many requests asked for ``path`` (query ignored), or for paths under it."""
        with self._lock:
            paths = [urlsplit(p).path for p in self.requests]
        return sum(1 for p in paths if (p.startswith(path) if prefix else p == path))

    # -- contents --------------------------------------------------------------------------

    def dists(self) -> dict[str, list[ServedDist]]:
        """Every dist in ``root`` by normalized project name, files sorted by name."""
        projects: dict[str, list[ServedDist]] = {}
        if not self.root.is_dir():
            return projects
        for path in sorted(self.root.iterdir()):
            project = _project_of(path.name)
            if project is None or not path.is_file():
                continue
            stat = path.stat()
            key = (path.name, stat.st_size, stat.st_mtime_ns)
            with self._lock:
                served = self._cache.get(key)
            if served is None:
                served = ServedDist(
                    filename=path.name,
                    project=project,
                    sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                    requires_python=_requires_python(path),
                )
                with self._lock:
                    self._cache[key] = served
            projects.setdefault(project, []).append(served)
        return projects

    def _record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def _route(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            failures = dict(self._failures)
            corrupt = set(self._corrupt)
        for prefix, status in failures.items():
            if path.startswith(prefix):
                return status, {"Content-Type": "text/plain"}, b"failure injected by a test\n"

        if path == "/simple":
            return self._redirect("/simple/")
        if path == "/simple/":
            return self._root_page()
        if path.startswith("/simple/"):
            raw = unquote(path[len("/simple/") :])
            name = raw.rstrip("/")
            if not name or "/" in name:
                return self._not_found()
            normalized = canonicalize_name(name)
            if raw != f"{normalized}/":
                # PyPI redirects every non-normalized project URL to the normalized one.
                return self._redirect(f"/simple/{quote(normalized)}/")
            return self._project_page(normalized)
        if path.startswith("/integrity/") and path.endswith("/provenance"):
            filename = unquote(path.split("/")[-2])
            data = self.provenance.get(filename)
            if data is not None and path == self._provenance_path(filename):
                return (
                    HTTPStatus.OK,
                    {"Content-Type": "application/vnd.pypi.integrity.v1+json"},
                    data,
                )
            return self._not_found()
        if path.startswith("/files/"):
            filename = unquote(path[len("/files/") :])
            if "/" in filename or filename in ("", ".", ".."):
                return self._not_found()
            if self.metadata_files and filename.endswith(".whl.metadata"):
                wheel = self.root / filename.removesuffix(".metadata")
                text = _metadata_text(wheel) if wheel.is_file() else None
                if text is not None:
                    return HTTPStatus.OK, {"Content-Type": "text/plain"}, text.encode()
            for files in self.dists().values():
                if any(d.filename == filename for d in files):
                    data = (self.root / filename).read_bytes()
                    if filename in corrupt:
                        data = _corrupted(data)
                    return HTTPStatus.OK, {"Content-Type": "application/octet-stream"}, data
        return self._not_found()

    def _route_request(
        self, path: str, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """``_route`` plus the opt-in behaviours that look at request headers."""
        with self._lock:
            delays = dict(self._delays)
            self.conditional.append((path, headers.get("If-None-Match")))
        for prefix, seconds in delays.items():
            if path.startswith(prefix):
                time.sleep(seconds)
        status, out, body = self._route(path)
        if status != HTTPStatus.OK:
            return status, out, body
        if path.startswith("/simple/") and path != "/simple/":
            accept = headers.get("Accept") or ""
            if self.json_pages and "application/vnd.pypi.simple.v1+json" in accept:
                project = canonicalize_name(unquote(path[len("/simple/") :]).rstrip("/"))
                body = self._project_json(project)
                out = {"Content-Type": "application/vnd.pypi.simple.v1+json"}
            if self.etags:
                tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                out = {**out, "ETag": tag, "Vary": "Accept"}
                if tag in (headers.get("If-None-Match") or ""):
                    return HTTPStatus.NOT_MODIFIED, {"ETag": tag}, b""
        elif path.startswith("/files/") and self.ranges:
            out = {**out, "Accept-Ranges": "bytes"}
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", (headers.get("Range") or "").strip())
            if match and (match.group(1) or match.group(2)):
                size = len(body)
                if match.group(1):
                    start = int(match.group(1))
                    stop = min(int(match.group(2)) + 1 if match.group(2) else size, size)
                else:
                    start, stop = max(size - int(match.group(2)), 0), size
                if start >= size or start >= stop:
                    return HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {}, b""
                out = {**out, "Content-Range": f"bytes {start}-{stop - 1}/{size}"}
                return HTTPStatus.PARTIAL_CONTENT, out, body[start:stop]
        return status, out, body

    def _listed(self, project: str) -> list[ServedDist]:
        if self.project_status.get(project, ("active", None))[0] == "quarantined":
            return []  # PEP 792: the index offers no file of a quarantined project
        return self.dists().get(project, [])

    def _project_json(self, project: str) -> bytes:
        files = []
        for dist in self._listed(project):
            item: dict[str, object] = {
                "filename": dist.filename,
                "url": self._file_link(dist.filename),
                "hashes": {"sha256": dist.sha256},
                "size": (self.root / dist.filename).stat().st_size,
            }
            uploaded = self.upload_times.get(dist.filename, DEFAULT_UPLOAD_TIME)
            if uploaded is not None:
                item["upload-time"] = uploaded
            if dist.requires_python:
                item["requires-python"] = dist.requires_python
            if dist.filename in self.yanked:
                item["yanked"] = self.yanked[dist.filename] or True
            if self.metadata_files and dist.filename.endswith(".whl"):
                item["core-metadata"] = {"sha256": self._metadata_sha256(dist)}
            if (provenance := self._provenance_link(dist.filename)) is not None:
                item["provenance"] = provenance
            files.append(item)
        document: dict[str, object] = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": files,
        }
        if project in self.project_status:
            status, reason = self.project_status[project]
            document["meta"] = {"api-version": "1.4"}
            document["project-status"] = {
                "status": status,
                **({"reason": reason} if reason else {}),
            }
        return json.dumps(document).encode()

    def _file_link(self, filename: str) -> str:
        if self.absolute_links:
            return self.files_url + quote(filename)
        return posixpath.join("../../files", quote(filename))

    def _provenance_path(self, filename: str) -> str:
        project = _project_of(filename) or ""
        if filename.endswith(".whl"):
            version = str(parse_wheel_filename(filename)[1])
        else:
            version = str(parse_sdist_filename(filename)[1])
        return f"/integrity/{quote(project)}/{quote(version)}/{quote(filename)}/provenance"

    def _provenance_link(self, filename: str) -> str | None:
        if filename in self.provenance_urls:
            return self.provenance_urls[filename]
        if filename in self.provenance:
            return self.base_url.rstrip("/") + self._provenance_path(filename)
        return None

    def _root_page(self) -> tuple[int, dict[str, str], bytes]:
        links = "".join(
            f'<a href="{quote(name)}/">{html.escape(name)}</a><br>\n' for name in self.dists()
        )
        return self._page("Simple index", links)

    def _project_page(self, project: str) -> tuple[int, dict[str, str], bytes]:
        files = self.dists().get(project)
        if not files:
            return self._not_found()
        files = self._listed(project)
        links = []
        for dist in files:
            href = self._file_link(dist.filename) + f"#sha256={dist.sha256}"
            attrs = f'href="{html.escape(href)}"'
            if dist.requires_python:
                attrs += f' data-requires-python="{html.escape(dist.requires_python)}"'
            attrs += self._extra_attributes(dist)
            links.append(f"<a {attrs}>{html.escape(dist.filename)}</a><br>\n")
        head = ""
        if project in self.project_status:
            status, reason = self.project_status[project]
            head = f'<meta name="pypi:project-status" content="{html.escape(status)}">\n'
            if reason:
                head += (
                    f'<meta name="pypi:project-status-reason" content="{html.escape(reason)}">\n'
                )
        return self._page(f"Links for {project}", "".join(links), head)

    def _extra_attributes(self, dist: ServedDist) -> str:
        attrs = ""
        if dist.filename in self.yanked:
            attrs += f' data-yanked="{html.escape(self.yanked[dist.filename])}"'
        if self.metadata_files and dist.filename.endswith(".whl"):
            attrs += f' data-core-metadata="sha256={self._metadata_sha256(dist)}"'
        if (provenance := self._provenance_link(dist.filename)) is not None:
            attrs += f' data-provenance="{html.escape(provenance)}"'
        return attrs

    def _metadata_sha256(self, dist: ServedDist) -> str:
        text = _metadata_text(self.root / dist.filename) or ""
        return hashlib.sha256(text.encode()).hexdigest()

    @staticmethod
    def _page(title: str, body: str, head: str = "") -> tuple[int, dict[str, str], bytes]:
        text = (
            "<!DOCTYPE html>\n<html>\n<head>\n"
            '<meta name="pypi:repository-version" content="1.0">\n'
            f"{head}<title>{html.escape(title)}</title>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
        )
        return HTTPStatus.OK, {"Content-Type": "text/html; charset=utf-8"}, text.encode()

    @staticmethod
    def _redirect(location: str) -> tuple[int, dict[str, str], bytes]:
        return HTTPStatus.MOVED_PERMANENTLY, {"Location": location}, b""

    @staticmethod
    def _not_found() -> tuple[int, dict[str, str], bytes]:
        return HTTPStatus.NOT_FOUND, {"Content-Type": "text/plain"}, b"not found\n"

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"IndexServer({str(self.root)!r}, {state})"
