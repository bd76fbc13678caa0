"""``Pipfile.lock`` (pipenv): pins with markers and hashes, but no file names or URLs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

__all__ = ["PipfileLock", "read_pipfile_lock"]

_DEFAULT = "default"
# Pipfile's [dev-packages] are the lock's "develop" section: --group dev (or develop) adds them.
_DEVELOP = {"dev", "develop", "dev-packages"}


def read_pipfile_lock(path: Path, data: Mapping[str, Any]) -> PipfileLock:
    meta = data.get("_meta")
    if not isinstance(meta, Mapping) or "pipfile-spec" not in meta:
        raise RequirementsError(
            f"{str(path)!r} is not a Pipfile.lock (no _meta.pipfile-spec)",
            path=path,
            hint="regenerate it with 'pipenv lock'",
        )
    sources = {s.get("name"): s.get("url") for s in meta.get("sources", []) if "name" in s}
    return PipfileLock(path, dict(data), sources)


@dataclass(frozen=True)
class PipfileLock:
    path: Path
    data: dict[str, Any]
    sources: dict[str, str]

    @property
    def format(self) -> LockFormat:
        return "Pipfile.lock"

    @property
    def requires_python(self) -> str | None:
        """Pipfile's ``[requires] python_version`` (a minor version) or
        ``python_full_version``, which pipenv installs with."""
        requires = self.data.get("_meta", {}).get("requires", {})
        if requires.get("python_full_version"):
            return f"=={requires['python_full_version']}"
        if requires.get("python_version"):
            return f"=={requires['python_version']}.*"
        return None

    def check(self, selection: Selection) -> None:
        check_selection(
            self.path,
            selection,
            extras=(),
            groups=sorted({_DEFAULT, *_DEVELOP}),
            extras_where="the Pipfile (a Pipfile has no extras of its own)",
            groups_where="the Pipfile's sections: [dev-packages] is --group dev",
        )

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        sections = [_DEFAULT]
        if {canonicalize_name(g) for g in selection.groups} & _DEVELOP:
            sections.append("develop")
        chosen: dict[str, LockedPackage] = {}
        for section in sections:
            for name, entry in sorted(self.data.get(section, {}).items()):
                if evaluate(entry.get("markers"), target.environment, self.path):
                    chosen.setdefault(canonicalize_name(name), self._locked(name, entry))
        return tuple(chosen.values())

    def _locked(self, name: str, entry: Mapping[str, Any]) -> LockedPackage:
        kind: SourceKind = "index"
        reference = ""
        for vcs in ("git", "hg", "svn", "bzr"):
            if vcs in entry:
                kind, reference = "vcs", f"{vcs}+{entry[vcs]}"
        if "path" in entry or "file" in entry:
            kind, reference = "directory", str(entry.get("path") or entry.get("file"))
        digests = {
            digest
            for value in entry.get("hashes", [])
            if (digest := parse_hash(str(value), self.path)) is not None
        }
        version = str(entry.get("version", "")).removeprefix("==")
        files = (LockedFile(None, None, frozenset(Sha256(d) for d in digests)),)
        return LockedPackage(
            name=canonicalize_name(name),
            version=version,
            files=files if kind == "index" else (),
            source=kind,
            reference=reference,
            index_url=self.sources.get(entry.get("index", "")),
            requested=False,
        )
