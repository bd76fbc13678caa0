"""``wheelhouse merge``: join wheelhouses built on different machines into one, all verified."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wheelhouse._base.progress import NullReporter, Reporter
from wheelhouse._base.targets import HOST, is_native, native_name
from wheelhouse._base.words import count
from wheelhouse.errors import (
    ConflictError,
    HashMismatchError,
    InvalidWheelhouseError,
    OutputDirError,
    TamperedError,
    UsageError,
)
from wheelhouse.house.contents import writers
from wheelhouse.house.directory import check_output_dir, locked, put_in_place
from wheelhouse.house.manifest import (
    GENERATOR,
    BuiltFrom,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    TargetLock,
)
from wheelhouse.house.verify import verify

__all__ = ["MERGED_FROM", "merge"]

logger = logging.getLogger(__name__)

# The key of ``Inputs.options`` that records what a merged wheelhouse was made of.
MERGED_FROM = "merged-from"

_FILE_PROBLEMS = ("missing", "hash-mismatch", "size-mismatch")
_SHOWN_DIFFERENCES = 3


@dataclass(frozen=True)
class _Source:
    """One verified input wheelhouse."""

    path: Path
    manifest: Manifest


def merge(sources: Sequence[Path], out: Path, *, reporter: Reporter | None = None) -> Manifest:
    """Write into ``out`` one wheelhouse holding every file and every target lock of ``sources``.

    Each source is verified against its manifest first. A file name shipped by two sources must
    be the same file (same sha256 and size), and a target locked by two sources must be locked
    the same way; otherwise nothing is written. ``out`` is published atomically like a build's
    output (files in it that wheelhouse did not write are kept), and may be one of the sources,
    which adds the other sources to it. Returns the new manifest.
    """
    report = reporter or NullReporter()
    out = out.absolute()
    paths = _check_arguments(sources, out)
    check_output_dir(out)
    with locked(out, on_wait=report.note):
        # Verified under the lock, so a source that is also ``out`` cannot change meanwhile.
        report.stage(f"verifying {count(len(paths), 'wheelhouse')}")
        verified = _name_native_locks([_verified(path) for path in paths])
        files, copy_from = _union_files(verified)
        manifest = Manifest(
            generator=GENERATOR,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            # No fingerprint: a later 'wheelhouse build' into ``out`` is never a no-op.
            inputs=Inputs(files=(), options={MERGED_FROM: [_provenance(s) for s in verified]}),
            files=tuple(sorted(files.values(), key=lambda r: (r.name, r.filename))),
            locks=tuple(sorted(_union_locks(verified).values(), key=lambda lock: lock.target)),
            build_locks=_union_build_locks(verified),
        )
        report.stage(f"writing {out}")
        # The index re-hashes the staged copies: the sources were verified, but a build
        # publishing into a source between that check and the copy would go unnoticed.
        put_in_place(out, manifest, copy_from, writers=writers(verify_index=True))
    logger.info("merged %s into %s", count(len(verified), "wheelhouse"), out)
    return manifest


def _check_arguments(sources: Sequence[Path], out: Path) -> list[Path]:
    if not sources:
        raise UsageError(
            "nothing to merge: name at least one wheelhouse",
            hint="wheelhouse merge DIR ... -o OUT",
        )
    paths: list[Path] = []
    seen: dict[Path, Path] = {}
    out_real = out.resolve()
    for given in sources:
        path = given.absolute()
        real = path.resolve()
        if real in seen:
            raise UsageError(
                f"the wheelhouse {str(real)!r} is named twice "
                f"(as {str(seen[real])!r} and {str(path)!r})",
                hint="name each wheelhouse once",
            )
        seen[real] = path
        if real != out_real and (real.is_relative_to(out_real) or out_real.is_relative_to(real)):
            raise OutputDirError(
                f"the output {str(out)!r} and the wheelhouse {str(path)!r} are inside one another",
                path=out,
                hint="choose an output directory outside every wheelhouse you merge",
            )
        paths.append(path)
    return paths


def _verified(path: Path) -> _Source:
    """The source's manifest, once every recorded file matches it."""
    # Raises InvalidWheelhouseError, naming it, if it is no wheelhouse. What is generated from
    # the manifest is not checked: the merge writes it all anew.
    result = verify(path, generated=False)
    broken = [p for p in result.problems if p.kind in _FILE_PROBLEMS]
    if broken:
        more = f" (and {len(broken) - 1} more problems)" if len(broken) > 1 else ""
        raise TamperedError(
            f"the wheelhouse {str(path)!r} does not match its manifest: {broken[0].message}{more}",
            hint=f"run 'wheelhouse verify {path}' for every problem, and rebuild that wheelhouse",
        )
    inconsistent = [p for p in result.problems if p.kind == "lock-entry-without-file"]
    if inconsistent:
        raise InvalidWheelhouseError(
            f"the manifest of {str(path)!r} is inconsistent: {inconsistent[0].message}",
            hint="rebuild that wheelhouse with 'wheelhouse build'",
        )
    if result.unrecorded:
        # Only recorded files are merged, so a stray file (notes, a hand-copied wheel) cannot
        # slip into the output; it stays where it is.
        logger.warning(
            "%s: not merging %d files its manifest does not record: %s",
            path,
            len(result.unrecorded),
            ", ".join(result.unrecorded),
        )
    return _Source(path, result.manifest)


