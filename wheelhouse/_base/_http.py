"""An HTTP client that reaches the index the way pip does: pip's cert, proxies and credentials."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import netrc
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3
import urllib3.connection
from urllib3.util import Retry

from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.urls import Origin, origin_of, strip_credentials

__all__ = [
    "Deadline",
    "HttpClient",
    "failure_reason",
    "load_tls",
    "origin_of",
    "retry_policy",
    "strip_credentials",
]

# What a busy index or a CDN answers when it wants the client to come back later.
_RETRY_STATUSES = frozenset({429, *range(500, 600)})
# A longer Retry-After is cut to this: a build waits, but not for as long as a server may ask.
_MAX_RETRY_AFTER = 30.0
_MAX_REDIRECTS = 10
_DEFAULT_RETRIES = 2  # three attempts in all


class _Retry(Retry):
    """urllib3's Retry with the server's Retry-After bounded, so a build never hangs on it."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, _MAX_RETRY_AFTER, _time_left())

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), _time_left())


# -- failures, in words ---------------------------------------------------------------------

# urllib3 starts a connection failure with the connection's repr, once
# "<urllib3.connection.HTTPConnection object at 0x7f...>", now "HTTPConnection(host=..., port=...)".
_CONNECTION_REPR = re.compile(
    r"^(?:<[^<>]* object at 0x[0-9a-f]+>|\w+\(host='[^']*', port=\d+\)): "
)


def failure_reason(exc: BaseException) -> str:
    """Why a request failed, in the words a user needs: urllib3's last failure behind its
    retries, without its pool's and connection's reprs ("Failed to resolve 'host' (...)",
    "Failed to establish a new connection: [Errno 111] Connection refused")."""
    while isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    text = str(exc).strip() or type(exc).__name__
    return _CONNECTION_REPR.sub("", text)


# -- deadlines ----------------------------------------------------------------------------


class Deadline:
    """An overall time limit on the requests a thread makes inside ``HttpClient.deadline``.

    urllib3's timeouts bound each connect and each read, so a server dripping a byte a second
    (or a retry after a retry) can hold a call for ever. At the deadline the sockets of the
    connections used meanwhile are shut down (a blocked read returns at once), no new request
    starts, and retries stop waiting.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._connections: list[urllib3.connection.HTTPConnection] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.0)

    def watch(self, connection: urllib3.connection.HTTPConnection) -> None:
        with self._lock:
            expired = self.expired
            if not expired:
                self._connections.append(connection)
        if expired:
            raise TimeoutError(f"the deadline of {self.seconds:g} s has passed")

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            connections, self._connections = self._connections, []
        for connection in connections:
            sock = connection.sock
            if sock is not None:
                # socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown
                # drops its TLS state, which the reading thread is still using.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def forget(self, connection: urllib3.connection.HTTPConnection) -> None:
        """``connection`` went back to its pool: another call may take it, leave it alone."""
        with self._lock, contextlib.suppress(ValueError):
            self._connections.remove(connection)

    def release(self) -> None:
        with self._lock:
            self._connections = []


_current = threading.local()


def _active_deadline() -> Deadline | None:
    return getattr(_current, "deadline", None)


def _time_left() -> float:
    deadline = _active_deadline()
    return float("inf") if deadline is None else deadline.remaining()


class _Reaper:
    """One thread that expires deadlines when they pass (started with the first one)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wheelhouse-deadlines", daemon=True
                )
                self._thread.start()
            # Woken only for a deadline sooner than the one it waits for: each wake-up took
            # the GIL from the threads whose requests these are (a cold uv run through the
            # proxy adds about 130 deadlines, nearly all later than the first).
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            # Nothing may end this thread: every later deadline would then never pass.
            with contextlib.suppress(Exception):
                self._expire_next()

    def _expire_next(self) -> None:
        with self._wake:
            while not self._heap or self._heap[0][0] > time.monotonic():
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                self._wake.wait(wait)
            _, _, deadline = heapq.heappop(self._heap)
        deadline.expire()


_reaper = _Reaper()


def _new_reaper() -> None:
    # A forked child has no reaper thread (it was not copied), and the copied lock may be
    # held by a thread that does not exist there: the child's deadlines get their own.
    global _reaper
    _reaper = _Reaper()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_reaper)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = _active_deadline()
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        deadline = _active_deadline()
        if deadline is not None:
            deadline.watch(self)  # the TLS handshake reads too
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = _active_deadline()
        if deadline is not None:
            deadline.watch(self)
        super().request(*args, **kwargs)


