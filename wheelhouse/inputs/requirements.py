"""Read the user's requirements and constraints files: validate them and collect their hashes."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse._base._pip import RequirementFileError, RequirementLine, read_requirement_file
from wheelhouse._base.files import sha256_file
from wheelhouse._base.targets import HOST, Target, parse_target
from wheelhouse._base.urls import file_url_path
from wheelhouse.errors import IncompatibleError, RequirementsError, UsageError
from wheelhouse.house.manifest import InputFile, Sha256
from wheelhouse.inputs import InputKind, Lock, Selection, input_kind, read_lock
from wheelhouse.inputs.lock import python_allows, vcs_url

__all__ = ["InputSet", "read_inputs"]

_HINT = "fix the line: requirements use pip's syntax (PEP 508, e.g. 'requests>=2.31')"


@dataclass(frozen=True)
class InputSet:
    """What the user asked for, as read from their files."""

    requirements: tuple[Path, ...]
    constraints: tuple[Path, ...]
    lines: tuple[RequirementLine, ...]
    files: tuple[InputFile, ...]
    # sha256 digests the user pinned, per project: fetched files must match one of them.
    hashes: dict[NormalizedName, frozenset[Sha256]]
    # A lock file given as the one input: its pins are taken as they are (build/locked.py).
    lock: Lock | None = None
    selection: Selection = field(default_factory=Selection)
    # The Pythons each input says it is for (a lock's requires-python, a pyproject's), by file.
    requires_python: tuple[tuple[Path, str], ...] = ()

    def check_python(self, target: Target) -> None:
        """Raise :class:`IncompatibleError` when an input is not for ``target``'s Python,
        before any file is looked for (each would otherwise look missing)."""
        environment = target.environment
        minor = environment["python_version"]
        # A foreign target's patch level is unknown: any of its minor version will do.
        versions = (
            [environment["python_full_version"]]
            if target.is_host
            else [f"{minor}.0", f"{minor}.999"]
        )
        version = environment["python_full_version"] if target.is_host else minor
        for path, spec in self.requires_python:
            if any(python_allows(spec, v) is not False for v in versions):
                continue
            suggestion = _python_target(spec, target)
            instead = f"build for a Python it allows (--target {suggestion})" if suggestion else ""
            what = "widen its requires-python" if path.name == "pyproject.toml" else "lock again"
            raise IncompatibleError(
                f"{str(path)!r} requires Python {spec}; the target {target.name!r} is "
                f"Python {version}",
                hint=f"{instead + ', or ' if instead else ''}{what} to include Python {minor}",
            )

    @classmethod
    def of_pins(
        cls,
        pins: Sequence[tuple[str, str]],
        *,
        source: Path,
        hashes: Mapping[NormalizedName, frozenset[Sha256]],
    ) -> InputSet:
        """A resolver's answer (name, version pairs) as input: one ``name==version`` line
        each, as if read from ``source`` (which need not exist), bound by ``hashes``."""
        lines = tuple(
            RequirementLine(f"{name}=={version}", source, number, False, False, {})
            for number, (name, version) in enumerate(pins, start=1)
        )
        return cls((), (), lines, (), dict(hashes))

    def requested(self) -> list[Requirement]:
        """The requirements (not constraints) that parse as PEP 508 (paths and bare URLs
        do not), markers not yet evaluated."""
        found = []
        for line in self.lines:
            if line.constraint:
                continue
            try:
                found.append(Requirement(line.requirement))
            except InvalidRequirement:
                continue
        return found


def read_inputs(
    requirements: tuple[Path, ...],
    constraints: tuple[Path, ...],
    *,
    selection: Selection | None = None,
    scratch: Path | None = None,
) -> InputSet:
    """Read and check every requirements and constraints file, nested ones included.

    A lock file (``pylock.toml``, ``uv.lock``, ...) must be the only input; a
    ``pyproject.toml`` is written out as a requirements file into ``scratch``.
    """
    selection = selection or Selection()
    for path in requirements:
        _check_readable(path, False)
    kinds = {path: input_kind(path) for path in requirements}
    locks = [path for path, kind in kinds.items() if kind not in ("requirements", "pyproject")]
    if locks:
        return _read_lock(locks[0], kinds[locks[0]], requirements, constraints, selection)
    if (selection.extras or selection.groups) and "pyproject" not in kinds.values():
        raise UsageError(
            "--extra and --group select from a pyproject.toml or a lock file, and none was given",
            hint="pass -r pyproject.toml (or a lock file) with them",
        )
    originals = requirements
    if "pyproject" in kinds.values():
        from wheelhouse.inputs.pyproject import (
            pyproject_requires_python,
            write_pyproject_requirements,
        )

        if scratch is None:
            raise UsageError(
                "a pyproject.toml is an input of 'wheelhouse build' only",
                hint="pass a requirements file here",
            )
        requirements = tuple(
            write_pyproject_requirements(path, selection, scratch) if kind == "pyproject" else path
            for path, kind in kinds.items()
        )
    lines: list[RequirementLine] = []
    for path, is_constraint in [(p, False) for p in requirements] + [
        (p, True) for p in constraints
    ]:
        _check_readable(path, is_constraint)
        try:
            lines += read_requirement_file(path, constraint=is_constraint)
        except RequirementFileError as exc:
            raise _explain(exc, path) from exc
    for line in lines:
        _check_line(line)
    if not any(not line.constraint for line in lines):
        names = ", ".join(repr(str(p)) for p in requirements)
        raise RequirementsError(
            f"no requirements in {names}",
            hint="add at least one requirement line, e.g. 'requests>=2.31'",
        )
    derived = {p.absolute() for p in set(requirements) - set(originals)}
    return InputSet(
        requirements=requirements,
        constraints=constraints,
        lines=tuple(lines),
        files=_input_files(
            originals,
            constraints,
            [line for line in lines if line.path.absolute() not in derived],
        ),
        hashes=_hashes(lines),
        selection=selection,
        requires_python=tuple(
            (path, spec)
            for path, kind in kinds.items()
            if kind == "pyproject" and (spec := pyproject_requires_python(path))
        ),
    )


def _read_lock(
    path: Path,
    kind: InputKind,
    requirements: tuple[Path, ...],
    constraints: tuple[Path, ...],
    selection: Selection,
) -> InputSet:
    if len(requirements) > 1 or constraints:
        raise RequirementsError(
            f"{str(path)!r} is a lock file ({kind}): it must be the only input, with no "
            "other -r files and no -c constraints",
            path=path,
            hint="build each lock into its own wheelhouse (and 'wheelhouse merge' them)",
        )
    lock = read_lock(path, kind, selection)
    return InputSet(
        requirements=requirements,
        constraints=(),
        lines=(),
        files=_input_files(requirements, (), []),
        hashes={},
        lock=lock,
        selection=selection,
        requires_python=((path, lock.requires_python),) if lock.requires_python else (),
    )


def _python_target(spec: str, target: Target) -> str | None:
    """A ``--target`` on the same platform with the oldest CPython that ``spec`` allows."""
    minor = next((m for m in range(9, 16) if python_allows(spec, f"3.{m}.0")), None)
    if minor is None:
        return None
    # The host's most specific platform that --target takes (not linux_x86_64, say).
    platforms = [target.platform] if target.platform else [t.platform for t in HOST.tags]
    for platform in dict.fromkeys(platforms):
        try:
            return parse_target(f"cp3{minor}-{platform}").name
        except UsageError:
            continue
    return None


def _check_readable(path: Path, is_constraint: bool) -> None:
    kind = "constraints" if is_constraint else "requirements"
    if not path.exists():
        raise RequirementsError(
            f"{kind} file {str(path)!r} does not exist", path=path, hint="check the path"
        )
    if path.is_dir():
        raise RequirementsError(
            f"{kind} file {str(path)!r} is a directory",
            path=path,
            hint="pass a requirements file, e.g. -r requirements.txt",
        )
    if not os.access(path, os.R_OK):
        raise RequirementsError(f"{kind} file {str(path)!r} cannot be read (permission denied)")


_LINE_INFO = re.compile(r"\(from line (\d+) of (.+?)\)")


def _explain(exc: RequirementFileError, path: Path) -> RequirementsError:
    text = str(exc)
    first = text.splitlines()[0] if text else "cannot be parsed"
    detail = [ln.split("error:", 1)[1].strip() for ln in text.splitlines() if "error:" in ln]
    match = _LINE_INFO.search(text)
    where = f"{match[2]}:{match[1]}" if match else str(path)
    source, line = path, None
    bad = _INVALID.match(text)
    if match is None and bad is not None:
        # pip names the offending option line but not where it is: find it.
        found = _find_logical_line(path, bad["line"].strip(), set())
        if found is not None:
            source, line = found
            where = f"{source}:{line}"
            first = "invalid option line " + repr(bad["line"].strip())
    message = f"{where}: {first}" + (f" ({detail[0]})" if detail else "")
    return RequirementsError(message, path=source, line=line, hint=_HINT)


_INVALID = re.compile(r"Invalid requirement: (?P<line>.*)")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_NESTED = re.compile(r"^(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+)(?P<path>\S+)$")


def _find_logical_line(path: Path, wanted: str, seen: set[Path]) -> tuple[Path, int] | None:
    """Where pip's logical line ``wanted`` starts, in ``path`` or a file it nests."""
    path = path.absolute()
    if path in seen:
        return None
    seen.add(path)
    try:
        raw_lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(raw_lines, 1):
        if not parts:
            start = number
        text = _COMMENT.sub("", raw)
        if text.endswith("\\"):
            parts.append(text[:-1])
            continue
        logical = ("".join(parts) + text).strip()
        parts = []
        if logical == wanted:
            return path, start
        nested = _NESTED.match(logical)
        if nested is not None:
            found = _find_logical_line(path.parent / nested["path"], wanted, seen)
            if found is not None:
                return found
    return None


