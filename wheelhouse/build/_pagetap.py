"""A loopback tap between pip's resolution and the indexes: the pages pip reads are kept.

pip downloads each file it considers (an index without PEP 658 metadata leaves it no other
way to read dependencies) but says nothing of where a file came from or its hash, which the
index pages give. Reading every page again after pip costs as many bytes as the files of a
web-service set (botocore's page alone is over a megabyte). pip is pointed at one loopback
listener per index origin instead; each listener forwards pip's requests to the index, as
they are, and keeps the index pages it forwards, so the pins are then checked against the
very pages pip read. Files linked from another host (PyPI's files.pythonhosted.org) go from
pip to that host directly; files linked relative to the index pass through the tap unkept.

With ``ahead=True`` the tap also lets a prefetcher work ahead of pip: the pages pip asks for
are read once, whoever asks first, and their absolute file links point back at the tap, so a
file pip asks for is answered from a download already made (:meth:`PageTap.offer`) or else
forwarded to its host. A ``hide`` filter leaves files out of the pages pip is sent (and of
those kept): the wheels it could never install here, whose tags pip would check one by one.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import urllib3

from wheelhouse._base._http import HttpClient, strip_credentials

__all__ = ["PIP_ACCEPT", "Page", "PageTap"]

logger = logging.getLogger(__name__)

_PAGE_TYPES = ("text/html", "application/vnd.pypi.simple.")
_CHUNK = 1 << 16
# Request headers pip sends that the index needs to answer as it would answer pip.
_FORWARDED = ("Accept", "Cache-Control", "User-Agent")
# pip's Accept header for index pages (pip 22.2 to 26.x): the one a prefetcher asks with, so
# its answer is pip's too.
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
# An absolute link in a page (a JSON string or a quoted href): scheme and host.
_ABSOLUTE = re.compile(rb"""(["'])(https?)://([^/"'\s]+)/""")
# A PEP 503 anchor and its text, the file's name.
_ANCHOR = re.compile(r"<a\b[^>]*>([^<]*)</a>\s*(?:<br\s*/?>)?", re.IGNORECASE)
# Where the tap answers for a file linked absolutely: /~<scheme>/<host>/<path>.
_ELSEWHERE = re.compile(r"^/~(https?)/([^/]+)(/.*)$")


@dataclass(frozen=True)
class Page:
    """An index page as the index answered pip: status, URL, content type and body."""

    status: int
    url: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class _Answer:
    """A page request's answer as pip is sent it, and the failure it counts as (if any)."""

    status: int
    headers: dict[str, str]
    body: bytes
    failure: str | None


class PageTap:
    """Loopback listeners that forward pip's requests to ``indexes`` and keep their pages.

    Use as a context manager; ``index_urls`` are the URLs to give pip in place of
    ``indexes`` (``file://`` ones unchanged), ``pages`` the pages kept, by the index URL
    pip asked (without credentials), ``forwarded`` how many requests came, and ``failures``
    what could not be forwarded or was refused (any HTTP error but 404).
    """

    def __init__(
        self,
        indexes: Sequence[str],
        client: HttpClient,
        *,
        ahead: bool = False,
        hide: Callable[[str], bool] | None = None,
    ) -> None:
        self._client = client
        self.pages: dict[str, Page] = {}
        self.failures: list[str] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._indexes = list(indexes)
        self.index_urls: list[str] = []
        self._ahead = ahead
        # With ``ahead``: files (by name) left out of the pages pip is sent (and of those kept),
        # those it could never install here. Link evaluation is most of pip's time on big pages.
        self._hide = hide
        # With ``ahead``: pip's pages by URL (read once), the hosts their links were rewritten
        # from, files downloaded (or downloading) for pip, and the file URLs pip has asked.
        self._answers: dict[str, Future[_Answer]] = {}
        self._hosts: set[tuple[str, str]] = set()
        self._offered: dict[str, Future[Path]] = {}
        self._asked: set[str] = set()

    def __enter__(self) -> PageTap:
        for url in self._indexes:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https"):
                self.index_urls.append(url)
                continue
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in self._servers:
                self._servers[origin] = self._listen(origin)
            loopback = f"127.0.0.1:{self._port(origin)}"
            self.index_urls.append(urlunsplit(parts._replace(scheme="http", netloc=loopback)))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()

    def untap(self, text: str) -> str:
        """``text`` (pip's output) with the loopback URLs written as the indexes' own."""
        for origin in self._servers:
            loopback = f"http://127.0.0.1:{self._port(origin)}"
            text = re.sub(
                re.escape(loopback) + r"/~(https?)/([^/\s]+)",
                lambda m: f"{m[1]}://{unquote(m[2])}",
                text,
            )
            text = text.replace(loopback, strip_credentials(origin))
        return text

    def page(self, url: str) -> Page | None:
        """The index page at ``url`` (an index's own URL, as a page is kept) as pip would be
        answered, read once for the prefetcher and pip both; None when it cannot be read."""
        url = strip_credentials(url)
        if url in self.pages:
            return self.pages[url]
        for origin in self._servers:
            bare = strip_credentials(origin)
            if url.startswith(bare + "/"):
                try:
                    # Asked once: pip, asking in turn, is answered by its own retries.
                    self._answer_page(
                        origin, url[len(bare) :], {"Accept": PIP_ACCEPT}, retries=False
                    )
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    logger.debug("prefetching %s: %s", url, exc)
                return self.pages.get(url)
        return None

    def offer(self, url: str, download: Future[Path]) -> bool:
        """Answer pip's request for the file at ``url`` with ``download`` (a path once done);
        False, and nothing offered, if pip has asked for it already (it is fetching it)."""
        url = strip_credentials(url)
        with self._lock:
            if url in self._asked:
                return False
            self._offered[url] = download
            return True

    def _port(self, origin: str) -> int:
        return int(self._servers[origin].server_address[1])

    def _listen(self, origin: str) -> ThreadingHTTPServer:
        tap = self
        shown = strip_credentials(origin)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: with Nagle's algorithm the body would wait
            # for pip's delayed ACK of the headers (40 ms a page on Linux).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("tap %s: " + format, shown, *args)

            def do_GET(self) -> None:
                tap._forward(self, origin)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(
            # Polled often: shutdown() waits for the loop to look (every 0.5 s by default).
            target=lambda: server.serve_forever(poll_interval=0.02),
            name=f"page-tap {shown}",
            daemon=True,
        ).start()
        return server

    def _forward(self, request: BaseHTTPRequestHandler, origin: str) -> None:
        upstream = origin + request.path
        elsewhere = _ELSEWHERE.match(request.path) if self._ahead else None
        if elsewhere is not None:
            scheme, host, rest = elsewhere.groups()
            host = unquote(host)  # pip quotes the port's colon in a path
            if (scheme, host) not in self._hosts:
                self._answer(request, HTTPStatus.NOT_FOUND, {"Content-Type": "text/plain"}, b"")
                return
            upstream = f"{scheme}://{host}{rest}"
        shown = strip_credentials(upstream)
        with self._lock:
            self.forwarded += 1
        headers = {k: v for k in _FORWARDED if (v := request.headers.get(k)) is not None}
        if self._ahead and elsewhere is None and headers.get("Accept") == PIP_ACCEPT:
            self._send_page(request, origin, headers)
            return
        if self._ahead and self._send_offered(request, shown):
            return
        try:
            response = self._client.get(upstream, headers=headers, redirect=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            with self._lock:
                self.failures.append(f"{shown}: {exc}")
            self._answer(request, HTTPStatus.BAD_GATEWAY, {"Content-Type": "text/plain"}, b"")
            return
        if response.status >= 400 and response.status != 404:
            # pip, asking itself, may be answered otherwise (its keyring, its trust store):
            # the caller lets pip resolve again without the tap.
            with self._lock:
                self.failures.append(f"{shown}: HTTP {response.status}")
        try:
            content_type = response.headers.get("Content-Type", "")
            out = {"Content-Type": content_type} if content_type else {}
            location = response.headers.get("Location")
            if location:
                out["Location"] = self._tapped_location(origin, shown, location)
            length = response.headers.get("Content-Length")
            keep = (
                elsewhere is None
                and content_type.lower().startswith(_PAGE_TYPES)
                and response.status in (200, 404)
            )
            if length is None or response.headers.get("Content-Encoding"):
                # Whole, decoded: the length pip is told is that of the bytes it gets.
                body = response.read()
                self._answer(request, response.status, out, body)
            else:
                # Passed on as it arrives (pip reads a page while the rest comes), and a page
                # kept as well; a file linked relative to the index is not kept.
                request.send_response(response.status)
                for key, value in {**out, "Content-Length": length}.items():
                    request.send_header(key, value)
                request.end_headers()
                chunks = []
                for chunk in response.stream(_CHUNK):
                    request.wfile.write(chunk)
                    if keep:
                        chunks.append(chunk)
                body = b"".join(chunks)
            if keep:
                with self._lock:
                    self.pages[shown] = Page(response.status, shown, content_type, body)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            with self._lock:
                self.failures.append(f"{shown}: {exc}")
            request.close_connection = True
        finally:
            response.release_conn()

    def _send_page(
        self, request: BaseHTTPRequestHandler, origin: str, headers: dict[str, str]
    ) -> None:
        try:
            answer = self._answer_page(origin, request.path, headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            with self._lock:
                self.failures.append(f"{strip_credentials(origin + request.path)}: {exc}")
            self._answer(request, HTTPStatus.BAD_GATEWAY, {"Content-Type": "text/plain"}, b"")
            return
        with self._lock:
            if answer.failure:
                self.failures.append(answer.failure)
            # pip reads a page once; the page as read stays in ``pages``.
            self._answers.pop(strip_credentials(origin + request.path), None)
        self._answer(request, answer.status, answer.headers, answer.body)

    def _answer_page(
        self,
        origin: str,
        path: str,
        headers: dict[str, str],
        *,
        retries: Literal[False] | None = None,
    ) -> _Answer:
        """The answer to a page request, read from the index once (the first asker reads, any
        other waits); a page is kept as read and its absolute file links rewritten to the tap."""
        shown = strip_credentials(origin + path)
        with self._lock:
            pending = self._answers.get(shown)
            reader = pending is None
            if pending is None:
                pending = self._answers[shown] = Future()
        if not reader:
            return pending.result()
        try:
            answer = self._read_page(origin, path, headers, retries)
        except BaseException as exc:
            with self._lock:
                del self._answers[shown]  # the next asker tries again
            pending.set_exception(exc)
            raise
        pending.set_result(answer)
        return answer

    def _read_page(
        self, origin: str, path: str, headers: dict[str, str], retries: Literal[False] | None
    ) -> _Answer:
        shown = strip_credentials(origin + path)
        response = self._client.get(origin + path, headers=headers, redirect=False, retries=retries)
        try:
            body = response.read()
        finally:
            response.release_conn()
        content_type = response.headers.get("Content-Type", "")
        out = {"Content-Type": content_type} if content_type else {}
        location = response.headers.get("Location")
        if location:
            out["Location"] = self._tapped_location(origin, shown, location)
        failure = None
        if response.status >= 400 and response.status != 404:
            failure = f"{shown}: HTTP {response.status}"
        if content_type.lower().startswith(_PAGE_TYPES) and response.status in (200, 404):
            if response.status == 200:
                body = self._shown(body, content_type)
            # Kept as pip reads it (less the files hidden from it), links as the index gave.
            with self._lock:
                self.pages[shown] = Page(response.status, shown, content_type, body)
            if response.status == 200:
                body = self._rewritten(origin, body)
        return _Answer(response.status, out, body, failure)

    def _shown(self, body: bytes, content_type: str) -> bytes:
        """``body`` without the files ``hide`` names."""
        if self._hide is None:
            return body
        hide = self._hide
        if content_type.lower().startswith("application/vnd.pypi.simple.v1+json"):
            try:
                data = json.loads(body)
                files = data["files"]
                kept = [f for f in files if not hide(str(f.get("filename", "")))]
            except (ValueError, KeyError, TypeError, AttributeError):
                return body  # pip judges a page it cannot parse, as it is
            if len(kept) == len(files):
                return body
            data["files"] = kept
            return json.dumps(data).encode()
        text = body.decode("utf-8", errors="surrogateescape")
        shown = _ANCHOR.sub(lambda m: "" if hide(html.unescape(m[1]).strip()) else m[0], text)
        return shown.encode("utf-8", errors="surrogateescape")

    def _rewritten(self, origin: str, body: bytes) -> bytes:
        """``body`` with each absolute link pointing at the tap, which answers for it."""
        loopback = f"http://127.0.0.1:{self._port(origin)}/~".encode()
        hosts: set[tuple[str, str]] = set()

        def local(match: re.Match[bytes]) -> bytes:
            quote, scheme, host = match.groups()
            hosts.add((scheme.decode(), host.decode()))
            return quote + loopback + scheme + b"/" + host + b"/"

        rewritten = _ABSOLUTE.sub(local, body)
        with self._lock:
            self._hosts |= hosts
        return rewritten

    def _send_offered(self, request: BaseHTTPRequestHandler, url: str) -> bool:
        """Answer with the file downloaded for ``url``, if one was offered and arrived."""
        with self._lock:
            self._asked.add(url)
            download = self._offered.get(url)
        if download is None:
            return False
        try:
            path = download.result()
            size = path.stat().st_size
            handle = path.open("rb")
        except Exception as exc:  # the prefetch failed: pip is forwarded instead
            logger.debug("prefetched %s: %s", url, exc)
            return False
        with handle:
            request.send_response(HTTPStatus.OK)
            request.send_header("Content-Type", "application/octet-stream")
            request.send_header("Content-Length", str(size))
            request.end_headers()
            try:
                shutil.copyfileobj(handle, request.wfile, _CHUNK)
            except OSError:
                request.close_connection = True
        return True

    def _tapped_location(self, origin: str, shown: str, location: str) -> str:
        target = urljoin(shown, location)
        bare = strip_credentials(origin)
        if target.startswith(bare + "/"):
            target = f"http://127.0.0.1:{self._port(origin)}" + target[len(bare) :]
        return target

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)
