"""``uv.lock``: uv's own lock, walked from the project's dependencies with markers per target.

uv.lock records markers on dependency edges, not on packages, so a target's packages are those
reachable from the workspace members through edges whose markers hold for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse._base.targets import Target
from wheelhouse._base.words import count
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

__all__ = ["UvLock", "read_uv_lock"]

_ROOT_SOURCES = ("editable", "virtual")
_HINT = "regenerate it with 'uv lock'"


def read_uv_lock(path: Path, data: Mapping[str, Any]) -> UvLock:
    packages = data.get("package")
    if not isinstance(packages, list) or "version" not in data:
        raise RequirementsError(
            f"{str(path)!r} is not a uv.lock (no 'version' and '[[package]]' tables)",
            path=path,
            hint=_HINT,
        )
    if data["version"] != 1:
        raise RequirementsError(
            f"{str(path)!r} is a uv.lock of version {data['version']!r}; this wheelhouse "
            "reads version 1",
            path=path,
            hint="upgrade wheelhouse, or lock with a uv that writes version 1",
        )
    manifest = data.get("manifest", {})
    members = {canonicalize_name(m) for m in manifest.get("members", [])}
    # A workspace root that is no project keeps its dependency groups here, as requirements
    # (name, specifier, marker) that the lock's packages satisfy.
    groups = {
        canonicalize_name(group): tuple(entries)
        for group, entries in manifest.get("dependency-groups", {}).items()
    }
    requires_python = data.get("requires-python")
    return UvLock(
        path,
        tuple(packages),
        frozenset(members),
        groups,
        str(requires_python) if requires_python else None,
    )


@dataclass(frozen=True)
class UvLock:
    """``--extra`` and ``--group`` select from the workspace's own packages (their
    ``optional-dependencies`` and ``dev-dependencies``) and from a non-project root's
    ``[manifest.dependency-groups]``. Only what is asked is taken, as ``uv export --no-dev``
    does: a wheelhouse is what a deployment installs, and ``dev`` is a group like any other."""

    path: Path
    packages: tuple[dict[str, Any], ...]
    members: frozenset[NormalizedName]
    root_groups: dict[NormalizedName, tuple[dict[str, Any], ...]]
    requires_python: str | None

    @property
    def format(self) -> LockFormat:
        return "uv.lock"

    def check(self, selection: Selection) -> None:
        extras: set[str] = set()
        groups: set[str] = set(self.root_groups)
        for root in self.packages:
            if not self._is_root(root):
                continue
            metadata = root.get("metadata", {})
            extras.update(root.get("optional-dependencies", {}))
            extras.update(metadata.get("provides-extras", []))
            groups.update(root.get("dev-dependencies", {}))
            groups.update(metadata.get("requires-dev", {}))
        check_selection(
            self.path,
            selection,
            extras=extras,
            groups=groups,
            extras_where="the projects' [project.optional-dependencies]",
            groups_where="the projects' [dependency-groups]",
        )

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        by_name: dict[NormalizedName, list[dict[str, Any]]] = {}
        for package in self.packages:
            by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
        roots = [p for p in self.packages if self._is_root(p)]
        groups = {canonicalize_name(g) for g in selection.groups}
        if not roots and not groups & set(self.root_groups):
            raise RequirementsError(
                f"{str(self.path)!r} has no project package (a source of 'editable' or "
                "'virtual', or a [manifest] member) to start from",
                path=self.path,
                hint=_HINT,
            )
        environment = target.environment
        extras = {canonicalize_name(e) for e in selection.extras}
        chosen: dict[tuple[NormalizedName, str], dict[str, Any]] = {}
        requested: set[NormalizedName] = set()
        todo: list[tuple[dict[str, Any], frozenset[str]]] = []
        for root in roots:
            edges = list(root.get("dependencies", []))
            for extra, deps in root.get("optional-dependencies", {}).items():
                if canonicalize_name(extra) in extras:
                    edges += deps
            for group, deps in root.get("dev-dependencies", {}).items():
                if canonicalize_name(group) in groups:
                    edges += deps
            for edge in edges:
                for dep, dep_extras in self._follow(edge, by_name, environment):
                    requested.add(canonicalize_name(dep["name"]))
                    todo.append((dep, dep_extras))
        for group in sorted(groups & set(self.root_groups)):
            for requirement in self.root_groups[group]:
                for dep, dep_extras in self._satisfying(requirement, by_name, environment):
                    requested.add(canonicalize_name(dep["name"]))
                    todo.append((dep, dep_extras))
        seen: set[tuple[NormalizedName, str, frozenset[str]]] = set()
        while todo:
            package, package_extras = todo.pop()
            name = canonicalize_name(package["name"])
            key = (name, str(package.get("version", "")), package_extras)
            if key in seen:
                continue
            seen.add(key)
            if self._is_root(package):
                continue  # a workspace member depending on another: not a pinned file
            chosen[(name, key[1])] = package
            edges = list(package.get("dependencies", []))
            for extra in package_extras:
                edges += package.get("optional-dependencies", {}).get(extra, [])
            for edge in edges:
                todo.extend(self._follow(edge, by_name, environment))
        return tuple(self._locked(package, requested) for _, package in sorted(chosen.items()))

    def _is_root(self, package: Mapping[str, Any]) -> bool:
        source = package.get("source", {})
        if canonicalize_name(package["name"]) in self.members:
            return True
        return any(source.get(kind) == "." for kind in _ROOT_SOURCES)

    def _follow(
        self,
        edge: Mapping[str, Any],
        by_name: Mapping[NormalizedName, list[dict[str, Any]]],
        environment: Mapping[str, str],
    ) -> list[tuple[dict[str, Any], frozenset[str]]]:
        if not evaluate(edge.get("marker"), environment, self.path):
            return []
        name = canonicalize_name(edge["name"])
        candidates = by_name.get(name, [])
        if "version" in edge:
            candidates = [c for c in candidates if str(c.get("version")) == str(edge["version"])]
        if "source" in edge and len(candidates) > 1:
            candidates = [c for c in candidates if c.get("source") == edge["source"]]
        if len(candidates) != 1:
            raise RequirementsError(
                f"{str(self.path)!r}: a dependency on {edge['name']!r} matches "
                f"{count(len(candidates), 'package')} of the lock",
                path=self.path,
                hint=_HINT,
            )
        extras = frozenset(canonicalize_name(e) for e in edge.get("extra", []))
        return [(candidates[0], extras)]

    def _satisfying(
        self,
        requirement: Mapping[str, Any],
        by_name: Mapping[NormalizedName, list[dict[str, Any]]],
        environment: Mapping[str, str],
    ) -> list[tuple[dict[str, Any], frozenset[str]]]:
        """The package of the lock that a root group's requirement takes on this target: the
        one version that its specifier allows and whose resolution fork holds here."""
        if not evaluate(requirement.get("marker"), environment, self.path):
            return []
        name = canonicalize_name(requirement["name"])
        try:
            specifier = SpecifierSet(str(requirement.get("specifier", "")))
        except InvalidSpecifier as exc:
            raise RequirementsError(
                f"{str(self.path)!r}: a dependency group requirement on {requirement['name']!r} "
                f"has an invalid specifier: {exc}",
                path=self.path,
                hint=_HINT,
            ) from exc
        candidates = [
            c
            for c in by_name.get(name, [])
            if "version" not in c or specifier.contains(str(c["version"]), prereleases=True)
        ]
        if len(candidates) > 1:
            candidates = [
                c
                for c in candidates
                if any(
                    evaluate(m, environment, self.path) for m in c.get("resolution-markers", [""])
                )
            ]
        if len(candidates) != 1:
            raise RequirementsError(
                f"{str(self.path)!r}: the dependency group requirement on "
                f"{requirement['name']!r} matches {count(len(candidates), 'package')} of the lock",
                path=self.path,
                hint=_HINT,
            )
        extras = requirement.get("extras", requirement.get("extra", []))
        return [(candidates[0], frozenset(canonicalize_name(e) for e in extras))]

    def _locked(self, package: Mapping[str, Any], requested: set[NormalizedName]) -> LockedPackage:
        name = canonicalize_name(package["name"])
        source = package.get("source", {})
        kind: SourceKind = "index"
        reference = ""
        index_url: str | None = None
        if "git" in source:
            kind, reference = "vcs", f"git+{source['git']}"
        elif "directory" in source or "editable" in source or "virtual" in source:
            where = source.get("directory") or source.get("editable") or source.get("virtual")
            kind, reference = "directory", str(self.path.parent / where)
        elif "url" in source:
            kind = "url"
        elif "path" in source:
            kind = "path"
        elif "registry" in source:
            registry = str(source["registry"])
            index_url = (
                registry if "://" in registry else (self.path.parent / registry).absolute().as_uri()
            )
        files = [package["sdist"]] if "sdist" in package else []
        files += package.get("wheels", [])
        return LockedPackage(
            name=name,
            version=str(package.get("version", "")),
            files=tuple(self._file(entry, source) for entry in files),
            source=kind,
            reference=reference,
            index_url=index_url,
            requires_python=None,
            requested=name in requested,
        )

    def _file(self, entry: Mapping[str, Any], source: Mapping[str, Any]) -> LockedFile:
        if "url" in entry:
            url = str(entry["url"])
        elif "path" in entry:
            base = self.path.parent
            if "path" in source and not str(entry["path"]).startswith("/"):
                base = base / str(source["path"])
                base = base if base.is_dir() else base.parent
            url = (base / str(entry["path"])).absolute().as_uri()
        elif "url" in source:
            url = str(source["url"])
        elif "path" in source:
            url = (self.path.parent / str(source["path"])).absolute().as_uri()
        else:
            url = ""
        filename = str(entry.get("filename") or unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
        digest = parse_hash(str(entry["hash"]), self.path) if "hash" in entry else None
        uploaded = entry.get("upload-time")
        if isinstance(uploaded, datetime):  # an unquoted TOML date-time
            uploaded = uploaded.isoformat()
        return LockedFile(
            filename or None,
            url or None,
            frozenset({Sha256(digest)}) if digest else frozenset(),
            str(uploaded) if uploaded is not None else None,
        )
