"""Serve a wheelhouse's static index and files over HTTP, negotiating HTML or JSON per PEP 691."""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Sequence
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wheelhouse.audit.query import QUERY_PATH
from wheelhouse.errors import InvalidWheelhouseError
from wheelhouse.house.index import HTML_PAGE, INDEX_DIR, JSON_PAGE
from wheelhouse.serve._asgi import AsgiServer, ServeLimits, bind
from wheelhouse.serve._osv import OsvEndpoint, load_checked
from wheelhouse.simple.media import HTML_TYPE, JSON_TYPE, NOT_ACCEPTABLE, TEXT_HTML, negotiate

if TYPE_CHECKING:
    from wheelhouse.audit.osv import OsvDatabase
    from wheelhouse.upload.settings import UploadSettings

__all__ = ["index_apps", "make_server", "serve"]

logger = logging.getLogger(__name__)

_CONTENT_TYPES = {
    JSON_TYPE: JSON_TYPE,
    HTML_TYPE: HTML_TYPE,
    TEXT_HTML: "text/html; charset=utf-8",
}
_PAGES = {JSON_TYPE: JSON_PAGE, HTML_TYPE: HTML_PAGE, TEXT_HTML: HTML_PAGE}
# Each variant of a page has its own entity tag (RFC 9110 8.8.3): the bytes or the type differ.
_TAGS = {JSON_TYPE: "json-", HTML_TYPE: "html-", TEXT_HTML: "text-"}
# Types of the other files a wheelhouse holds; anything else is an opaque download.
_FILE_TYPES = {
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".metadata": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".toml": "application/toml",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    # PEP 740: a file's provenance object, as the index's integrity API serves it.
    ".provenance": "application/vnd.pypi.integrity.v1+json",
}
_JSON = "application/json"


class _StaticApp:
    """The ASGI app of one wheelhouse directory: pages negotiated per PEP 691, files as they are.

    Only regular files under the root are served: no listings, no dot files, no symlinks out.
    """

    def __init__(self, root: Path, *, log_access: bool = True) -> None:
        self.root = root
        self._log_access = log_access
        self.real_root = Path(os.path.realpath(root))
        self._osv = OsvEndpoint(lambda: _snapshot(root), "this wheelhouse carries no OSV snapshot")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; websockets are not ours
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and self._log_access:
                # Logged before the body goes out, so the line is there when the client has it.
                _access(scope, message["status"])
            await send(message)

        if scope["method"] == "POST" and scope["path"] == QUERY_PATH:
            response = await self._osv(scope, receive)
        else:
            response = self._respond(scope)
        await response(scope, receive, sending)

    def _respond(self, scope: Scope) -> Response:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            return _text(
                HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD", extra={"Allow": "GET, HEAD"}
            )
        raw = _target(scope).partition("?")[0].partition("#")[0]
        # An origin-form target ("/a/b") is used raw, so that encoded slashes and dots are
        # seen; urlsplit is for an absolute-form target ("http://host/a") only.
        path = raw if raw.startswith("/") else urlsplit(raw).path
        if not path.startswith("/"):
            return _text(HTTPStatus.BAD_REQUEST, "bad request target")
        parts = _path_parts(path)
        if parts is None:
            return _text(HTTPStatus.BAD_REQUEST, "bad path")
        directory = path.endswith("/")
        prefix = scope.get("root_path", "")  # mounted under /<index>/ (serve/_mounts.py)
        if not parts:
            return _redirect(f"{prefix}/{INDEX_DIR}/", HTTPStatus.FOUND)
        if parts[0] == INDEX_DIR and len(parts) <= 2:
            return self._page(parts, Headers(scope=scope), directory=directory, prefix=prefix)
        if directory:  # no directory listings, and a file is never a directory
            return _text(HTTPStatus.NOT_FOUND, "not found")
        target = self._resolve(parts)
        if target is None:
            return _text(HTTPStatus.NOT_FOUND, "not found")
        return _file(target, _file_type(target.name), Headers(scope=scope), vary=False, tag="")

    def _page(
        self, parts: list[str], headers: Headers, *, directory: bool, prefix: str = ""
    ) -> Response:
        if len(parts) == 2:
            name = canonicalize_name(parts[1])
            if not self._exists_dir([INDEX_DIR, name]):
                return _text(HTTPStatus.NOT_FOUND, "no such project")
            if name != parts[1] or not directory:
                return _redirect(
                    f"{prefix}/{INDEX_DIR}/{quote(name)}/", HTTPStatus.MOVED_PERMANENTLY
                )
        elif not directory:
            return _redirect(f"{prefix}/{INDEX_DIR}/", HTTPStatus.MOVED_PERMANENTLY)
        chosen = negotiate(headers.get("accept"))
        if chosen is None:
            return _text(HTTPStatus.NOT_ACCEPTABLE, NOT_ACCEPTABLE, vary=True)
        target = self._resolve([*parts, _PAGES[chosen]])
        if target is None:
            return _text(HTTPStatus.NOT_FOUND, "not found", vary=True)
        return _file(target, _CONTENT_TYPES[chosen], headers, vary=True, tag=_TAGS[chosen])

    def _exists_dir(self, parts: list[str]) -> bool:
        found = self._lookup(parts)
        return found is not None and stat.S_ISDIR(found[1].st_mode)

    def _resolve(self, parts: list[str]) -> Path | None:
        """The real path of a regular file under the root, or None (symlinks out included)."""
        found = self._lookup(parts)
        return found[0] if found is not None and stat.S_ISREG(found[1].st_mode) else None

    def _lookup(self, parts: list[str]) -> tuple[Path, os.stat_result] | None:
        """The real path under the root that ``parts`` name, and its status; None when there
        is none. The parts come from a URL: a name too long for the file system, a file
        taken for a directory, a symlink loop or a directory we may not read are "not found",
        not a failure of the server."""
        try:
            real = Path(os.path.realpath(self.root.joinpath(*parts)))
            if not real.is_relative_to(self.real_root):
                return None
            return real, real.stat()
        except (OSError, ValueError):
            return None


