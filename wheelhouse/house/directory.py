"""The on-disk wheelhouse: checked, locked, assembled beside its place and swapped in whole."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from wheelhouse._base.files import write_atomic
from wheelhouse.errors import Hint, OutputDirError
from wheelhouse.house.contents import Writer, added_files, generated_names
from wheelhouse.house.manifest import (
    CARRIED_FILES,
    MANIFEST_NAME,
    PROVENANCE_SUFFIX,
    Manifest,
    read_manifest,
)

__all__ = [
    "Writer",
    "check_output_dir",
    "kept_carried",
    "locked",
    "put_in_place",
    "scratch_beside",
]

logger = logging.getLogger(__name__)


def check_output_dir(out: Path) -> None:
    """Refuse, before any work, an output path that is not ours to write."""
    if out.exists() and not out.is_dir():
        raise OutputDirError(
            f"output {str(out)!r} exists and is not a directory",
            path=out,
            hint=Hint.ANOTHER_OUTPUT,
        )
    if out.is_dir() and not (out / MANIFEST_NAME).is_file() and any(out.iterdir()):
        raise OutputDirError(
            f"output directory {str(out)!r} is not empty and is not a wheelhouse "
            f"(it has no {MANIFEST_NAME}); refusing to write into it",
            path=out,
            hint="choose an empty or new directory with -o",
        )
    parent = out.parent
    # A file where a directory of the path should be: say which, not mkdir's "File exists".
    blocking = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise OutputDirError(
            f"cannot create {str(out)!r}: {str(blocking)!r} is a file, not a directory",
            path=out,
            hint=Hint.ANOTHER_OUTPUT,
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot create {str(parent)!r}: {exc.strerror}",
            path=out,
            hint=Hint.WRITABLE_OUTPUT,
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK) or (
        out.is_dir() and not os.access(out, os.W_OK | os.X_OK)
    ):
        raise OutputDirError(
            f"cannot write to {str(out)!r} (permission denied)",
            path=out,
            hint=Hint.WRITABLE_OUTPUT,
        )


@contextlib.contextmanager
def locked(out: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the wheelhouse's lock: a second build into the same place waits, and says so.

    The lock file ``.<out>.lock`` beside ``out`` exists only while a run holds it: the holder
    removes it before letting go, so nothing is left beside ``-o`` once the run ends.
    """
    path = out.parent / f".{out.name}.lock"
    if sys.platform == "win32":  # filelock's Windows lock already removes its file on release
        import filelock  # here: its import is 7 ms of every build's start elsewhere

        lock = filelock.FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if on_wait:
                on_wait(f"waiting for another wheelhouse run on {str(out)!r} to finish")
            lock.acquire()
        try:
            _recover(out)
            yield
        finally:
            lock.release()
        return
    fd = _acquire(path, out, on_wait)
    try:
        _recover(out)
        yield
    finally:
        # Removed while still held: a run waiting on this file finds it gone once it gets the
        # lock, and starts again on a new one (see _acquire), so two runs never both hold it.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _acquire(path: Path, out: Path, on_wait: Callable[[str], None] | None) -> int:
    """An open descriptor holding an exclusive flock on the file that ``path`` names now."""
    import fcntl  # POSIX only, like this path

    said = False
    while True:
        try:
            # Not through a link someone else planted beside the output directory.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputDirError(
                f"cannot write next to {str(out)!r}: {exc.strerror}",
                path=out,
                hint=Hint.WRITABLE_OUTPUT,
            ) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait and not said:
                    on_wait(f"waiting for another wheelhouse run on {str(out)!r} to finish")
                    said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            # The run before us removed the file on its way out: a lock on a name no longer
            # there excludes nobody.
            if current is not None and os.path.samestat(os.fstat(fd), current):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


# Held inside a scratch directory while its run lives: the kernel lets go of it when the run
# is killed, which is how a later run tells a leftover from a directory still in use.
_IN_USE = ".in-use"


@contextlib.contextmanager
def scratch_beside(out: Path, purpose: str, parent: Path | None = None) -> Iterator[Path]:
    """A scratch directory ``.<out>.<purpose>-*`` in ``parent`` (``out``'s parent by default),
    removed on return; one a killed run left is removed by the next run on ``out``."""
    where = parent if parent is not None else out.parent
    # Made under a name the sweep does not match, and renamed once it is held: a sweep can
    # never catch it between its creation and its lock.
    making = Path(tempfile.mkdtemp(prefix=f".{out.name}.{purpose}_", dir=where))
    import filelock  # only unpack makes scratch directories: builds do not load it

    in_use = filelock.FileLock(str(making / _IN_USE))
    scratch = making
    try:
        in_use.acquire(timeout=0)
        held = making.with_name(making.name.replace(f".{purpose}_", f".{purpose}-", 1))
        os.rename(making, held)
        scratch = held
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        in_use.release()


