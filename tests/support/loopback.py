"""A loopback server whose answers are scripts: whole, cut mid-body, ranged, dripped, stalled.

:class:`tests.support.server.IndexServer` is the loopback index (a directory's dists as PEP
503/691 pages, with hooks that replace an answer by another whole answer). This one serves
nothing of its own: each path's script writes to the socket as it pleases, which is what a
test of a client's or the proxy's defences needs and a whole answer cannot express.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BODY = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BODY).hexdigest()
NAME = "alpha-1.0-py3-none-any.whl"
FILE = f"/files/{NAME}"

# How the server answers a request: it writes to the handler itself. It is given how many
# requests for the same path came before this one, and the request's Range header.
Script = Callable[[BaseHTTPRequestHandler, int, str | None], None]


def whole(
    handler: BaseHTTPRequestHandler,
    body: bytes = BODY,
    status: int = 200,
    content_type: str | None = None,
) -> None:
    handler.send_response(status)
    if content_type is not None:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def serving(body: bytes, content_type: str) -> Script:
    """A script that answers every request with ``body`` whole."""
    return lambda handler, number, asked: whole(handler, body, content_type=content_type)


def cut(handler: BaseHTTPRequestHandler, at: int = len(BODY) // 2) -> None:
    """Promise the whole body, send ``at`` bytes of it, and drop the connection."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(BODY)))
    handler.end_headers()
    handler.wfile.write(BODY[:at])
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


def ranged(handler: BaseHTTPRequestHandler, asked: str) -> None:
    start = int(asked.removeprefix("bytes=").rstrip("-"))
    handler.send_response(206)
    handler.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
    handler.send_header("Content-Length", str(len(BODY) - start))
    handler.end_headers()
    handler.wfile.write(BODY[start:])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        scripted = self.server.scripted
        asked = self.headers.get("Range")
        with scripted.lock:
            number = scripted.requests.count(path)
            scripted.requests.append(path)
            scripted.asked.append(asked)
        script = scripted.routes.get(path)
        # A client hanging up mid-answer (a drip's reader giving up) is what these tests do.
        with contextlib.suppress(ConnectionError):
            if script is None:
                whole(self, b"not found\n", 404, "text/plain")
            else:
                script(self, number, asked)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    scripted: ScriptedServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that drops a connection (a test's timeout) is no error of the server's


class ScriptedServer:
    """A loopback server answering each path in ``routes`` by its script (404 elsewhere).

    ``url`` is the URL of ``path`` on it, what the test hands its client; ``requests`` and
    ``asked`` record each request's path and Range header, in order; ``released`` is set on
    ``stop()``, to end every script that waits on it.
    """

    def __init__(self, routes: Mapping[str, Script], *, path: str = "/simple/") -> None:
        self.routes = dict(routes)
        self.requests: list[str] = []
        self.asked: list[str | None] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.scripted = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.requests.count(path)

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
