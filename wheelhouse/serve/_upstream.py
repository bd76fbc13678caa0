"""Reading an upstream index: a project's page (PEP 691 JSON, else PEP 503 HTML) as dataclasses,
and a wheel's METADATA (its PEP 658 file, else HTTP range requests, else the whole wheel).

Shared by the caching proxy and the mirror. Every call takes a timeout; every failure to reach
upstream is an ``UpstreamError`` whose message names the URL without its credentials.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import quote, urldefrag, urljoin, urlsplit

import urllib3
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.wheels import RangeFile, read_wheel_metadata_from
from wheelhouse.errors import NetworkError

__all__ = [
    "ACCEPT",
    "PageResult",
    "ProjectPage",
    "RangesUnsupported",
    "UpstreamError",
    "UpstreamFile",
    "WheelMetadata",
    "fetch_project_page",
    "fetch_wheel_metadata",
    "open_file",
    "parse_html_page",
    "parse_json_page",
    "project_page_url",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
# JSON first (it carries size, upload-time and versions), then HTML (PEP 691 content
# negotiation); plain text/html last for PEP 503-only indexes.
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"
DEFAULT_TIMEOUT = 15.0
_MAX_REDIRECTS = 5
_MAX_PAGE = 64 * 1024 * 1024  # PyPI's largest project pages are a few MB
_TAIL = 64 * 1024  # the zip end records and, for most wheels, the whole central directory
_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")

CoreMetadata = bool | dict[str, str]  # False: none; True: available, no hash; else its hashes


class UpstreamError(NetworkError):
    """Upstream could not be reached or answered with something unusable."""


class RangesUnsupported(UpstreamError):
    """Upstream answers range requests with the whole file (only with ``allow_whole=False``)."""


@dataclass(frozen=True, slots=True)  # slots: a proxy keeps tens of thousands in memory
class UpstreamFile:
    """One file a project page lists, as upstream describes it."""

    filename: str
    url: str  # absolute, fragment removed; may carry credentials: never show it unstripped
    hashes: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool | str = False  # PEP 592: False, True, or the reason given
    size: int | None = None
    upload_time: str | None = None
    core_metadata: CoreMetadata = False

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for caches); ``from_json`` reads it back."""
        return {
            "filename": self.filename,
            "url": self.url,
            "hashes": self.hashes,
            "requires_python": self.requires_python,
            "yanked": self.yanked,
            "size": self.size,
            "upload_time": self.upload_time,
            "core_metadata": self.core_metadata,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpstreamFile:
        return cls(
            filename=str(data["filename"]),
            url=str(data["url"]),
            hashes={str(k): str(v) for k, v in dict(data.get("hashes") or {}).items()},
            requires_python=data.get("requires_python"),
            yanked=data.get("yanked", False),
            size=data.get("size"),
            upload_time=data.get("upload_time"),
            core_metadata=data.get("core_metadata", False),
        )


@dataclass(frozen=True)
class ProjectPage:
    """A project's page on one upstream index."""

    name: NormalizedName
    url: str  # the page URL that answered (after redirects)
    files: tuple[UpstreamFile, ...]
    versions: tuple[str, ...] | None = None  # PEP 700, when upstream gives them
    api_version: str = "1.0"
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class PageResult:
    """What asking upstream for a page gave: a page, "not modified" (304), or no such project."""

    status: Literal["ok", "not-modified", "not-found"]
    page: ProjectPage | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class WheelMetadata:
    """A wheel's METADATA bytes, how they were obtained and what that cost upstream."""

    data: bytes
    sha256: str
    source: Literal["pep658", "range", "whole"]
    requests: int
    bytes_read: int


def project_page_url(index_url: str, name: str) -> str:
    """The page URL of project ``name`` on the index at ``index_url`` (normalized name)."""
    return index_url.rstrip("/") + "/" + quote(canonicalize_name(name)) + "/"


# -- pages --------------------------------------------------------------------------------


def fetch_project_page(
    client: HttpClient,
    index_url: str,
    name: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PageResult:
    """Ask ``index_url`` for the page of ``name``, JSON preferred, revalidating if validators
    are given. Raises ``UpstreamError`` for a timeout, a refused connection or a 5xx."""
    project = canonicalize_name(name)
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    url = project_page_url(index_url, project)
    response, url = _get_following(client, url, headers, timeout)
    try:
        status = response.status
        new_etag = response.headers.get("ETag")
        new_modified = response.headers.get("Last-Modified")
        if status == 304:
            return PageResult("not-modified", etag=new_etag, last_modified=new_modified)
        if status in (404, 410):
            return PageResult("not-found")
        if status != 200:
            raise UpstreamError(
                f"{strip_credentials(url)} answered HTTP {status}", url=strip_credentials(url)
            )
        body = _read_limited(response, url, _MAX_PAGE)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    finally:
        response.release_conn()
    if content_type == JSON_TYPE or (
        content_type.endswith("+json") or content_type == "application/json"
    ):
        page = parse_json_page(body, url, project)
    else:
        page = parse_html_page(body, url, project)
    page = ProjectPage(
        name=page.name,
        url=page.url,
        files=page.files,
        versions=page.versions,
        api_version=page.api_version,
        etag=new_etag,
        last_modified=new_modified,
    )
    return PageResult("ok", page, etag=new_etag, last_modified=new_modified)


def parse_json_page(data: bytes, url: str, name: str) -> ProjectPage:
    """A PEP 691 JSON project page; relative file URLs are resolved against ``url``."""
    try:
        document = json.loads(data)
        meta = document.get("meta") or {}
        files = []
        for item in document["files"]:
            file_url, fragment_hashes = _split_url(urljoin(url, item["url"]))
            hashes = {str(k).lower(): str(v) for k, v in (item.get("hashes") or {}).items()}
            core = item.get("core-metadata", item.get("dist-info-metadata", False))
            files.append(
                UpstreamFile(
                    filename=str(item["filename"]),
                    url=file_url,
                    hashes=hashes or fragment_hashes,
                    requires_python=item.get("requires-python") or None,
                    yanked=_yanked_json(item.get("yanked", False)),
                    size=int(item["size"]) if item.get("size") is not None else None,
                    upload_time=item.get("upload-time"),
                    core_metadata=_core_metadata_json(core),
                )
            )
        versions = document.get("versions")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UpstreamError(
            f"{strip_credentials(url)} sent a malformed PEP 691 page: {exc!r}",
            url=strip_credentials(url),
        ) from exc
    return ProjectPage(
        name=canonicalize_name(str(document.get("name") or name)),
        url=url,
        files=tuple(files),
        versions=tuple(str(v) for v in versions) if isinstance(versions, list) else None,
        api_version=str(meta.get("api-version") or "1.0"),
    )


def parse_html_page(data: bytes, url: str, name: str) -> ProjectPage:
    """A PEP 503 HTML project page (with PEP 592/658/714 attributes)."""
    parser = _LinkParser()
    try:
        parser.feed(data.decode("utf-8", errors="replace"))
        parser.close()
    except Exception as exc:  # HTMLParser raises little, but a page is untrusted input
        raise UpstreamError(
            f"{strip_credentials(url)} sent an unreadable HTML page: {exc!r}",
            url=strip_credentials(url),
        ) from exc
    base = urljoin(url, parser.base) if parser.base else url
    files = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        file_url, hashes = _split_url(urljoin(base, href))
        filename = text.strip() or file_url.rsplit("/", 1)[-1]
        yanked_attr = attrs.get("data-yanked")
        core = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        files.append(
            UpstreamFile(
                filename=filename,
                url=file_url,
                hashes=hashes,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=False if yanked_attr is None else (yanked_attr or True),
                core_metadata=_core_metadata_html(core),
            )
        )
    return ProjectPage(
        name=canonicalize_name(name),
        url=url,
        files=tuple(files),
        api_version=parser.api_version or "1.0",
    )


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str], str]] = []
        self.base: str | None = None
        self.api_version: str | None = None
        self._current: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: ("" if v is None else v) for k, v in attrs}
        if tag == "a":
            self._current, self._text = values, []
        elif tag == "base" and self.base is None and values.get("href"):
            self.base = values["href"]
        elif tag == "meta" and values.get("name") == "pypi:repository-version":
            self.api_version = values.get("content")

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.links.append((self._current, "".join(self._text)))
            self._current = None


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its fragment, and the hash a ``#<algo>=<hex>`` fragment names."""
    bare, fragment = urldefrag(url)
    algo, eq, value = fragment.partition("=")
    if eq and algo and value:
        return bare, {algo.lower(): value.lower()}
    return bare, {}


