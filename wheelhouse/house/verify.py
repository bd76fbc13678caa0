"""Check a wheelhouse against its manifest: every file's size and sha256, every lock entry's files,
the OSV snapshot it carries against its recorded sha256, and any distribution that nobody
recorded (a user's own notes are named, and are no problem)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wheelhouse._base.files import sha256_stream
from wheelhouse.errors import Hint, InvalidWheelhouseError, WheelhouseError
from wheelhouse.house.contents import added_files, open_wheelhouse
from wheelhouse.house.manifest import (
    GENERATOR,
    OSV_SNAPSHOT,
    OSV_SNAPSHOT_INFO,
    FileRecord,
    Manifest,
    Sha256,
    looks_like_distribution,
)

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "FileCheck",
    "FileStatus",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "carried_problems",
    "verify",
]

REPORT_SCHEMA_VERSION = 1

FileStatus = Literal["ok", "missing", "hash-mismatch", "size-mismatch"]
ProblemKind = Literal[
    "missing",
    "hash-mismatch",
    "size-mismatch",
    "lock-entry-without-file",
    "unrecorded-file",
    "generated-file-mismatch",
    "osv-snapshot-mismatch",
]

_PROBLEM_OF_STATUS: dict[FileStatus, ProblemKind] = {
    "missing": "missing",
    "hash-mismatch": "hash-mismatch",
    "size-mismatch": "size-mismatch",
}


@dataclass(frozen=True)
class FileCheck:
    """The result of checking one recorded file."""

    filename: str
    status: FileStatus
    sha256: Sha256
    size: int
    actual_sha256: str | None = None
    actual_size: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Problem:
    """One thing that does not hold, with a sentence for a user."""

    kind: ProblemKind
    filename: str
    message: str
    target: str | None = None
    name: str | None = None
    version: str | None = None

    @property
    def is_distribution(self) -> bool:
        """Whether the file is something an installer could pick up from ``--find-links``."""
        return looks_like_distribution(self.filename)


@dataclass(frozen=True)
class VerifyReport:
    """Everything ``verify`` found in one wheelhouse."""

    directory: Path
    manifest: Manifest
    files: tuple[FileCheck, ...]
    lock_problems: tuple[Problem, ...]
    unrecorded: tuple[str, ...]  # everything the manifest does not account for
    generated_problems: tuple[Problem, ...] = ()
    # What the wheelhouse carries beside its files (the OSV snapshot, provenance, trust root).
    carried: tuple[str, ...] = ()
    carried_problems: tuple[Problem, ...] = ()

    @property
    def user_files(self) -> tuple[str, ...]:
        """Files a user added that no installer would pick up: named, and no problem."""
        return tuple(name for name in self.unrecorded if not looks_like_distribution(name))

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> tuple[Problem, ...]:
        found = [_file_problem(check) for check in self.files if not check.ok]
        found += self.lock_problems
        found += self.generated_problems
        found += self.carried_problems
        found += [
            Problem(
                kind="unrecorded-file",
                filename=name,
                message=f"{name!r} is in the wheelhouse but not in its manifest",
            )
            for name in self.unrecorded
            if looks_like_distribution(name)
        ]
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        """A versioned, JSON-ready dict (``wheelhouse verify --json``)."""
        # "user-files" only when there are some: the report of a plain wheelhouse reads as before.
        user = {"user-files": list(self.user_files)} if self.user_files else {}
        if self.carried:
            user["carried-files"] = list(self.carried)
        return {
            "schema-version": REPORT_SCHEMA_VERSION,
            "directory": str(self.directory),
            "ok": self.ok,
            "files": [
                {
                    "filename": c.filename,
                    "status": c.status,
                    "sha256": c.sha256,
                    "size": c.size,
                    "actual-sha256": c.actual_sha256,
                    "actual-size": c.actual_size,
                }
                for c in self.files
            ],
            "problems": [
                {
                    "kind": p.kind,
                    "filename": p.filename,
                    "message": p.message,
                    "target": p.target,
                    "name": p.name,
                    "version": p.version,
                }
                for p in self.problems
            ],
            **user,
        }


def verify(
    directory: Path,
    *,
    jobs: int | None = None,
    generated: bool = True,
    known: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Recompute every recorded file's size and sha256; compare the wheelhouse to its manifest.

    With ``generated``, the files written from the manifest are checked too: each wheel's PEP
    658 ``.metadata`` file, and (for a wheelhouse this version wrote) the index pages, the
    requirements files and pylock.toml, which clients trust for hashes and dependencies; and
    the OSV snapshot the wheelhouse carries, against the sha256 recorded when it was fetched.

    ``known`` maps file names to the sha256 the caller has just computed while writing those
    very files (``unpack`` hashes every member as it extracts it): they are compared with the
    manifest without being read again; their sizes are still checked on disk.
    """
    manifest = open_wheelhouse(directory)
    for record in manifest.files:
        _check_filename(directory, record.filename)
    workers = jobs or min(8, (os.cpu_count() or 1) + 2)
    digests = known or {}

    def check(record: FileRecord) -> FileCheck:
        return _check_file(directory, record, digests.get(record.filename))

    unknown = [r for r in manifest.files if r.filename not in digests]
    if len(unknown) < 2:
        checks = [check(r) for r in manifest.files]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            checks = list(pool.map(check, manifest.files))
    lock_problems = _lock_problems(manifest)
    # The generated files are rendered from the recorded files and locks: only once those hold.
    rendered = generated and not lock_problems and all(check.ok for check in checks)
    added = added_files(directory, manifest)
    return VerifyReport(
        directory=directory,
        manifest=manifest,
        files=tuple(checks),
        lock_problems=lock_problems,
        unrecorded=added.all,
        generated_problems=_generated_problems(directory, manifest) if rendered else (),
        carried=added.carried,
        # An install reads neither the index nor the snapshot: it does not pay for hashing it.
        carried_problems=carried_problems(directory, added.carried) if generated else (),
    )


