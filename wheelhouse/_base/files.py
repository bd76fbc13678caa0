"""Files on disk: atomic writes and streaming sha256; one helper each, used everywhere."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_writer",
    "commit_soon",
    "sha256_file",
    "sha256_stream",
    "write_atomic",
    "write_new",
]


def write_atomic(path: Path, data: bytes, *, fsync: bool = False, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename.

    A reader sees the old bytes or the new ones, never a part; ``fsync`` makes the new bytes
    durable before the rename (for what a crash must not lose, such as a manifest).
    """
    with atomic_writer(path, fsync=fsync, mode=mode) as handle:
        handle.write(data)


def commit_soon(directory: Path) -> None:
    """Start making what was written in ``directory`` durable, in a background thread.

    An fsync waits for its file system's journal to commit every change since the last
    commit: after a build's downloads, 0.04-0.05 s here, which the manifest's fsync paid at
    the very end. Started as soon as the downloads are done, that commit runs while the files
    are checked and copied. Nothing waits for it, and a failure changes nothing.
    """

    def commit() -> None:
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    threading.Thread(target=commit, name="commit soon", daemon=True).start()


def write_new(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` (and its parent directories) holding ``data``; fail if it exists.

    For a directory no reader sees until it is complete (a wheelhouse being staged): there a
    temporary name and a rename protect nobody, and cost a fifth of a millisecond a file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    # The directory is made only when it is missing: an index writes two or three files in
    # each, and asking first cost two more system calls (and an exception) a file.
    try:
        fd = os.open(path, flags, mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # what the umask took away: others read what we publish
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, fsync: bool = False, mode: int = 0o644) -> Iterator[BinaryIO]:
    """:func:`write_atomic` for bytes that come in pieces: ``path`` appears, whole, when the
    block ends normally; an exception leaves ``path`` as it was."""
    # os.urandom, not uuid: importing uuid pulls in platform, a cost on every command.
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with tmp.open("wb") as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        # Files we publish are read by web servers and other users, whatever our umask.
        tmp.chmod(mode)
        os.replace(tmp, path)
    except BaseException:
        # Only then: once renamed, the temporary name is gone (unlinking it anyway was one
        # more system call per write, and the proxy writes 160 files in a cold uv run).
        tmp.unlink(missing_ok=True)
        raise


def sha256_stream(stream: io.BufferedIOBase) -> tuple[str, int]:
    """The sha256 hex digest and the size of what ``stream`` holds from where it stands."""
    start = stream.tell()
    digest = hashlib.file_digest(stream, "sha256")
    return digest.hexdigest(), stream.tell() - start


def sha256_file(path: Path) -> tuple[str, int]:
    """The sha256 hex digest and the size of the file at ``path``."""
    with path.open("rb") as stream:
        return sha256_stream(stream)