def _yanked_json(value: object) -> bool | str:
    if isinstance(value, str):
        return value or True
    return bool(value)


def _core_metadata_json(value: object) -> CoreMetadata:
    if isinstance(value, dict):
        return {str(k).lower(): str(v).lower() for k, v in value.items()} or True
    return bool(value)


def _core_metadata_html(value: str | None) -> CoreMetadata:
    if value is None:
        return False
    algo, eq, digest = value.partition("=")
    if eq and algo and digest:
        return {algo.lower(): digest.lower()}
    return value.strip().lower() == "true"


# -- wheel metadata -----------------------------------------------------------------------


def fetch_wheel_metadata(
    client: HttpClient,
    file: UpstreamFile,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    allow_whole: bool = True,
    on_whole: Callable[[urllib3.BaseHTTPResponse], bytes] | None = None,
) -> WheelMetadata:
    """The METADATA of the wheel ``file``: upstream's PEP 658 file when the page offers one
    (checked against its hash), else read with HTTP range requests (the zip's end and one
    member), else from the whole wheel (checked against the file's sha256).

    Raises ``UpstreamError`` when none of these works, ``RangesUnsupported`` instead of
    reading the whole wheel when ``allow_whole`` is false. A caller that stores wheels passes
    ``on_whole``: it gets upstream's 200 answer to the range request (the whole wheel, so one
    request fetches it) and returns the METADATA it read from what it stored.
    """
    try:
        name, version, _, _ = parse_wheel_filename(file.filename)
    except InvalidWheelFilename as exc:
        raise UpstreamError(f"{file.filename!r} is not a wheel: {exc}") from exc
    requests = 0
    if file.core_metadata:
        requests += 1
        data = _get_metadata_file(client, file, timeout)
        if data is not None:
            return WheelMetadata(
                data, hashlib.sha256(data).hexdigest(), "pep658", requests, len(data)
            )
    shown = strip_credentials(file.url)
    response, _ = _get_following(client, file.url, {"Range": f"bytes=-{_TAIL}"}, timeout)
    requests += 1
    try:
        if response.status == 206:
            tail = _read_limited(response, file.url, _TAIL + 1)
            total = _total_size(response.headers.get("Content-Range"), shown)
        elif response.status == 200:
            if on_whole is not None:
                size = int(response.headers.get("Content-Length") or 0)
                data = on_whole(response)
                digest = hashlib.sha256(data).hexdigest()
                return WheelMetadata(data, digest, "whole", requests, size)
            if not allow_whole:
                raise RangesUnsupported(f"{shown} does not answer range requests", url=shown)
            return _metadata_from_whole(response, file, name, version, requests, timeout)
        else:
            raise UpstreamError(f"{shown} answered HTTP {response.status}", url=shown)
    finally:
        response.release_conn()
    read = len(tail)

    def fetch(start: int, stop: int) -> bytes:
        nonlocal requests, read
        if stop > total - len(tail) and start >= total - len(tail):
            offset = total - len(tail)
            return tail[start - offset : stop - offset]
        got, _ = _get_following(client, file.url, {"Range": f"bytes={start}-{stop - 1}"}, timeout)
        requests += 1
        try:
            if got.status != 206:
                raise UpstreamError(f"{shown} answered a range with HTTP {got.status}", url=shown)
            data = _read_limited(got, file.url, stop - start + 1)
        finally:
            got.release_conn()
        read += len(data)
        return data

    ranged = RangeFile(fetch, total)
    try:
        data = read_wheel_metadata_from(io.BufferedReader(ranged), name, version)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UpstreamError(f"cannot read the wheel at {shown}: {exc}", url=shown) from exc
    if data is None:
        raise UpstreamError(f"the wheel at {shown} has no {name}-{version}.dist-info/METADATA")
    return WheelMetadata(data, hashlib.sha256(data).hexdigest(), "range", requests, read)


