"""The upload endpoint (the legacy upload API of twine and ``uv publish``), in front of a
server's own app: a POST to the upload path is answered here, anything else passes through."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wheelhouse.errors import UploadRefusedError
from wheelhouse.upload.accounts import REALM, Accounts
from wheelhouse.upload.checks import check_upload
from wheelhouse.upload.form import FormLimits, read_form
from wheelhouse.upload.store import PrivateIndex

__all__ = ["UPLOAD_PATHS", "UploadApp", "upload_options", "with_uploads"]

logger = logging.getLogger(__name__)

# Where clients post: "/" (twine's --repository-url of the server) and "/legacy/" (PyPI's).
UPLOAD_PATHS = frozenset({"/", "/legacy/"})


class UploadApp:
    """``app`` with uploads to ``index`` by the users of ``accounts``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        index: PrivateIndex,
        accounts: Accounts,
        limits: FormLimits | None = None,
    ) -> None:
        self.app = app
        self.index = index
        self.accounts = accounts
        self.limits = limits or FormLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in UPLOAD_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        user = "-"
        try:
            user = await anyio.to_thread.run_sync(
                self.accounts.authenticate, headers.get("authorization")
            )
            await self._upload(headers, receive)
            status, line = HTTPStatus.OK, "OK"
        except UploadRefusedError as exc:
            status, line = HTTPStatus(exc.status), exc.message
        answer = [(b"content-type", b"text/plain; charset=utf-8")]
        if status == HTTPStatus.UNAUTHORIZED:
            answer.append((b"www-authenticate", f'Basic realm="{REALM}"'.encode()))
        if status != HTTPStatus.OK:
            # The body may not have been read: the connection is not reused.
            answer.append((b"connection", b"close"))
        body = (line.replace("\n", " ") + "\n").encode()
        client = (scope.get("client") or ("-",))[0]
        # The user's name only: never the Authorization header.
        logger.info('%s "POST %s" %d %s: %s', client, scope["path"], status, user, line)
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": body})

    async def _upload(self, headers: dict[str, str], receive: Receive) -> None:
        length = headers.get("content-length")
        most = self.limits.max_file + self.limits.max_fields
        if length is not None and length.isdigit() and int(length) > most:
            raise UploadRefusedError(413, f"the upload is larger than {most} bytes")
        form = await read_form(
            _body(receive), headers.get("content-type"), self.index.temp_dir, self.limits
        )
        assert form.path is not None
        try:
            checked = await anyio.to_thread.run_sync(check_upload, form)
            await anyio.to_thread.run_sync(self.index.add, checked, form.path)
        finally:
            form.path.unlink(missing_ok=True)


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise UploadRefusedError(400, "the upload was cut short: the client went away")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def upload_options(directory: Path, users: Path, max_bytes: int | None = None) -> dict[str, Any]:
    """``UploadApp``'s keyword arguments for the private index in ``directory``; uploaded
    files may be ``max_bytes`` long (default: ``FormLimits.max_file``)."""
    limits = FormLimits() if max_bytes is None else FormLimits(max_file=max_bytes)
    return {"index": PrivateIndex(directory), "accounts": Accounts(users), "limits": limits}


def with_uploads(
    app: ASGIApp, directory: Path, users: Path, max_bytes: int | None = None
) -> ASGIApp:
    """``app`` taking uploads into the private index in ``directory`` from ``users``."""
    return UploadApp(app, **upload_options(directory, users, max_bytes))
