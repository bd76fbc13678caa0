"""files: writes that a reader never sees half done, and commits started early."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from wheelhouse._base import files


def test_commit_soon_fsyncs_the_directory_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    done = threading.Event()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)
        done.set()

    monkeypatch.setattr(files.os, "fsync", fsync)
    files.commit_soon(tmp_path)
    assert done.wait(timeout=30)
    assert synced == [str(tmp_path)]

    # A directory that is not there changes nothing and raises nothing.
    done.clear()
    files.commit_soon(tmp_path / "missing")
    assert not done.wait(timeout=0.5)
    assert synced == [str(tmp_path)]


def test_write_new_makes_missing_directories_and_never_replaces_a_file(tmp_path: Path) -> None:
    deep = tmp_path / "simple" / "demo" / "index.html"
    files.write_new(deep, b"one")
    files.write_new(deep.with_name("index.json"), b"two")  # its directory is there now
    assert deep.read_bytes() == b"one"
    assert oct(deep.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(FileExistsError):
        files.write_new(deep, b"three")
    assert deep.read_bytes() == b"one"
