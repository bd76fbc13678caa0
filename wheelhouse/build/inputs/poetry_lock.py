"""``poetry.lock``: packages with their groups, markers and files (names and hashes, no URLs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from wheelhouse._base.targets import Target
from wheelhouse.build.inputs.lock import (
    LockedFile,
    LockedPackage,
    LockFormat,
    Selection,
    SourceKind,
    evaluate,
    parse_hash,
)
from wheelhouse.errors import RequirementsError
from wheelhouse.house.manifest import Sha256

__all__ = ["PoetryLock", "read_poetry_lock"]

_MAIN = "main"


def read_poetry_lock(path: Path, data: Mapping[str, Any]) -> PoetryLock:
    metadata = data.get("metadata", {})
    if "lock-version" not in metadata:
        raise RequirementsError(
            f"{str(path)!r} is not a poetry.lock (no [metadata] lock-version)",
            path=path,
            hint="regenerate it with 'poetry lock'",
        )
    # lock-version 1.x lists the files under [metadata.files], by package name.
    legacy_files: dict[str, list[dict[str, Any]]] = {
        canonicalize_name(k): v for k, v in metadata.get("files", {}).items()
    }
    return PoetryLock(path, tuple(data.get("package", [])), legacy_files)


@dataclass(frozen=True)
class PoetryLock:
    """Poetry 2 records, per package, the groups that need it and the marker under which each
    does (``markers``, a string or a table by group); older locks (no ``groups``) name a
    ``category`` and no markers, so all their packages are taken for every target."""

    path: Path
    packages: tuple[dict[str, Any], ...]
    legacy_files: dict[str, list[dict[str, Any]]]

    @property
    def format(self) -> LockFormat:
        return "poetry.lock"

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        wanted = {_MAIN, *(canonicalize_name(g) for g in selection.groups)}
        chosen = []
        for package in self.packages:
            markers = package.get("markers")
            if package.get("optional", False) and not markers and not selection.extras:
                # Only an extra of the project pulls it in; Poetry 2 says which in the
                # marker (extra == "NAME"), older locks do not.
                continue
            groups = package.get("groups") or [package.get("category", _MAIN)]
            mine = [g for g in groups if canonicalize_name(g) in wanted]
            if not mine:
                continue
            environment, extras = target.environment, selection.extras
            if isinstance(markers, Mapping):
                applies = any(
                    evaluate(markers.get(g), environment, self.path, extras=extras) for g in mine
                )
            else:
                applies = evaluate(markers, environment, self.path, extras=extras)
            if applies:
                chosen.append(self._locked(package))
        return tuple(chosen)

    def _locked(self, package: Mapping[str, Any]) -> LockedPackage:
        name = canonicalize_name(package["name"])
        source = package.get("source", {})
        kind: SourceKind = "index"
        reference = ""
        index_url: str | None = None
        source_type = source.get("type")
        if source_type == "git":
            kind, reference = "vcs", f"git+{source.get('url', '')}"
        elif source_type == "directory":
            kind, reference = "directory", str(self.path.parent / source.get("url", ""))
        elif source_type in ("legacy", "simple"):
            index_url = source.get("url")
        entries = package.get("files") or self.legacy_files.get(name, [])
        files = []
        for entry in entries:
            digest = parse_hash(str(entry["hash"]), self.path) if "hash" in entry else None
            url = entry.get("url")
            if source_type == "url":
                url = url or source.get("url")
            elif source_type == "file":
                url = (self.path.parent / source.get("url", "")).absolute().as_uri()
            files.append(
                LockedFile(
                    str(entry["file"]),
                    url,
                    frozenset({Sha256(digest)}) if digest else frozenset(),
                )
            )
        if source_type in ("url", "file"):
            kind = "url" if source_type == "url" else "path"
        return LockedPackage(
            name=name,
            version=str(package.get("version", "")),
            files=tuple(files),
            source=kind,
            reference=reference,
            index_url=index_url,
            requires_python=None,
            requested=False,
        )
