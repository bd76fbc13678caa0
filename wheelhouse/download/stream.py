"""One download path: a file's bytes streamed into a partial file, hashed, counted and bounded
as they arrive, retried by one policy, and renamed into place only once their sha256 is right.

The policy is the HTTP client's urllib3 ``Retry`` (pip's ``retries``): refused connections
and 429/5xx answers are retried by urllib3 itself; a body cut short or stalled past the read
timeout is counted against the same ``Retry`` (as a read error) and asked for again from
where it stopped. Nothing loops around it, so a download makes at most ``retries`` retries of
each kind. Every caller (the build's fetch, the mirror, the proxy's store and its bucket)
downloads through :func:`receive`, or :func:`download` for a file in a directory of its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import urllib3
from urllib3.util import Retry

from wheelhouse._base._http import HttpClient, failure_reason, strip_credentials
from wheelhouse.errors import DownloadError, HashMismatchError
from wheelhouse.house.manifest import Sha256

__all__ = ["CHUNK", "Received", "copy_into", "download", "receive"]

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Failures of a body under way that asking again may heal: a connection cut mid-body, a
# body shorter than its Content-Length, a read that stalled past the timeout.
_CUT = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")

# Why a transfer that has reached ``size`` bytes must stop (a message), or None.
TooBig = Callable[[int], "str | None"]
Progress = Callable[[int], None]


class Opener(Protocol):
    """Starts a GET of the file: ``headers`` to add (a ``Range``), ``retries`` to use."""

    def __call__(self, headers: Mapping[str, str], retries: Retry) -> urllib3.BaseHTTPResponse: ...


@dataclass(frozen=True)
class Received:
    """What arrived: its sha256 (checked, when one was expected) and its size."""

    sha256: Sha256
    size: int


class _Sink:
    """Writes chunks to ``out``, hashing and counting them, refusing past ``too_big``."""

    def __init__(
        self, out: BinaryIO, shown: str, too_big: TooBig | None, progress: Progress | None
    ) -> None:
        self.out, self.shown, self.too_big, self.progress = out, shown, too_big, progress
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.too_big is not None and (why := self.too_big(self.size + len(chunk))):
            raise DownloadError(why, url=self.shown, reason=why)
        self.out.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        if self.progress is not None:
            self.progress(len(chunk))

    def received(self, name: str, expected: str | None) -> Received:
        actual = Sha256(self.digest.hexdigest())
        if expected is not None and actual != expected:
            raise HashMismatchError(
                f"{name} from {self.shown} has sha256 {actual}, but the index promised {expected}",
                filename=name,
                expected=expected,
                actual=actual,
                hint="the file or the index is corrupt or was tampered with; nothing was "
                "written: retry later or report it to the index's operator",
            )
        return Received(actual, self.size)


def receive(
    client: HttpClient,
    url: str,
    out: BinaryIO,
    *,
    sha256: str | None = None,
    name: str | None = None,
    too_big: TooBig | None = None,
    progress: Progress | None = None,
    opener: Opener | None = None,
    response: urllib3.BaseHTTPResponse | None = None,
) -> Received:
    """GET ``url`` into ``out`` (from where it stands), hashing and counting as it arrives.

    ``sha256`` is checked at the end (``HashMismatchError``, naming ``name``, by default the
    URL's last segment). ``too_big`` is asked before each write. ``opener`` starts the request
    (default: ``client.get`` of ``url``, redirects followed); ``response`` is one already
    under way. A body cut short is asked for again with a ``Range`` from where it stopped; an
    answer with the whole file instead has its first bytes compared with those written, so
    ``out`` only ever grows (readers may follow it). Failures raise ``DownloadError`` (its
    ``status`` the HTTP answer, its cause urllib3's exception); the URL shown has no
    credentials.
    """
    shown = strip_credentials(url)
    name = name or shown.rsplit("/", 1)[-1].split("#", 1)[0]
    sink = _Sink(out, shown, too_big, progress)

    def get(headers: Mapping[str, str], retries: Retry) -> urllib3.BaseHTTPResponse:
        return client.get(url, headers=headers, retries=retries)

    start = opener or get
    retries = client.retries
    while True:
        if response is None:
            headers = {"Range": f"bytes={sink.size}-"} if sink.size else {}
            try:
                response = start(headers, retries)
            except urllib3.exceptions.MaxRetryError as exc:
                raise _failed(shown, exc.reason or exc) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _failed(shown, exc) from exc
        try:
            skip = _skip(response, sink, shown)
            for chunk in response.stream(CHUNK):
                if skip:
                    chunk = skip.take(chunk)
                if chunk:
                    sink.write(chunk)
            if skip:  # the whole answer is shorter than what was written before
                raise skip.changed()
            return sink.received(name, sha256)
        except _CUT as exc:
            cut = exc
        except BaseException:
            response.close()  # the rest of the body is unread: the connection cannot be reused
            raise
        finally:
            response.release_conn()
        try:
            retries = (response.retries or retries).increment("GET", shown, error=cut)
        except urllib3.exceptions.MaxRetryError as exc:
            raise _failed(shown, exc.reason or exc) from exc
        logger.warning("downloading %s was cut short (%s); asking again", name, cut)
        response = None
        retries.sleep()


class _Prefix:
    """The first bytes of a whole answer to a retry: compared with what was written."""

    def __init__(self, sink: _Sink, shown: str) -> None:
        self.want = sink.digest.copy().hexdigest()
        self.left = sink.size
        self.digest = hashlib.sha256()
        self.shown = shown

    def take(self, chunk: bytes) -> bytes:
        if not self.left:
            return chunk
        head, rest = chunk[: self.left], chunk[self.left :]
        self.digest.update(head)
        self.left -= len(head)
        if not self.left and self.digest.hexdigest() != self.want:
            raise self.changed()
        return rest

    def changed(self) -> DownloadError:
        why = "its bytes changed when asked again"
        return DownloadError(f"cannot download {self.shown}: {why}", url=self.shown, reason=why)

    def __bool__(self) -> bool:
        return self.left > 0


def _skip(response: urllib3.BaseHTTPResponse, sink: _Sink, shown: str) -> _Prefix | None:
    """Check the answer's status: the bytes to skip (a whole answer to a retry), or None."""
    status = response.status
    if status == 206 and sink.size:
        found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if found is not None and int(found[1]) == sink.size:
            return None
        status = -1  # a range we did not ask for
    elif status == 200:
        return _Prefix(sink, shown) if sink.size else None
    response.close()  # a body nobody reads may be endless
    why = f"HTTP {status}" if status >= 0 else "it answered another range than asked"
    raise DownloadError(
        f"cannot download {shown}: {why}",
        url=shown,
        reason=why,
        status=status if status >= 0 else None,
        hint="check the network and the index's credentials, proxy and certificates",
    )


def _failed(shown: str, failure: BaseException) -> DownloadError:
    reason = failure_reason(failure)
    return DownloadError(
        f"cannot download {shown}: {reason}",
        url=shown,
        reason=reason,
        hint="check the network and the index's credentials, proxy and certificates",
    )


def copy_into(
    chunks: Iterable[bytes],
    out: BinaryIO,
    *,
    url: str,
    sha256: str | None = None,
    name: str | None = None,
    too_big: TooBig | None = None,
    progress: Progress | None = None,
) -> Received:
    """:func:`receive` for bytes at hand (a local file's): written, hashed, bounded, checked."""
    shown = strip_credentials(url)
    sink = _Sink(out, shown, too_big, progress)
    for chunk in chunks:
        sink.write(chunk)
    return sink.received(name or shown.rsplit("/", 1)[-1], sha256)


def download(
    client: HttpClient,
    url: str,
    partial: Path,
    target: Path | Callable[[Received], Path],
    *,
    sha256: str | None = None,
    name: str | None = None,
    too_big: TooBig | None = None,
    progress: Progress | None = None,
    source: Iterable[bytes] | None = None,
    before: Callable[[Path, Received], None] | None = None,
    mode: int = 0o644,
) -> tuple[Path, Received]:
    """Download ``url`` (or copy ``source``, a local file's chunks) into a new file at
    ``partial``, verified as :func:`receive` does; then call ``before`` (checks that may still
    refuse it) and rename it to ``target``, or to where ``target`` says once the sha256 is
    known. ``partial`` is removed whatever fails. Returns the final path and what arrived."""
    try:
        with partial.open("wb") as out:
            if source is not None:
                received = copy_into(
                    source, out, url=url, sha256=sha256, name=name, too_big=too_big,
                    progress=progress,
                )  # fmt: skip
            else:
                received = receive(
                    client, url, out, sha256=sha256, name=name, too_big=too_big,
                    progress=progress,
                )  # fmt: skip
        if before is not None:
            before(partial, received)
        final = target if isinstance(target, Path) else target(received)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Files we publish are read by web servers and other users, whatever our umask.
        os.chmod(partial, mode)
        os.replace(partial, final)
        return final, received
    finally:
        partial.unlink(missing_ok=True)