def _check_line(line: RequirementLine) -> None:
    text = line.requirement.strip()
    if line.editable:
        raise RequirementsError(
            f"{line.path}:{line.line}: editable requirement {text!r} cannot go in a wheelhouse",
            path=line.path,
            line=line.line,
            hint="build a wheel or sdist of the project and require it by name or path",
        )
    if (url := vcs_url(text)) is not None:
        raise RequirementsError(
            f"{line.path}:{line.line}: {text!r} comes from version control ({url}), which a "
            "wheelhouse cannot pin by hash",
            path=line.path,
            line=line.line,
            hint="build a wheel or sdist of it (or publish a release) and require that instead",
        )
    if _is_path_or_url(text):
        return
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise RequirementsError(
            f"{line.path}:{line.line}: invalid requirement {text!r}: {reason}",
            path=line.path,
            line=line.line,
            hint=_HINT,
        ) from exc


def _is_path_or_url(text: str) -> bool:
    # pip also takes bare archive paths and URLs, which are not PEP 508 requirements.
    if "://" in text.split(" ", 1)[0]:
        return True
    head = text.split(";", 1)[0].strip()
    return head.endswith((".whl", ".tar.gz", ".zip")) or head.startswith((".", "/", "~"))


def _hashes(lines: list[RequirementLine]) -> dict[NormalizedName, frozenset[Sha256]]:
    found: dict[NormalizedName, set[Sha256]] = {}
    for line in lines:
        digests = list(line.hashes.get("sha256", ()))
        try:
            req = Requirement(line.requirement)
        except InvalidRequirement:
            continue
        if req.url and "#" in req.url:
            # A direct URL's own '#sha256=' is a pin too: its file is checked against it.
            fragment = dict(
                pair.split("=", 1) for pair in req.url.split("#", 1)[1].split("&") if "=" in pair
            )
            digests += [fragment["sha256"]] if "sha256" in fragment else []
        if digests:
            found.setdefault(canonicalize_name(req.name), set()).update(
                Sha256(d.lower()) for d in digests
            )
    return {name: frozenset(d) for name, d in found.items()}


