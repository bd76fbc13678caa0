"""``pyproject.toml`` as an input: ``[project]`` dependencies, extras and PEP 735 groups.

A pyproject names requirements, not pins: they are written out as a requirements file that
pip (or uv, for foreign targets) resolves like any loose input.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.dependency_groups import resolve_dependency_groups
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from wheelhouse.errors import RequirementsError
from wheelhouse.inputs.lock import Selection

__all__ = ["pyproject_requirements", "pyproject_requires_python", "write_pyproject_requirements"]


def pyproject_requirements(path: Path, selection: Selection) -> list[str]:
    """The requirements of ``path``'s project, with the extras and groups asked for."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RequirementsError(
            f"{str(path)!r} cannot be read as TOML: {exc}", path=path, hint="fix the file"
        ) from exc
    project: Mapping[str, Any] = data.get("project", {})
    if "dependencies" in project.get("dynamic", []):
        raise RequirementsError(
            f"{str(path)!r} declares its dependencies dynamic: only its build backend knows them",
            path=path,
            hint="pass a lock or requirements file, or list the dependencies in [project]",
        )
    if not project and "dependency-groups" not in data:
        raise RequirementsError(
            f"{str(path)!r} has no [project] table and no [dependency-groups]",
            path=path,
            hint="pass the lock file your tool writes (poetry.lock, pdm.lock, uv.lock) instead",
        )
    found = [(str(r), "[project] dependencies") for r in project.get("dependencies", [])]
    optional = {
        canonicalize_name(k): v for k, v in project.get("optional-dependencies", {}).items()
    }
    for extra in sorted(selection.extras):
        name = canonicalize_name(extra)
        if name not in optional:
            raise RequirementsError(
                f"{str(path)!r} has no extra {extra!r} (it has: "
                f"{', '.join(sorted(optional)) or 'none'})",
                path=path,
                hint="check the --extra name against [project.optional-dependencies]",
            )
        found += [(str(r), f"[project.optional-dependencies] {extra}") for r in optional[name]]
    groups = data.get("dependency-groups", {})
    if selection.groups:
        known = {canonicalize_name(g) for g in groups}
        unknown = sorted(g for g in selection.groups if canonicalize_name(g) not in known)
        if unknown:
            raise RequirementsError(
                f"{str(path)!r} has no dependency group {unknown[0]!r} (it has: "
                f"{', '.join(sorted(groups)) or 'none'})",
                path=path,
                hint="check the --group name against [dependency-groups]",
            )
        try:
            resolved = resolve_dependency_groups(groups, *sorted(selection.groups))
        except (ValueError, TypeError, LookupError) as exc:
            raise RequirementsError(
                f"{str(path)!r} has invalid [dependency-groups]: {exc}",
                path=path,
                hint="fix the groups (PEP 735)",
            ) from exc
        found += [(r, "[dependency-groups]") for r in resolved]
    requirements = []
    for text, where in found:
        try:
            requirements.append(str(Requirement(text)))
        except InvalidRequirement as exc:
            raise RequirementsError(
                f"{str(path)!r}: {where}: invalid requirement {text!r}: {exc}",
                path=path,
                hint="requirements use PEP 508, e.g. 'requests>=2.31'",
            ) from exc
    if not requirements:
        raise RequirementsError(
            f"{str(path)!r} has no dependencies"
            + (
                " in the extras and groups asked for"
                if selection.extras or selection.groups
                else ""
            ),
            path=path,
            hint="add dependencies, or pass --extra NAME / --group NAME",
        )
    return requirements


def write_pyproject_requirements(path: Path, selection: Selection, scratch: Path) -> Path:
    """A requirements file in ``scratch`` holding ``path``'s requirements, for the resolver."""
    lines = pyproject_requirements(path, selection)
    out = scratch / f"pyproject-{len(list(scratch.iterdir()))}.txt"
    out.write_text(f"# from {path}\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return out


def pyproject_requires_python(path: Path) -> str | None:
    """``[project] requires-python`` of ``path``, or None (read after the requirements, so
    the file is known to parse)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = data.get("project", {}).get("requires-python")
    return str(value) if value else None