def _remove_if_unused(scratch: Path) -> None:
    import filelock

    in_use = filelock.FileLock(str(scratch / _IN_USE))
    try:
        in_use.acquire(timeout=0)
    except (filelock.Timeout, OSError):
        return  # another run is working in it
    try:
        logger.info("removing %s, left by an interrupted run", scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        in_use.release()


def put_in_place(
    out: Path,
    manifest: Manifest,
    sources: Mapping[str, Path],
    writers: Sequence[Writer] = (),
    *,
    link: bool = False,
    carried: Mapping[str, Path] | None = None,
) -> None:
    """Make ``out`` hold exactly ``manifest``'s files, atomically.

    The new wheelhouse is assembled in a sibling directory and exchanged with ``out`` in one
    rename, so readers see the old or the new one, never a mix. Files in ``out`` that an
    earlier build did not write are carried over untouched, and so is what the wheelhouse
    carries (see :func:`kept_carried`) where the new one does not bring its own. With ``link``,
    ``sources`` are hard-linked where the file system allows (a caller's own scratch copies,
    already checked). ``carried`` (relative path -> file) is what the new wheelhouse brings
    of its own beside its files (a file's fetched ``.provenance``); it and what is kept are in
    place before the ``writers`` run, so the index links a file's provenance.
    """
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        for record in manifest.files:
            if link:
                _link_or_copy(str(sources[record.filename]), str(staging / record.filename))
            else:
                shutil.copyfile(sources[record.filename], staging / record.filename)
        for relative, source in (carried or {}).items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / relative)
        old = read_manifest(out) if out.is_dir() else None
        # The files' kept provenance before the writers, so that the index links it; the
        # carried trees (osv/, sigstore/) after, as a writer (unpack's) may bring its own.
        _carry_kept(out, staging, old, manifest, beside_files=True)
        for writer in writers:
            writer(staging, manifest)
        dropped = _carry_kept(out, staging, old, manifest, beside_files=False)
        _carry_over_foreign(out, staging, old, manifest, dropped)
        write_atomic(staging / MANIFEST_NAME, manifest.to_json().encode("utf-8"), fsync=True)
        _fsync_dir(staging)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def kept_carried(directory: Path, old: Manifest, new: Manifest) -> tuple[tuple[str, ...], ...]:
    """What the wheelhouse in ``directory`` (of manifest ``old``) carries that a wheelhouse of
    manifest ``new`` keeps, and what it drops: ``(kept, dropped)``, relative POSIX paths.

    The OSV snapshot and the trust root are kept. A file's provenance is kept while ``new``
    records the same file (name and sha256): the provenance of a file the new wheelhouse no
    longer has, or has other bytes of, would prove nothing, and is dropped.
    """
    was = {r.filename: r.sha256 for r in old.files}
    now = {r.filename: r.sha256 for r in new.files}
    kept: list[str] = []
    dropped: list[str] = []
    for path in added_files(directory, old).carried:
        stem = path.removesuffix(PROVENANCE_SUFFIX)
        if path in CARRIED_FILES or (stem in now and now[stem] == was.get(stem)):
            kept.append(path)
        else:
            dropped.append(path)
    return tuple(kept), tuple(dropped)


def _carry_kept(
    out: Path, staging: Path, old: Manifest | None, manifest: Manifest, *, beside_files: bool
) -> tuple[str, ...]:
    """Put what the wheelhouse carries and keeps (see :func:`kept_carried`) in ``staging``,
    where the new one does not bring its own: with ``beside_files`` only what lies beside the
    files (their provenance), else the rest too. What it drops is returned."""
    if old is None:
        return ()
    kept, dropped = kept_carried(out, old, manifest)
    if beside_files:
        kept = tuple(path for path in kept if "/" not in path)
    else:
        for path in dropped:
            logger.info("dropping %s: the new wheelhouse does not have the file it is about", path)
    for path in kept:
        # File by file: a bundle or a build that brings osv/ or sigstore/ of its own may
        # bring only some of it.
        if (staging / path).exists():
            continue
        (staging / path).parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(str(out / path), str(staging / path))
    return dropped


def _carry_over_foreign(
    out: Path, staging: Path, old: Manifest | None, manifest: Manifest, dropped: Sequence[str]
) -> None:
    if old is None:
        return
    ours = generated_names(old)
    ours.update(dropped)
    kept, _ = kept_carried(out, old, manifest)
    carried_trees = {path.split("/", 1)[0] for path in kept if "/" in path}
    for entry in out.iterdir():
        if entry.name in ours or (staging / entry.name).exists():
            if entry.name in carried_trees and entry.is_dir() and not entry.is_symlink():
                _carry_notes(entry, staging / entry.name)
            continue
        logger.info("keeping %s, which wheelhouse did not write", entry.name)
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, staging / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(staging / entry.name))


def _carry_notes(tree: Path, into: Path) -> None:
    """A user's own files in a carried tree (``osv/``) are kept, like any other note."""
    for root, _, files in os.walk(tree):
        for name in files:
            source = Path(root) / name
            target = into / source.relative_to(tree)
            if not target.exists() and not target.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(str(source), str(target))


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)
    return dst


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)
        return
    # No atomic exchange here: move the old one aside first; _recover() puts it back if we
    # are killed between the two renames.
    aside = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
    os.rename(out, aside)
    os.rename(staging, out)
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


_RENAMEAT2: list[object] = []


def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    if not _RENAMEAT2:
        function = None
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            function = getattr(libc, "renameat2", None)
            if function is not None:
                function.argtypes = [
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_uint,
                ]
                function.restype = ctypes.c_int
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]  # type: ignore[return-value]


def _recover(out: Path) -> None:
    """Undo what an interrupted run left beside ``out`` (only entries wheelhouse names)."""
    parent = out.parent
    if not parent.is_dir():
        return
    asides = sorted(parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if asides and not out.exists():
        logger.warning("restoring %s from an interrupted run", out)
        os.rename(asides.pop(), out)
    for leftover in [*asides, *parent.glob(f".{out.name}.staging-*")]:
        shutil.rmtree(leftover, ignore_errors=True)
    for scratch in parent.glob(f".{out.name}.*-*"):
        if scratch.is_dir() and (scratch / _IN_USE).exists():
            _remove_if_unused(scratch)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
