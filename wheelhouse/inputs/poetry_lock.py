"""``poetry.lock``: packages with their groups, markers and files (names and hashes, no URLs)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
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

__all__ = ["PoetryLock", "poetry_python", "read_poetry_lock"]

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
    python = metadata.get("python-versions")
    return PoetryLock(
        path,
        tuple(data.get("package", [])),
        legacy_files,
        frozenset(str(extra) for extra in data.get("extras", {})),
        poetry_python(str(python)) if python else None,
    )


@dataclass(frozen=True)
class PoetryLock:
    """Poetry 2 records, per package, the groups that need it and the marker under which each
    does (``markers``, a string or a table by group); older locks (no ``groups``) name a
    ``category`` and no markers, so all their packages are taken for every target."""

    path: Path
    packages: tuple[dict[str, Any], ...]
    legacy_files: dict[str, list[dict[str, Any]]]
    # The project's extras, as the lock's [extras] table names them.
    extras: frozenset[str] = frozenset()
    requires_python: str | None = None

    @property
    def format(self) -> LockFormat:
        return "poetry.lock"

    def check(self, selection: Selection) -> None:
        """Groups are those the lock's packages name (``category`` before Poetry 1.2) and
        those of the pyproject.toml beside it (a group may lock nothing of its own)."""
        groups = {_MAIN}
        for package in self.packages:
            groups.update(package.get("groups") or [package.get("category", _MAIN)])
        extras = set(self.extras)
        data = _pyproject(self.path.parent / "pyproject.toml") or {}
        poetry = data.get("tool", {}).get("poetry", {})
        groups.update(poetry.get("group", {}))
        groups.update(data.get("dependency-groups", {}))
        if "dev-dependencies" in poetry:
            groups.add("dev")
        extras.update(poetry.get("extras", {}))
        extras.update(data.get("project", {}).get("optional-dependencies", {}))
        check_selection(
            self.path,
            selection,
            extras=extras,
            groups=groups,
            extras_where="the project's extras (the lock's [extras])",
            groups_where="the project's [tool.poetry.group.NAME] tables",
        )

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        if not any("groups" in p for p in self.packages):
            roots = _project_roots(self.path.parent / "pyproject.toml", selection)
            if roots is not None:
                return self._walk(roots, target)
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

    def _walk(self, roots: list[tuple[str, Any]], target: Target) -> tuple[LockedPackage, ...]:
        """A lock without groups and markers (Poetry 1.x): its packages reachable from the
        project's dependencies (the pyproject.toml beside it) along edges whose markers hold."""
        environment = target.environment
        by_name = {canonicalize_name(p["name"]): p for p in self.packages}
        chosen: dict[str, Mapping[str, Any]] = {}
        seen: set[tuple[str, frozenset[str]]] = set()
        todo = list(roots)
        while todo:
            name, spec = todo.pop()
            for constraint in spec if isinstance(spec, list) else [spec]:
                table = constraint if isinstance(constraint, Mapping) else {}
                if table.get("optional") and not table.get("_asked"):
                    continue
                if not evaluate(table.get("markers"), environment, self.path):
                    continue
                key = canonicalize_name(name)
                extras = frozenset(canonicalize_name(e) for e in table.get("extras", []))
                if key not in by_name or (key, extras) in seen:
                    continue
                seen.add((key, extras))
                package = by_name[key]
                chosen[key] = package
                asked = {
                    canonicalize_name(Requirement(r).name)
                    for extra, reqs in package.get("extras", {}).items()
                    if canonicalize_name(extra) in extras
                    for r in reqs
                    if _valid(r)
                }
                for dep, dep_spec in package.get("dependencies", {}).items():
                    if canonicalize_name(dep) in asked:
                        dep_spec = _asked(dep_spec)
                    todo.append((dep, dep_spec))
        return tuple(self._locked(chosen[name]) for name in sorted(chosen))

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


def _valid(text: str) -> bool:
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def _asked(spec: Any) -> Any:
    """An optional dependency that an extra asked for, so the walk takes it."""
    if isinstance(spec, list):
        return [_asked(s) for s in spec]
    if isinstance(spec, Mapping):
        return {**spec, "_asked": True}
    return spec


def _pyproject(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def poetry_python(constraint: str) -> str | None:
    """Poetry's ``python-versions`` (``^3.9``, ``~3.10``, ``>=3.8,<4.0``, ``3.9.*``,
    ``>=3.8 || ^2.7``) as PEP 440 specifiers, alternatives joined by ``||``; None for any
    Python or a form this does not know (nothing is then checked)."""
    alternatives = []
    for alternative in constraint.split("||"):
        terms = []
        for term in re.split(r"[,\s]+", alternative.replace(", ", ",").strip()):
            if not term or term == "*":
                continue
            converted = _poetry_term(term)
            if converted is None:
                return None
            terms += converted
        if not terms:
            return None  # one alternative allows every Python
        alternatives.append(",".join(terms))
    return " || ".join(alternatives) or None


def _poetry_term(term: str) -> list[str] | None:
    match = re.fullmatch(r"(\^|~=|~|==|!=|>=|<=|>|<|=)?\s*(\d+(?:\.\d+)*)(\.\*)?", term)
    if match is None:
        return None
    operator, version, star = match[1] or "", match[2], match[3] or ""
    parts = [int(p) for p in version.split(".")]
    if operator == "^":
        # The first non-zero part is the one that may not grow.
        index = next((i for i, p in enumerate(parts) if p), len(parts) - 1)
        upper = [*parts[:index], parts[index] + 1]
        return [f">={version}", "<" + ".".join(map(str, upper))]
    if operator == "~":
        upper = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
        return [f">={version}", "<" + ".".join(map(str, upper))]
    if operator in ("", "=", "=="):
        return [f"=={version}{star or '.*'}"] if len(parts) < 3 or star else [f"=={version}"]
    return [f"{operator}{version}{star}"]


def _project_roots(pyproject: Path, selection: Selection) -> list[tuple[str, Any]] | None:
    """The project's direct dependencies as (name, poetry constraint), or None without a
    readable pyproject.toml."""
    data = _pyproject(pyproject)
    if data is None:
        return None
    poetry = data.get("tool", {}).get("poetry", {})
    roots: list[tuple[str, Any]] = []
    tables = [poetry.get("dependencies", {})]
    groups = {canonicalize_name(g) for g in selection.groups}
    for group, table in poetry.get("group", {}).items():
        if canonicalize_name(group) in groups:
            tables.append(table.get("dependencies", {}))
    if "dev" in groups:
        tables.append(poetry.get("dev-dependencies", {}))
    extras = {canonicalize_name(e) for e in selection.extras}
    in_extras = {
        canonicalize_name(name)
        for extra, names in poetry.get("extras", {}).items()
        if canonicalize_name(extra) in extras
        for name in names
    }
    for table in tables:
        for name, spec in table.items():
            if canonicalize_name(name) == "python":
                continue
            roots.append((name, _asked(spec) if canonicalize_name(name) in in_extras else spec))
    project = data.get("project", {})
    texts = list(project.get("dependencies", []))
    for extra, reqs in project.get("optional-dependencies", {}).items():
        if canonicalize_name(extra) in extras:
            texts += reqs
    for text in texts:
        if _valid(text):
            req = Requirement(text)
            entry: dict[str, Any] = {"extras": sorted(req.extras)}
            if req.marker is not None:
                entry["markers"] = str(req.marker)
            roots.append((req.name, entry))
    return roots if roots else None