def _union_files(sources: list[_Source]) -> tuple[dict[str, FileRecord], dict[str, Path]]:
    records: dict[str, FileRecord] = {}
    found_in: dict[str, Path] = {}
    for source in sources:
        for record in source.manifest.files:
            first = records.get(record.filename)
            if first is None:
                records[record.filename] = record
                found_in[record.filename] = source.path
            elif (first.sha256.lower(), first.size) != (record.sha256.lower(), record.size):
                raise _file_conflict(first, found_in[record.filename], record, source.path)
    copy_from = {filename: found_in[filename] / filename for filename in records}
    return records, copy_from


def _file_conflict(
    first: FileRecord, first_in: Path, second: FileRecord, second_in: Path
) -> HashMismatchError:
    hint = "rebuild one of them so that both ship the same file, or merge only one of them"
    if (
        isinstance(first.origin, BuiltFrom)
        and isinstance(second.origin, BuiltFrom)
        and first.origin.sdist_sha256 == second.origin.sdist_sha256
    ):
        hint = (
            f"both wheels were built from {first.origin.sdist!r}, and the builds are not "
            f"byte-identical; {hint}"
        )
    return HashMismatchError(
        f"{first.filename!r} differs between the wheelhouses {str(first_in)!r} "
        f"(sha256 {first.sha256}, {first.size} bytes) and {str(second_in)!r} "
        f"(sha256 {second.sha256}, {second.size} bytes); one wheelhouse can hold only one "
        "file of that name",
        filename=first.filename,
        expected=first.sha256,
        actual=second.sha256,
        hint=hint,
    )


def _name_native_locks(sources: list[_Source]) -> list[_Source]:
    """Host locks of different machines get names of their own, so native builds merge.

    A compiled sdist can only be built on its platform: a CI matrix builds each platform's
    wheelhouse as 'host' there, and the merge keeps each as ``host-{interpreter}-{platform}``.
    """
    native = [
        lock
        for source in sources
        for lock in (*source.manifest.locks, *source.manifest.build_locks)
        if is_native(lock.target)
    ]
    # One platform stays 'host', unless an earlier merge already named its host locks.
    if len({lock.tags for lock in native}) <= 1 and all(n.target == HOST.name for n in native):
        return sources

    def named(locks: tuple[TargetLock, ...]) -> tuple[TargetLock, ...]:
        return tuple(
            dataclasses.replace(lock, target=native_name(lock.tags[0]))
            if lock.target == HOST.name and lock.tags
            else lock
            for lock in locks
        )

    return [
        dataclasses.replace(
            source,
            manifest=dataclasses.replace(
                source.manifest,
                locks=named(source.manifest.locks),
                build_locks=named(source.manifest.build_locks),
            ),
        )
        for source in sources
    ]