def _returned(connection: Any) -> None:
    deadline = _active_deadline()
    if deadline is not None and isinstance(connection, urllib3.connection.HTTPConnection):
        deadline.forget(connection)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        _returned(conn)
        super()._put_conn(conn)


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _returned(conn)
        super()._put_conn(conn)


_WATCHED_POOLS: dict[str, type[urllib3.HTTPConnectionPool]] = {
    "http": _HTTPPool,
    "https": _HTTPSPool,
}


def retry_policy(pip: PipSettings) -> Retry:
    """How a GET is retried: pip's ``retries`` count (ours by default) for refused or dropped
    connections, cut-off responses and 429/5xx answers (honouring Retry-After, bounded), with
    a bounded exponential back-off; redirects followed (at most ten); never a TLS failure.

    After the last attempt the last 429/5xx response is returned, not raised, so callers word
    the status themselves.
    """
    count = _DEFAULT_RETRIES if pip.retries is None else pip.retries
    return _Retry(
        total=None,
        connect=count,
        read=count,
        status=count,
        # TLS and other failures do not heal by asking again.
        other=0,
        redirect=_MAX_REDIRECTS,
        status_forcelist=_RETRY_STATUSES,
        backoff_factor=0.25,
        backoff_max=4.0,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


class HttpClient:
    """Pooled, thread-safe GETs configured from pip's settings (timeout, retries, cert,
    client certificate, proxy, and the index URLs' credentials)."""

    def __init__(self, pip: PipSettings, *, pool_size: int = 8) -> None:
        self._timeout = urllib3.Timeout(connect=min(pip.timeout, 15.0), read=pip.timeout)
        self._context = _ssl_context(pip)
        self._credentials = _index_credentials(pip)
        self._pool_size = pool_size
        self.retries = retry_policy(pip)
        self._direct = urllib3.PoolManager(
            num_pools=16, maxsize=pool_size, ssl_context=self._context, retries=self.retries
        )
        self._direct.pool_classes_by_scheme = _WATCHED_POOLS
        self._proxies: dict[str, urllib3.ProxyManager] = {}
        self._proxy_option = pip.proxy
        self._no_proxy_env = pip.no_proxy_env

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: Retry | Literal[False] | None = None,
        redirect: bool = True,
        method: Literal["GET", "HEAD"] = "GET",
    ) -> urllib3.BaseHTTPResponse:
        """Start a streamed GET of ``url``; the caller reads and releases the response.

        ``headers`` are added to the request (``Accept``, ``Range``, validators); ``timeout``
        caps connecting and each read in seconds, instead of pip's configured timeout.
        Redirects are followed and failures retried by ``retries`` (default: ``self.retries``);
        exhausted retries raise ``urllib3.exceptions.MaxRetryError`` with the last failure as
        its ``reason``. Credentials are dropped on a redirect to another origin. ``False`` asks
        once and raises what failed as it is (a probe). ``redirect=False`` hands a redirect
        back as it is (to a client behind a forwarder, which follows it itself).
        ``method="HEAD"`` asks for the status and headers alone (a probe).
        """
        sent = urllib3.make_headers(accept_encoding=False)
        sent.update(headers or {})
        auth = self._auth_for(url)
        if auth:
            sent.update(urllib3.make_headers(basic_auth=auth))
        manager = self._manager_for(url)
        return manager.request(
            method,
            strip_credentials(url),
            headers=sent,
            preload_content=False,
            timeout=self._timeout if timeout is None else urllib3.Timeout(timeout),
            redirect=redirect,
            retries=self.retries if retries is None else retries,
        )

    def _manager_for(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        if self._proxy_option is not None or self._no_proxy_env:
            # pip: its own `proxy` (or `no-proxy-env`) replaces the environment's proxies,
            # NO_PROXY included: the proxy is used for every host.
            proxy = self._proxy_option
        else:
            proxy = urllib.request.getproxies().get(parts.scheme)
            if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
                proxy = None
        if not proxy:
            return self._direct
        if proxy not in self._proxies:
            # pip takes credentials from the proxy URL (--proxy user:pass@host:port); urllib3
            # sends them only as a Proxy-Authorization header it is given.
            parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            headers = None
            if parts.username is not None:
                auth = _userinfo(parts.username, parts.password)
                headers = urllib3.make_headers(proxy_basic_auth=auth)
            self._proxies[proxy] = urllib3.ProxyManager(
                strip_credentials(urlunsplit(parts)),
                proxy_headers=headers,
                maxsize=self._pool_size,
                ssl_context=self._context,
                retries=self.retries,
            )
            self._proxies[proxy].pool_classes_by_scheme = _WATCHED_POOLS
        return self._proxies[proxy]

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[Deadline]:
        """Bound every request this thread makes inside the block to ``seconds`` in all:
        connecting, redirects, retries and their waits, headers and the body read inside
        the block. Past it a blocked read fails at once (urllib3 raises its ``HTTPError``);
        ``Deadline.expired`` tells that apart from other failures. Nested blocks keep the
        outer, earlier deadline when it is the sooner one."""
        outer = _active_deadline()
        deadline = Deadline(seconds)
        if outer is not None and outer.at <= deadline.at:
            yield outer
            return
        _reaper.add(deadline)
        _current.deadline = deadline
        try:
            yield deadline
        finally:
            _current.deadline = outer
            deadline.release()

    def _auth_for(self, url: str) -> str | None:
        # pip's order: credentials in the URL, then the index URL's for its origin, then netrc
        # (by host name, as pip's requests reads it). An index's credentials go to its own
        # scheme, host and port only: never to another port of the host, nor over plain http
        # when the index is https.
        parts = urlsplit(url)
        if parts.username is not None:
            return _userinfo(parts.username, parts.password)
        found = self._credentials.get(origin_of(url))
        if found is not None:
            return found
        return _netrc_auth(parts.hostname or "")


def _userinfo(username: str, password: str | None) -> str:
    # URLs carry credentials percent-encoded ("p%40ss" for "p@ss"); servers expect them decoded.
    return f"{unquote(username)}:{unquote(password or '')}"


def _netrc_auth(host: str) -> str | None:
    """``login:password`` for ``host`` from the netrc file pip (requests) reads: the one
    ``NETRC`` names, else ``~/.netrc``, else ``~/_netrc``."""
    named = os.environ.get("NETRC")
    for path in (named,) if named else ("~/.netrc", "~/_netrc"):
        try:
            found = netrc.netrc(os.path.expanduser(path)).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            continue
        if found:
            login, _, password = found
            return f"{login}:{password or ''}"
    return None


def _ssl_context(pip: PipSettings) -> ssl.SSLContext:
    # pip's own order: its `cert` option, then the environment's bundle, then the system store.
    cafile = pip.cert or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return _shared_context(cafile or None, pip.client_cert)


def load_tls(pip: PipSettings) -> None:
    """Load the TLS context ``HttpClient(pip)`` will use, when an index is reached over
    https; called in a background thread, the CA bundle's 20 ms of CPU run beside the work
    before the first request (OpenSSL loads it without the GIL), and the client takes that
    context. A failure is left for the client to meet and report."""
    if any(urlsplit(url).scheme == "https" for url in pip.index_urls):
        with contextlib.suppress(Exception):
            _ssl_context(pip)


# Contexts by (CA file, client certificate), each loaded once: the first caller loads it and
# any other waits for that load instead of loading the same bundle again.
_contexts: dict[tuple[str | None, str | None], Future[ssl.SSLContext]] = {}
_contexts_lock = threading.Lock()


def _forget_loading_contexts() -> None:
    # In a forked child, a context another thread was loading never comes: it loads again.
    global _contexts_lock
    _contexts_lock = threading.Lock()
    for key, loading in list(_contexts.items()):
        if not loading.done():
            del _contexts[key]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loading_contexts)


def _shared_context(cafile: str | None, client_cert: str | None) -> ssl.SSLContext:
    # Loading a CA bundle costs 15-30 ms of CPU; the page and the file clients share one
    # context (an SSLContext may be used by many connections and threads).
    key = (cafile, client_cert)
    with _contexts_lock:
        loading = _contexts.get(key)
        if loading is None:
            loading = _contexts[key] = Future()
            mine = True
        else:
            mine = False
    if mine:
        try:
            context = ssl.create_default_context(cafile=cafile)
            if client_cert:
                context.load_cert_chain(client_cert)
        except BaseException as exc:
            with _contexts_lock:
                del _contexts[key]  # the next client tries again
            loading.set_exception(exc)
            raise
        loading.set_result(context)
    return loading.result()


def _index_credentials(pip: PipSettings) -> dict[Origin, str]:
    # Index URLs may carry user:password; files hosted on the same origin need them too.
    urls = [u for u in (pip.index_url, *pip.extra_index_urls) if u]
    creds: dict[Origin, str] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.username is not None and parts.hostname:
            creds[origin_of(url)] = _userinfo(parts.username, parts.password)
    return creds
