"""What a wheelhouse directory holds, by name, and the one way to open one.

Beside its distributions a wheelhouse holds files written from its manifest: the manifest
itself, the locks (:func:`lock_names`), the PEP 503/691 index under ``simple/`` with each
wheel's ``.metadata``; what it carries for use across the gap (the OSV snapshot, the trust
root, each file's provenance: :data:`~wheelhouse.house.manifest.CARRIED_FILES`); and what a
user put there (:func:`added_files`). Build, merge, mirror, verify,
pack and publish ask this module which names are which.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from wheelhouse.errors import InvalidWheelhouseError
from wheelhouse.house.index import index_files
from wheelhouse.house.manifest import (
    CARRIED_FILES,
    MANIFEST_NAME,
    MIRROR_STATE_DIR,
    PROVENANCE_SUFFIX,
    Manifest,
    TargetLock,
    looks_like_distribution,
    read_manifest,
)

__all__ = [
    "PYLOCK_NAME",
    "REQUIREMENTS_NAME",
    "AddedFiles",
    "Writer",
    "added_files",
    "generated_names",
    "is_carried",
    "lock_names",
    "open_wheelhouse",
    "requirements_filename",
    "writers",
]

REQUIREMENTS_NAME = "requirements.txt"
PYLOCK_NAME = "pylock.toml"

# Writes files of a wheelhouse from its manifest into a (staging) wheelhouse directory.
Writer = Callable[[Path, Manifest], object]


def requirements_filename(lock: TargetLock, manifest: Manifest) -> str:
    """``requirements.txt`` for a single-target wheelhouse, else ``requirements.<TAG>.txt``."""
    return REQUIREMENTS_NAME if len(manifest.locks) == 1 else _of_target(lock)


def _of_target(lock: TargetLock) -> str:
    return f"requirements.{lock.target}.txt"


def lock_names(manifest: Manifest, *, both_forms: bool = False) -> tuple[str, ...]:
    """The lock files a wheelhouse of ``manifest`` holds: one requirements file per target and
    ``pylock.toml``. Any other ``requirements.*.txt`` beside them is no lock of ours.

    With ``both_forms``, each target's requirements file under either name (as the number of
    targets decides it): what an earlier build of these targets may have written.
    """
    names = [requirements_filename(lock, manifest) for lock in manifest.locks]
    if both_forms:
        names = [REQUIREMENTS_NAME, *(_of_target(lock) for lock in manifest.locks)]
    return (*names, PYLOCK_NAME)


def generated_names(manifest: Manifest) -> set[str]:
    """Top-level entries of a wheelhouse of ``manifest`` that wheelhouse itself writes."""
    names = {MANIFEST_NAME, *lock_names(manifest, both_forms=True)}
    names.update(record.filename for record in manifest.files)
    names.update(path.split("/", 1)[0] for path in index_files(manifest))
    return names


def writers(*, verify_index: bool) -> list[Writer]:
    """What writes the files a wheelhouse holds beside its distributions and manifest: the
    requirements files, the index (``verify_index``: hash the staged copies again) and
    ``pylock.toml``. Build and merge stage a wheelhouse with these."""
    # Imported here: export and pylock import this module for the names.
    from wheelhouse.house.export import write_requirements
    from wheelhouse.house.index import write_index
    from wheelhouse.house.pylock import write_pylock

    return [
        write_requirements,
        partial(write_index, verify=verify_index, staged=True),
        write_pylock,
    ]


def open_wheelhouse(directory: Path) -> Manifest:
    """The manifest of the wheelhouse in ``directory``; InvalidWheelhouseError, with the one
    message every command gives, when ``directory`` is none."""
    if not directory.is_dir():
        raise InvalidWheelhouseError(
            f"the wheelhouse {str(directory)!r} does not exist or is not a directory",
            hint="pass the directory 'wheelhouse build' wrote, or set WHEELHOUSE_DIR",
        )
    manifest = read_manifest(directory)
    if manifest is None:
        raise InvalidWheelhouseError(
            f"{str(directory)!r} is not a wheelhouse (it has no {MANIFEST_NAME})",
            hint="pass the directory that 'wheelhouse build' wrote, or build one with "
            "'wheelhouse build -r requirements.txt -o DIR'",
        )
    return manifest


@dataclass(frozen=True)
class AddedFiles:
    """What is in a wheelhouse directory that neither its manifest records nor wheelhouse
    writes from it, relative and POSIX-style (an empty directory ends with ``/``).

    The one rule for files a user added, which verify, pack and publish all follow: notes of
    the user's own (a README, an empty directory) are kept where they are, never packed nor
    published, and are no problem; a file that looks like a distribution is one, since pip
    or uv could install it from ``--find-links`` while no manifest vouches for it. What the
    wheelhouse carries (``carried``: see :data:`CARRIED_FILES`, and the provenance of a
    recorded file) is no user's file: it is packed and kept like the files. A carried name
    that is a link or not a regular file is a note, never carried.
    """

    notes: tuple[str, ...]
    distributions: tuple[str, ...]
    carried: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        """Everything a user added (the carried files are not)."""
        return tuple(sorted((*self.notes, *self.distributions)))


def is_carried(path: str, recorded: Collection[str]) -> bool:
    """Whether ``path`` (relative, POSIX-style) names what a wheelhouse carries: a file of
    :data:`CARRIED_FILES`, or ``<filename>.provenance`` of a file in ``recorded``."""
    if path in CARRIED_FILES:
        return True
    stem = path.removesuffix(PROVENANCE_SUFFIX)
    return stem != path and "/" not in path and stem in recorded


def added_files(directory: Path, manifest: Manifest) -> AddedFiles:
    """The files a user added to the wheelhouse in ``directory``; see :class:`AddedFiles`."""
    recorded = {r.filename for r in manifest.files}
    # Exact names, not patterns: a stray requirements.foo.txt is the user's, not a lock.
    ours = generated_names(manifest)
    found: list[str] = []
    carried: list[str] = []
    for root, dirs, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        if relative == Path():
            dirs[:] = [d for d in dirs if d not in ours and d != MIRROR_STATE_DIR]
        for name in files:
            path = (relative / name).as_posix()
            if relative == Path() and name in ours:
                continue
            if is_carried(path, recorded) and _regular(Path(root) / name):
                carried.append(path)
                continue
            found.append(path)
        # A directory that is not ours, even an empty one, is still worth naming.
        if not files and not dirs and relative != Path():
            found.append(relative.as_posix() + "/")
    found.sort()
    return AddedFiles(
        notes=tuple(f for f in found if not looks_like_distribution(f)),
        distributions=tuple(f for f in found if looks_like_distribution(f)),
        carried=tuple(sorted(carried)),
    )


def _regular(path: Path) -> bool:
    # Carried files are read and packed: never through a link, never a FIFO or a device.
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False