def _union_build_locks(sources: list[_Source]) -> tuple[TargetLock, ...]:
    """Build requirements per target, joined: each machine's sdists may have needed others."""
    joined: dict[str, TargetLock] = {}
    for source in sources:
        for lock in source.manifest.build_locks:
            first = joined.get(lock.target)
            if first is None:
                joined[lock.target] = lock
                continue
            entries = {(e.name, e.version): e for e in (*first.entries, *lock.entries)}
            joined[lock.target] = dataclasses.replace(
                first, entries=tuple(entries[key] for key in sorted(entries))
            )
    return tuple(joined[target] for target in sorted(joined))


def _union_locks(sources: list[_Source]) -> dict[str, TargetLock]:
    locks: dict[str, TargetLock] = {}
    locked_in: dict[str, Path] = {}
    for source in sources:
        for lock in source.manifest.locks:
            first = locks.get(lock.target)
            if first is None:
                locks[lock.target] = lock
                locked_in[lock.target] = source.path
            else:
                # The environment is not compared: a host's records its kernel
                # (platform_release), which differs between machines building the same target.
                _check_same_lock(first, locked_in[lock.target], lock, source.path)
    return locks


def _check_same_lock(
    first: TargetLock, first_in: Path, second: TargetLock, second_in: Path
) -> None:
    target = first.target
    where = f"{str(first_in)!r} and {str(second_in)!r}"
    if first.tags != second.tags:
        # Host locks of different platforms were named apart (_name_native_locks).
        raise ConflictError(
            f"the target {target!r} has different tags in the wheelhouses {where} "
            f"({', '.join(first.tags)} and {', '.join(second.tags)})",
            hint="rebuild one of them with the same wheelhouse version, or merge only one of them",
        )
    differences = _differences(first.entries, second.entries)
    if differences:
        shown = "; ".join(differences[:_SHOWN_DIFFERENCES])
        more = len(differences) - _SHOWN_DIFFERENCES
        if more > 0:
            shown += f"; and {more} more"
        raise ConflictError(
            f"the target {target!r} is locked differently in the wheelhouses {where}: {shown}",
            hint="rebuild one of them from the same requirements, or merge only one of them",
        )


def _differences(first: Sequence[LockEntry], second: Sequence[LockEntry]) -> list[str]:
    """Sentences naming how two locks of one target differ (empty when they agree)."""
    mine = {(e.name, e.version): e for e in first}
    theirs = {(e.name, e.version): e for e in second}
    found = [
        f"only the first pins {name}=={version}" for name, version in sorted(mine.keys() - theirs)
    ]
    found += [
        f"only the second pins {name}=={version}" for name, version in sorted(theirs.keys() - mine)
    ]
    for key in sorted(mine.keys() & theirs.keys()):
        a, b = mine[key], theirs[key]
        if sorted(a.filenames) != sorted(b.filenames):
            found.append(
                f"{key[0]}=={key[1]} is installed from {', '.join(a.filenames)} in the first "
                f"and from {', '.join(b.filenames)} in the second"
            )
        elif a.requested != b.requested:
            found.append(f"{key[0]} is requested in only one of them")
    return found


def _provenance(source: _Source) -> dict[str, Any]:
    manifest = source.manifest
    return {
        "path": str(source.path),
        "generator": manifest.generator,
        "created": manifest.created,
        "targets": [lock.target for lock in manifest.locks],
        "inputs": {
            "files": [
                {"path": f.path, "sha256": f.sha256, "kind": f.kind} for f in manifest.inputs.files
            ],
            "options": manifest.inputs.options,
            "fingerprint": manifest.inputs.fingerprint,
        },
    }
