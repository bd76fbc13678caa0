"""What the proxy and the mirror read from an upstream index besides its pages (those are
``wheelhouse.simple``'s): a wheel's METADATA (its PEP 658 file, else HTTP range requests,
else the whole wheel) and a file's streamed download (a file's PEP 740 provenance is
``wheelhouse.provenance.fetch``'s).

Every call takes a timeout; every failure to reach upstream is an ``UpstreamError`` whose
message names the URL without its credentials.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, cast

import urllib3
from packaging.utils import InvalidWheelFilename, NormalizedName, parse_wheel_filename

from wheelhouse._base._http import Deadline, HttpClient, strip_credentials
from wheelhouse._base.wheels import MAX_METADATA, RangeFile, read_wheel_metadata_from
from wheelhouse.download.stream import copy_into
from wheelhouse.errors import DownloadError, HashMismatchError, RangesUnsupported, UpstreamError
from wheelhouse.simple.client import DEFAULT_TIMEOUT, get_following, read_limited
from wheelhouse.simple.model import PageFile

__all__ = [
    "RangesUnsupported",
    "WheelMetadata",
    "fetch_wheel_metadata",
    "open_file",
]

_TAIL = 64 * 1024  # the zip end records and, for most wheels, the whole central directory
_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class WheelMetadata:
    """A wheel's METADATA bytes, how they were obtained and what that cost upstream."""

    data: bytes
    sha256: str
    source: Literal["pep658", "range", "whole"]
    requests: int
    bytes_read: int


# -- wheel metadata -----------------------------------------------------------------------


def fetch_wheel_metadata(
    client: HttpClient,
    file: PageFile,
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
    file: PageFile,
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
    response, _ = get_following(client, file.url, {"Range": f"bytes=-{_TAIL}"}, deadline)
    requests += 1
    try:
        if response.status == 206:
            tail = read_limited(response, file.url, _TAIL + 1, deadline)
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
        got, _ = get_following(client, file.url, headers, deadline)
        requests += 1
        try:
            if got.status != 206:
                raise UpstreamError(f"{shown} answered a range with HTTP {got.status}", url=shown)
            data = read_limited(got, file.url, stop - start + 1, deadline)
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


def _get_metadata_file(client: HttpClient, file: PageFile, deadline: Deadline) -> bytes | None:
    shown = strip_credentials(file.url) + ".metadata"
    response, _ = get_following(client, file.url + ".metadata", {}, deadline)
    try:
        if response.status != 200:
            return None
        data = read_limited(response, file.url + ".metadata", MAX_METADATA, deadline)
    finally:
        response.release_conn()
    expected = file.core_metadata.get("sha256") if isinstance(file.core_metadata, dict) else None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise UpstreamError(f"{shown} does not match the sha256 its page gives", url=shown)
    return data


def _metadata_from_whole(
    response: urllib3.BaseHTTPResponse,
    file: PageFile,
    name: NormalizedName,
    version: Any,
    requests: int,
) -> WheelMetadata:
    # Upstream ignores ranges: read the wheel (spooled to disk past 16 MB) and check its hash.
    shown = strip_credentials(file.url)

    def too_big(size: int) -> str | None:
        # An endless answer would fill the disk before any hash could fail.
        if file.size is not None and size > file.size:
            return f"{shown} sent more than the {file.size} bytes its page gives"
        return None

    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
        try:
            received = copy_into(
                response.stream(_CHUNK), cast(BinaryIO, spool), url=file.url, sha256=file.sha256,
                too_big=too_big,
            )  # fmt: skip
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(f"reading {shown} failed: {exc}", url=shown) from exc
        except DownloadError as exc:
            raise UpstreamError(exc.message, url=shown) from exc
        except HashMismatchError as exc:
            raise UpstreamError(
                f"{shown} does not match the sha256 its page gives", url=shown
            ) from exc
        spool.seek(0)
        try:
            data = read_wheel_metadata_from(spool, name, version)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UpstreamError(f"cannot read the wheel at {shown}: {exc}", url=shown) from exc
    if data is None:
        raise UpstreamError(f"the wheel at {shown} has no {name}-{version}.dist-info/METADATA")
    return WheelMetadata(data, hashlib.sha256(data).hexdigest(), "whole", requests, received.size)


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
        response, answered = get_following(client, url, {}, deadline)
    if response.status != 200:
        response.release_conn()
        shown = strip_credentials(answered)
        raise UpstreamError(f"{shown} answered HTTP {response.status}", url=shown)
    return response
