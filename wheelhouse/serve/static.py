"""Serve a wheelhouse's static index and files over HTTP, negotiating HTML or JSON per PEP 691."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import socketserver
import stat
import threading
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import cast
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name

from wheelhouse import __version__
from wheelhouse.errors import InvalidWheelhouseError, NetworkError
from wheelhouse.house.index import HTML_PAGE, HTML_TYPE, INDEX_DIR, JSON_PAGE, JSON_TYPE

__all__ = ["WheelhouseServer", "make_server", "negotiate", "serve"]

logger = logging.getLogger(__name__)

TEXT_HTML = "text/html"
# What /simple/ pages can be served as, in the order we prefer them when the client does not
# say otherwise: JSON is the most expressive, text/html the legacy alias (PEP 691).
_OFFERS = (JSON_TYPE, HTML_TYPE, TEXT_HTML)
_LATEST = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
}
_CONTENT_TYPES = {
    JSON_TYPE: JSON_TYPE,
    HTML_TYPE: HTML_TYPE,
    TEXT_HTML: "text/html; charset=utf-8",
}
_PAGES = {JSON_TYPE: JSON_PAGE, HTML_TYPE: HTML_PAGE, TEXT_HTML: HTML_PAGE}
# Each variant of a page has its own entity tag (RFC 9110 8.8.3): the bytes or the type differ.
_TAGS = {JSON_TYPE: "json-", HTML_TYPE: "html-", TEXT_HTML: "text-"}
# Types of the other files a wheelhouse holds; anything else is an opaque download.
_FILE_TYPES = {
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".metadata": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".toml": "application/toml",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
}
_CHUNK = 256 * 1024


def negotiate(accept: str | None) -> str | None:
    """The content type to answer a /simple/ request with ``accept``, or None for a 406.

    Each offer takes the quality of the most specific range that matches it; the highest
    quality wins, then the more specific match, then our preference. No header means ``*/*``.
    """
    ranges: list[tuple[str, float]] = []
    for item in (accept or "*/*").split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        if not media:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a malformed range accepts nothing
        ranges.append((_LATEST.get(media, media), min(max(quality, 0.0), 1.0)))

    best: tuple[float, int, int] | None = None
    chosen = None
    for preference, offer in enumerate(_OFFERS):
        quality, specificity = _quality(offer, ranges)
        if quality <= 0:
            continue
        rank = (quality, specificity, -preference)
        if best is None or rank > best:
            best, chosen = rank, offer
    return chosen


