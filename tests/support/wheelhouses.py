"""Wheelhouses written for a test: built from dists, their manifests, records and locks."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from wheelhouse import __version__
from wheelhouse.house.directory import put_in_place
from wheelhouse.house.export import write_requirements
from wheelhouse.house.index import write_index
from wheelhouse.house.manifest import (
    MANIFEST_NAME,
    Downloaded,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    Origin,
    Sha256,
    TargetLock,
)
from wheelhouse.house.pylock import write_pylock


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_for(path: Path, *, requires_python: str | None = None) -> FileRecord:
    """A manifest record for ``path``, computed independently of the code under test."""
    data = path.read_bytes()
    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        kind: Any = "wheel"
    else:
        name, version = parse_sdist_filename(path.name)
        kind = "sdist"
    return FileRecord(
        name=name,
        version=str(version),
        filename=path.name,
        sha256=Sha256(sha256(data)),
        size=len(data),
        kind=kind,
        origin=Downloaded(url=f"https://files.example.invalid/{path.name}"),
        requires_python=requires_python,
    )


def manifest_of(records: list[FileRecord]) -> Manifest:
    return Manifest(
        generator="tests",
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(files=()),
        files=tuple(records),
        locks=(),
    )


def build_wheelhouse(root: Path, dists: Any) -> Manifest:
    """foo-bar 1.0 (needs dep-two>=1, Python >=3.8,<4), dep-two 1.5 and 2.0 + its sdist."""
    made = [
        (dists.wheel("Foo.Bar", "1.0", requires=["dep-two>=1"], requires_python=">=3.8,<4"), None),
        (dists.wheel("dep-two", "1.5"), None),
        (dists.wheel("dep-two", "2.0"), None),
        (dists.sdist("dep-two", "2.0"), ">=3.7"),
    ]
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for path, requires_python in made:
        shutil.copy2(path, root / path.name)
        records.append(record_for(root / path.name, requires_python=requires_python))
    return manifest_of(records)


def make_wheelhouse(
    directory: Path,
    wheels: Iterable[Path],
    *,
    requested: Sequence[str] = (),
    requires_python: dict[str, str] | None = None,
) -> Manifest:
    """A wheelhouse made by hand: wheels copied flat, a manifest, and the host requirements.txt."""
    directory.mkdir(parents=True, exist_ok=True)
    records: list[FileRecord] = []
    for wheel in wheels:
        shutil.copy2(wheel, directory / wheel.name)
        data = wheel.read_bytes()
        name, version, _, _ = parse_wheel_filename(wheel.name)
        records.append(
            FileRecord(
                name=name,
                version=str(version),
                filename=wheel.name,
                sha256=Sha256(hashlib.sha256(data).hexdigest()),
                size=len(data),
                kind="wheel",
                origin=Downloaded(url=f"https://files.example.invalid/{wheel.name}"),
                requires_python=(requires_python or {}).get(wheel.name),
            )
        )
    pins: dict[tuple[str, str], list[str]] = {}
    for record in records:
        pins.setdefault((record.name, record.version), []).append(record.filename)
    wanted = {canonicalize_name(n) for n in requested}
    entries = tuple(
        LockEntry(
            name=canonicalize_name(name),
            version=version,
            filenames=tuple(files),
            requested=name in wanted,
        )
        for (name, version), files in pins.items()
    )
    manifest = Manifest(
        generator=f"wheelhouse {__version__}",
        created="2026-11-25T00:00:00Z",
        inputs=Inputs(files=()),
        files=tuple(records),
        locks=(
            TargetLock(
                target="host",
                tags=tuple(str(t) for t in sys_tags()),
                environment=dict(default_environment()),
                entries=entries,
            ),
        ),
    )
    (directory / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    # What a build writes from the manifest, which verify checks too.
    write_requirements(directory, manifest)
    write_index(directory, manifest)
    write_pylock(directory, manifest)
    return manifest


def flip_byte(path: Path, offset: int = 40) -> None:
    """Change one byte in place: same size, different sha256."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


LINUX = "cp311-manylinux_2_28_x86_64"


WINDOWS = "cp311-win_amd64"


LINUX_TAG = "cp311-cp311-manylinux_2_28_x86_64"


WINDOWS_TAG = "cp311-cp311-win_amd64"


LINUX_ENV = {
    "implementation_name": "cpython",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "platform_release": "6.1.0-runner-one",
}


WINDOWS_ENV = {
    "implementation_name": "cpython",
    "sys_platform": "win32",
    "platform_machine": "AMD64",
    "python_version": "3.11",
    "python_full_version": "3.11.9",
}


KNOWN = {LINUX: ((LINUX_TAG,), LINUX_ENV), WINDOWS: ((WINDOWS_TAG,), WINDOWS_ENV)}


OLD = "2020-01-01T00:00:00+00:00"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_of(wheel: Path, origin: Origin | None = None) -> FileRecord:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    return FileRecord(
        name=name,
        version=str(version),
        filename=wheel.name,
        sha256=Sha256(sha256_of(wheel)),
        size=wheel.stat().st_size,
        kind="wheel",
        origin=origin or Downloaded(f"https://files.example.invalid/{wheel.name}"),
    )


def lock_of(
    target: str,
    wheels: Sequence[Path],
    *,
    tags: tuple[str, ...] | None = None,
    environment: dict[str, str] | None = None,
) -> TargetLock:
    known_tags, known_env = KNOWN.get(target, ((), {}))
    pins: dict[tuple[str, str], list[str]] = {}
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        pins.setdefault((name, str(version)), []).append(wheel.name)
    return TargetLock(
        target=target,
        tags=tags if tags is not None else known_tags,
        environment=environment if environment is not None else known_env,
        entries=tuple(
            LockEntry(canonicalize_name(n), v, tuple(files), requested=n == "app")
            for (n, v), files in pins.items()
        ),
    )


def make_source(
    directory: Path,
    *locks: tuple[TargetLock, Sequence[Path]],
    origins: dict[str, Origin] | None = None,
) -> Manifest:
    """A wheelhouse published the way a build publishes one, holding ``locks``."""
    sources = {wheel.name: wheel for _, wheels in locks for wheel in wheels}
    manifest = Manifest(
        generator="wheelhouse-tests",
        created=OLD,
        inputs=Inputs(
            files=(),
            options={"targets": [lock.target for lock, _ in locks]},
            fingerprint="f" * 64,
        ),
        files=tuple(
            record_of(path, (origins or {}).get(name)) for name, path in sorted(sources.items())
        ),
        locks=tuple(lock for lock, _ in locks),
    )
    put_in_place(
        directory,
        manifest,
        sources,
        writers=[write_requirements, write_index, _write_pylock],
    )
    return manifest


def _write_pylock(root: Path, manifest: Manifest) -> None:
    write_pylock(root, manifest)
