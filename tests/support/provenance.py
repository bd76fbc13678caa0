"""Real PEP 740 provenance files and a wheelhouse written around them, for offline checks."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from wheelhouse import __version__
from wheelhouse.house.manifest import (
    MANIFEST_NAME,
    Downloaded,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    Sha256,
    TargetLock,
)

DATA = Path(__file__).parents[1] / "provenance" / "data"


SDIST = "pypi_attestations-0.0.19.tar.gz"


SDIST_SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"


GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"


TRUST_ROOT = DATA / "trusted_root.json"


def gitlab_provenance() -> bytes:
    """The real GitLab attestation in a provenance object, as an integrity API serves it."""
    attestation = json.loads((DATA / f"{GITLAB_SDIST}.publish.attestation").read_bytes())
    publisher = {
        "kind": "GitLab",
        "repository": "facutuesca/gitlab-oidc-project",
        "workflow_filepath": ".gitlab-ci.yml",
        "environment": None,
    }
    provenance = {
        "version": 1,
        "attestation_bundles": [{"publisher": publisher, "attestations": [attestation]}],
    }
    return json.dumps(provenance).encode()


def write_wheelhouse(directory: Path, files: Iterable[Path]) -> Manifest:
    """A wheelhouse by hand: the files copied flat, and a manifest recording their bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    records: list[FileRecord] = []
    for source in files:
        target = directory / source.name
        if source != target:
            shutil.copyfile(source, target)
        data = target.read_bytes()
        if source.name.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(source.name)
        else:
            name, version = parse_sdist_filename(source.name)
        records.append(
            FileRecord(
                name=canonicalize_name(name),
                version=str(version),
                filename=source.name,
                sha256=Sha256(hashlib.sha256(data).hexdigest()),
                size=len(data),
                kind="wheel" if source.name.endswith(".whl") else "sdist",
                origin=Downloaded(url=f"https://files.example.invalid/{source.name}"),
            )
        )
    lock = TargetLock(
        target="host",
        tags=(),
        environment={},
        entries=tuple(
            LockEntry(name=r.name, version=r.version, filenames=(r.filename,)) for r in records
        ),
    )
    manifest = Manifest(
        generator=f"wheelhouse {__version__}",
        created="2026-12-07T00:00:00Z",
        inputs=Inputs(files=()),
        files=tuple(records),
        locks=(lock,),
    )
    (directory / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


MakeHouse = Callable[..., Path]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes: compared before and after a command."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
