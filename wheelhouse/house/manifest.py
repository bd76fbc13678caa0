"""The wheelhouse manifest: what every file is, where it came from, and each target's lock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NewType

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse import __version__
from wheelhouse.errors import Hint, InvalidWheelhouseError

__all__ = [
    "CARRIED_FILES",
    "DISTRIBUTION_SUFFIXES",
    "GENERATOR",
    "MANIFEST_NAME",
    "MIRROR_STATE_DIR",
    "OSV_SNAPSHOT",
    "OSV_SNAPSHOT_INFO",
    "PROVENANCE_SUFFIX",
    "SCHEMA_VERSION",
    "TRUST_ROOT",
    "BuiltFrom",
    "Downloaded",
    "FileKind",
    "FileRecord",
    "InputFile",
    "Inputs",
    "LockEntry",
    "Manifest",
    "ManifestKind",
    "Origin",
    "Sha256",
    "Source",
    "TargetLock",
    "looks_like_distribution",
    "read_manifest",
    "record_from_dict",
    "record_to_dict",
]

MANIFEST_NAME = "wheelhouse.json"
# Where `wheelhouse mirror` keeps what it knows of the upstream (validators, listings, the
# files it wrote) and its partial downloads: not part of the wheelhouse's contents.
MIRROR_STATE_DIR = ".mirror"
# What this version records as a manifest's generator: files generated from a manifest are
# compared byte for byte only when the same version wrote them.
GENERATOR = f"wheelhouse {__version__}"
SCHEMA_VERSION = 1
# What an installer could pick up from a --find-links directory.
DISTRIBUTION_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg")
# Files the wheelhouse writers generate from the manifest, so the manifest does not list them.
# What a wheelhouse carries beside its files, for use across the gap: written by the commands
# that fetch them, unrecorded in the manifest (each describes or proves recorded files), and
# packed, unpacked and kept by a rebuild like the files. The OSV snapshot and its info
# (`audit fetch`, docs/audit.md), the Sigstore trust root (`provenance trust-root`), and each
# recorded file's PEP 740 provenance, `<filename>.provenance` (docs/provenance.md). The names
# are those of wheelhouse.audit.fetch and wheelhouse.provenance (tests hold them equal): the
# manifest, which both import, cannot import them back.
OSV_SNAPSHOT = "osv/PyPI.zip"
OSV_SNAPSHOT_INFO = "osv/PyPI.zip.json"
TRUST_ROOT = "sigstore/trusted_root.json"
CARRIED_FILES = (OSV_SNAPSHOT, OSV_SNAPSHOT_INFO, TRUST_ROOT)
PROVENANCE_SUFFIX = ".provenance"

Sha256 = NewType("Sha256", str)
FileKind = Literal["wheel", "sdist"]
# A wheelhouse is built from requirements; a mirror copies an index's files as they are.
ManifestKind = Literal["wheelhouse", "mirror"]


# How an input asked for a file, when not by name from an index: "direct-url" (name @ URL),
# "local-project" (a directory built here), or "lock:FORMAT" (pinned by a lock file).
# Recorded as the origin's "source"; absent in manifests written before it existed.
Source = str


@dataclass(frozen=True)
class Downloaded:
    """The file was downloaded as is from ``url`` (credentials never recorded)."""

    url: str
    source: Source | None = None


@dataclass(frozen=True)
class BuiltFrom:
    """The wheel was built here from an sdist."""

    sdist: str
    sdist_sha256: Sha256
    sdist_url: str
    backend: str
    source: Source | None = None


Origin = Downloaded | BuiltFrom


@dataclass(frozen=True)
class FileRecord:
    """One file shipped in the wheelhouse."""

    name: NormalizedName
    version: str
    filename: str
    sha256: Sha256
    size: int
    kind: FileKind
    origin: Origin
    requires_python: str | None = None
    # PEP 592: None when not yanked, else the reason ("" when the index gave none).
    yanked: str | None = None


@dataclass(frozen=True)
class LockEntry:
    """One pinned distribution of a target, and the files that can install it."""

    name: NormalizedName
    version: str
    filenames: tuple[str, ...]
    requested: bool = False


@dataclass(frozen=True)
class TargetLock:
    """The pinned set for one target: what ``requirements.txt`` lists."""

    target: str
    tags: tuple[str, ...]
    environment: dict[str, str]
    entries: tuple[LockEntry, ...]


@dataclass(frozen=True)
class InputFile:
    """A requirements or constraints file as it was read."""

    path: str
    sha256: Sha256
    # "project": a local project directory (no digest: a build from it is never up to date).
    kind: Literal["requirements", "constraints", "project"]


@dataclass(frozen=True)
class Inputs:
    """Everything that decided the contents, so a rebuild can tell whether anything changed."""

    files: tuple[InputFile, ...]
    options: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""


@dataclass(frozen=True)
class Manifest:
    """The whole of ``wheelhouse.json``."""

    generator: str
    created: str
    inputs: Inputs
    files: tuple[FileRecord, ...]
    locks: tuple[TargetLock, ...]
    schema_version: int = SCHEMA_VERSION
    # Per target, what the shipped sdists need to build offline (--keep-sdists); not installed.
    build_locks: tuple[TargetLock, ...] = ()
    kind: ManifestKind = "wheelhouse"

    def file(self, filename: str) -> FileRecord:
        for record in self.files:
            if record.filename == filename:
                return record
        raise KeyError(filename)

    def to_json(self) -> str:
        return json.dumps(_manifest_to_dict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: Path | None = None) -> Manifest:
        try:
            return _manifest_from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            where = f" {str(source)!r}" if source else ""
            raise InvalidWheelhouseError(
                f"the manifest{where} cannot be read: {exc}",
                hint=Hint.REBUILD,
            ) from exc


def read_manifest(directory: Path) -> Manifest | None:
    """Return the manifest of the wheelhouse in ``directory``, or None if it has none."""
    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidWheelhouseError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    return Manifest.from_json(text, source=path)


def _origin_to_dict(origin: Origin) -> dict[str, Any]:
    source = {"source": origin.source} if origin.source else {}
    if isinstance(origin, Downloaded):
        return {"url": origin.url, **source}
    return {
        "built-from": {
            "filename": origin.sdist,
            "sha256": origin.sdist_sha256,
            "url": origin.sdist_url,
            "backend": origin.backend,
        },
        **source,
    }


def _origin_from_dict(data: Mapping[str, Any]) -> Origin:
    if "built-from" in data:
        built = data["built-from"]
        return BuiltFrom(
            sdist=built["filename"],
            sdist_sha256=Sha256(built["sha256"]),
            sdist_url=built["url"],
            backend=built["backend"],
            source=data.get("source"),
        )
    return Downloaded(url=data["url"], source=data.get("source"))


def _lock_to_dict(lock: TargetLock) -> dict[str, Any]:
    return {
        "target": lock.target,
        "tags": list(lock.tags),
        "environment": lock.environment,
        "packages": [
            {
                "name": e.name,
                "version": e.version,
                "files": list(e.filenames),
                "requested": e.requested,
            }
            for e in lock.entries
        ],
    }


def _lock_from_dict(data: dict[str, Any]) -> TargetLock:
    return TargetLock(
        target=data["target"],
        tags=tuple(data["tags"]),
        environment=dict(data["environment"]),
        entries=tuple(
            LockEntry(
                name=canonicalize_name(p["name"]),
                version=p["version"],
                filenames=tuple(p["files"]),
                requested=bool(p.get("requested", False)),
            )
            for p in data["packages"]
        ),
    )


def _manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema-version": manifest.schema_version,
        "generator": manifest.generator,
        "created": manifest.created,
        "inputs": {
            "files": [
                {"path": f.path, "sha256": f.sha256, "kind": f.kind} for f in manifest.inputs.files
            ],
            "options": manifest.inputs.options,
            "fingerprint": manifest.inputs.fingerprint,
        },
        "targets": [_lock_to_dict(lock) for lock in manifest.locks],
        "build-requirements": [_lock_to_dict(lock) for lock in manifest.build_locks],
        "files": [record_to_dict(r) for r in manifest.files],
    }
    # Written only when they say something, so a wheelhouse's manifest reads as before.
    if manifest.kind != "wheelhouse":
        data["kind"] = manifest.kind
    return data


def record_to_dict(record: FileRecord) -> dict[str, Any]:
    """``record`` as the manifest writes it (and the mirror's state, the one codec of both)."""
    data = {
        "name": record.name,
        "version": record.version,
        "filename": record.filename,
        "kind": record.kind,
        "sha256": record.sha256,
        "size": record.size,
        "requires-python": record.requires_python,
        "origin": _origin_to_dict(record.origin),
    }
    if record.yanked is not None:
        data["yanked"] = record.yanked
    return data


def record_from_dict(r: Mapping[str, Any]) -> FileRecord:
    """The record :func:`record_to_dict` wrote."""
    yanked = r.get("yanked")
    return FileRecord(
        name=canonicalize_name(r["name"]),
        version=r["version"],
        filename=r["filename"],
        kind=r["kind"],
        sha256=Sha256(r["sha256"]),
        size=int(r["size"]),
        requires_python=r.get("requires-python"),
        # A mirror state written before the mirror used this codec holds the URL flat.
        origin=_origin_from_dict(r.get("origin", r)),
        yanked=None if yanked is None else str(yanked),
    )


def _manifest_from_dict(data: dict[str, Any]) -> Manifest:
    version = data["schema-version"]
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema version {version!r} is not {SCHEMA_VERSION}")
    inputs = data["inputs"]
    return Manifest(
        schema_version=version,
        generator=data["generator"],
        created=data["created"],
        inputs=Inputs(
            files=tuple(
                InputFile(path=f["path"], sha256=Sha256(f["sha256"]), kind=f["kind"])
                for f in inputs["files"]
            ),
            options=dict(inputs.get("options", {})),
            fingerprint=inputs.get("fingerprint", ""),
        ),
        locks=tuple(_lock_from_dict(t) for t in data["targets"]),
        build_locks=tuple(_lock_from_dict(t) for t in data.get("build-requirements", [])),
        files=tuple(record_from_dict(r) for r in data["files"]),
        kind=_kind(data.get("kind", "wheelhouse")),
    )


def _kind(value: object) -> ManifestKind:
    if value == "mirror":
        return "mirror"
    if value == "wheelhouse":
        return "wheelhouse"
    raise ValueError(f"kind {value!r} is neither 'wheelhouse' nor 'mirror'")


def looks_like_distribution(name: str) -> bool:
    """Whether a file of that name is something an installer could pick up from
    ``--find-links``: a wheel or an sdist, whatever the manifest says."""
    return name.endswith(DISTRIBUTION_SUFFIXES)
