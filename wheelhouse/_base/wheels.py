"""Reading a wheel: which member is its METADATA, and its bytes (the one rule, used everywhere)."""

from __future__ import annotations

import contextlib
import io
import threading
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import MetadataTooLargeError

__all__ = [
    "MAX_METADATA",
    "MetadataTooLargeError",
    "RangeFile",
    "distribution_of",
    "metadata_member",
    "project_of",
    "read_member_limited",
    "read_wheel_metadata",
    "read_wheel_metadata_from",
]

# The most METADATA bytes read from a wheel (or a PEP 658 file). The longest real ones are a
# README of about 1 MiB plus headers; past this a wheel is a decompression bomb, not a project.
MAX_METADATA = 8 * 1024 * 1024
_CHUNK = 64 * 1024


def distribution_of(filename: str) -> tuple[NormalizedName, Version] | None:
    """The project and version a wheel's or an sdist's (``.tar.gz``, ``.zip``) file name
    gives, or None for any other name."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def project_of(filename: str) -> NormalizedName | None:
    """The project of a wheel's or an sdist's file name, or None for any other name."""
    found = distribution_of(filename)
    return None if found is None else found[0]


def metadata_member(members: Iterable[str], name: NormalizedName, version: Version) -> str | None:
    """The ``{name}-{version}.dist-info/METADATA`` member among ``members``, or None.

    Only a top-level ``.dist-info`` of this distribution counts: a wheel may vendor another
    project's ``.dist-info`` (deeper down, or of another name), which must never win.
    """
    # The directory is named after the distribution as the build backend spelled it (not always
    # normalized, e.g. "Foo_Bar-1.0.dist-info"), so match it by what it means, not by spelling.
    for member in members:
        directory, slash, leaf = member.partition("/")
        if leaf != "METADATA" or not slash or not directory.endswith(".dist-info"):
            continue
        dist, dash, dist_version = directory.removesuffix(".dist-info").rpartition("-")
        if not dash or canonicalize_name(dist) != name:
            continue
        with contextlib.suppress(InvalidVersion):
            if Version(dist_version) == version:
                return member
    return None


def read_wheel_metadata(
    path: Path, name: NormalizedName, version: Version, *, sha256: str | None = None
) -> bytes | None:
    """The METADATA of the wheel at ``path``, byte for byte, or None if it has none.

    Given the file's ``sha256`` (checked by the caller), the answer is remembered by it: the
    same bytes hold the same METADATA, and a build reads each wheel's twice (to check the
    pins, then for the index), where opening a zip means parsing its whole directory.
    Raises ``OSError`` or ``zipfile.BadZipFile`` for a file that is not a readable zip, and
    ``MetadataTooLargeError`` (a ``BadZipFile``) for a METADATA past ``MAX_METADATA``: callers
    word that for their own context.
    """
    if sha256 is not None:
        with _REMEMBERED_LOCK:
            known = _REMEMBERED.get((sha256, name, version))
        if known is not None:
            return known
    with path.open("rb") as stream:
        metadata = read_wheel_metadata_from(stream, name, version)
    if sha256 is not None and metadata is not None:
        with _REMEMBERED_LOCK:
            _REMEMBERED[(sha256, name, version)] = metadata
            while len(_REMEMBERED) > _REMEMBER_AT_MOST:
                del _REMEMBERED[next(iter(_REMEMBERED))]
    return metadata


# METADATA read from files of a known sha256, oldest first; bounded for long-lived servers.
_REMEMBER_AT_MOST = 4096
_REMEMBERED: dict[tuple[str, NormalizedName, Version], bytes] = {}
_REMEMBERED_LOCK = threading.Lock()


def read_wheel_metadata_from(
    stream: IO[bytes], name: NormalizedName, version: Version
) -> bytes | None:
    """The METADATA of the wheel ``stream`` holds (any seekable binary file), or None.

    With a ``RangeFile`` only the zip's end records, its central directory and the one
    member are read: tens of KB of a wheel of any size. At most ``MAX_METADATA`` bytes are
    inflated: more raises ``MetadataTooLargeError``.
    """
    with zipfile.ZipFile(stream) as archive:
        member = metadata_member(archive.namelist(), name, version)
        return None if member is None else read_member_limited(archive, member, MAX_METADATA)


def read_member_limited(archive: zipfile.ZipFile, member: str, limit: int) -> bytes:
    """The bytes of ``member``, inflating at most ``limit`` of them (``MetadataTooLargeError``
    past it): the size the zip declares is checked first, and the bytes that actually come
    out too, since a hostile zip can declare any size."""
    info = archive.getinfo(member)
    if info.file_size > limit:
        raise MetadataTooLargeError(member, limit)
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as stream:
        while chunk := stream.read(min(_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise MetadataTooLargeError(member, limit)
    return b"".join(chunks)


class RangeFile(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes whose bytes come from ``fetch(start, stop)``.

    ``fetch`` returns the bytes ``[start, stop)`` (an HTTP range request, say). What was
    fetched is kept, and reads are widened to at least ``block`` bytes, so that zipfile's many
    small reads cost a few requests: the first read near the end fetches the whole tail.
    ``requests`` counts the calls to ``fetch``.
    """

    def __init__(
        self, fetch: Callable[[int, int], bytes], size: int, *, block: int = 64 * 1024
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._block = block
        self._position = 0
        self._spans: list[tuple[int, bytes]] = []  # (start, bytes), fetched so far
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        stop = min(self._position + len(buffer), self._size)
        if stop <= self._position:
            return 0
        data = self._read(self._position, stop)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _read(self, start: int, stop: int) -> bytes:
        for span_start, data in self._spans:
            if span_start <= start and stop <= span_start + len(data):
                return data[start - span_start : stop - span_start]
        # Widen to a block, towards the end when near it: zipfile reads the end records, then
        # the central directory just before them, then one member further up.
        fetch_stop = min(max(stop, start + self._block), self._size)
        fetch_start = max(min(start, fetch_stop - self._block), 0)
        self.requests += 1
        data = self._fetch(fetch_start, fetch_stop)
        if len(data) != fetch_stop - fetch_start:
            raise OSError(f"asked for bytes {fetch_start}-{fetch_stop - 1}, got {len(data)} bytes")
        self._spans.append((fetch_start, data))
        return data[start - fetch_start : stop - fetch_start]
