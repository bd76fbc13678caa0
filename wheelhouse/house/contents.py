"""What a wheelhouse directory holds, by name, and the one way to open one.

Beside its distributions a wheelhouse holds files written from its manifest: the manifest
itself, the locks (:func:`lock_names`), the PEP 503/691 index under ``simple/`` with each
wheel's ``.metadata``; what it carries for use across the gap (the OSV snapshot, the trust
root, each file's provenance: :data:`~wheelhouse.house.manifest.CARRIED_FILES`); and what a
user put there (:func:`~wheelhouse.house.manifest.added_files`). Build, merge, mirror, verify,
pack and publish ask this module which names are which.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from wheelhouse.errors import InvalidWheelhouseError
from wheelhouse.house.index import index_files
from wheelhouse.house.manifest import MANIFEST_NAME, Manifest, TargetLock, read_manifest

__all__ = [
    "PYLOCK_NAME",
    "REQUIREMENTS_NAME",
    "Writer",
    "generated_names",
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
            f"{str(directory)!r} is not a wheelhouse: it has no {MANIFEST_NAME}",
            hint="pass the directory that 'wheelhouse build' wrote, or build one with it",
        )
    return manifest
