"""Wheelhouses written by hand for a test: their records, locks and manifest, and the one
builder that lays them out. (A real build, once per module: ``fixtures.built_wheelhouse``.)"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

from packaging.markers import default_environment
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from tests.support.dists import DistFactory
from tests.support.files import sha256_of
from wheelhouse.house.export import write_requirements
from wheelhouse.house.index import write_index
from wheelhouse.house.manifest import (
    GENERATOR,
    MANIFEST_NAME,
    Downloaded,
    FileKind,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    Origin,
    TargetLock,
)
from wheelhouse.house.pylock import write_pylock

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


# The tags and environment a target's lock gets unless a test gives its own (none for another).
KNOWN = {LINUX: ((LINUX_TAG,), LINUX_ENV), WINDOWS: ((WINDOWS_TAG,), WINDOWS_ENV)}


# When every hand-made wheelhouse was "built".
OLD = "2020-01-01T00:00:00+00:00"


# What writes a wheelhouse's files from its manifest (the manifest itself first).
Writer = Callable[[Path, Manifest], object]


def write_manifest(root: Path, manifest: Manifest) -> None:
    (root / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")


# All that a build writes beside the files, which verify checks too.
EVERYTHING: tuple[Writer, ...] = (write_manifest, write_requirements, write_index, write_pylock)


def _name_version(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return name, str(version)


def record_of(
    path: Path, *, origin: Origin | None = None, requires_python: str | None = None
) -> FileRecord:
    """A manifest record for the wheel or sdist ``path``, computed without the code under test."""
    name, version = _name_version(path.name)
    kind: FileKind = "wheel" if path.name.endswith(".whl") else "sdist"
    return FileRecord(
        name=canonicalize_name(name),
        version=version,
        filename=path.name,
        sha256=sha256_of(path),
        size=path.stat().st_size,
        kind=kind,
        origin=origin or Downloaded(url=f"https://files.example.invalid/{path.name}"),
        requires_python=requires_python,
    )


def lock_of(
    target: str,
    files: Iterable[Path],
    *,
    tags: tuple[str, ...] | None = None,
    environment: dict[str, str] | None = None,
    requested: Collection[str] = ("app",),
) -> TargetLock:
    """``target``'s lock of ``files`` (one entry a name and version); ``requested`` are the
    projects asked for by name (a test graph's root is "app")."""
    known_tags, known_env = KNOWN.get(target, ((), {}))
    pins: dict[tuple[str, str], list[str]] = {}
    for path in files:
        pins.setdefault(_name_version(path.name), []).append(path.name)
    wanted = {canonicalize_name(n) for n in requested}
    return TargetLock(
        target=target,
        tags=tags if tags is not None else known_tags,
        environment=environment if environment is not None else dict(known_env),
        entries=tuple(
            LockEntry(canonicalize_name(n), v, tuple(names), requested=n in wanted)
            for (n, v), names in pins.items()
        ),
    )


def manifest_of(records: Iterable[FileRecord], locks: Sequence[TargetLock] = ()) -> Manifest:
    """The manifest of a hand-made wheelhouse holding ``records`` and ``locks``."""
    return Manifest(
        generator=GENERATOR,
        created=OLD,
        inputs=Inputs(
            files=(),
            options={"targets": [lock.target for lock in locks]},
            fingerprint="f" * 64,
        ),
        files=tuple(records),
        locks=tuple(locks),
    )


def make_wheelhouse(
    directory: Path,
    files: Iterable[Path],
    *,
    locks: Sequence[TargetLock] | None = None,
    requested: Collection[str] = (),
    requires_python: Mapping[str, str] | None = None,
    origins: Mapping[str, Origin] | None = None,
    writes: Sequence[Writer] = EVERYTHING,
) -> Manifest:
    """A wheelhouse made by hand: ``files`` copied flat into ``directory``, then ``writes``.

    ``locks`` default to one "host" lock of every file with this machine's tags and
    environment, as a build here records it (``requested``: the projects asked for by name).
    ``requires_python`` and ``origins`` give a file (by name) its record's field. ``writes`` is
    what is written beside the files: by default what a build writes, the manifest first;
    ``()`` for the files alone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    by_name = {path.name: path for path in files}
    for name, source in by_name.items():
        if source != directory / name:
            shutil.copy2(source, directory / name)
    records = [
        record_of(
            directory / name,
            origin=(origins or {}).get(name),
            requires_python=(requires_python or {}).get(name),
        )
        for name in sorted(by_name)
    ]
    if locks is None:
        locks = (
            lock_of(
                "host",
                by_name.values(),
                tags=tuple(str(t) for t in sys_tags()),
                environment={k: str(v) for k, v in default_environment().items()},
                requested=requested,
            ),
        )
    manifest = manifest_of(records, locks)
    for write in writes:
        write(directory, manifest)
    return manifest


def sample_wheelhouse(root: Path, dists: DistFactory, *, writes: Sequence[Writer] = ()) -> Manifest:
    """foo-bar 1.0 (needs dep-two>=1, Python >=3.8,<4), dep-two 1.5 and 2.0 + its sdist
    (recorded as needing Python >=3.7), with no lock."""
    sdist = dists.sdist("dep-two", "2.0")
    made = [
        dists.wheel("Foo.Bar", "1.0", requires=["dep-two>=1"], requires_python=">=3.8,<4"),
        dists.wheel("dep-two", "1.5"),
        dists.wheel("dep-two", "2.0"),
        sdist,
    ]
    return make_wheelhouse(
        root, made, locks=(), requires_python={sdist.name: ">=3.7"}, writes=writes
    )
