"""Writing a bundle: members hashed as they go, volumes of a size limit, temporary files
renamed into place, and what a killed pack left removed."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import tarfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from wheelhouse.errors import Hint, OutputDirError, TamperedError, UsageError
from wheelhouse.house.bundle.layout import MTIME, Compression, Member, Volume

logger = logging.getLogger(__name__)


class _HashingReader(io.RawIOBase):
    """Reads a file while hashing it, for members whose sha256 the manifest promises."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        return data


class _Sink(io.RawIOBase):
    """The output files: one, or volumes of ``split`` bytes, each hashed as it is written."""

    def __init__(self, output: Path, split: int | None) -> None:
        self._output = output
        self._split = split
        self._tag = uuid.uuid4().hex[:12]
        self.temps: list[tuple[Path, Path]] = []  # (temporary, final)
        self._held: list[int] = []  # a descriptor holding each temporary file's lock
        self.volumes: list[Volume] = []
        self._handle: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._written = 0

    def writable(self) -> bool:
        return True

    def _open_next(self) -> None:
        self._finish_volume()
        number = len(self.temps) + 1
        final = self._output if self._split is None else volume_path(self._output, number)
        temp = final.with_name(f".{final.name}.{self._tag}{_TEMP_SUFFIX}")
        self.temps.append((temp, final))
        self._handle = temp.open("xb")
        # Held until the rename: a later pack removes a temporary file nobody holds (the
        # leftover of a killed pack), never one a running pack writes.
        self._held.append(_hold(temp))
        self._digest = hashlib.sha256()
        self._written = 0

    def _finish_volume(self) -> None:
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        self.volumes.append(Volume(self.temps[-1][1], self._digest.hexdigest(), self._written))

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            if self._handle is None or (self._split and self._written >= self._split):
                self._open_next()
            assert self._handle is not None
            room = len(view) if not self._split else min(len(view), self._split - self._written)
            chunk = view[:room]
            self._handle.write(chunk)
            self._digest.update(chunk)
            self._written += room
            view = view[room:]
        return total

    def finish(self) -> None:
        if self._handle is None:
            self._open_next()
        self._finish_volume()

    def release(self) -> None:
        while self._held:
            fd = self._held.pop()
            if fd >= 0:
                os.close(fd)

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for temp, _ in self.temps:
            temp.unlink(missing_ok=True)
        self.release()


_TEMP_SUFFIX = ".tmp"


# A temporary file younger than this is never taken for a leftover: its pack may be between
# creating it and locking it.
_LEFTOVER_AGE = 2.0


def _hold(temp: Path) -> int:
    """A descriptor of ``temp`` holding an exclusive lock on it (-1 where there are no locks)."""
    try:
        import fcntl
    except ImportError:  # Windows: no leftovers are removed there
        return -1
    fd = os.open(temp, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _remove_leftovers(output: Path) -> None:
    """Remove the temporary files of a killed pack to ``output`` (or to its volumes): the
    names pack gives them, and only those no running pack holds."""
    try:
        import fcntl
    except ImportError:
        return
    name = re.escape(output.name)
    pattern = re.compile(rf"\.{name}(?:\.\d{{3}})?\.[0-9a-f]{{12}}{re.escape(_TEMP_SUFFIX)}")
    try:
        entries = list(os.scandir(output.parent))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < _LEFTOVER_AGE:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            logger.info("removing %s, left by a pack that was stopped", entry.path)
            os.unlink(entry.path)
        except OSError:
            continue  # held: a pack is writing it
        finally:
            os.close(fd)


def volume_path(output: Path, number: int) -> Path:
    return output.with_name(f"{output.name}.{number:03d}")


def write_bundle(
    output: Path, members: Sequence[Member], compression: Compression, split: int | None
) -> tuple[Volume, ...]:
    _check_bundle_output(output)
    _remove_leftovers(output)
    sink = _Sink(output, split)
    try:
        with (
            _compressor(sink, compression) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for member in members:
                _add(tar, member)
        sink.finish()
        for temp, final in sink.temps:
            temp.chmod(0o644)
            os.replace(temp, final)
        sink.release()
    except BaseException:
        sink.discard()
        raise
    if split is not None:
        # Volumes of an earlier, longer bundle of the same name would be read as part of this one.
        number = len(sink.temps) + 1
        while (stale := volume_path(output, number)).exists():
            logger.info("removing %s, a volume of an earlier bundle of that name", stale)
            stale.unlink()
            number += 1
    return tuple(sink.volumes)


def _check_bundle_output(output: Path) -> None:
    if output.is_dir():
        raise OutputDirError(
            f"output {str(output)!r} is a directory, not a bundle file",
            path=output,
            hint="give the bundle file to write with -o, e.g. -o wheelhouse.tar.gz",
        )
    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot create {str(parent)!r}: {exc.strerror}",
            path=output,
            hint=Hint.WRITABLE_OUTPUT,
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"cannot write to {str(parent)!r} (permission denied)",
            path=output,
            hint=Hint.WRITABLE_OUTPUT,
        )


@contextlib.contextmanager
def _compressor(sink: _Sink, compression: Compression) -> Iterator[IO[bytes]]:
    if compression == "none":
        yield sink  # type: ignore[misc]
    elif compression == "gzip":
        # No file name and time 0 in the header: the same members give the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6) as gz:
            yield gz  # type: ignore[misc]
    else:
        zstandard = load_zstandard()
        # Single-threaded: zstd's output differs between its one- and multi-threaded modes.
        # With the frame checksum, as the zstd tool writes it, so `zstd -t` can check a copy.
        compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with compressor.stream_writer(sink, closefd=False) as writer:
            yield writer


def load_zstandard() -> Any:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UsageError(
            "zstd bundles need the 'zstandard' package",
            hint="install it (pip install zstandard), or use .tar.gz",
        ) from exc
    return zstandard


def _add(tar: tarfile.TarFile, member: Member) -> None:
    info = tarfile.TarInfo(member.name)
    info.size = member.size
    info.mtime = MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if isinstance(member.source, bytes):
        tar.addfile(info, io.BytesIO(member.source))
        return
    with member.source.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size != member.size:
            raise TamperedError(
                f"{str(member.source)!r} changed size while it was packed; nothing was written",
                hint="pack again when nothing else writes the wheelhouse",
            )
        reader = _HashingReader(handle)
        tar.addfile(info, reader)
    if member.sha256 is not None and reader.digest.hexdigest() != member.sha256.lower():
        raise TamperedError(
            f"{str(member.source)!r} has sha256 {reader.digest.hexdigest()}, the manifest records "
            f"{member.sha256}; nothing was packed",
            hint=f"check the wheelhouse with 'wheelhouse verify {member.source.parent}'",
        )