def _input_files(
    requirements: tuple[Path, ...], constraints: tuple[Path, ...], lines: list[RequirementLine]
) -> tuple[InputFile, ...]:
    seen: dict[Path, InputFile] = {}
    ordered = [(p, False) for p in requirements] + [(p, True) for p in constraints]
    ordered += [(line.path, line.constraint) for line in lines]
    for path, is_constraint in ordered:
        resolved = path.absolute()
        if resolved in seen or not resolved.is_file():
            continue
        seen[resolved] = InputFile(
            path=str(resolved),
            sha256=Sha256(sha256_file(resolved)[0]),
            kind="constraints" if is_constraint else "requirements",
        )
    for line in lines:
        project = _local_project(line)
        if project is not None and project not in seen:
            # A directory has no one digest: recorded without one, a build from it is never
            # taken as up to date, so a changed project is always built again.
            seen[project] = InputFile(path=str(project), sha256=Sha256(""), kind="project")
    return tuple(seen.values())


def _local_project(line: RequirementLine) -> Path | None:
    text = line.requirement.split(";", 1)[0].strip()
    if text.startswith("file:"):
        text = str(file_url_path(text))
    elif not text.startswith((".", "/", "~")):
        return None
    path = Path(os.path.expanduser(text)).absolute()
    return path if path.is_dir() else None
