"""The OSV API's ``POST /v1/query`` over HTTP, for the static server and the proxy alike:
the request read within its limit, the snapshot loaded once, on the first query."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope

from wheelhouse.audit.query import MAX_QUERY_BYTES, answer_query
from wheelhouse.errors import WheelhouseError

if TYPE_CHECKING:
    from wheelhouse.audit.osv import OsvDatabase

__all__ = ["OsvEndpoint", "load_checked"]

logger = logging.getLogger(__name__)

_JSON = "application/json"


def load_checked(snapshot: Path) -> OsvDatabase | None:
    """The OSV snapshot at ``snapshot`` with every record, checked against the sha256
    recorded when it was fetched; None when there is no such file."""
    from wheelhouse.audit.fetch import read_info
    from wheelhouse.audit.osv import load_snapshot

    if not snapshot.is_file():
        return None
    info = read_info(snapshot)
    return load_snapshot(snapshot, expected_sha256=info.sha256 if info is not None else None)


class OsvEndpoint:
    """Answers ``POST /v1/query`` from the snapshot ``load`` gives (None: there is none, and
    every query is a 404 saying ``missing``)."""

    def __init__(self, load: Callable[[], OsvDatabase | None], missing: str) -> None:
        self._load = load
        self._missing = missing
        # Loaded on the first query (most servers are never asked one), and once: a
        # snapshot that cannot be read is not read again for every query.
        self._loaded = False
        self._database: OsvDatabase | None = None
        self._error: WheelhouseError | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive) -> Response:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not declared.isdigit():
            return _json_error(HTTPStatus.BAD_REQUEST, "the Content-Length is not a number")
        if declared is not None and int(declared) > MAX_QUERY_BYTES:
            return _json_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large())
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _json_error(HTTPStatus.BAD_REQUEST, "the query was cut short")
            body += message.get("body", b"")
            if len(body) > MAX_QUERY_BYTES:
                return _json_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large())
            if not message.get("more_body", False):
                break
        async with self._lock:
            if not self._loaded:
                try:
                    self._database = await asyncio.to_thread(self._load)
                except WheelhouseError as exc:
                    logger.warning("cannot answer OSV queries: %s", exc)
                    self._error = exc
                self._loaded = True
        if self._error is not None:
            return _json_error(HTTPStatus.SERVICE_UNAVAILABLE, str(self._error))
        if self._database is None:
            return _json_error(HTTPStatus.NOT_FOUND, self._missing)
        status, answer = answer_query(self._database, bytes(body))
        return Response(answer, status_code=status, media_type=_JSON)


def _too_large() -> str:
    return f"the query is larger than {MAX_QUERY_BYTES} bytes"


def _json_error(status: HTTPStatus, message: str) -> Response:
    # The OSV API's error shape; 3 is gRPC's INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE.
    code = {HTTPStatus.NOT_FOUND: 5, HTTPStatus.SERVICE_UNAVAILABLE: 14}.get(status, 3)
    body = json.dumps({"code": code, "message": message}).encode("utf-8")
    return Response(body, status_code=status, media_type=_JSON)