def _get_metadata_file(client: HttpClient, file: UpstreamFile, timeout: float) -> bytes | None:
    shown = strip_credentials(file.url) + ".metadata"
    response, _ = _get_following(client, file.url + ".metadata", {}, timeout)
    try:
        if response.status != 200:
            return None
        data = _read_limited(response, file.url, _MAX_PAGE)
    finally:
        response.release_conn()
    expected = file.core_metadata.get("sha256") if isinstance(file.core_metadata, dict) else None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise UpstreamError(f"{shown} does not match the sha256 its page gives", url=shown)
    return data


def _metadata_from_whole(
    response: urllib3.BaseHTTPResponse,
    file: UpstreamFile,
    name: NormalizedName,
    version: Any,
    requests: int,
    timeout: float,
) -> WheelMetadata:
    # Upstream ignores ranges: read the wheel (spooled to disk past 16 MB) and check its hash.
    shown = strip_credentials(file.url)
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
        try:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                spool.write(chunk)
                size += len(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(f"reading {shown} failed: {exc}", url=shown) from exc
        if file.sha256 is not None and digest.hexdigest() != file.sha256:
            raise UpstreamError(f"{shown} does not match the sha256 its page gives", url=shown)
        spool.seek(0)
        try:
            data = read_wheel_metadata_from(spool, name, version)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UpstreamError(f"cannot read the wheel at {shown}: {exc}", url=shown) from exc
    if data is None:
        raise UpstreamError(f"the wheel at {shown} has no {name}-{version}.dist-info/METADATA")
    return WheelMetadata(data, hashlib.sha256(data).hexdigest(), "whole", requests, size)


def _total_size(content_range: str | None, shown: str) -> int:
    match = _CONTENT_RANGE.fullmatch((content_range or "").strip())
    if match is None:
        raise UpstreamError(f"{shown} sent a range without a usable Content-Range", url=shown)
    return int(match.group(3))


# -- HTTP ---------------------------------------------------------------------------------


def open_file(
    client: HttpClient, url: str, *, timeout: float = DEFAULT_TIMEOUT
) -> urllib3.BaseHTTPResponse:
    """A streamed 200 response for ``url`` (redirects followed); the caller releases it."""
    response, answered = _get_following(client, url, {}, timeout)
    if response.status != 200:
        response.release_conn()
        shown = strip_credentials(answered)
        raise UpstreamError(f"{shown} answered HTTP {response.status}", url=shown)
    return response


def _get_following(
    client: HttpClient, url: str, headers: Mapping[str, str], timeout: float
) -> tuple[urllib3.BaseHTTPResponse, str]:
    """GET ``url``, following redirects ourselves; the response and the URL that answered."""
    for _ in range(_MAX_REDIRECTS + 1):
        shown = strip_credentials(url)
        try:
            # Redirects are ours to follow (the URL that answers resolves relative links);
            # refused connections and 5xx answers are still retried by the client's policy.
            retries = client.retries.new(redirect=0, raise_on_redirect=False)
            response = client.get(url, headers=headers, timeout=timeout, retries=retries)
        except urllib3.exceptions.SSLError as exc:  # a subclass of HTTPError: first
            raise UpstreamError(f"TLS to {shown} failed: {exc}", url=shown) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(f"{shown} cannot be reached: {_reason(exc)}", url=shown) from exc
        location = response.headers.get("Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            response.drain_conn()
            response.release_conn()
            target = urljoin(url, location)
            # Credentials from the index URL follow a redirect to the same host only.
            if urlsplit(target).hostname == urlsplit(url).hostname and "@" in urlsplit(url).netloc:
                parts = urlsplit(target)
                if "@" not in parts.netloc:
                    userinfo = urlsplit(url).netloc.rsplit("@", 1)[0]
                    target = parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()
            url = target
            continue
        return response, url
    raise UpstreamError(f"{strip_credentials(url)} redirects too often", url=strip_credentials(url))


def _read_limited(response: urllib3.BaseHTTPResponse, url: str, limit: int) -> bytes:
    shown = strip_credentials(url)
    try:
        data = response.read(limit + 1)
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamError(f"reading {shown} failed: {_reason(exc)}", url=shown) from exc
    if len(data) > limit:
        raise UpstreamError(f"{shown} sent more than {limit} bytes", url=shown)
    return data


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    # urllib3 puts the connection object's repr in its messages; keep the human part.
    return text.rsplit(": ", 1)[-1] if "<urllib3" in text else text
