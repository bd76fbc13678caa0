"""Files as a test sees them: their sha256, their bytes under a folder, a byte flipped."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from wheelhouse.house.manifest import Sha256


def sha256_of(source: Path | bytes) -> Sha256:
    """The sha256 hex digest of a file's bytes, or of ``source`` itself when it is bytes."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    return Sha256(hashlib.sha256(data).hexdigest())


def snapshot(
    root: Path, *, leave_out: Iterable[Path | str] = (), dirs: bool = False
) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> bytes), compared before and after.

    ``leave_out`` names what is not compared: a Path, that entry and what is under it; a str,
    every entry with a part of that name (``".mirror"``, ``".upload.lock"``). With ``dirs``,
    each folder is listed too, as ``"path/": b""``.
    """
    paths = [p for p in leave_out if isinstance(p, Path)]
    names = {p for p in leave_out if isinstance(p, str)}
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if names.intersection(relative.parts) or any(p == path or p in path.parents for p in paths):
            continue
        if path.is_file():
            found[relative.as_posix()] = path.read_bytes()
        elif dirs:
            found[relative.as_posix() + "/"] = b""
    return found


# kind ("file", "dir", "link"), the bytes (a link's target), inode and mtime.
Entry = tuple[str, bytes, int, int]


def entries(root: Path) -> dict[str, Entry]:
    """Every entry under ``root`` with its identity: a rewrite (even of the same bytes) shows."""
    found: dict[str, Entry] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            kind, data = "dir", b""
        elif stat.S_ISLNK(info.st_mode):
            kind, data = "link", os.readlink(path).encode()
        else:
            kind, data = "file", path.read_bytes()
        found[path.relative_to(root).as_posix()] = (kind, data, info.st_ino, info.st_mtime_ns)
    return found


def flip_byte(path: Path, offset: int = 40) -> None:
    """Change one byte in place: same size, different sha256."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
