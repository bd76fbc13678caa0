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

The tap holds the index's credentials, so only the pip it was made for may use it: every URL
pip is given starts with a secret made for this run (the first path segment), and a client
must run as our own user (the owner of its loopback socket, read from ``/proc/net/tcp``).
Anything else is answered 403 without a word to the index. A request is forwarded only to the
index's own origin, or to a host the index's pages linked, its target parsed and rebuilt.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import os
import re
import secrets
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit

import urllib3

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse.simple.media import JSON_TYPE, PIP_ACCEPT, TEXT_HTML

__all__ = ["REFUSED", "Page", "PageTap"]

logger = logging.getLogger(__name__)

_PAGE_TYPES = (TEXT_HTML, "application/vnd.pypi.simple.")  # any version of PEP 691's types
_CHUNK = 1 << 16
# The most of a page read (inflated): PyPI's largest project pages are a few MB.
_MAX_PAGE = 64 * 1024 * 1024
# Seconds another user's connection may take to send its request (then to be refused).
_STRANGER_TIMEOUT = 10.0
# Request headers pip sends that the index needs to answer as it would answer pip.
_FORWARDED = ("Accept", "Cache-Control", "User-Agent")
# An absolute link in a page (a JSON string or a quoted href): scheme and host.
_ABSOLUTE = re.compile(rb"""(["'])(https?)://([^/"'\s]+)/""")
# A PEP 503 anchor and its text, the file's name.
_ANCHOR = re.compile(r"<a\b[^>]*>([^<]*)</a>\s*(?:<br\s*/?>)?", re.IGNORECASE)
# A root-relative link in a page (an href, or a PEP 691 "url"): it must carry the secret too.
_ROOTED = re.compile(rb"""((?:\bhref\s*=\s*|"url"\s*:\s*)(["']))/(?![/\\])""", re.IGNORECASE)
# Where the tap answers for a file linked absolutely: /~<scheme>/<host>/<path>.
_ELSEWHERE = re.compile(r"^/~(https?)/([^/]+)(/.*)$")
# What a request target may not hold, raw or decoded: no authority, no backslash, no controls.
_UNSAFE = re.compile(r"[@\\\x00-\x20\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The failure a request from our own user counts as when the tap refuses it.
REFUSED = "a request the tap refuses (not under the index URL it gave pip, or not a plain path)"


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

    ``index_urls`` hold the tap's secret: give them to pip through its environment or a
    private file, never its command line, and write nothing with them (:meth:`untap`).
    ``elsewhere`` is the client for files the pages link on other origins (without the
    index's credentials, which go to the index's own origin only); ``client`` by default.
    """

    def __init__(
        self,
        indexes: Sequence[str],
        client: HttpClient,
        *,
        ahead: bool = False,
        hide: Callable[[str], bool] | None = None,
        elsewhere: HttpClient | None = None,
    ) -> None:
        self._client = client
        self._elsewhere = elsewhere or client
        self._secret = secrets.token_urlsafe(32)
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
            self.index_urls.append(
                self._loopback(origin) + urlunsplit(parts._replace(scheme="", netloc=""))
            )
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
            loopback = self._loopback(origin)
            text = re.sub(
                re.escape(loopback) + r"/~(https?)/([^/\s]+)",
                lambda m: f"{m[1]}://{unquote(m[2])}",
                text,
            )
            text = text.replace(loopback, strip_credentials(origin))
        # Whatever form pip wrote it in (quoted, cut), the secret is not shown.
        return text.replace(self._secret, "<tap>")

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

    def _loopback(self, origin: str) -> str:
        """The tap's URL for ``origin``'s root: its listener, then the secret."""
        return f"http://127.0.0.1:{self._port(origin)}/{self._secret}"

    def _listen(self, origin: str) -> ThreadingHTTPServer:
        tap = self
        shown = strip_credentials(origin)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: with Nagle's algorithm the body would wait
            # for pip's delayed ACK of the headers (40 ms a page on Linux).
            disable_nagle_algorithm = True
            # Whether the client runs as our user: asked once a connection.
            ours = False

            def setup(self) -> None:
                super().setup()
                self.ours = _peer_is_ours(self.client_address, self.connection.getsockname())
                if not self.ours:
                    # Another user's connection holds a thread only as long as its refusal.
                    self.connection.settimeout(_STRANGER_TIMEOUT)

            def log_message(self, format: str, *args: Any) -> None:
                # The request line holds the secret.
                logger.debug("tap %s: %s", shown, (format % args).replace(tap._secret, "<tap>"))

            def do_GET(self) -> None:
                target = tap._target(self.path) if self.ours else None
                if target is None:
                    # Not pip's: refused before anything is asked of the index.
                    self.close_connection = True
                    if self.ours:
                        # Our own user: pip, following a link out of the tap's URL, is let
                        # resolve again without the tap. Not shown: the target (the secret).
                        with tap._lock:
                            tap.failures.append(REFUSED)
                    tap._answer(self, HTTPStatus.FORBIDDEN, {"Content-Type": "text/plain"}, b"")
                    return
                tap._forward(self, origin, target)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(
            # Polled often: shutdown() waits for the loop to look (every 0.5 s by default).
            target=lambda: server.serve_forever(poll_interval=0.02),
            name=f"page-tap {shown}",
            daemon=True,
        ).start()
        return server

    def _target(self, raw: str) -> str | None:
        """The path (and query) pip asked under the secret, or None: a request target that
        does not start with the secret, or is not a plain absolute path (no authority, no
        backslash or control character, no dot segment), raw or decoded."""
        first, slash, rest = raw.removeprefix("/").partition("/")
        # Compared in constant time: the time taken says nothing of how much of it matched.
        given = first.encode("latin-1", errors="replace")  # http.server decodes it as latin-1
        if not raw.startswith("/") or not slash:
            return None
        if not hmac.compare_digest(given, self._secret.encode("ascii")):
            return None
        target = "/" + rest
        if target.startswith("//") or _UNSAFE.search(target):
            return None
        parts = urlsplit(target)
        path = unquote(parts.path)
        if parts.scheme or parts.netloc or parts.fragment or _UNSAFE.search(path):
            return None
        if any(segment in (".", "..") for segment in path.split("/")):
            return None
        return urlunsplit(("", "", parts.path, parts.query, ""))

    def _upstream(self, origin: str, target: str) -> str:
        """The index's URL for ``target`` (checked by :meth:`_target`): rebuilt from the
        index's origin (credentials and all) and the target's path, never joined as text."""
        index, parts = urlsplit(origin), urlsplit(target)
        return urlunsplit((index.scheme, index.netloc, parts.path, parts.query, ""))

    def _linked(
        self, origin: str, scheme: str, host: str, rest: str
    ) -> tuple[str, HttpClient] | None:
        """The URL for the tap's ``/~<scheme>/<host><rest>`` and the client to ask it with;
        None unless a page the tap forwarded linked that host. The index's credentials go to
        the index's own origin (scheme, host and port) only, as pip sends them."""
        host = unquote(host)  # pip quotes the port's colon in a path
        with self._lock:
            if (scheme, host) not in self._hosts:
                return None
        parts = urlsplit(rest)
        try:
            link = urlsplit(f"{scheme}://{host}/")
            linked = _origin_of(link)
        except ValueError:  # a port that is not a number
            return None
        if link.username is not None or not link.hostname or parts.scheme or parts.netloc:
            return None
        index = urlsplit(origin)
        if linked == _origin_of(index):
            return urlunsplit(
                (index.scheme, index.netloc, parts.path, parts.query, "")
            ), self._client
        return urlunsplit((scheme, link.netloc, parts.path, parts.query, "")), self._elsewhere

    def _forward(self, request: BaseHTTPRequestHandler, origin: str, target: str) -> None:
        elsewhere = _ELSEWHERE.match(target) if self._ahead else None
        client = self._client
        upstream = self._upstream(origin, target)
        if elsewhere is not None:
            found = self._linked(origin, *elsewhere.groups())
            if found is None:
                self._answer(request, HTTPStatus.NOT_FOUND, {"Content-Type": "text/plain"}, b"")
                return
            upstream, client = found
        shown = strip_credentials(upstream)
        with self._lock:
            self.forwarded += 1
        headers = {k: v for k in _FORWARDED if (v := request.headers.get(k)) is not None}
        if self._ahead and elsewhere is None and headers.get("Accept") == PIP_ACCEPT:
            self._send_page(request, origin, target, headers)
            return
        if self._ahead and self._send_offered(request, shown):
            return
        try:
            response = client.get(upstream, headers=headers, redirect=False)
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
            if length is None or response.headers.get("Content-Encoding") or keep:
                # Whole, decoded: the length pip is told is that of the bytes it gets. A page
                # is read whole too: its root-relative links are pointed under the secret.
                body = _page_body(response) if keep else response.read()
                sent = self._rooted(body) if keep and response.status == 200 else body
                self._answer(request, response.status, out, sent)
            else:
                # A file (linked relative to the index, not kept) is passed on as it arrives.
                request.send_response(response.status)
                for key, value in {**out, "Content-Length": length}.items():
                    request.send_header(key, value)
                request.end_headers()
                for chunk in response.stream(_CHUNK):
                    request.wfile.write(chunk)
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
        self,
        request: BaseHTTPRequestHandler,
        origin: str,
        target: str,
        headers: dict[str, str],
    ) -> None:
        shown = strip_credentials(self._upstream(origin, target))
        try:
            answer = self._answer_page(origin, target, headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            with self._lock:
                self.failures.append(f"{shown}: {exc}")
            self._answer(request, HTTPStatus.BAD_GATEWAY, {"Content-Type": "text/plain"}, b"")
            return
        with self._lock:
            if answer.failure:
                self.failures.append(answer.failure)
            # pip reads a page once; the page as read stays in ``pages``.
            self._answers.pop(shown, None)
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
        shown = strip_credentials(self._upstream(origin, path))
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
        upstream = self._upstream(origin, path)
        shown = strip_credentials(upstream)
        response = self._client.get(upstream, headers=headers, redirect=False, retries=retries)
        try:
            body = _page_body(response)
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
        if content_type.lower().startswith(JSON_TYPE):
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
        """``body`` with each link pointing at the tap, which answers for it: absolute ones
        at ``/~<scheme>/<host>``, and all under the secret."""
        loopback = (self._loopback(origin) + "/~").encode()
        hosts: set[tuple[str, str]] = set()

        def local(match: re.Match[bytes]) -> bytes:
            quote, scheme, host = match.groups()
            hosts.add((scheme.decode(), host.decode()))
            return quote + loopback + scheme + b"/" + host + b"/"

        rewritten = self._rooted(_ABSOLUTE.sub(local, body))
        with self._lock:
            self._hosts |= hosts
        return rewritten

    def _rooted(self, body: bytes) -> bytes:
        """``body`` with its root-relative links (``/files/...``) under the secret."""
        secret = self._secret.encode("ascii")
        return _ROOTED.sub(lambda m: m[1] + b"/" + secret + b"/", body)

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
            target = self._loopback(origin) + target[len(bare) :]
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


def _origin_of(url: SplitResult) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's own when none is written): what pip matches an
    index's credentials against."""
    return url.scheme, (url.hostname or "").lower(), url.port or _DEFAULT_PORTS.get(url.scheme)


def _peer_is_ours(client: tuple[str, int], server: tuple[str, int]) -> bool:
    """Whether the loopback client ``client``, connected to the tap at ``server``, runs as our
    user: its socket's owner, as ``/proc/net/tcp`` lists it. True where the table cannot be
    read (not Linux): the secret alone guards the tap there."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return True

    # Addresses are written as the kernel holds them: the IPv4 address as a native-endian
    # 32-bit number, the port as a number, both in hexadecimal.
    def written(address: tuple[str, int]) -> str:
        number = int.from_bytes(socket.inet_aton(address[0]), sys.byteorder)
        return f"{number:08X}:{address[1]:04X}"

    local, remote = written(client[:2]), written(server[:2])
    for row in rows:
        fields = row.split()
        if len(fields) > 7 and fields[1] == local and fields[2] == remote:
            return fields[7] == str(os.geteuid())
    return False


class _PageTooLarge(OSError):
    """An index page larger than the tap reads: a failure to forward it, as a dead host is."""


def _page_body(response: urllib3.BaseHTTPResponse) -> bytes:
    """The body of a page ``response`` (decoded), if it is no larger than ``_MAX_PAGE``."""
    body = response.read(_MAX_PAGE + 1)
    if len(body) > _MAX_PAGE:
        raise _PageTooLarge(f"a page larger than {_MAX_PAGE} bytes, the most the tap reads")
    return body