def _snapshot(root: Path) -> OsvDatabase | None:
    from wheelhouse.audit.fetch import snapshot_in

    return load_checked(snapshot_in(root))


def _access(scope: Scope, status: int) -> None:
    client = (scope.get("client") or ("-",))[0]
    method, version = scope["method"], scope.get("http_version", "1.1")
    target = scope.get("root_path", "") + _target(scope)  # a mounted index's whole path
    logger.info('%s "%s %s HTTP/%s" %s -', client, method, target, version, status)


def _target(scope: Scope) -> str:
    """The request target as the client sent it (undecoded), with its query."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"])
    query = scope.get("query_string") or b""
    return f"{path}?{query.decode('latin-1')}" if query else path


def _file(path: Path, content_type: str, request: Headers, *, vary: bool, tag: str) -> Response:
    # Opened here, not only by FileResponse: it sends the status line before it opens the
    # file, so a file we may not read (or no descriptor left) would be a 200 cut short.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return _unopenable(exc, vary=vary)
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        return _text(HTTPStatus.NOT_FOUND, "not found", vary=vary)
    # The variant is part of the tag: the HTML and JSON of one URL must never match.
    etag = f'"{tag}{info.st_mtime_ns:x}-{info.st_size:x}"'
    headers = {
        "ETag": etag,
        "Last-Modified": formatdate(info.st_mtime, usegmt=True),
        "Cache-Control": "no-cache",
    }
    if vary:
        headers["Vary"] = "Accept"
    if _not_modified(request, etag, info.st_mtime):
        return Response(status_code=HTTPStatus.NOT_MODIFIED, headers=headers)
    return FileResponse(path, headers=headers, media_type=content_type, stat_result=info)


def _unopenable(exc: OSError, *, vary: bool) -> Response:
    """The answer for a file of the wheelhouse that cannot be opened."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        logger.warning("cannot read %s: %s", exc.filename, exc.strerror)
        return _text(HTTPStatus.FORBIDDEN, "forbidden", vary=vary)
    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        logger.warning("cannot open %s: %s", exc.filename, exc.strerror)
        return _text(HTTPStatus.SERVICE_UNAVAILABLE, "busy", vary=vary, extra={"Retry-After": "1"})
    return _text(HTTPStatus.NOT_FOUND, "not found", vary=vary)


