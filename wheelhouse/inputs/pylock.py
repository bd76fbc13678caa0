"""PEP 751 ``pylock.toml`` / ``pylock.*.toml``, read and selected with ``packaging.pylock``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.pylock import (
    PackageArchive,
    PackageDirectory,
    PackageSdist,
    PackageVcs,
    PackageWheel,
    Pylock,
    PylockSelectError,
    PylockValidationError,
)

from wheelhouse._base.targets import Target
from wheelhouse.errors import IncompatibleError, RequirementsError
from wheelhouse.house.manifest import Sha256
from wheelhouse.inputs.lock import (
    LockedFile,
    LockedPackage,
    LockFormat,
    Selection,
    SourceKind,
    check_selection,
)

__all__ = ["PylockFile", "read_pylock"]


def read_pylock(path: Path, data: Mapping[str, Any]) -> PylockFile:
    """Validate ``data`` (the parsed TOML of ``path``) as a PEP 751 lock."""
    try:
        lock = Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise RequirementsError(
            f"{str(path)!r} is not a valid PEP 751 lock file: {exc}",
            path=path,
            hint="regenerate it with the tool that wrote it (pip lock, uv export, pdm export)",
        ) from exc
    return PylockFile(path, lock)


@dataclass(frozen=True)
class PylockFile:
    """A PEP 751 lock: markers, extras, groups and the file choice are the spec's own
    (``Pylock.select``), evaluated for each target's environment and tags."""

    path: Path
    lock: Pylock

    @property
    def format(self) -> LockFormat:
        return "pylock"

    @property
    def requires_python(self) -> str | None:
        return str(self.lock.requires_python) if self.lock.requires_python else None

    def check(self, selection: Selection) -> None:
        check_selection(
            self.path,
            selection,
            extras=[str(e) for e in self.lock.extras or ()],
            groups=[str(g) for g in self.lock.dependency_groups or ()],
            extras_where="the lock's extras",
            groups_where="the lock's dependency-groups",
        )

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        try:
            chosen = list(
                self.lock.select(
                    environment=target.environment,  # type: ignore[arg-type]
                    tags=target.tags,
                    extras=selection.extras,
                    dependency_groups=selection.groups or None,
                )
            )
        except PylockSelectError as exc:
            raise IncompatibleError(
                f"{str(self.path)!r} cannot be installed on target {target.name!r}: {exc}",
                hint="lock for this target too (its environments, wheels and extras), or "
                "drop the target",
            ) from exc
        return tuple(self._package(package, dist) for package, dist in chosen)

    def _package(
        self,
        package: Any,
        dist: PackageVcs | PackageDirectory | PackageArchive | PackageWheel | PackageSdist,
    ) -> LockedPackage:
        version = str(package.version) if package.version is not None else ""
        source: SourceKind = "index"
        reference = ""
        files: tuple[LockedFile, ...] = ()
        if isinstance(dist, PackageVcs):
            source, reference = "vcs", f"{dist.type}+{dist.url or dist.path}"
        elif isinstance(dist, PackageDirectory):
            source, reference = "directory", str(self.path.parent / dist.path)
        elif isinstance(dist, PackageArchive):
            source = "url" if dist.url else "path"
            where = dist.url or (self.path.parent / (dist.path or "")).absolute().as_uri()
            filename = where.split("#", 1)[0].rsplit("/", 1)[-1]
            files = (LockedFile(filename, where, _sha256(dist.hashes), _uploaded(dist)),)
        else:
            url = dist.url or (
                (self.path.parent / dist.path).absolute().as_uri() if dist.path else None
            )
            files = (LockedFile(dist.filename, url, _sha256(dist.hashes), _uploaded(dist)),)
            if not dist.url and dist.path:
                source = "path"
        return LockedPackage(
            name=package.name,
            version=version,
            files=files,
            source=source,
            reference=reference,
            index_url=package.index,
            requires_python=str(package.requires_python) if package.requires_python else None,
            # The lock says which packages are installed, not which were asked for.
            requested=True,
        )


def _sha256(hashes: Mapping[str, str]) -> frozenset[Sha256]:
    digest = hashes.get("sha256")
    return frozenset({Sha256(digest.lower())}) if digest else frozenset()


def _uploaded(dist: object) -> str | None:
    """The ``upload-time`` a pylock records for a file (PEP 751), as RFC 3339 text."""
    moment = getattr(dist, "upload_time", None)
    return moment.isoformat() if isinstance(moment, datetime) else None
