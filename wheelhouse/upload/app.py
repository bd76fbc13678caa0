"""The upload endpoint (the legacy upload API of twine and ``uv publish``), in front of a
server's own app: a POST to the upload path is answered here, anything else passes through."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wheelhouse.errors import UploadRefusedError, WheelhouseError
from wheelhouse.upload.accounts import REALM, Accounts
from wheelhouse.upload.browse import PROJECT_PREFIX, project_name, project_page, root_page
from wheelhouse.upload.checks import check_upload, safe_filename
from wheelhouse.upload.form import FormLimits, read_form
from wheelhouse.upload.settings import UploadSettings
from wheelhouse.upload.store import PrivateIndex

if TYPE_CHECKING:
    from wheelhouse.upload.bucket import SharedIndex

__all__ = ["UPLOAD_PATHS", "YANK_PATH", "UploadApp", "with_uploads"]

logger = logging.getLogger(__name__)

# Where clients post: "/" (twine's --repository-url of the server) and "/legacy/" (PyPI's).
YANK_PATH = "/-/yank"
UPLOAD_PATHS = frozenset({"/", "/legacy/", YANK_PATH})
_MAX_YANK_BODY = 64 * 1024


class UploadApp:
    """``app`` with uploads to the private index of ``settings``, and its read rights."""

    def __init__(self, app: ASGIApp, *, settings: UploadSettings) -> None:
        self.app = app
        self.settings = settings
        self.index = PrivateIndex(settings.directory)
        self.accounts = Accounts(settings.users, settings.tokens)
        max_file = settings.max_file
        self.limits = FormLimits() if max_file is None else FormLimits(max_file=max_file)
        self.shared: SharedIndex | None = None
        if settings.bucket is not None:
            from wheelhouse._base.storage import open_store
            from wheelhouse.upload.bucket import SharedIndex

            where, endpoint = settings.bucket.rstrip("/"), settings.endpoint_url
            self.shared = SharedIndex(
                self.index,
                open_store(f"{where}/index", endpoint_url=endpoint),
                open_store(f"{where}/files", endpoint_url=endpoint),
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] != "POST" or scope["path"] not in UPLOAD_PATHS:
            if not self.settings.anonymous_read and scope["path"] != "/-/health":
                try:
                    await self._authenticate(headers)
                except UploadRefusedError as exc:
                    await _answer(scope, send, HTTPStatus(exc.status), exc.message, "-")
                    return
            path = scope["path"]
            if self.shared is not None and _is_page(path):
                # Pages list what every server sharing the bucket took; files follow pages.
                try:
                    await anyio.to_thread.run_sync(self.shared.sync)
                except WheelhouseError as exc:
                    logger.warning("cannot read the bucket of %s: %s", self.settings.name, exc)
                    line = "the index's bucket cannot be read; try again"
                    await _answer(scope, send, HTTPStatus.SERVICE_UNAVAILABLE, line, "-")
                    return
            if scope["method"] in ("GET", "HEAD") and (
                path == "/" or path.startswith(PROJECT_PREFIX)
            ):
                await self._browse(scope, send, headers)
                return
            await self.app(scope, receive, send)
            return
        user = "-"
        try:
            user = await self._authenticate(headers)
            uploaders = self.settings.uploaders
            if uploaders is not None and user not in uploaders:
                raise UploadRefusedError(
                    403, f"user {user!r} may not upload to the index {self.settings.name!r}"
                )
            if scope["path"] == YANK_PATH:
                line = await self._yank(headers, receive, user)
            else:
                await self._upload(headers, receive, user)
                line = "OK"
            status = HTTPStatus.OK
        except UploadRefusedError as exc:
            status, line = HTTPStatus(exc.status), exc.message
        await _answer(scope, send, status, line, user)

    async def _browse(self, scope: Scope, send: Send, headers: dict[str, str]) -> None:
        """The pages for people (server-rendered, no scripts)."""
        path = scope["path"]
        status = HTTPStatus.OK
        if path == "/":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("q", [""])[0]
            body = await anyio.to_thread.run_sync(self._root, query[:200], _prefix(scope))
        else:
            name = project_name(path)
            found = (
                None
                if name is None
                else await anyio.to_thread.run_sync(self._project, name, headers, scope)
            )
            if found is None:
                await _answer(scope, send, HTTPStatus.NOT_FOUND, "no such project", "-")
                return
            body = found
        client = (scope.get("client") or ("-",))[0]
        logger.info('%s "%s %s" %d', client, scope["method"], _prefix(scope) + path, status)
        answer = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
            # No scripts, frames or plug-ins on these pages, whatever a readme holds.
            (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; "
             b"img-src *; form-action 'self'"),
        ]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def _root(self, query: str, prefix: str) -> bytes:
        names = {r.name for r in self.index.records()}
        return root_page(self.settings.name, names, self.index.catalog, query, prefix)

    def _project(self, name: str, headers: dict[str, str], scope: Scope) -> bytes | None:
        files = self.index.files_of(name)
        if not files:
            return None
        base = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
        catalog = self.index.catalog
        return project_page(self.settings.name, base, name, files, catalog, _prefix(scope))

    async def _authenticate(self, headers: dict[str, str]) -> str:
        return await anyio.to_thread.run_sync(
            self.accounts.authenticate, headers.get("authorization"), self.settings.name
        )

    async def _yank(self, headers: dict[str, str], receive: Receive, user: str) -> str:
        """``POST /-/yank`` with a JSON body ``{"filename": F, "yanked": true|false,
        "reason": R}``: PEP 592, of the user's own upload."""
        body = bytearray()
        async for chunk in _body(receive):
            body += chunk
            if len(body) > _MAX_YANK_BODY:
                raise UploadRefusedError(413, f"a yank request is at most {_MAX_YANK_BODY} bytes")
        try:
            data = json.loads(body)
            filename, yanked = data["filename"], data["yanked"]
            reason = data.get("reason", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise UploadRefusedError(
                400, 'the body must be JSON {"filename": ..., "yanked": true|false, "reason": ...}'
            ) from exc
        if not isinstance(filename, str) or not isinstance(yanked, bool):
            raise UploadRefusedError(400, "'filename' must be a string, 'yanked' true or false")
        if not isinstance(reason, str) or len(reason) > 1000:
            raise UploadRefusedError(400, "'reason' must be a string of at most 1000 characters")
        safe_filename(filename)
        set_yanked = self.index.set_yanked if self.shared is None else self.shared.yank
        await anyio.to_thread.run_sync(set_yanked, filename, reason if yanked else None, user)
        return f"{'yanked' if yanked else 'un-yanked'} {filename}"

    async def _upload(self, headers: dict[str, str], receive: Receive, user: str) -> None:
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
            add = self.index.add if self.shared is None else self.shared.upload
            await anyio.to_thread.run_sync(add, checked, form.path, user)
        finally:
            form.path.unlink(missing_ok=True)


def _is_page(path: str) -> bool:
    """Whether ``path`` is a page (of pip's or of people's), not a file."""
    return path == "/" or path.startswith(("/simple", PROJECT_PREFIX))


def _prefix(scope: Scope) -> str:
    """Where the index is mounted on its server (``/<name>``, serve/_mounts.py), or ""."""
    return str(scope.get("root_path", ""))


async def _answer(scope: Scope, send: Send, status: HTTPStatus, line: str, user: str) -> None:
    """One line of text as the answer; the request logged with the user's name (never the
    Authorization header)."""
    answer = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == HTTPStatus.UNAUTHORIZED:
        answer.append((b"www-authenticate", f'Basic realm="{REALM}"'.encode()))
    if status != HTTPStatus.OK:
        # The body may not have been read: the connection is not reused.
        answer.append((b"connection", b"close"))
    body = (line.replace("\n", " ") + "\n").encode()
    client = (scope.get("client") or ("-",))[0]
    method = scope["method"]
    path = _prefix(scope) + scope["path"]
    logger.info('%s "%s %s" %d %s: %s', client, method, path, status, user, line)
    await send({"type": "http.response.start", "status": status, "headers": answer})
    await send({"type": "http.response.body", "body": body if method != "HEAD" else b""})


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise UploadRefusedError(400, "the upload was cut short: the client went away")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def with_uploads(app: ASGIApp, settings: UploadSettings) -> ASGIApp:
    """``app`` taking uploads into the private index of ``settings``."""
    return UploadApp(app, settings=settings)
