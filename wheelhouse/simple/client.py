"""GET a Simple API page: redirects followed with one credential policy, validators, the
body read within a size and a time limit. Every failure is an ``UpstreamError`` whose message
names the URL without its credentials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urljoin, urlsplit

import urllib3
import urllib3.connection
from packaging.utils import canonicalize_name

from wheelhouse._base._http import Deadline, HttpClient, failure_reason
from wheelhouse._base.urls import origin_of, strip_credentials
from wheelhouse.errors import UpstreamError
from wheelhouse.simple.media import ACCEPT
from wheelhouse.simple.model import ProjectPage
from wheelhouse.simple.parse import Keep, parse_page

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_PAGE",
    "PageAnswer",
    "PageResult",
    "ask_project_page",
    "fetch_page",
    "fetch_project_page",
    "get_following",
    "parse_answer",
    "project_page_url",
    "read_limited",
    "read_page",
]

DEFAULT_TIMEOUT = 15.0
# PyPI's largest project pages are a few MB (tens of thousands of files); the cap holds for
# the bytes inflated from a compressed answer too, so a gzip bomb costs at most this.
MAX_PAGE = 32 * 1024 * 1024
_MAX_REDIRECTS = 10
_CHUNK = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_FOLLOWED_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class PageAnswer:
    """An index's answer to a page request, body read (for a 200 only)."""

    status: int
    url: str  # the URL that answered (after redirects); may carry credentials
    content_type: str
    body: bytes
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class PageResult:
    """What asking for a project page gave: a page, "not modified" (304), or no such project."""

    status: Literal["ok", "not-modified", "not-found"]
    page: ProjectPage | None = None
    etag: str | None = None
    last_modified: str | None = None


def project_page_url(index_url: str, name: str) -> str:
    """The page URL of project ``name`` on the index at ``index_url`` (normalized name)."""
    return index_url.rstrip("/") + "/" + quote(canonicalize_name(name)) + "/"