def _not_modified(request: Headers, etag: str, mtime: float) -> bool:
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        # RFC 9110: If-None-Match uses the weak comparison and overrides If-Modified-Since.
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return int(mtime) <= since.timestamp()


def _redirect(location: str, status: HTTPStatus) -> Response:
    return _text(status, f"see {location}", extra={"Location": location})


def _text(
    status: HTTPStatus, text: str, *, vary: bool = False, extra: dict[str, str] | None = None
) -> Response:
    headers = {"Vary": "Accept"} if vary else {}
    headers.update(extra or {})
    return Response(
        text + "\n", status_code=status, headers=headers, media_type="text/plain; charset=utf-8"
    )


def _path_parts(path: str) -> list[str] | None:
    """The decoded segments of a URL path, or None when one could escape or hide.

    ``..`` and ``.`` (however percent-encoded), encoded slashes or backslashes, NUL bytes,
    empty segments (``//etc``) and dot files are refused; a trailing slash is allowed.
    """
    raw = path[1:]
    if raw.endswith("/"):
        raw = raw[:-1]
    if not raw:
        return []
    parts = []
    for segment in raw.split("/"):
        try:
            part = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return None
        if not part or part.startswith(".") or any(c in part for c in "/\\\0"):
            return None
        parts.append(part)
    return parts


def _file_type(filename: str) -> str:
    return _FILE_TYPES.get(Path(filename).suffix, "application/octet-stream")


def index_apps(indexes: Sequence[UploadSettings], *, log_access: bool = True) -> dict[str, ASGIApp]:
    """The app of each private index of ``indexes``, by name, to mount under ``/<name>/``
    (``serve/_mounts.py``): its pages, its files and its upload endpoint, with its rights.
    ``log_access=False`` in a server whose own access log has a line for every request."""
    from wheelhouse.upload.app import with_uploads

    return {
        i.name: with_uploads(_StaticApp(i.directory, log_access=log_access), i) for i in indexes
    }


def make_server(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    limits: ServeLimits | None = None,
    upload: UploadSettings | None = None,
    indexes: Sequence[UploadSettings] = (),
) -> AsgiServer:
    """A server for the wheelhouse in ``root``, bound but not yet serving.

    Run ``serve_forever()`` (in a thread, for tests) and stop it with ``shutdown()``;
    port 0 picks a free port (see ``.url``). With ``upload``, ``root`` is a private index
    that takes uploads (created when it does not exist). Each of ``indexes`` (private
    indexes, ``upload`` among them) is served under ``/<its name>/`` as well.
    """
    app: ASGIApp = _StaticApp(root)
    if upload is not None:
        from wheelhouse.upload.app import with_uploads

        app = with_uploads(app, upload)
    if indexes:
        from wheelhouse.serve._mounts import Mounts

        app = Mounts(app, index_apps(indexes))
    if not (root / INDEX_DIR / HTML_PAGE).is_file():
        raise InvalidWheelhouseError(
            f"{str(root)!r} has no package index ({INDEX_DIR}/{HTML_PAGE})",
            hint=f"write it with 'wheelhouse index {root}'",
        )
    sock = bind(host, port)
    # uvicorn's access log is replaced by the app's own line per request.
    return AsgiServer(
        app,
        sock,
        limits=limits,
        access_log=False,
        log_config=None,
        log_level="warning",
    )


def serve(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    limits: ServeLimits | None = None,
    ready: Callable[[str], None] | None = None,
    upload: UploadSettings | None = None,
    indexes: Sequence[UploadSettings] = (),
) -> None:
    """Serve the wheelhouse in ``root`` until SIGINT or SIGTERM (or ``shutdown()``).

    ``ready`` is called with the index URL once the socket is listening. Signal handlers are
    installed only in the main thread, and restored on return.
    """
    server = make_server(
        root,
        host,
        port,
        limits=limits,
        upload=upload,
        indexes=indexes,
    )
    try:
        if ready is not None:  # the caller says where it serves, once
            ready(server.url)
        else:
            logger.info("serving %s at %s", root, server.url)
        server.serve_forever()
    finally:
        server.server_close()
    logger.info("stopped serving %s", root)
