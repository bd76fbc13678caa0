"""Reading an upstream index: a project's page (PEP 691 JSON, else PEP 503 HTML) as dataclasses,
and a wheel's METADATA (its PEP 658 file, else HTTP range requests, else the whole wheel).

Shared by the caching proxy and the mirror. Every call takes a timeout; every failure to reach
upstream is an ``UpstreamError`` whose message names the URL without its credentials.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import quote, urldefrag, urljoin, urlsplit

import urllib3
import urllib3.connection
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from wheelhouse._base._http import Deadline, HttpClient, origin_of, strip_credentials
from wheelhouse._base.cooldown import parse_upload_time
from wheelhouse._base.wheels import MAX_METADATA, RangeFile, read_wheel_metadata_from
from wheelhouse.errors import MalformedUploadTime, RangesUnsupported, UpstreamError

__all__ = [
    "ACCEPT",
    "MAX_PROVENANCE",
    "PROJECT_STATUSES",
    "PROVENANCE_TYPE",
    "MalformedUploadTime",
    "PageResult",
    "ProjectPage",
    "ProjectStatus",
    "RangesUnsupported",
    "UpstreamError",
    "UpstreamFile",
    "WheelMetadata",
    "check_provenance",
    "fetch_project_page",
    "fetch_provenance",
    "fetch_wheel_metadata",
    "open_file",
    "parse_html_page",
    "parse_json_page",
    "project_page_url",
    "read_page",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
# JSON first (it carries size, upload-time and versions), then HTML (PEP 691 content
# negotiation); plain text/html last for PEP 503-only indexes.
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"
DEFAULT_TIMEOUT = 15.0
_MAX_REDIRECTS = 5
# PyPI's largest project pages are a few MB (tens of thousands of files); the cap holds for
# the bytes inflated from a compressed answer too, so a gzip bomb costs at most this.
_MAX_PAGE = 32 * 1024 * 1024
# The schemes a page fetched over HTTP may link files by; a file: URL on a remote page would
# make us read (or leak the hash of) a local file, so only a file: index may link file: URLs.
_REMOTE_SCHEMES = frozenset({"http", "https"})
_LOCAL_SCHEMES = _REMOTE_SCHEMES | {"file"}
# The most files a page may list. A real page of _MAX_PAGE bytes lists about 78,000 (430 bytes
# a file; pydantic-core's 15,000 files make 6.5 MB); a hostile one of tiny entries would list
# millions, and parsing a million cost 550 MB and minutes of CPU.
_MAX_FILES = 100_000
# JSON separators per file in a real page (about a dozen): a bound, known before parsing, on
# how many values json.loads would build.
_COMMAS_PER_FILE = 16
_TAIL = 64 * 1024  # the zip end records and, for most wheels, the whole central directory
_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
# An absolute http(s) URL that urljoin and urldefrag would give back unchanged (no userinfo,
# params or query): most links of a real page. Taken as it is, it skips three urlsplit calls,
# which were two thirds of the CPU of parsing pydantic-core's page of 15,000 files.
_PLAIN_URL = re.compile(
    r"(?P<url>https?://[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9._~%!$&'()*+,=:@/-]*)"
    r"(?:#(?P<fragment>[A-Za-z0-9_=-]*))?"
)

CoreMetadata = bool | dict[str, str]  # False: none; True: available, no hash; else its hashes
# PEP 792: a project has exactly one status, "active" when the page names none.
ProjectStatus = Literal["active", "archived", "quarantined", "deprecated"]
PROJECT_STATUSES: tuple[ProjectStatus, ...] = ("active", "archived", "quarantined", "deprecated")
_MAX_REASON = 1024  # a status reason is a line for people, never a payload
# PEP 740's integrity API: a provenance object is a few KiB an attestation; `verify
# --provenance` reads at most this much of one, and so do we.
PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"
MAX_PROVENANCE = 2 * 1024 * 1024
_MAX_ATTESTATIONS = 16

logger = logging.getLogger(__name__)


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
    # PEP 740: the URL of the file's provenance object (absolute, http(s)), when the page
    # names one; it may carry credentials like ``url``.
    provenance: str | None = None

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
            "provenance": self.provenance,
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
            provenance=data.get("provenance"),
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
    # PEP 792: "quarantined" means the index offers no file of the project.
    status: ProjectStatus = "active"
    status_reason: str | None = None


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
    are given. Raises ``UpstreamError`` for a timeout, a refused connection or a 5xx.

    ``timeout`` bounds the whole call (redirects, retries, a page dripping in); the page is
    read up to ``_MAX_PAGE`` bytes, inflated if upstream compressed it.
    """
    with client.deadline(timeout) as deadline:
        return _fetch_project_page(client, index_url, name, etag, last_modified, deadline)


