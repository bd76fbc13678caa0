"""``pdm.lock``: packages with their groups, markers and files (by name, or by URL)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from wheelhouse._base.targets import Target
from wheelhouse.errors import RequirementsError
from wheelhouse.house.manifest import Sha256
from wheelhouse.inputs.lock import (
    LockedFile,
    LockedPackage,
    LockFormat,
    Selection,
    SourceKind,
    check_selection,
    evaluate,
    parse_hash,
)

__all__ = ["PdmLock", "read_pdm_lock"]

_DEFAULT = "default"


def read_pdm_lock(path: Path, data: Mapping[str, Any]) -> PdmLock:
    if "lock_version" not in data.get("metadata", {}):
        raise RequirementsError(
            f"{str(path)!r} is not a pdm.lock (no [metadata] lock_version)",
            path=path,
            hint="regenerate it with 'pdm lock'",
        )
    metadata = data["metadata"]
    packages = tuple(data.get("package", []))
    groups = metadata.get("groups")
    if not isinstance(groups, list):
        groups = sorted({g for p in packages for g in p.get("groups") or [_DEFAULT]})
    # lock_version 4.5 records its targets' Pythons; older locks one requires_python.
    pythons = [
        str(t["requires_python"]) for t in metadata.get("targets", []) if t.get("requires_python")
    ]
    if not pythons and metadata.get("requires_python"):
        pythons = [str(metadata["requires_python"])]
    return PdmLock(
        path,
        packages,
        frozenset(str(g) for g in groups),
        " || ".join(pythons) if pythons and all(pythons) else None,
    )


@dataclass(frozen=True)
class PdmLock:
    """PDM (``inherit_metadata``, its default strategy) records per package the groups that
    need it and the marker under which they do; a lock without markers is taken whole.

    PDM locks optional-dependencies as groups of the same name, so ``--extra`` and
    ``--group`` both name one of the lock's ``[metadata] groups``; ``default`` is always
    taken, and nothing else unless asked (as ``pdm export --prod``)."""

    path: Path
    packages: tuple[dict[str, Any], ...]
    groups: frozenset[str] = frozenset({_DEFAULT})
    requires_python: str | None = None

    @property
    def format(self) -> LockFormat:
        return "pdm.lock"

    def check(self, selection: Selection) -> None:
        check_selection(
            self.path,
            selection,
            extras=self.groups - {_DEFAULT},
            groups=self.groups,
            extras_where="the lock's [metadata] groups (pdm lock -G NAME)",
            groups_where="the lock's [metadata] groups (pdm lock -G NAME)",
        )

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        # PDM locks optional-dependencies as groups of the same name.
        asked = (*selection.groups, *selection.extras)
        wanted = {_DEFAULT, *(canonicalize_name(g) for g in asked)}
        chosen = []
        for package in self.packages:
            groups = package.get("groups") or [_DEFAULT]
            if not any(canonicalize_name(g) in wanted for g in groups):
                continue
            if evaluate(package.get("marker"), target.environment, self.path):
                chosen.append(self._locked(package))
        return tuple(chosen)

    def _locked(self, package: Mapping[str, Any]) -> LockedPackage:
        kind: SourceKind = "index"
        reference = ""
        if "git" in package or "hg" in package:
            vcs = "git" if "git" in package else "hg"
            kind, reference = "vcs", f"{vcs}+{package[vcs]}"
        elif "path" in package and not package.get("files"):
            kind, reference = "directory", str(self.path.parent / package["path"])
        elif "url" in package:
            kind = "url"
        files = []
        for entry in package.get("files", []):
            digest = parse_hash(str(entry["hash"]), self.path) if "hash" in entry else None
            url = entry.get("url") or package.get("url")
            filename = entry.get("file") or (
                unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if url else None
            )
            files.append(
                LockedFile(filename, url, frozenset({Sha256(digest)}) if digest else frozenset())
            )
        return LockedPackage(
            name=canonicalize_name(package["name"]),
            version=str(package.get("version", "")),
            files=tuple(files),
            source=kind,
            reference=reference,
            requires_python=package.get("requires_python") or None,
        )
