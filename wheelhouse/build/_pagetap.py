"""A loopback tap between pip's resolution and the indexes: the pages pip reads are kept.

pip downloads each file it considers (an index without PEP 658 metadata leaves it no other
way to read dependencies) but says nothing of where a file came from or its hash, which the
index pages give. Reading every page again after pip costs as many bytes as the files of a
web-service set (botocore's page alone is over a megabyte). pip is pointed at one loopback
listener per index origin instead; each listener forwards pip's requests to the index, as
they are, and keeps the index pages it forwards, so the pins are then checked against the
very pages pip read. Files linked from another host (PyPI's files.pythonhosted.org) go from
pip to that host directly; files linked relative to the index pass through the tap unkept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3

from wheelhouse._base._http import HttpClient, strip_credentials

__all__ = ["Page", "PageTap"]

logger = logging.getLogger(__name__)

_PAGE_TYPES = ("text/html", "application/vnd.pypi.simple.")
_CHUNK = 1 << 16
# Request headers pip sends that the index needs to answer as it would answer pip.
_FORWARDED = ("Accept", "Cache-Control", "User-Agent")


@dataclass(frozen=True)
class Page:
    """An index page as the index answered pip: status, URL, content type and body."""

    status: int
    url: str
    content_type: str
    body: bytes


class PageTap:
    """Loopback listeners that forward pip's requests to ``indexes`` and keep their pages.

    Use as a context manager; ``index_urls`` are the URLs to give pip in place of
    ``indexes`` (``file://`` ones unchanged), ``pages`` the pages kept, by the index URL
    pip asked (without credentials), ``forwarded`` how many requests came, and ``failures``
    what could not be forwarded or was refused (any HTTP error but 404).
    """

    def __init__(self, indexes: Sequence[str], client: HttpClient) -> None:
        self._client = client
        self.pages: dict[str, Page] = {}
        self.failures: list[str] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._indexes = list(indexes)
        self.index_urls: list[str] = []

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
            text = text.replace(f"http://127.0.0.1:{self._port(origin)}", strip_credentials(origin))
        return text

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
        shown = strip_credentials(upstream)
        with self._lock:
            self.forwarded += 1
        headers = {k: v for k in _FORWARDED if (v := request.headers.get(k)) is not None}
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
                target = urljoin(shown, location)
                bare = strip_credentials(origin)
                if target.startswith(bare + "/"):
                    target = f"http://127.0.0.1:{self._port(origin)}" + target[len(bare) :]
                out["Location"] = target
            length = response.headers.get("Content-Length")
            keep = content_type.lower().startswith(_PAGE_TYPES) and response.status in (200, 404)
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

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)
