"""A loopback file server whose answers a test scripts: whole, cut mid-body, ranged, stalled."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BODY).hexdigest()
NAME = "alpha-1.0-py3-none-any.whl"

# How the server answers the n-th request (0-based) and its Range header: it writes to the
# handler itself.
Behaviour = Callable[[BaseHTTPRequestHandler, int, str | None], None]


def whole(handler: BaseHTTPRequestHandler, body: bytes = BODY, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


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


class Server:
    """A loopback file server whose answers a test scripts; it records each Range asked."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.asked: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                n = len(server.asked)
                server.asked.append(self.headers.get("Range"))
                server.behaviour(self, n, self.headers.get("Range"))

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A client that drops a connection (a test's timeout) is no error of the server's.
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/{NAME}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