def carried_problems(directory: Path, carried: tuple[str, ...]) -> tuple[Problem, ...]:
    """What is wrong with what ``directory`` carries (``carried``, from ``added_files``): the
    OSV snapshot against the sha256 its info recorded when it was fetched."""
    if OSV_SNAPSHOT_INFO not in carried:
        return ()  # no info (or no snapshot): `audit` has nothing to compare either
    # Imported here: only a wheelhouse that carries a snapshot pays for it.
    from wheelhouse.audit.fetch import read_info

    def problem(message: str) -> tuple[Problem, ...]:
        return (Problem("osv-snapshot-mismatch", OSV_SNAPSHOT, message),)

    try:
        info = read_info(directory / OSV_SNAPSHOT)
    except WheelhouseError as exc:
        return problem(exc.message)
    if info is None:  # removed since the walk
        return ()
    if OSV_SNAPSHOT not in carried:
        return problem(
            f"{OSV_SNAPSHOT_INFO!r} records an OSV snapshot of sha256 {info.sha256}, but "
            f"{OSV_SNAPSHOT!r} is missing"
        )
    path = directory / OSV_SNAPSHOT
    try:
        with path.open("rb") as handle:
            actual = sha256_stream(handle)[0]
    except OSError as exc:
        return problem(f"cannot read {OSV_SNAPSHOT!r} to check it: {exc.strerror or exc}")
    if actual != info.sha256.lower():
        return problem(
            f"{OSV_SNAPSHOT!r} has sha256 {actual}, {OSV_SNAPSHOT_INFO!r} records "
            f"{info.sha256}: the snapshot was changed after it was fetched"
        )
    return ()


