"""One DNS lookup per host per run, for the command line's parallel downloads."""

from __future__ import annotations

import socket
import threading
from typing import Any

__all__ = ["share_dns_lookups"]

_lookups: dict[tuple[object, ...], list[Any]] = {}
_lookup_lock = threading.Lock()
_system_getaddrinfo = socket.getaddrinfo


def _getaddrinfo_once(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[Any]:
    key = (host, port, family, type, proto, flags)
    with _lookup_lock:
        found = _lookups.get(key)
        if found is None:
            found = _system_getaddrinfo(host, port, family, type, proto, flags)
            _lookups[key] = found
    return list(found)


def share_dns_lookups() -> None:
    """Look each host up once per process, one lookup at a time.

    Parallel downloads open a connection per worker, and each would ask the resolver again;
    resolvers that drop concurrent queries (seen on these machines, and in some container
    networks) then stall a connection for the 5 s resolver timeout. pip opens one connection
    at a time and never hits this. Only the command line installs it: a library must not
    change the process's socket module behind its caller's back.
    """
    socket.getaddrinfo = _getaddrinfo_once
