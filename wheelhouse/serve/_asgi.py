"""One way to run an ASGI app: uvicorn on a socket we bind, in the foreground or in a thread.

Both modes of `wheelhouse serve` (a wheelhouse's static index, the caching proxy) run here, so
they share uvicorn's HTTP handling, keep-alive, signals and clean stop, and the limits that keep
slow or idle clients from holding the server: a deadline for each request's headers and body,
a deadline for a client that stops reading, and a cap on connections derived from the
open-file limit. uvicorn has keep-alive and read-size limits but none of these, so they are
added here: a subclass of its h11 protocol and of asyncio's event loop, both small.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import resource
import signal
import socket
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from wheelhouse.errors import NetworkError
from wheelhouse.house.index import INDEX_DIR

__all__ = [
    "AsgiServer",
    "ServeLimits",
    "bind",
    "connection_limit",
    "index_url",
    "uvicorn_options",
]

logger = logging.getLogger(__name__)

# File descriptors kept apart from client connections: the interpreter, the listening socket,
# the event loop, logs, and what serving needs besides the client's socket. Each connection
# counts three: its socket, a file being sent, and an upstream socket or store file.
_RESERVED_FDS = 32
_FDS_PER_CONNECTION = 3
_MAX_CONNECTIONS = 4096  # well past what one process serves well; memory stays bounded
# Connections accepted per wake-up of the listening socket: few enough that the new ones are
# set up (and the connection cap applied) before more file descriptors are taken.
_ACCEPT_BATCH = 16
_ACCEPT_RETRY = 0.25  # seconds without accepting after the process ran out of descriptors
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True)
class ServeLimits:
    """How long a client may take, and how many may be connected at once (per process)."""

    # Seconds for a request's line and headers, counted from the connection (first request)
    # or from the request's first byte (later requests); the same again for a body, if any.
    header_timeout: float = 10.0
    # Seconds a client may leave a response unread: nothing taken from a full buffer. Generous,
    # as a client may read one response after another on a loaded machine.
    send_timeout: float = 300.0
    # Open connections at most; None: derived from the open-file limit (connection_limit()).
    max_connections: int | None = None


def connection_limit() -> int:
    """The connection cap that the open-file limit of this process leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _MAX_CONNECTIONS
    return max(4, min(_MAX_CONNECTIONS, (soft - _RESERVED_FDS) // _FDS_PER_CONNECTION))


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


def uvicorn_options(*, limits: ServeLimits | None = None, **options: Any) -> dict[str, Any]:
    """uvicorn's settings for both modes, with ``options`` on top and ``limits`` enforced."""
    limits = limits or ServeLimits()
    room = connection_limit()
    cap = limits.max_connections or room
    if cap > room:
        logger.warning(
            "%d connections may need more files than the open-file limit (%d) allows, "
            "which leaves room for %d; raise it (ulimit -n) or lower --max-connections",
            cap,
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            room,
        )
    return {
        "lifespan": "off",
        "server_header": False,
        "date_header": True,
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": 30,  # an idle keep-alive connection must not be held forever
        # A partial of a module-level class, and a loop named by its import path: both reach
        # the worker processes of `--workers`, which get this configuration pickled.
        "http": functools.partial(_GuardedH11Protocol, limits=limits, max_connections=cap),
        "loop": f"{__name__}:_GuardedLoop",
        **options,
    }


class _DropLog:
    """Connections closed for a limit, counted by reason: the first is logged at once, the
    rest at most once a second, so a flood of slow clients is not a flood of log lines."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._counts: Counter[str] = Counter()
        self._quiet: asyncio.TimerHandle | None = None

    def add(self, reason: str) -> None:
        self._counts[reason] += 1
        if self._quiet is None:
            self._emit()

    def _emit(self) -> None:
        self._quiet = None
        if not self._counts:
            return
        for reason, count in sorted(self._counts.items()):
            logger.warning("%s (%d time%s)", reason, count, "" if count == 1 else "s")
        self._counts.clear()
        self._quiet = self._loop.call_later(1.0, self._emit)


_DROP_LOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _DropLog] = (
    weakref.WeakKeyDictionary()
)


def _drops(loop: asyncio.AbstractEventLoop) -> _DropLog:
    log = _DROP_LOGS.get(loop)
    if log is None:
        log = _DROP_LOGS[loop] = _DropLog(loop)
    return log


def _refusal(status: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % status


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines and a connection cap.

    uvicorn arms a timer only between requests (keep-alive): a client that never finishes
    its headers, or a body it announced, or never reads its response, was held forever, and
    enough of them used up the process's file descriptors. Here a request must arrive whole
    within ``header_timeout`` (headers) and again (body); a response left unread for
    ``send_timeout`` is abandoned; and past ``max_connections`` the connection that has waited
    longest for a request is closed (or, when every connection is busy, the new one is
    refused with a 503), so that a well-behaved client is served while slow ones queue.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ServeLimits,
        max_connections: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self._max_connections = max_connections
        self._deadline: asyncio.TimerHandle | None = None
        self._stalled: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes waiting to be sent when the client last stopped reading
        self.waiting_since = self.loop.time()  # since when it has had no request in progress

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.waiting_since = self.loop.time()
        self._arm("headers")
        if len(self.connections) > self._max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The first byte of a later request: from here its headers have their deadline
        # (uvicorn's keep-alive timer, which this byte cancels, covered the quiet time before).
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm("headers")
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        state = self.conn.their_state
        if state is h11.IDLE:
            # Between requests: the keep-alive timer, or (when a request was pipelined, or
            # a body ended after its response) a deadline for the next request's headers.
            if self._deadline is None and (
                self.timeout_keep_alive_task is None or self.conn.trailing_data[0]
            ):
                self._arm("headers")
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self.waiting_since = self.loop.time()
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stalled is None:
            self._watch_stall()

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        super().resume_writing()

    def is_waiting(self) -> bool:
        """No request of this connection is being answered (before, between or after)."""
        return self.cycle is None or self.cycle.response_complete

    # -- deadlines

    _phase = ""

    def _arm(self, phase: str) -> None:
        self._disarm()
        self._phase = phase
        self._deadline = self.loop.call_later(self._limits.header_timeout, self._expire, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""

    def _expire(self, phase: str) -> None:
        self._deadline = None
        self._phase = ""
        if self.transport.is_closing():
            return
        _drops(self.loop).add(
            f"closed: no complete request {phase} in {self._limits.header_timeout:g} s"
        )
        if not self.is_waiting():
            self.transport.abort()  # a response is under way: nothing more can be said
            return
        if phase == "headers" and self.conn.trailing_data[0]:
            self.transport.write(_refusal(b"408 Request Timeout"))
        self.transport.close()

    def _watch_stall(self) -> None:
        self._unsent = self.transport.get_write_buffer_size()
        self._stalled = self.loop.call_later(self._limits.send_timeout, self._stall)

    def _stall(self) -> None:
        self._stalled = None
        if self.transport.is_closing() or not self.flow.write_paused:
            return
        if self.transport.get_write_buffer_size() < self._unsent:
            self._watch_stall()  # it reads, slowly: that is not a stall
            return
        _drops(self.loop).add(f"closed: response unread for {self._limits.send_timeout:g} s")
        self.transport.abort()

    # -- the connection cap

    def _make_room(self) -> None:
        """Past the cap: close the connection that has waited longest for a request, or
        refuse this one when every other connection is being answered."""
        live = [c for c in self.connections if not c.transport.is_closing()]
        if len(live) <= self._max_connections:
            return
        waiting = [
            c
            for c in live
            if c is not self and isinstance(c, _GuardedH11Protocol) and c.is_waiting()
        ]
        if waiting:
            oldest = min(waiting, key=lambda c: c.waiting_since)
            cap = self._max_connections
            _drops(self.loop).add(f"closed: waiting for a request at the cap of {cap} connections")
            oldest.transport.close()
        else:
            _drops(self.loop).add(f"refused (503): all {self._max_connections} connections busy")
            self.transport.write(_refusal(b"503 Service Unavailable"))
            self.transport.close()


class _GuardedLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, accepting connections a few at a time and pausing briefly when the
    process is out of file descriptors.

    asyncio (3.11 to 3.13) goes on calling ``accept()`` after EMFILE, up to ``backlog`` (2048
    under uvicorn) times per wake-up, logging a traceback and scheduling a retry for each: tens
    of thousands of lines, and a loop that spent its time logging. This is its
    ``_accept_connection`` with that fixed; connections are still set up by asyncio's own code.
    """

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *timeouts: Any,
    ) -> None:
        for _ in range(min(backlog, _ACCEPT_BATCH)):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise  # the loop logs it
                _drops(self).add(f"not accepting for {_ACCEPT_RETRY:g} s: {exc.strerror}")
                self.remove_reader(sock.fileno())
                self.call_later(
                    _ACCEPT_RETRY,
                    self._resume_accepting,
                    (protocol_factory, sock, sslcontext, server, backlog, *timeouts),
                )
                return
            accept = self._accept_connection2(  # type: ignore[attr-defined]
                protocol_factory, conn, {"peername": addr}, sslcontext, server, *timeouts
            )
            self.create_task(accept)

    def _resume_accepting(self, serving: tuple[Any, ...]) -> None:
        sock, server = serving[1], serving[3]
        if sock.fileno() != -1 and (server is None or server.is_serving()):
            self._start_serving(*serving)  # type: ignore[attr-defined]


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