def _generated_problems(directory: Path, manifest: Manifest) -> tuple[Problem, ...]:
    # Imported here: `wheelhouse install` verifies without them, and pays for no import.
    from wheelhouse.errors import WheelhouseError
    from wheelhouse.house.export import render_requirements, requirements_filename
    from wheelhouse.house.index import INDEX_DIR, METADATA_SUFFIX, render_index
    from wheelhouse.house.pylock import PYLOCK_NAME, render_pylock

    try:
        expected = render_index(directory, manifest, verify=False)
    except WheelhouseError as exc:
        return (Problem("generated-file-mismatch", "", exc.message),)
    if manifest.generator != GENERATOR:
        # Another version may lay pages out otherwise; a wheel's metadata is the same bytes.
        expected = {k: v for k, v in expected.items() if k.endswith(METADATA_SUFFIX)}
    else:
        for lock in manifest.locks:
            expected[requirements_filename(lock, manifest)] = render_requirements(
                manifest, lock
            ).encode()
        expected[PYLOCK_NAME] = render_pylock(manifest).encode()
    found: list[Problem] = []
    # Pages written before a file's provenance was placed beside it do not link it: as good.
    unlinked: dict[str, bytes] | None = None
    for relative, data in expected.items():
        try:
            present = (directory / relative).read_bytes()
            same = present == data
            why = "does not match what the manifest and the wheels give"
        except OSError:
            same, why = False, "is missing"
        if not same and why != "is missing" and relative.startswith(f"{INDEX_DIR}/"):
            if unlinked is None:
                unlinked = render_index(directory, manifest, verify=False, provenance=False)
            same = unlinked.get(relative) == present
        if same:
            continue
        in_index = relative.endswith(METADATA_SUFFIX) or "/" in relative
        if in_index:
            message = f"{relative!r} {why}; 'wheelhouse index' rewrites the index"
        else:  # a requirements file or pylock.toml
            message = f"{relative!r} {why}: it was changed after the wheelhouse was built"
        found.append(Problem("generated-file-mismatch", relative, message))
    return tuple(found)


def _check_filename(directory: Path, filename: str) -> None:
    # A manifest naming '../x' or 'a/b' would make us read (and pip install) outside the wheelhouse.
    if (
        not filename
        or filename in {".", ".."}
        or Path(filename).name != filename
        or "\\" in filename
    ):
        raise InvalidWheelhouseError(
            f"the manifest of {str(directory)!r} records an unsafe file name {filename!r}",
            hint=Hint.REBUILD,
        )


def _check_file(directory: Path, record: FileRecord, known: str | None = None) -> FileCheck:
    path = directory / record.filename
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != record.size:
                return FileCheck(
                    record.filename, "size-mismatch", record.sha256, record.size, None, size
                )
            actual = known.lower() if known is not None else sha256_stream(handle)[0]
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return FileCheck(record.filename, "missing", record.sha256, record.size)
    except OSError as exc:
        # Not a verdict on the file (a symlink loop, a permission, an I/O error): say so.
        raise WheelhouseError(
            f"cannot read {str(path)!r} to check it: {exc.strerror or exc}",
            hint="make the file readable (or remove it and rebuild the wheelhouse)",
        ) from exc
    status: FileStatus = "ok" if actual == record.sha256.lower() else "hash-mismatch"
    return FileCheck(record.filename, status, record.sha256, record.size, actual, size)


def _file_problem(check: FileCheck) -> Problem:
    name = check.filename
    if check.status == "missing":
        message = f"{name!r} is recorded in the manifest but missing from the wheelhouse"
    elif check.status == "size-mismatch":
        message = (
            f"{name!r} has {check.actual_size} bytes, the manifest records {check.size}: "
            "the file was changed after the wheelhouse was built"
        )
    else:
        message = (
            f"{name!r} has sha256 {check.actual_sha256}, the manifest records {check.sha256}: "
            "the file was changed after the wheelhouse was built"
        )
    return Problem(kind=_PROBLEM_OF_STATUS[check.status], filename=name, message=message)


def _lock_problems(manifest: Manifest) -> tuple[Problem, ...]:
    recorded = {r.filename for r in manifest.files}
    found: list[Problem] = []
    for lock in manifest.locks:
        for entry in lock.entries:
            where = f"{entry.name} {entry.version} (target {lock.target!r})"
            if not entry.filenames:
                found.append(
                    Problem(
                        kind="lock-entry-without-file",
                        filename="",
                        message=f"the lock entry {where} lists no file that installs it",
                        target=lock.target,
                        name=entry.name,
                        version=entry.version,
                    )
                )
            for filename in entry.filenames:
                if filename not in recorded:
                    found.append(
                        Problem(
                            kind="lock-entry-without-file",
                            filename=filename,
                            message=f"the lock entry {where} names {filename!r}, "
                            "which the manifest does not record",
                            target=lock.target,
                            name=entry.name,
                            version=entry.version,
                        )
                    )
    return tuple(found)
