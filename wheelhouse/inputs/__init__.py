"""The inputs ``wheelhouse build -r`` takes besides requirement files: lock files and
``pyproject.toml``, recognised by name and content, each read by its own module."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from wheelhouse.errors import RequirementsError
from wheelhouse.inputs.lock import Lock, LockedFile, LockedPackage, Selection

__all__ = [
    "InputKind",
    "Lock",
    "LockedFile",
    "LockedPackage",
    "Selection",
    "input_kind",
    "read_lock",
]

InputKind = Literal[
    "requirements", "pyproject", "pylock", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"
]

_BY_NAME: dict[str, InputKind] = {
    "pyproject.toml": "pyproject",
    "uv.lock": "uv.lock",
    "poetry.lock": "poetry.lock",
    "pdm.lock": "pdm.lock",
    "Pipfile.lock": "Pipfile.lock",
}


def input_kind(path: Path) -> InputKind:
    """What ``path`` is: by its name first, else by its content (a renamed lock still reads)."""
    if path.name in _BY_NAME:
        return _BY_NAME[path.name]
    if path.suffix not in (".toml", ".lock", ".json"):
        return "requirements"
    # Imported here: packaging.pylock (its dataclasses) costs 5-10 ms of every build's
    # startup, and only a lock's name needs it (a pylock's name ends in .toml).
    from packaging.pylock import is_valid_pylock_path

    if is_valid_pylock_path(path):
        return "pylock"
    try:
        data = _parse(path)
    except RequirementsError:
        return "requirements"
    return _kind_of(data)


def _kind_of(data: Mapping[str, Any]) -> InputKind:
    metadata = data.get("metadata", {})
    if "lock-version" in data and "packages" in data:
        return "pylock"
    if "version" in data and isinstance(data.get("package"), list) and "metadata" not in data:
        return "uv.lock"
    if isinstance(metadata, Mapping) and "lock-version" in metadata:
        return "poetry.lock"
    if isinstance(metadata, Mapping) and "lock_version" in metadata:
        return "pdm.lock"
    if isinstance(data.get("_meta"), Mapping):
        return "Pipfile.lock"
    if "project" in data or "dependency-groups" in data or "build-system" in data:
        return "pyproject"
    return "requirements"


def read_lock(path: Path, kind: InputKind, selection: Selection | None = None) -> Lock:
    """Read a lock file of ``kind`` (not ``requirements`` or ``pyproject``), and check that
    it has the extras and groups of ``selection``."""
    from wheelhouse.inputs.pdm_lock import read_pdm_lock
    from wheelhouse.inputs.pipfile_lock import read_pipfile_lock
    from wheelhouse.inputs.poetry_lock import read_poetry_lock
    from wheelhouse.inputs.pylock import read_pylock
    from wheelhouse.inputs.uv_lock import read_uv_lock

    readers: dict[str, Callable[[Path, Mapping[str, Any]], Lock]] = {
        "pylock": read_pylock,
        "uv.lock": read_uv_lock,
        "poetry.lock": read_poetry_lock,
        "pdm.lock": read_pdm_lock,
        "Pipfile.lock": read_pipfile_lock,
    }
    data = _parse(path)
    try:
        lock = readers[kind](path, data)
        if selection is not None:
            lock.check(selection)
        return lock
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RequirementsError(
            f"{str(path)!r} is not a {kind} this version can read: {exc!r}",
            path=path,
            hint="regenerate it with the tool that wrote it",
        ) from exc


def _parse(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RequirementsError(f"cannot read {str(path)!r}: {exc}", path=path) from exc
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise RequirementsError(
            f"{str(path)!r} cannot be parsed: {exc}",
            path=path,
            hint="regenerate it with the tool that wrote it",
        ) from exc
    if not isinstance(data, dict):
        raise RequirementsError(f"{str(path)!r} is not a lock file", path=path)
    return data