def fetch_page(
    client: HttpClient,
    url: str,
    *,
    accept: str = ACCEPT,
    if_refused: str | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    limit: int = MAX_PAGE,
) -> PageAnswer:
    """GET the page at ``url`` asking for ``accept`` (again with ``if_refused`` after a 406),
    revalidating when validators are given; the body of a 200 is read, the others' not.

    ``timeout`` bounds the whole call (redirects, retries, a page dripping in); the body is
    read up to ``limit`` bytes, inflated if the index compressed it.
    """
    headers = {"Accept": accept, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with client.deadline(timeout) as deadline:
        while True:
            response, answered = get_following(client, url, headers, deadline)
            try:
                if response.status == 406 and if_refused and headers["Accept"] != if_refused:
                    response.close()
                    headers["Accept"] = if_refused
                    continue
                body = b""
                if response.status == 200:
                    body = read_limited(response, answered, limit, deadline)
                elif response.status == 304:
                    response.drain_conn()  # nothing to read: the connection is reused
                else:
                    response.close()  # a body nobody reads may be endless
                return PageAnswer(
                    response.status,
                    answered,
                    response.headers.get("Content-Type", ""),
                    body,
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                )
            finally:
                response.release_conn()


def fetch_project_page(
    client: HttpClient,
    index_url: str,
    name: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    keep: Keep | None = None,
) -> PageResult:
    """Ask ``index_url`` for the page of ``name``, JSON preferred, revalidating if validators
    are given, and parse it (only the files ``keep`` keeps, when given). Raises
    ``UpstreamError`` for a timeout, a refused connection, a 5xx or a page unfit to use."""
    asked = ask_project_page(
        client, index_url, name, etag=etag, last_modified=last_modified, timeout=timeout
    )
    return asked if isinstance(asked, PageResult) else parse_answer(asked, name, keep)


def ask_project_page(
    client: HttpClient,
    index_url: str,
    name: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PageAnswer | PageResult:
    """``fetch_project_page`` up to the parse: a page's answer (status 200, body read) for
    the caller to parse (``parse_answer``) or pass on, else "not modified" or "not found"."""
    answer = fetch_page(
        client,
        project_page_url(index_url, name),
        etag=etag,
        last_modified=last_modified,
        timeout=timeout,
    )
    if answer.status == 304:
        return PageResult("not-modified", etag=answer.etag, last_modified=answer.last_modified)
    if answer.status in (404, 410):
        return PageResult("not-found")
    if answer.status != 200:
        shown = strip_credentials(answer.url)
        raise UpstreamError(f"{shown} answered HTTP {answer.status}", url=shown)
    return answer


def parse_answer(answer: PageAnswer, name: str, keep: Keep | None = None) -> PageResult:
    """The page of project ``name`` a 200 answer holds, with its validators."""
    project = canonicalize_name(name)
    page = parse_page(answer.body, answer.content_type, answer.url, project, keep)
    page = ProjectPage(
        name=page.name,
        url=page.url,
        files=page.files,
        versions=page.versions,
        api_version=page.api_version,
        etag=answer.etag,
        last_modified=answer.last_modified,
        status=page.status,
        status_reason=page.status_reason,
    )
    return PageResult("ok", page, etag=answer.etag, last_modified=answer.last_modified)


def get_following(
    client: HttpClient, url: str, headers: Mapping[str, str], deadline: Deadline
) -> tuple[urllib3.BaseHTTPResponse, str]:
    """GET ``url``, following redirects ourselves; the response and the URL that answered.

    The one credential policy: credentials in ``url`` follow a redirect to the same origin
    (scheme, host and port) only; on any other origin the request carries only what
    ``HttpClient`` gives that origin itself (pip's configured index credentials, netrc).
    Only http(s) targets are followed.
    """
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
        if response.status in _REDIRECTS and location:
            response.drain_conn()
            response.release_conn()
            target = urljoin(url, location)
            if urlsplit(target).scheme.lower() not in _FOLLOWED_SCHEMES:
                raise UpstreamError(
                    f"{shown} redirects to a {urlsplit(target).scheme}: URL; only http(s) is"
                    " followed",
                    url=shown,
                )
            parts, source = urlsplit(target), urlsplit(url)
            same_origin = origin_of(target) == origin_of(url)
            if same_origin and "@" in source.netloc and "@" not in parts.netloc:
                userinfo = source.netloc.rsplit("@", 1)[0]
                target = parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()
            url = target
            continue
        return response, url
    raise UpstreamError(f"{strip_credentials(url)} redirects too often", url=strip_credentials(url))


def read_limited(
    response: urllib3.BaseHTTPResponse, url: str, limit: int, deadline: Deadline
) -> bytes:
    """At most ``limit`` bytes of the body (inflated, when the server compressed it), read
    before ``deadline``; ``UpstreamError`` past either."""
    shown = strip_credentials(url)
    declared = response.headers.get("Content-Length") or ""
    plain = response.headers.get("Content-Encoding") is None
    chunks: list[bytes] = []
    size = 0
    try:
        if plain and declared.isdigit() and int(declared) > limit:
            raise UpstreamError(f"{shown} sent more than {limit} bytes", url=shown)
        # In slices: urllib3 inflates no more than it is asked for, so a bomb costs one slice
        # beyond the limit, and the deadline's check comes between slices. A plain body of a
        # known size (within the limit) is asked for whole: read into one buffer and kept as
        # it is (a MiB at a time, pydantic-core's 6.9 MB page was copied twice, for 20-30%
        # more CPU); the deadline still cuts that read short.
        step = int(declared) if plain and declared.isdigit() and int(declared) else _CHUNK
        while chunk := response.read(min(step, limit + 1 - size)):
            chunks.append(chunk)
            step = _CHUNK
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
    return b"".join(chunks)  # one chunk: that chunk itself, not a copy


def read_page(
    client: HttpClient,
    response: urllib3.BaseHTTPResponse,
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    limit: int = MAX_PAGE,
) -> bytes:
    """The body of a page answer ``client`` started, as ``fetch_page`` reads it: at most
    ``limit`` bytes (inflated, when compressed), within ``timeout`` seconds."""
    with client.deadline(timeout) as deadline:
        connection = getattr(response, "connection", None)
        if isinstance(connection, urllib3.connection.HTTPConnection):
            deadline.watch(connection)
        return read_limited(response, url, limit, deadline)


def _late(shown: str, deadline: Deadline) -> UpstreamError:
    return UpstreamError(f"{shown} did not answer within {deadline.seconds:g} s", url=shown)


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    return failure_reason(exc)
