"""The index pages a mirror run reads: the root listing of --all and each project's pages,
asked conditionally so that an unchanged project costs a 304."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import urlsplit

import urllib3
from packaging.utils import NormalizedName

from wheelhouse._base._http import HttpClient, failure_reason, strip_credentials
from wheelhouse._base.urls import file_url_path
from wheelhouse.errors import NetworkError, UpstreamError
from wheelhouse.mirror.project import _Counter, _Project
from wheelhouse.mirror.state import _Listing, _project_name
from wheelhouse.simple import (
    ACCEPT,
    PageFile,
    PageResult,
    fetch_project_page,
    parse_html_page,
    parse_page,
    parse_root,
    project_page_url,
    read_page,
)

logger = logging.getLogger(__name__)


# The root listing of --all, inflated: PyPI's lists about 930,000 names in about 46 MB.
_MAX_ROOT = 96 * 1024 * 1024
# ...and the time it may take to arrive (it is read once per run).
_ROOT_TIMEOUT = 300.0


def _root_names(url: str, client: HttpClient, counter: _Counter) -> list[NormalizedName]:
    """Every project the index lists at its root (PEP 691 JSON, else PEP 503 HTML)."""
    shown = strip_credentials(url)
    if url.startswith("file:"):
        root = file_url_path(url)
        try:
            listed = [p.name for p in root.iterdir() if (p / "index.html").is_file()]
            return sorted(_valid_names(listed, shown))
        except OSError as exc:
            raise NetworkError(f"cannot list {str(root)!r}: {exc.strerror}", url=url) from exc
    counter.add()
    try:
        response = client.get(url, headers={"Accept": ACCEPT})
        try:
            if response.status != 200:
                response.close()
                raise NetworkError(
                    f"the index {shown} answered HTTP {response.status} for its list of projects",
                    url=shown,
                )
            body = read_page(client, response, url, limit=_MAX_ROOT, timeout=_ROOT_TIMEOUT)
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise NetworkError(
            f"cannot read the list of projects at {shown}: {failure_reason(exc)}",
            url=shown,
            hint="check the network, the index URL and pip's proxy and cert settings",
        ) from exc
    listed = parse_root(body, response.headers.get("Content-Type", ""), url)
    return _valid_names(listed, shown)


def _valid_names(listed: Iterable[str], shown: str) -> list[NormalizedName]:
    """The project names of a root page that are valid names (each becomes a directory)."""
    names: list[NormalizedName] = []
    for text in listed:
        name = _project_name(text)
        if name is None:
            logger.warning("%s lists %r, which is not a project name; skipped", shown, text)
        else:
            names.append(name)
    return names


def _read_pages(project: _Project, urls: list[str], client: HttpClient, counter: _Counter) -> None:
    """Ask each index for the project's page: conditionally when the selection is the same as
    last time, so that a 304 from every index means nothing to do for the project."""
    same = project.old.selection == project.selection
    old = {listing.url: listing for listing in project.old.listings} if same else {}
    digests: dict[str, str | None] = {}
    # Listings are kept under the index URL without its credentials (never written).
    results = {
        base: _read_page(project, base, old.get(strip_credentials(base)), client, counter, digests)
        for base in urls
    }
    if project.errors:
        project.page_failed = True
        return
    statuses = {base: result.status for base, result in results.items()}
    if "not-modified" in statuses.values() and "ok" in statuses.values():
        # Another index's page changed: the full page of this one is needed after all.
        for base, status in statuses.items():
            if status == "not-modified":
                results[base] = _read_page(project, base, None, client, counter, digests)
        if project.errors:
            project.page_failed = True
            return
    listings: list[_Listing] = []
    for base, result in results.items():
        if result.status == "not-modified":
            # Validators that came with the answer replace the old ones (same page bytes).
            kept = old[strip_credentials(base)]
            listings.append(
                replace(
                    kept,
                    etag=result.etag or kept.etag,
                    last_modified=result.last_modified or kept.last_modified,
                )
            )
        elif result.status == "ok" and result.page is not None:
            digest = digests.get(base)
            shown = strip_credentials(base)
            listings.append(_Listing(shown, result.etag, result.last_modified, digest))
            page = result.page
            if page.status == "quarantined" or (
                page.status != "active" and project.status == "active"
            ):
                project.status, project.status_reason = page.status, page.status_reason
            project.files += _usable(project, base, page.files)
    project.listings = tuple(listings)
    found = [s for s in statuses.values() if s != "not-found"]
    project.found = bool(found)
    project.unchanged = bool(found) and all(s == "not-modified" for s in found)


def _usable(project: _Project, base: str, files: Iterable[PageFile]) -> list[tuple[PageFile, bool]]:
    """The page's files that may be fetched, each with whether it is local: a file:// index
    (the user's own) may link anything, a remote one its http(s) URLs only."""
    if base.startswith("file:"):
        return [(file, True) for file in files]
    usable: list[tuple[PageFile, bool]] = []
    for file in files:
        scheme = urlsplit(file.url).scheme.lower()
        if scheme in ("http", "https"):
            usable.append((file, False))
        else:
            project.refused.append(
                f"{file.filename!r} has a {scheme}: URL on {strip_credentials(base)}, and "
                "files of a remote index are fetched over http(s) only"
            )
    return usable


def _read_page(
    project: _Project,
    base: str,
    previous: _Listing | None,
    client: HttpClient,
    counter: _Counter,
    digests: dict[str, str | None],
) -> PageResult:
    try:
        if base.startswith("file:"):  # read from disk: not a request
            result = _local_page(base, project.name, previous.etag if previous else None)
        else:
            counter.add()
            result, digests[base] = _remote_page(client, base, project.name, previous)
    except UpstreamError as exc:
        project.errors.append(exc.message)
        return PageResult("not-found")
    if result.status == "not-modified" and previous is None:
        project.errors.append(f"{strip_credentials(base)} answered 304 to a first request")
    return result


def _remote_page(
    client: HttpClient, base: str, name: NormalizedName, previous: _Listing | None
) -> tuple[PageResult, str | None]:
    """A project's page over HTTP, and its sha256; "not-modified" for a 304, or for the
    same bytes as last time (then the page is not parsed again)."""
    import hashlib

    headers = {"Accept": ACCEPT}
    if previous is not None and previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous is not None and previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    url = project_page_url(base, name)
    shown = strip_credentials(url)
    try:
        response = client.get(url, headers=headers)
        try:
            status = response.status
            body = read_page(client, response, url) if status == 200 else b""
            if status == 304:
                response.drain_conn()  # nothing to read: the connection is reused
            elif status != 200:
                response.close()  # a body nobody reads may be endless
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamError(f"{shown} cannot be reached: {failure_reason(exc)}", url=shown) from exc
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    if status in (301, 302, 303, 307, 308):
        # The shared reader follows redirects (keeping credentials on the same host only).
        return fetch_project_page(client, base, name), None
    if status == 304:
        return PageResult("not-modified", etag=etag, last_modified=modified), None
    if status in (404, 410):
        return PageResult("not-found"), None
    if status != 200:
        raise UpstreamError(f"{shown} answered HTTP {status}", url=shown)
    digest = hashlib.sha256(body).hexdigest()
    if previous is not None and previous.digest == digest:
        return PageResult("not-modified", etag=etag, last_modified=modified), digest
    page = parse_page(body, response.headers.get("Content-Type", ""), url, name)
    return PageResult("ok", page, etag=etag, last_modified=modified), digest


def _local_page(base: str, name: NormalizedName, etag: str | None) -> PageResult:
    """A project's page on a ``file://`` index (pip reads ``<name>/index.html`` there).

    The page file's mtime and size stand in for an ETag, so a rerun reads nothing new.
    """
    directory = file_url_path(base) / name
    page = directory / "index.html"
    try:
        stat = page.stat()
    except (FileNotFoundError, NotADirectoryError):
        return PageResult("not-found")
    except OSError as exc:
        raise UpstreamError(f"cannot read {str(page)!r}: {exc.strerror}", url=base) from exc
    tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    if tag == etag:
        return PageResult("not-modified", etag=tag)
    try:
        data = page.read_bytes()
    except OSError as exc:
        raise UpstreamError(f"cannot read {str(page)!r}: {exc.strerror}", url=base) from exc
    parsed = parse_html_page(data, directory.as_uri() + "/", name)
    return PageResult("ok", parsed, etag=tag)