def _quality(offer: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    kind = offer.split("/", 1)[0]
    best_specificity = -1
    quality = 0.0
    for media, q in ranges:
        if media == offer:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, quality = specificity, q
        elif specificity == best_specificity:
            quality = max(quality, q)
    return quality, best_specificity


class WheelhouseServer(ThreadingHTTPServer):
    """A threaded HTTP server for one wheelhouse directory."""

    daemon_threads = True
    # 50 pip clients connecting at once would overflow the default backlog of 5.
    request_queue_size = 128

    def __init__(self, root: Path, host: str, port: int) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up in DNS, which can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def url(self) -> str:
        """The index URL clients use, e.g. ``http://127.0.0.1:8000/simple/``."""
        host = self.server_name
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server_port}/{INDEX_DIR}/"

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints tracebacks to stderr; a client hanging up is routine.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"wheelhouse/{__version__}"
    timeout = 30  # an idle keep-alive connection must not hold a thread forever
    # Headers and body go out in separate writes; with Nagle's algorithm each small response
    # then waits for the client's delayed ACK (40 ms per request on Linux).
    disable_nagle_algorithm = True

    @property
    def wheelhouse(self) -> WheelhouseServer:
        return cast(WheelhouseServer, self.server)

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._respond(body=True)

    def do_HEAD(self) -> None:
        self._respond(body=False)

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: object) -> None:
        # send_error() logs the request line as well; keep one INFO line per request.
        logger.debug("%s %s", self.address_string(), format % args)

    def _respond(self, *, body: bool) -> None:
        # An origin-form target ("/a/b?q") is split by hand: urlsplit would read "//x/..." as
        # a host name. An absolute-form target ("http://host/a") is what urlsplit is for.
        if self.path.startswith("/"):
            path = self.path.partition("?")[0].partition("#")[0]
        else:
            path = urlsplit(self.path).path
        if not path.startswith("/"):
            self._send_text(HTTPStatus.BAD_REQUEST, "bad request target", body=body)
            return
        parts = _path_parts(path)
        if parts is None:
            self._send_text(HTTPStatus.BAD_REQUEST, "bad path", body=body)
            return
        directory = path.endswith("/")
        if not parts:
            self._redirect(f"/{INDEX_DIR}/", HTTPStatus.FOUND, body=body)
        elif parts[0] == INDEX_DIR and len(parts) <= 2:
            self._page(parts, directory=directory, body=body)
        elif directory:  # no directory listings, and a file is never a directory
            self._send_text(HTTPStatus.NOT_FOUND, "not found", body=body)
        else:
            self._file(parts, body=body)

    def _page(self, parts: list[str], *, directory: bool, body: bool) -> None:
        if len(parts) == 2:
            name = canonicalize_name(parts[1])
            if not self._exists_dir([INDEX_DIR, name]):
                self._send_text(HTTPStatus.NOT_FOUND, "no such project", body=body)
                return
            if name != parts[1] or not directory:
                self._redirect(
                    f"/{INDEX_DIR}/{quote(name)}/", HTTPStatus.MOVED_PERMANENTLY, body=body
                )
                return
        elif not directory:
            self._redirect(f"/{INDEX_DIR}/", HTTPStatus.MOVED_PERMANENTLY, body=body)
            return
        chosen = negotiate(self.headers.get("Accept"))
        if chosen is None:
            self._send_text(
                HTTPStatus.NOT_ACCEPTABLE,
                "acceptable types: " + ", ".join(_OFFERS),
                body=body,
                vary=True,
            )
            return
        target = self._resolve([*parts, _PAGES[chosen]])
        if target is None:
            self._send_text(HTTPStatus.NOT_FOUND, "not found", body=body, vary=True)
            return
        self._send_file(target, _CONTENT_TYPES[chosen], body=body, vary=True, tag=_TAGS[chosen])

    def _file(self, parts: list[str], *, body: bool) -> None:
        target = self._resolve(parts)
        if target is None:
            self._send_text(HTTPStatus.NOT_FOUND, "not found", body=body)
            return
        self._send_file(target, _file_type(target.name), body=body, vary=False, tag="")

    def _exists_dir(self, parts: list[str]) -> bool:
        real = Path(os.path.realpath(self.wheelhouse.root.joinpath(*parts)))
        return real.is_relative_to(self.wheelhouse.real_root) and real.is_dir()

    def _resolve(self, parts: list[str]) -> Path | None:
        """The real path of a regular file under the root, or None (symlinks out included)."""
        real = Path(os.path.realpath(self.wheelhouse.root.joinpath(*parts)))
        if not real.is_relative_to(self.wheelhouse.real_root) or not real.is_file():
            return None
        return real

    def _send_file(
        self, path: Path, content_type: str, *, body: bool, vary: bool, tag: str
    ) -> None:
        try:
            stream = path.open("rb")
        except OSError:
            self._send_text(HTTPStatus.NOT_FOUND, "not found", body=body, vary=vary)
            return
        with stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                self._send_text(HTTPStatus.NOT_FOUND, "not found", body=body, vary=vary)
                return
            # The variant is part of the tag: the HTML and JSON of one URL must never match.
            etag = f'"{tag}{info.st_mtime_ns:x}-{info.st_size:x}"'
            headers = {
                "ETag": etag,
                "Last-Modified": formatdate(info.st_mtime, usegmt=True),
                "Cache-Control": "no-cache",
            }
            if vary:
                headers["Vary"] = "Accept"
            if self._not_modified(etag, info.st_mtime):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self._headers(headers)
                return
            self.send_response(HTTPStatus.OK)
            self._headers(
                {**headers, "Content-Type": content_type, "Content-Length": str(info.st_size)}
            )
            if body:
                shutil.copyfileobj(stream, self.wfile, _CHUNK)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            # RFC 9110: If-None-Match uses the weak comparison and overrides If-Modified-Since.
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return "*" in tags or etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since is None:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return int(mtime) <= since.timestamp()

    def _redirect(self, location: str, status: HTTPStatus, *, body: bool) -> None:
        self._send_text(status, f"see {location}", body=body, extra={"Location": location})

    def _send_text(
        self,
        status: HTTPStatus,
        text: str,
        *,
        body: bool,
        vary: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(data))}
        if vary:
            headers["Vary"] = "Accept"
        self._headers({**headers, **(extra or {})})
        if body:
            self.wfile.write(data)

    def _headers(self, headers: dict[str, str]) -> None:
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()


def _path_parts(path: str) -> list[str] | None:
    """The decoded segments of a URL path, or None when one could escape or hide.

    ``..`` and ``.`` (however percent-encoded), encoded slashes or backslashes, NUL bytes,
    empty segments (``//etc``) and dot files are refused; a trailing slash is allowed.
    """
    raw = path[1:]
    if raw.endswith("/"):
        raw = raw[:-1]
    if not raw:
        return []
    parts = []
    for segment in raw.split("/"):
        try:
            part = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return None
        if not part or part.startswith(".") or any(c in part for c in "/\\\0"):
            return None
        parts.append(part)
    return parts


def _file_type(filename: str) -> str:
    return _FILE_TYPES.get(Path(filename).suffix, "application/octet-stream")


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8000) -> WheelhouseServer:
    """A server for the wheelhouse in ``root``, bound but not yet serving.

    Run ``serve_forever()`` (in a thread, for tests) and stop it with ``shutdown()``;
    port 0 picks a free port (see ``.url``).
    """
    if not (root / INDEX_DIR / HTML_PAGE).is_file():
        raise InvalidWheelhouseError(
            f"{str(root)!r} has no package index ({INDEX_DIR}/{HTML_PAGE})",
            hint=f"write it with 'wheelhouse index {root}'",
        )
    try:
        return WheelhouseServer(root, host, port)
    except OSError as exc:
        raise NetworkError(
            f"cannot listen on {host!r} port {port}: {exc.strerror or exc}",
            hint="choose another address with --host or port with --port",
        ) from exc


def serve(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the wheelhouse in ``root`` until SIGINT or SIGTERM (or ``shutdown()``).

    ``ready`` is called with the index URL once the socket is listening. Signal handlers are
    installed only in the main thread, and restored on return.
    """
    server = make_server(root, host, port)
    previous: dict[signal.Signals, object] = {}

    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, which this thread is running.
        threading.Thread(target=server.shutdown, daemon=True).start()

    with server:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, stop)
        try:
            logger.info("serving %s at %s", root, server.url)
            if ready is not None:
                ready(server.url)
            server.serve_forever()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, cast("signal._HANDLER", handler))
    logger.info("stopped serving %s", root)
