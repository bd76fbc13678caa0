"""Reading a bundle: its volumes as one stream, its tar opened, a damaged bundle told from
something that is no bundle; and the base an update is made against."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from wheelhouse._base.words import count
from wheelhouse.errors import Hint, InvalidBundleError, InvalidWheelhouseError, TamperedError
from wheelhouse.house.bundle.layout import (
    CHUNK,
    HOUSE_DIR,
    INFO_NAME,
    MAGIC_GZIP,
    MAGIC_ZSTD,
    MAX_HEADER,
    SUMS_NAME,
    VOLUME_SUFFIX,
    Compression,
    unsafe_name,
)
from wheelhouse.house.bundle.writer import load_zstandard, volume_path
from wheelhouse.house.contents import open_wheelhouse
from wheelhouse.house.manifest import MANIFEST_NAME, Manifest


def read_house(directory: Path) -> Manifest:
    manifest = open_wheelhouse(directory)
    bad = unsafe_name(manifest)
    if bad is not None:
        # Each name is read as a file of the wheelhouse: never one outside it.
        raise InvalidWheelhouseError(
            f"the manifest of {str(directory)!r} names the file {bad!r}, which is not a "
            "wheel or sdist file name",
            hint=Hint.REBUILD,
        )
    return manifest


def volumes_of(path: Path) -> list[Path]:
    """The files of the bundle ``path``: itself, or ``X.001`` and every volume after it."""
    match = VOLUME_SUFFIX.search(path.name)
    if path.is_dir():
        raise InvalidBundleError(
            f"{str(path)!r} is a directory, not a bundle file",
            hint="pass the file 'wheelhouse pack' wrote (or its first volume, FILE.001)",
        )
    if not path.is_file():
        if volume_path(path, 1).is_file():
            return volumes_of(volume_path(path, 1))
        raise InvalidBundleError(
            f"the bundle {str(path)!r} does not exist",
            hint="pass the bundle file (or its first volume, FILE.001)",
        )
    if match is None:
        return [path]
    if match.group(1) != "001":
        raise InvalidBundleError(
            f"{str(path)!r} is not the first volume of its bundle",
            hint=f"pass {path.name[: -len(match.group(0))]}.001",
        )
    stem = path.name[: -len(match.group(0))]
    numbers = sorted(
        int(m.group(1))
        for sibling in path.parent.iterdir()
        if sibling.name.startswith(stem + ".")
        and (m := VOLUME_SUFFIX.search(sibling.name))
        and sibling.name == f"{stem}{m.group(0)}"
    )
    for expected, number in enumerate(numbers, start=1):
        if number != expected:
            missing = path.with_name(f"{stem}.{expected:03d}")
            raise InvalidBundleError(
                f"volume {str(missing)!r} of the bundle is missing "
                f"(found {count(len(numbers), 'volume')} up to {stem}.{numbers[-1]:03d})",
                hint=Hint.ALL_VOLUMES,
            )
    return [path.with_name(f"{stem}.{n:03d}") for n in numbers]


class _Volumes(io.RawIOBase):
    """The volumes of a bundle read as one stream, in order."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._index = 0
        self._handle: IO[bytes] | None = paths[0].open("rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._handle is not None:
            count = self._handle.readinto(buffer)  # type: ignore[attr-defined]
            if count:
                return int(count)
            self._handle.close()
            self._index += 1
            self._handle = (
                self.paths[self._index].open("rb") if self._index < len(self.paths) else None
            )
        return 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


class _Head(io.RawIOBase):
    """A stream that keeps its first bytes: what tells a bundle cut short from another file."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.head = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self.inner.read(-1 if size is None else size)
        if len(self.head) < tarfile.BLOCKSIZE:
            self.head += data[: tarfile.BLOCKSIZE - len(self.head)]
        return data


# Every bundle pack writes starts with the tar header of bundle.json, uncompressed or not.
_FIRST_HEADER = INFO_NAME.encode() + b"\0"


@contextlib.contextmanager
def open_tar(path: Path) -> Iterator[tuple[tarfile.TarFile, list[Path]]]:
    paths = volumes_of(path)
    raw = io.BufferedReader(_Volumes(paths), buffer_size=CHUNK)
    with raw:
        magic = raw.peek(4)[:4]
        stream: IO[bytes]
        compression: Compression = "none"
        if magic.startswith(MAGIC_GZIP):
            stream, compression = gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"  # type: ignore[assignment]
        elif magic == MAGIC_ZSTD:
            stream = load_zstandard().ZstdDecompressor().stream_reader(raw, closefd=False)
            compression = "zstd"
        else:
            stream = raw
        head = _Head(stream)
        try:
            with tarfile.open(fileobj=head, mode="r|") as tar:
                yield tar, paths
        except read_errors() as exc:
            error = _not_a_bundle(path, head.head, compression) or damaged(path, paths, exc)
            raise error from exc
        finally:
            stream.close()


def _not_a_bundle(path: Path, head: bytes, compression: Compression) -> InvalidBundleError | None:
    """Why the file that failed to read as a tar is not a bundle at all; None when it is one
    that is cut short or damaged (its first bytes are those every bundle starts with)."""
    if head.startswith(_FIRST_HEADER) or (head and _FIRST_HEADER.startswith(head)):
        return None
    if not head and compression != "none":
        return None  # cut short before its first block could be decompressed
    if not head:
        why = "it is empty"
    elif compression == "none":
        why = "it is not a tar, gzip or zstd archive"
    else:
        why = f"it is {compression} data that holds no tar archive of a bundle"
    return InvalidBundleError(
        f"{str(path)!r} is not a wheelhouse bundle: {why}",
        hint="pass the file 'wheelhouse pack' wrote (FILE.tar, FILE.tar.gz or FILE.tar.zst)",
    )


def damaged(path: Path, paths: list[Path], exc: BaseException) -> WheelhouseErrorType:
    why = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end" in why:
        if len(paths) > 1 or VOLUME_SUFFIX.search(paths[0].name):
            following = volume_path(paths[0].with_suffix(""), len(paths) + 1)
            return InvalidBundleError(
                f"the bundle {str(path)!r} ends early after {paths[-1].name}: "
                f"its next volume ({following.name}) "
                "is missing or a volume is cut short",
                hint=Hint.ALL_VOLUMES,
            )
        return TamperedError(
            f"the bundle {str(path)!r} is cut short ({why}); nothing was written",
            hint=Hint.RECOPY_BUNDLE,
        )
    return TamperedError(
        f"the bundle {str(path)!r} is damaged ({why}); nothing was written",
        hint=Hint.RECOPY_BUNDLE,
    )


WheelhouseErrorType = InvalidBundleError | TamperedError


_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
)


def read_errors() -> tuple[type[BaseException], ...]:
    with contextlib.suppress(ImportError):
        import zstandard

        return (*_READ_ERRORS, zstandard.ZstdError)
    return _READ_ERRORS


def read_header(bundle: Path, name: str) -> bytes | None:
    """The bytes of the member ``name`` of ``bundle``, a regular file no larger than a header
    may be, or None when the bundle holds no such member."""
    try:
        with open_tar(bundle) as (tar, _):
            for member in tar:
                if member.name == name and member.isfile() and member.size <= MAX_HEADER:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    return handle.read()
    except read_errors() as exc:
        raise damaged(bundle, [bundle], exc) from exc
    return None


def base_of(since: Path) -> Manifest:
    """The manifest an update is made against: of a bundle, a manifest file or a wheelhouse."""
    if since.is_dir():
        return read_house(since)
    if since.name.endswith(".json") and since.is_file():
        try:
            text = since.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidBundleError(f"cannot read {str(since)!r}: {exc.strerror}") from exc
        return Manifest.from_json(text, source=since)
    wanted = f"{HOUSE_DIR}/{MANIFEST_NAME}"
    data = read_header(since, wanted)
    if data is not None:
        return Manifest.from_json(data.decode("utf-8"), source=since)
    raise InvalidBundleError(
        f"{str(since)!r} holds no {wanted}: it is not a wheelhouse bundle",
        hint="give --since an older bundle, its wheelhouse.json, or the old wheelhouse directory",
    )


def parse_sums(bundle: Path, data: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not match or match.group(2) in sums or match.group(2) in (SUMS_NAME,):
            raise TamperedError(
                f"line {number} of {SUMS_NAME} in the bundle {str(bundle)!r} is not a unique "
                "'SHA256  NAME' line; nothing was written",
                hint=Hint.RECOPY_BUNDLE,
            )
        sums[match.group(2)] = match.group(1)
    return sums