def _fetch_project_page(
    client: HttpClient,
    index_url: str,
    name: str,
    etag: str | None,
    last_modified: str | None,
    deadline: Deadline,
) -> PageResult:
    project = canonicalize_name(name)
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    url = project_page_url(index_url, project)
    response, url = _get_following(client, url, headers, deadline)
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
        body = _read_limited(response, url, _MAX_PAGE, deadline)
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
        status=page.status,
        status_reason=page.status_reason,
    )
    return PageResult("ok", page, etag=new_etag, last_modified=new_modified)


def parse_json_page(data: bytes, url: str, name: str) -> ProjectPage:
    """A PEP 691 JSON project page; relative file URLs are resolved against ``url``.

    Files linked by a URL that is not http(s) are left out (``file:`` ones too, unless the
    page itself is a ``file:`` URL).
    """
    links = _Links(url)
    if data.count(b",") > _MAX_FILES * _COMMAS_PER_FILE:
        raise _too_many(url)
    try:
        document = json.loads(data)
        if len(document["files"]) > _MAX_FILES:
            raise _too_many(url)
        meta = document.get("meta") or {}
        files = []
        for item in document["files"]:
            resolved = links.resolve(url, item["url"])
            if resolved is None:
                continue
            file_url, fragment_hashes = _split_url(resolved)
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
                    upload_time=_upload_time(item.get("upload-time"), url, name, item),
                    core_metadata=_core_metadata_json(core),
                    provenance=links.provenance(url, item.get("provenance")),
                )
            )
        versions = document.get("versions")
        status, reason = _project_status(document.get("project-status"), url)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise UpstreamError(
            f"{strip_credentials(url)} sent a malformed PEP 691 page: {exc!r}",
            url=strip_credentials(url),
        ) from exc
    links.warn()
    return ProjectPage(
        name=canonicalize_name(str(document.get("name") or name)),
        url=url,
        files=tuple(files),
        versions=tuple(str(v) for v in versions) if isinstance(versions, list) else None,
        api_version=str(meta.get("api-version") or "1.0"),
        status=status,
        status_reason=reason,
    )


def parse_html_page(data: bytes, url: str, name: str) -> ProjectPage:
    """A PEP 503 HTML project page (with PEP 592/658/714 attributes); files linked by a URL
    that is not http(s) are left out (``file:`` ones too, unless the page is a ``file:`` URL)."""
    parser = _LinkParser()
    try:
        parser.feed(data.decode("utf-8", errors="replace"))
        parser.close()
    except _TooManyLinks:
        raise _too_many(url) from None
    except Exception as exc:  # HTMLParser raises little, but a page is untrusted input
        raise UpstreamError(
            f"{strip_credentials(url)} sent an unreadable HTML page: {exc!r}",
            url=strip_credentials(url),
        ) from exc
    base = urljoin(url, parser.base) if parser.base else url
    links = _Links(url)
    files = []
    for attrs, text in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        resolved = links.resolve(base, href)
        if resolved is None:
            continue
        file_url, hashes = _split_url(resolved)
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
                provenance=links.provenance(base, attrs.get("data-provenance")),
            )
        )
    links.warn()
    status, reason = _project_status(
        {"status": parser.status, "reason": parser.status_reason}
        if parser.status is not None
        else None,
        url,
    )
    return ProjectPage(
        name=canonicalize_name(name),
        url=url,
        files=tuple(files),
        api_version=parser.api_version or "1.0",
        status=status,
        status_reason=reason,
    )


