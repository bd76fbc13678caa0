"""Several private indexes on one server: each app under its own first path segment
(``/<name>/...``), everything else to the server's own app."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Mounts"]


class Mounts:
    """``app``, with ``mounts[name]`` answering ``/<name>`` and everything under it.

    A mounted app sees the path without its prefix (``/<name>/simple/`` as ``/simple/``) and
    the prefix in ``root_path``, so it is written as if it were alone at a server's root and
    adds ``root_path`` only to the absolute links and redirects it sends.
    """

    def __init__(self, app: ASGIApp, mounts: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.mounts = dict(mounts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            first, _, rest = scope["path"][1:].partition("/")
            mounted = self.mounts.get(first)
            if mounted is not None:
                child = dict(scope)
                child["path"] = "/" + rest
                child["root_path"] = f"{scope.get('root_path', '')}/{first}"
                raw = scope.get("raw_path")
                if raw:
                    # The prefix as sent (maybe percent-encoded) is the first raw segment, unless
                    # it hid a slash ("/team%2Fsimple/"): then the raw target is dropped and the
                    # app reads the decoded path, so both name the same place.
                    head, _, tail = raw[1:].partition(b"/")
                    if unquote_to_bytes(head) == first.encode():
                        child["raw_path"] = b"/" + tail
                    else:
                        del child["raw_path"]
                await mounted(child, receive, send)
                return
        await self.app(scope, receive, send)
