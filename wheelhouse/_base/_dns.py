"""One DNS lookup per host per minute, for the command line's parallel downloads."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

__all__ = ["share_dns_lookups"]

# How long an answer is reused: long enough that a burst of parallel downloads asks once,
# short enough that a long-running proxy sees an upstream move to another address. A failed
# lookup is never kept: the next connection asks again.
TTL = 60.0
_MAX_ENTRIES = 1024

_lookups: dict[tuple[object, ...], tuple[float, list[Any]]] = {}
_lookup_lock = threading.Lock()
_system_getaddrinfo = socket.getaddrinfo
_clock = time.monotonic


def _getaddrinfo_once(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[Any]:
    key = (host, port, family, type, proto, flags)
    with _lookup_lock:
        now = _clock()
        entry = _lookups.get(key)
        if entry is None or entry[0] <= now:
            found = _system_getaddrinfo(host, port, family, type, proto, flags)
            _lookups.pop(key, None)
            while len(_lookups) >= _MAX_ENTRIES:
                del _lookups[next(iter(_lookups))]
            entry = (now + TTL, found)
            _lookups[key] = entry
    return list(entry[1])


def _unlock_in_child() -> None:
    # A forked child's copy of the lock may be held by a thread that was not copied.
    global _lookup_lock
    _lookup_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_unlock_in_child)


def share_dns_lookups() -> None:
    """Look each host up once per ``TTL`` seconds per process, one lookup at a time.

    Parallel downloads open a connection per worker, and each would ask the resolver again;
    resolvers that drop concurrent queries (seen on these machines, and in some container
    networks) then stall a connection for the 5 s resolver timeout. pip opens one connection
    at a time and never hits this. Only the command line installs it: a library must not
    change the process's socket module behind its caller's back.
    """
    socket.getaddrinfo = _getaddrinfo_once