def _upload_time(value: object, url: str, name: str, item: Mapping[str, Any]) -> str | None:
    """The file's PEP 700 upload time, checked: a cooldown compares it, and a value that is
    not a time would let a file through (or hold every file back) without a word."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        parse_upload_time(value)
    except ValueError:
        shown = strip_credentials(url)
        raise MalformedUploadTime(
            f"{shown} gives {canonicalize_name(name)} file {str(item.get('filename'))!r} the "
            f"upload-time {value!r}, which is not an ISO 8601 time; the page is not used",
            url=shown,
        ) from None
    return value


def _project_status(value: object, url: str) -> tuple[ProjectStatus, str | None]:
    """PEP 792's ``project-status`` (``{"status": ..., "reason": ...}``): a status this does
    not know is read as "active" (the PEP's default), with a warning."""
    if value is None:
        return "active", None
    if not isinstance(value, Mapping):
        raise TypeError(f"project-status {value!r} is not an object")
    status = value.get("status")
    reason = value.get("reason")
    reason = str(reason)[:_MAX_REASON] if isinstance(reason, str) and reason else None
    if status is None:
        return "active", reason
    for known in PROJECT_STATUSES:
        if status == known:
            return known, reason
    logger.warning(
        "%s gives the unknown project status %r; read as 'active'",
        strip_credentials(url),
        str(status)[:64],
    )
    return "active", reason


class _TooManyLinks(Exception):
    pass


def _too_many(url: str) -> UpstreamError:
    shown = strip_credentials(url)
    return UpstreamError(
        f"{shown} sent a page of more than {_MAX_FILES} files, more than any real project has",
        url=shown,
    )


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str], str]] = []
        self.base: str | None = None
        self.api_version: str | None = None
        self.status: str | None = None
        self.status_reason: str | None = None
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
        elif tag == "meta" and values.get("name") == "pypi:project-status":
            self.status = values.get("content")
        elif tag == "meta" and values.get("name") == "pypi:project-status-reason":
            self.status_reason = values.get("content")

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            if len(self.links) >= _MAX_FILES:
                raise _TooManyLinks
            self.links.append((self._current, "".join(self._text)))
            self._current = None


class _Links:
    """Resolves a page's links, leaving out those whose scheme the page may not link."""

    def __init__(self, page_url: str) -> None:
        self._page = page_url
        local = urlsplit(page_url).scheme.lower() == "file"
        self._allowed = _LOCAL_SCHEMES if local else _REMOTE_SCHEMES
        self._dropped: dict[str, int] = {}
        self._foreign = 0

    def resolve(self, base: str, href: str) -> str | None:
        if _PLAIN_URL.fullmatch(href):
            return href  # what urljoin would give, http(s) by construction
        resolved = urljoin(base, href)
        scheme = urlsplit(resolved).scheme.lower()
        if scheme in self._allowed:
            return resolved
        self._dropped[scheme] = self._dropped.get(scheme, 0) + 1
        return None

    def provenance(self, base: str, value: object) -> str | None:
        """A file's PEP 740 provenance URL, resolved; None when there is none or it is
        not http(s) (a file: one only on a file: page). Fragments are not part of it."""
        if not isinstance(value, str) or not value:
            return None
        resolved = self.resolve(base, value)
        if resolved is None:
            return None
        if origin_of(resolved) != origin_of(self._page):
            # The integrity API is the index's own: a page naming provenance elsewhere would
            # have us fetch (and vouch for) whatever that host says.
            self._foreign += 1
            return None
        return urldefrag(resolved)[0]

    def warn(self) -> None:
        # Once per page: a hostile page may link thousands.
        if self._dropped:
            logger.warning(
                "%s links %s; only http(s) links are followed%s: they are ignored",
                strip_credentials(self._page),
                ", ".join(f"{n} {s or 'scheme-less'}: URL(s)" for s, n in self._dropped.items()),
                "" if self._allowed is _REMOTE_SCHEMES else " (and file: ones on a local index)",
            )
        if self._foreign:
            logger.warning(
                "%s names %d provenance URL(s) on another origin than its own; they are ignored",
                strip_credentials(self._page),
                self._foreign,
            )


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its fragment, and the hash a ``#<algo>=<hex>`` fragment names."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:  # what urldefrag would give
        bare, fragment = plain["url"], plain["fragment"] or ""
    else:
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


