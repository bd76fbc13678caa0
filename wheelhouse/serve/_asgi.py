"""One way to run an ASGI app: uvicorn on a socket we bind, in the foreground or in a thread.

Both modes of `wheelhouse serve` (a wheelhouse's static index, the caching proxy) run here, so
they share uvicorn's HTTP handling, keep-alive, signals and clean stop.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from wheelhouse.errors import NetworkError
from wheelhouse.house.index import INDEX_DIR

__all__ = ["AsgiServer", "bind", "index_url", "uvicorn_options"]

logger = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0 picks a free port), inheritable by workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say they
    # are TCP. With it on, a response written as headers then body waited for the client's
    # delayed ACK: 40 ms for every small page and .metadata file.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NetworkError(
            f"cannot listen on {host!r} port {port}: {exc.strerror or exc}",
            hint="choose another address with --host or port with --port",
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def index_url(sock: socket.socket, index: str) -> str:
    """The URL of the ``index`` folder on the address ``sock`` listens on."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{index}/"


def uvicorn_options(**options: Any) -> dict[str, Any]:
    """uvicorn's settings for both modes, with ``options`` on top."""
    return {
        "lifespan": "off",
        "server_header": False,
        "date_header": True,
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": 30,  # an idle keep-alive connection must not be held forever
        **options,
    }


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, ending quietly on SIGINT/SIGTERM instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            if self._captured_signals:
                names = ", ".join(signal.Signals(s).name for s in self._captured_signals)
                logger.info("stopped on %s", names)
            self._captured_signals.clear()


class AsgiServer:
    """``app`` served by uvicorn on ``sock``: ``run()`` in the foreground (SIGINT and SIGTERM
    stop it when called from the main thread), or ``serve_forever()`` in a thread and
    ``shutdown()`` from another, as with ``socketserver``."""

    def __init__(self, app: Any, sock: socket.socket, **options: Any) -> None:
        self.socket = sock
        self.server_port: int = sock.getsockname()[1]
        self.url = index_url(sock, INDEX_DIR)  # what clients give pip as --index-url
        self._server = _Uvicorn(uvicorn.Config(app, **uvicorn_options(**options)))
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        """Serve until ``shutdown()`` (or a signal, in the main thread)."""
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    run = serve_forever

    def shutdown(self, timeout: float = 30) -> None:
        """Stop serving and wait until ``serve_forever()`` has returned."""
        self._server.should_exit = True
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()
