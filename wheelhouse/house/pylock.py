"""The wheelhouse as a PEP 751 lock file (``pylock.toml``) that pip and uv install from offline."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tomli_w
from packaging.markers import InvalidMarker, Marker
from packaging.pylock import (
    Package,
    PackageSdist,
    PackageWheel,
    Pylock,
    PylockValidationError,
)
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from wheelhouse._base.files import write_atomic
from wheelhouse.errors import Hint, InvalidWheelhouseError, OutputDirError
from wheelhouse.house.contents import PYLOCK_NAME
from wheelhouse.house.manifest import MANIFEST_NAME, BuiltFrom, FileRecord, Manifest, TargetLock

__all__ = ["LOCK_VERSION", "PYLOCK_NAME", "render_pylock", "write_pylock"]

LOCK_VERSION = "1.0"
_CREATED_BY = "wheelhouse"  # the normalized name of the distribution, as the spec asks

# The marker variables that tell targets apart. Variables such as platform_release or
# platform_version describe one machine, not a target, and would make a marker match nowhere else.
_TARGET_MARKER_VARIABLES = ("implementation_name", "sys_platform", "platform_machine")

_PackageKey = tuple[NormalizedName, str]


def render_pylock(manifest: Manifest, *, files_dir: str = ".") -> str:
    """The ``pylock.toml`` text for the wheelhouse that ``manifest`` describes.

    Every file is referenced by ``path`` as ``{files_dir}/{filename}``; the default ``"."``
    is relative to the lock file, so the text is right for ``DIR/pylock.toml``. Pass another
    directory (POSIX separators, relative to where the text will be saved, or absolute) when
    the lock is written elsewhere. The output depends only on the manifest: same manifest,
    same bytes.
    """
    by_filename = {record.filename: record for record in manifest.files}
    targets: dict[_PackageKey, list[TargetLock]] = {}
    filenames: dict[_PackageKey, set[str]] = {}
    for lock in manifest.locks:
        for entry in lock.entries:
            key = (entry.name, entry.version)
            targets.setdefault(key, []).append(lock)
            filenames.setdefault(key, set()).update(entry.filenames)
    # An sdist shipped beside the wheels (--keep-sdists) belongs in the lock even when no
    # target lists it as a way to install the package.
    for record in manifest.files:
        key = (record.name, record.version)
        if key in filenames and record.kind == "sdist":
            filenames[key].add(record.filename)

    requires_python = _requires_python(manifest.locks)
    try:
        document = Pylock(
            lock_version=Version(LOCK_VERSION),
            requires_python=SpecifierSet(requires_python) if requires_python else None,
            created_by=_CREATED_BY,
            packages=[
                _package(
                    key,
                    [_record(by_filename, key, filename) for filename in sorted(filenames[key])],
                    targets[key],
                    manifest.locks,
                    files_dir,
                )
                for key in sorted(targets, key=_sort_key)
            ],
            tool={"wheelhouse": _lock_tool_table(manifest)},
        )
        # The spec's own checks (names, versions, hashes, one source per package), by the
        # library that installers select from: what Pylock.validate() does, keeping the dict
        # it makes for writing (making it costs as much as writing it).
        table = document.to_dict()
        Pylock.from_dict(table)
    except (PylockValidationError, InvalidSpecifier, InvalidVersion) as exc:
        raise InvalidWheelhouseError(
            f"the manifest does not make a valid PEP 751 lock file: {exc}",
            hint=Hint.REBUILD,
        ) from exc
    return tomli_w.dumps(dict(table))


def write_pylock(root: Path, manifest: Manifest) -> Path:
    """Write ``root/pylock.toml`` for ``manifest`` atomically and return its path."""
    path = root / PYLOCK_NAME
    try:
        write_atomic(path, render_pylock(manifest).encode("utf-8"), fsync=True)
    except OSError as exc:
        raise OutputDirError(f"cannot write {str(path)!r}: {exc.strerror}", path=path) from exc
    return path


def _sort_key(key: _PackageKey) -> tuple[str, Version | str]:
    name, version = key
    try:
        return name, Version(version)
    except InvalidVersion:
        return name, version


def _record(by_filename: dict[str, FileRecord], key: _PackageKey, filename: str) -> FileRecord:
    record = by_filename.get(filename)
    if record is None:
        raise InvalidWheelhouseError(
            f"the manifest locks {key[0]}=={key[1]} to {filename!r}, which it does not list"
            " among its files",
            hint=Hint.REBUILD,
        )
    if (record.name, record.version) != key:
        raise InvalidWheelhouseError(
            f"the manifest locks {key[0]}=={key[1]} to {filename!r}, which is a file of"
            f" {record.name}=={record.version}",
            hint=Hint.REBUILD,
        )
    return record


def _package(
    key: _PackageKey,
    records: list[FileRecord],
    in_targets: list[TargetLock],
    all_targets: Iterable[TargetLock],
    files_dir: str,
) -> Package:
    name, version = key
    marker = _package_marker(key, in_targets, all_targets)
    specifiers = {record.requires_python for record in records}
    # Files of one version that disagree on Requires-Python say nothing about the package
    # as a whole; the installer's tag and Requires-Python checks per file still apply.
    only = specifiers.pop() if len(specifiers) == 1 else None
    sdists = [record for record in records if record.kind == "sdist"]
    wheels = [record for record in records if record.kind == "wheel"]
    if not sdists and not wheels:
        raise InvalidWheelhouseError(
            f"the manifest locks {name}=={version} but ships no file that installs it",
            hint=Hint.REBUILD,
        )
    if len(sdists) > 1:
        raise InvalidWheelhouseError(
            f"the manifest ships more than one sdist of {name}=={version}:"
            f" {', '.join(repr(r.filename) for r in sdists)}; a lock file holds one",
            hint=Hint.REBUILD,
        )
    return Package(
        name=name,
        version=Version(version),
        marker=Marker(marker) if marker is not None else None,
        requires_python=SpecifierSet(only) if only else None,
        sdist=PackageSdist(**_file_table(sdists[0], files_dir)) if sdists else None,
        wheels=[PackageWheel(**_file_table(record, files_dir)) for record in wheels] or None,
        tool={"wheelhouse": _package_tool_table(records, in_targets)},
    )


def _file_table(record: FileRecord, files_dir: str) -> dict[str, Any]:
    return {
        "name": record.filename,
        "path": f"{files_dir.rstrip('/')}/{record.filename}",
        "size": record.size,
        "hashes": {"sha256": record.sha256},
    }


def _package_tool_table(records: list[FileRecord], in_targets: list[TargetLock]) -> dict[str, Any]:
    """Where each file came from: disposable for installers, but what an audit asks first."""
    origins: list[dict[str, Any]] = []
    for record in records:
        origin: dict[str, Any] = {"file": record.filename}
        if isinstance(record.origin, BuiltFrom):
            origin["built-from"] = {
                "filename": record.origin.sdist,
                "sha256": record.origin.sdist_sha256,
                "url": record.origin.sdist_url,
                "backend": record.origin.backend,
            }
        else:
            origin["url"] = record.origin.url
        if record.origin.source:
            origin["source"] = record.origin.source
        origins.append(origin)
    return {"targets": sorted({lock.target for lock in in_targets}), "origins": origins}


def _lock_tool_table(manifest: Manifest) -> dict[str, Any]:
    table: dict[str, Any] = {
        "manifest": MANIFEST_NAME,
        "targets": [lock.target for lock in manifest.locks],
    }
    if manifest.inputs.fingerprint:
        table["inputs-fingerprint"] = manifest.inputs.fingerprint
    return table


def _python_version(lock: TargetLock) -> Version | None:
    raw = lock.environment.get("python_version") or lock.environment.get("python_full_version")
    if not raw:
        return None
    try:
        release = Version(raw).release
    except InvalidVersion:
        return None
    return Version(".".join(str(part) for part in (*release, 0)[:2]))


def _requires_python(locks: Iterable[TargetLock]) -> str | None:
    """A lower bound: the oldest Python any target was resolved for, or None if one is unknown.

    Each target's markers were evaluated for its own interpreter, so an older Python could need
    dependencies (``tomli; python_version < "3.11"``) that the lock lacks: it must refuse them.
    No upper bound: the spec defines this key as the minimum viable version, and a newer Python
    is already kept from wheels it cannot use by their tags.
    """
    versions = [_python_version(lock) for lock in locks]
    known = [version for version in versions if version is not None]
    if not known or len(known) != len(versions):
        return None
    return f">={min(known)}"


def _target_marker(lock: TargetLock) -> str:
    clauses = [
        f"{variable} == {lock.environment[variable]!r}"
        for variable in _TARGET_MARKER_VARIABLES
        if lock.environment.get(variable)
    ]
    version = _python_version(lock)
    if version is not None:
        clauses.append(f"python_version == '{version}'")
    if not clauses:
        raise InvalidWheelhouseError(
            f"target {lock.target!r} records no environment, so the lock file cannot say"
            " which of its packages belong to it",
            hint=Hint.REBUILD,
        )
    text = " and ".join(clauses)
    try:
        return str(Marker(text))
    except InvalidMarker as exc:
        raise InvalidWheelhouseError(
            f"target {lock.target!r} has an environment that makes no valid marker: {exc}"
        ) from exc


def _package_marker(
    key: _PackageKey, in_targets: list[TargetLock], all_targets: Iterable[TargetLock]
) -> str | None:
    """None when every target installs the package; else a marker matching only its targets."""
    mine = {lock.target for lock in in_targets}
    if all(lock.target in mine for lock in all_targets):
        return None
    markers = sorted({_target_marker(lock) for lock in in_targets})
    if len(markers) == 1:
        return markers[0]
    return " or ".join(f"({marker})" for marker in markers)