# -- provenance (PEP 740) -----------------------------------------------------------------


def fetch_provenance(
    client: HttpClient, file: UpstreamFile, *, timeout: float = DEFAULT_TIMEOUT
) -> bytes:
    """The PEP 740 provenance object the page names for ``file``, checked by
    ``check_provenance`` against the file's name and sha256.

    At most ``MAX_PROVENANCE`` bytes, read within ``timeout`` seconds (redirects included),
    through ``client`` (so with the credentials of its origin only). Raises ``UpstreamError``.
    """
    if file.provenance is None:
        raise ValueError(f"the page names no provenance for {file.filename!r}")
    with client.deadline(timeout) as deadline:
        response, answered = _get_following(
            client, file.provenance, {"Accept": PROVENANCE_TYPE}, deadline
        )
        try:
            if response.status != 200:
                shown = strip_credentials(answered)
                raise UpstreamError(f"{shown} answered HTTP {response.status}", url=shown)
            data = _read_limited(response, answered, MAX_PROVENANCE, deadline)
        finally:
            response.release_conn()
    check_provenance(data, file.filename, file.sha256, strip_credentials(file.provenance))
    return data


def check_provenance(data: bytes, filename: str, sha256: str | None, source: str) -> None:
    """Raise ``UpstreamError`` unless ``data`` is a PEP 740 provenance object whose every
    attestation's statement names ``filename`` (parsed, as PyPI compares names) and
    ``sha256``. Structure only: the signatures are ``verify --provenance``'s to check."""
    import base64

    from wheelhouse.provenance.verify import _parsed

    def fail(why: str) -> UpstreamError:
        return UpstreamError(f"{source} is not the provenance of {filename!r}: {why}", url=source)

    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != 1:
            raise ValueError("it is not a version 1 provenance object")
        statements = [
            json.loads(base64.b64decode(attestation["envelope"]["statement"], validate=True))
            for bundle in document["attestation_bundles"][: _MAX_ATTESTATIONS + 1]
            for attestation in bundle["attestations"][: _MAX_ATTESTATIONS + 1]
        ]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise fail(f"it is malformed ({exc})") from None
    if not statements:
        raise fail("it holds no attestation")
    if len(statements) > _MAX_ATTESTATIONS:
        raise fail(f"it holds more than {_MAX_ATTESTATIONS} attestations")
    for statement in statements:
        try:
            (subject,) = statement["subject"]
            name, digest = subject["name"], subject["digest"]["sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            raise fail(f"a statement names no single subject ({exc!r})") from None
        if not isinstance(name, str) or _parsed(name) is None or _parsed(name) != _parsed(filename):
            raise fail(f"an attestation is for another file, {str(name)[:200]!r}")
        if sha256 is None or not isinstance(digest, str) or digest.lower() != sha256.lower():
            raise fail(f"an attestation is for sha256 {str(digest)[:80]}, not {sha256}")


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

    Raises ``UpstreamError`` when none of these works (or the METADATA is larger than
    ``MAX_METADATA``), ``RangesUnsupported`` instead of reading the whole wheel when
    ``allow_whole`` is false. A caller that stores wheels passes ``on_whole``: it gets
    upstream's 200 answer to the range request (the whole wheel, so one request fetches it)
    and returns the METADATA it read from what it stored. ``timeout`` bounds the requests
    made here, the PEP 658 file and the ranges read, not the whole wheel read (that is a
    download: the stream's reads are bounded one by one).
    """
    with client.deadline(timeout) as deadline:
        return _fetch_wheel_metadata(client, file, deadline, allow_whole, on_whole)


def _fetch_wheel_metadata(
    client: HttpClient,
    file: UpstreamFile,
    deadline: Deadline,
    allow_whole: bool,
    on_whole: Callable[[urllib3.BaseHTTPResponse], bytes] | None,
) -> WheelMetadata:
    try:
        name, version, _, _ = parse_wheel_filename(file.filename)
    except InvalidWheelFilename as exc:
        raise UpstreamError(f"{file.filename!r} is not a wheel: {exc}") from exc
    requests = 0
    if file.core_metadata:
        requests += 1
        data = _get_metadata_file(client, file, deadline)
        if data is not None:
            return WheelMetadata(
                data, hashlib.sha256(data).hexdigest(), "pep658", requests, len(data)
            )
    shown = strip_credentials(file.url)
    response, _ = _get_following(client, file.url, {"Range": f"bytes=-{_TAIL}"}, deadline)
    requests += 1
    try:
        if response.status == 206:
            tail = _read_limited(response, file.url, _TAIL + 1, deadline)
            total = _total_size(response.headers.get("Content-Range"), shown)
        elif response.status == 200:
            if on_whole is not None:
                size = int(response.headers.get("Content-Length") or 0)
                deadline.release()  # a download: its reads are bounded one by one
                data = on_whole(response)
                digest = hashlib.sha256(data).hexdigest()
                return WheelMetadata(data, digest, "whole", requests, size)
            if not allow_whole:
                raise RangesUnsupported(f"{shown} does not answer range requests", url=shown)
            deadline.release()  # a download: its reads are bounded one by one
            return _metadata_from_whole(response, file, name, version, requests)
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
        headers = {"Range": f"bytes={start}-{stop - 1}"}
        got, _ = _get_following(client, file.url, headers, deadline)
        requests += 1
        try:
            if got.status != 206:
                raise UpstreamError(f"{shown} answered a range with HTTP {got.status}", url=shown)
            data = _read_limited(got, file.url, stop - start + 1, deadline)
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


def _get_metadata_file(client: HttpClient, file: UpstreamFile, deadline: Deadline) -> bytes | None:
    shown = strip_credentials(file.url) + ".metadata"
    response, _ = _get_following(client, file.url + ".metadata", {}, deadline)
    try:
        if response.status != 200:
            return None
        data = _read_limited(response, file.url + ".metadata", MAX_METADATA, deadline)
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
                if file.size is not None and size > file.size:
                    # An endless answer would fill the disk before any hash could fail.
                    raise UpstreamError(
                        f"{shown} sent more than the {file.size} bytes its page gives", url=shown
                    )
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
    """A streamed 200 response for ``url`` (redirects followed); the caller releases it.

    ``timeout`` bounds the whole call up to the response's headers (connecting, redirects,
    retries); the caller's reads of the body are bounded one by one by the same number.
    """
    with client.deadline(timeout) as deadline:
        response, answered = _get_following(client, url, {}, deadline)
    if response.status != 200:
        response.release_conn()
        shown = strip_credentials(answered)
        raise UpstreamError(f"{shown} answered HTTP {response.status}", url=shown)
    return response


def _get_following(
    client: HttpClient, url: str, headers: Mapping[str, str], deadline: Deadline
) -> tuple[urllib3.BaseHTTPResponse, str]:
    """GET ``url``, following redirects ourselves; the response and the URL that answered."""
    for _ in range(_MAX_REDIRECTS + 1):
        shown = strip_credentials(url)
        if deadline.expired:
            raise _late(shown, deadline)
        try:
            # Redirects are ours to follow (the URL that answers resolves relative links);
            # refused connections and 5xx answers are still retried by the client's policy.
            retries = client.retries.new(redirect=0, raise_on_redirect=False)
            timeout = max(deadline.remaining(), 0.001)
            response = client.get(url, headers=headers, timeout=timeout, retries=retries)
        except urllib3.exceptions.SSLError as exc:  # a subclass of HTTPError: first
            raise UpstreamError(f"TLS to {shown} failed: {exc}", url=shown) from exc
        except urllib3.exceptions.HTTPError as exc:
            if deadline.expired:
                raise _late(shown, deadline) from exc
            raise UpstreamError(f"{shown} cannot be reached: {_reason(exc)}", url=shown) from exc
        location = response.headers.get("Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            response.drain_conn()
            response.release_conn()
            target = urljoin(url, location)
            if urlsplit(target).scheme.lower() not in _REMOTE_SCHEMES:
                raise UpstreamError(
                    f"{shown} redirects to a {urlsplit(target).scheme}: URL; only http(s) is"
                    " followed",
                    url=shown,
                )
            # Credentials in the index URL follow a redirect to the same origin only (scheme,
            # host and port), as HttpClient matches the index's credentials.
            parts, source = urlsplit(target), urlsplit(url)
            same_origin = origin_of(target) == origin_of(url)
            if same_origin and "@" in source.netloc and "@" not in parts.netloc:
                userinfo = source.netloc.rsplit("@", 1)[0]
                target = parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()
            url = target
            continue
        return response, url
    raise UpstreamError(f"{strip_credentials(url)} redirects too often", url=strip_credentials(url))


def _read_limited(
    response: urllib3.BaseHTTPResponse, url: str, limit: int, deadline: Deadline
) -> bytes:
    """At most ``limit`` bytes of the body (inflated, when upstream compressed it), read
    before ``deadline``; ``UpstreamError`` past either."""
    shown = strip_credentials(url)
    declared = response.headers.get("Content-Length") or ""
    plain = response.headers.get("Content-Encoding") is None
    body = io.BytesIO()
    size = 0
    try:
        if plain and declared.isdigit() and int(declared) > limit:
            raise UpstreamError(f"{shown} sent more than {limit} bytes", url=shown)
        # In slices: urllib3 inflates no more than it is asked for, so a bomb costs one slice
        # beyond the limit, and the deadline's check comes between slices.
        while chunk := response.read(min(_CHUNK, limit + 1 - size)):
            body.write(chunk)
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"{shown} sent more than {limit} bytes", url=shown)
            if deadline.expired:
                raise _late(shown, deadline)
    except urllib3.exceptions.HTTPError as exc:
        response.close()
        if deadline.expired:
            raise _late(shown, deadline) from exc
        raise UpstreamError(f"reading {shown} failed: {_reason(exc)}", url=shown) from exc
    except UpstreamError:
        response.close()  # the rest of the body is unread: the connection cannot be reused
        raise
    return body.getvalue()


def read_page(
    client: HttpClient,
    response: urllib3.BaseHTTPResponse,
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    limit: int = _MAX_PAGE,
) -> bytes:
    """The body of a page answer ``client`` started, as ``fetch_project_page`` reads it: at
    most ``limit`` bytes (inflated, when compressed), within ``timeout`` seconds."""
    with client.deadline(timeout) as deadline:
        connection = getattr(response, "connection", None)
        if isinstance(connection, urllib3.connection.HTTPConnection):
            deadline.watch(connection)
        return _read_limited(response, url, limit, deadline)


def _late(shown: str, deadline: Deadline) -> UpstreamError:
    return UpstreamError(f"{shown} did not answer within {deadline.seconds:g} s", url=shown)


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    # urllib3 puts the connection object's repr in its messages; keep the human part.
    return text.rsplit(": ", 1)[-1] if "<urllib3" in text else text
