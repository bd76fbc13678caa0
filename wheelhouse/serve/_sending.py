"""How the proxy sends what it answers with: a page from memory or from its rendering on
disk (rebased for the client's host, with its ETag), and stored files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from wheelhouse.serve._links import CHUNK, Rebase
from wheelhouse.simple import HTML_TYPE, JSON_TYPE

__all__ = ["Page", "served_page", "stored_response"]

_CONTENT_TYPES = {JSON_TYPE: JSON_TYPE, HTML_TYPE: HTML_TYPE, "text/html": "text/html"}


@dataclass(frozen=True)
class Page:
    """A page to send: its bytes, or a descriptor of its rendering in the store."""

    etag: str
    body: bytes | None = None
    fd: int | None = None

    @classmethod
    def of(cls, body: bytes) -> Page:
        return cls(hashlib.sha256(body).hexdigest()[:32], body=body)


def served_page(
    request: Request, page: Page, chosen: str, rebase: Rebase | None = None
) -> Response:
    etag = f'"{page.etag}"' if rebase is None else f'"{page.etag}-{rebase.tag}"'
    headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": "max-age=0, must-revalidate"}
    content_type = _CONTENT_TYPES[chosen]
    if chosen == "text/html":
        content_type = "text/html; charset=utf-8"
    if_none_match = request.headers.get("if-none-match") or ""
    if etag in {t.strip().removeprefix("W/") for t in if_none_match.split(",")}:
        if page.fd is not None:
            os.close(page.fd)
        return Response(status_code=304, headers=headers)
    if page.fd is not None:
        return _SendFile(page.fd, headers, content_type, rebase)
    assert page.body is not None
    body = page.body if rebase is None else rebase.whole(page.body)
    return Response(body, headers=headers, media_type=content_type)


class _StoredFile(FileResponse):
    # Read on anyio's threads a MiB at a time, not 64 KiB: a warm install of the web-service
    # set's 15 MB of wheels made 240 thread hops, and took 8x nginx's time on loopback.
    chunk_size = 1024 * 1024


def stored_response(path: Path, filename: str, request: Request | None = None) -> Response:
    if filename.endswith(".metadata"):
        # Tens of KB (at most MAX_METADATA, checked when stored), read here in one call:
        # FileResponse's stat, open, read and close were four thread hops, 2-4 ms a file.
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return PlainTextResponse("not found\n", 404)
        return Response(data, media_type="text/plain; charset=utf-8")
    if request is not None and "range" in request.headers:
        return _StoredFile(path, media_type="application/octet-stream")  # it answers ranges
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return PlainTextResponse("not found\n", 404)
    # Opened and read here, as pages are: FileResponse's stat, open, reads and close on
    # anyio's threads were five thread hops a wheel, most of a warm wheel's time.
    return _SendFile(fd, {"accept-ranges": "bytes"}, "application/octet-stream")


class _SendFile(Response):
    """Sends an open file in chunks, waiting for the client between them, and closes it:
    memory per response stays at one chunk, however big the page and however many clients."""

    def __init__(
        self, fd: int, headers: Mapping[str, str], media_type: str, rebase: Rebase | None = None
    ) -> None:
        super().__init__(headers=headers, media_type=media_type)
        self._fd = fd
        self._rebase = rebase

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            size = os.fstat(self._fd).st_size
            rebaser = None
            length = size
            if self._rebase is not None:
                length = self._rebase.size(self._fd, size)
                rebaser = self._rebase.chunks()
            self.headers["content-length"] = str(length)
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            sent = 0
            # A rebased chunk is a new object, not the bytes read: in smaller pieces, so a
            # client that stops reading holds no more than it did with the page as stored.
            step = CHUNK if rebaser is None else CHUNK // 4
            while sent < size:
                chunk = os.pread(self._fd, min(step, size - sent), sent)
                if not chunk:
                    break  # cannot happen: renderings are never written in place
                sent += len(chunk)
                if rebaser is not None:
                    chunk = rebaser.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            last = rebaser.end() if rebaser is not None else b""
            await send({"type": "http.response.body", "body": last, "more_body": False})
        finally:
            os.close(self._fd)
