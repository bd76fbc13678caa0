"""Whether requirements are a complete set of pins that the pinned path resolves as pip would.

Only parsing: no page is read and no file fetched (``pinned`` does that), so a build learns
at once whether its input needs a resolver.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse._base._pip import (
    RequirementFileError,
    read_requirement_file,
    read_requirement_options,
)
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.targets import Target
from wheelhouse.inputs.requirements import InputSet

__all__ = [
    "Fallback",
    "Ineligible",
    "Options",
    "PinSet",
    "Wanted",
    "check_options",
    "constraint_specifiers",
    "pin_set",
    "pinned_set",
    "python_version",
    "unpinnable",
]

logger = logging.getLogger(__name__)

# pip configuration keys that do not change which files a pinned set resolves to (or that
# this module honours itself); any other key set in pip's configuration means pip must resolve.
_HARMLESS_CONFIG = frozenset(
    {
        "cert",
        "client-cert",
        # PIP_CONFIG_FILE itself: the settings in that file are keys of their own.
        "config-file",
        "proxy",
        "timeout",
        "default-timeout",
        "retries",
        "trusted-host",
        "index-url",
        "extra-index-url",
        "find-links",
        "constraint",
        "no-index",
        "pre",
        "prefer-binary",
        "no-binary",
        "only-binary",
        "require-hashes",
        # The release cooldown: the pinned path applies it itself (pinned.cooldown_of).
        "uploaded-prior-to",
        "wheelhouse.exclude-newer-package",
        "wheelhouse.no-upload-time",
        "no-input",
        "disable-pip-version-check",
        "progress-bar",
        "verbose",
        "quiet",
        "log",
        "log-file",
        "cache-dir",
        "no-cache-dir",
        "root-user-action",
        "break-system-packages",
        "no-color",
        "exists-action",
        "upgrade",
        "upgrade-strategy",
        "force-reinstall",
        "ignore-installed",
        "no-warn-script-location",
        "no-warn-conflicts",
        "no-compile",
        "compile",
        "no-clean",
        "use-pep517",
        "no-build-isolation",
        "check-build-dependencies",
        "python",
    }
)
# Option lines in requirements files that cannot change a pinned set's files.
_HARMLESS_FILE_OPTIONS = frozenset({"--pre", "--require-hashes", "--prefer-binary"})


@dataclass(frozen=True)
class Fallback:
    """The input is not one the pinned path can resolve exactly as pip would; pip must resolve."""

    reason: str


class Ineligible(Exception):
    """Raised where pip's answer cannot be matched; turned into a :class:`Fallback` at the
    boundary (``pinned`` raises it too)."""


@dataclass
class Wanted:
    """One pinned project: the requirement that pins it and the extras asked of it."""

    name: NormalizedName
    version: Version
    requirement: Requirement
    extras: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Options:
    """The options of the input and of pip's configuration that the pinned path honours."""

    prefer_binary: bool
    require_hashes: bool


def check_options(inputs: InputSet, pip: PipSettings) -> Options:
    """The options that choose files; raises :class:`Ineligible` for one only pip honours."""
    for key in sorted(pip.configured):
        if key not in _HARMLESS_CONFIG:
            raise Ineligible(f"pip's configuration sets {key!r}, which only pip can honour")
    found: set[str] = set()
    for path in inputs.requirements:
        found |= _file_options(path, constraint=False)
    for path in inputs.constraints:
        found |= _file_options(path, constraint=True)
    return Options(
        prefer_binary="--prefer-binary" in found or pip.prefer_binary,
        require_hashes="--require-hashes" in found or pip.require_hashes,
    )


def _file_options(path: Path, *, constraint: bool) -> set[str]:
    """The options set by option lines of a requirements file and the files it includes, as
    pip's parser reads them; an option that may change which files pip picks is ineligible."""
    try:
        lines = read_requirement_options(path, constraint=constraint)
    except RequirementFileError as exc:
        raise Ineligible(f"{path}: {exc}") from exc
    found: set[str] = set()
    for line in lines:
        for option in line.options:
            if option not in _HARMLESS_FILE_OPTIONS:
                raise Ineligible(
                    f"{line.path}:{line.line} sets {option}, which only pip can honour"
                )
            found.add(option)
    return found


def _pinned_version(req: Requirement, where: str) -> Version:
    specs = list(req.specifier)
    if req.url or len(specs) != 1 or specs[0].operator != "==" or specs[0].version.endswith(".*"):
        raise Ineligible(f"{where}: {str(req)!r} is not pinned with == to one version")
    try:
        return Version(specs[0].version)
    except InvalidVersion as exc:
        raise Ineligible(f"{where}: {str(req)!r} pins an invalid version") from exc


def _pins(inputs: InputSet, environment: Mapping[str, str]) -> dict[NormalizedName, Wanted]:
    """Each requirement's pin, by project; raises :class:`Ineligible` for one that is not."""
    wanted: dict[NormalizedName, Wanted] = {}
    for line in inputs.lines:
        if line.constraint:
            continue
        where = f"{line.path}:{line.line}"
        try:
            req = Requirement(line.requirement)
        except InvalidRequirement as exc:
            raise Ineligible(f"{where}: {line.requirement!r} is a path or URL") from exc
        version = _pinned_version(req, where)
        if req.marker is not None and not req.marker.evaluate(
            {**environment, "extra": ""}, context="requirement"
        ):
            continue
        name = canonicalize_name(req.name)
        extras: set[str] = {canonicalize_name(e) for e in req.extras}
        if name in wanted:
            if wanted[name].version != version:
                raise Ineligible(f"{name} is pinned twice, to {wanted[name].version} and {version}")
            wanted[name].extras |= extras
            continue
        wanted[name] = Wanted(name, version, req, extras)
    return wanted


def constraint_specifiers(
    inputs: InputSet, pip: PipSettings, environment: Mapping[str, str]
) -> list[tuple[NormalizedName, SpecifierSet, str]]:
    """Every constraint that applies in ``environment`` (the input's and those of pip's
    configuration): the project, its specifier and where it was written."""
    lines = [line for line in inputs.lines if line.constraint]
    for value in pip.constraints:
        if "://" in value:
            raise Ineligible(f"pip's configuration names constraints by URL ({value!r})")
        path = Path(os.path.expanduser(value))
        try:
            lines += read_requirement_file(path, constraint=True)
        except (RequirementFileError, OSError) as exc:
            raise Ineligible(f"cannot read the constraints file {value!r}: {exc}") from exc
        found = _file_options(path, constraint=True)
        if found - {"--pre"}:
            raise Ineligible(f"constraints file {value!r} sets {', '.join(sorted(found))}")
    result = []
    for line in lines:
        where = f"constraint {line.path}:{line.line}"
        try:
            req = Requirement(line.requirement)
        except InvalidRequirement as exc:
            raise Ineligible(f"{where}: {line.requirement!r} is a path or URL") from exc
        if req.url:
            raise Ineligible(f"{where}: {line.requirement!r} is a URL constraint")
        if req.marker is not None and not req.marker.evaluate(
            {**environment, "extra": ""}, context="requirement"
        ):
            continue
        result.append((canonicalize_name(req.name), req.specifier, where))
    return result


def python_version(environment: Mapping[str, str]) -> Version:
    """The Python version of ``environment``, as pip compares it with Requires-Python."""
    full = environment.get("python_full_version", "")
    try:
        return Version(full)
    except InvalidVersion:
        # A development build ("3.13.0+") is treated as its release, like pip does.
        return Version(".".join(full.split("+")[0].split(".")[:3]) or environment["python_version"])


def unpinnable(inputs: InputSet, pip: PipSettings) -> str | None:
    """Why pins made from ``inputs``' resolution could not stand for it here, or None.

    A resolver's answer (``pip download``'s files, ``uv pip compile``'s pins) goes through
    this module only when ``inputs`` ask for nothing it cannot honour: options that only pip
    understands (in the files or pip's configuration), editables, paths and URLs.
    """
    try:
        check_options(inputs, pip)
    except Ineligible as exc:
        return str(exc)
    for line in inputs.lines:
        where = f"{line.path}:{line.line}"
        if line.editable:
            return f"{where} is editable"
        try:
            if Requirement(line.requirement).url:
                return f"{where}: {line.requirement!r} is a URL"
        except InvalidRequirement:
            return f"{where}: {line.requirement!r} is a path or URL"
    return None


@dataclass(frozen=True)
class PinSet:
    """A complete, consistent set of ``==`` pins for one environment, and its options."""

    options: Options
    wanted: dict[NormalizedName, Wanted]


def pinned_set(inputs: InputSet, pip: PipSettings, environment: Mapping[str, str]) -> PinSet:
    """The options and the pins of ``inputs`` for ``environment``; raises :class:`Ineligible`
    unless they are a complete, consistent set of ``==`` pins that constraints allow."""
    options = check_options(inputs, pip)
    wanted = _pins(inputs, environment)
    for name, spec, where in constraint_specifiers(inputs, pip, environment):
        if name in wanted and not spec.contains(wanted[name].version, prereleases=True):
            raise Ineligible(
                f"{where} {name}{spec} excludes the pin {name}=={wanted[name].version}"
            )
    if options.require_hashes:
        unhashed = sorted(name for name in wanted if not inputs.hashes.get(name))
        if unhashed:
            raise Ineligible(f"--require-hashes is set but {', '.join(unhashed)} has no --hash")
    return PinSet(options, wanted)


def pin_set(inputs: InputSet, pip: PipSettings, target: Target) -> PinSet | Fallback:
    """The set of pins ``inputs`` are for ``target``, or why they need a resolver."""
    try:
        return pinned_set(inputs, pip, target.environment)
    except Ineligible as exc:
        logger.info("resolving with pip: %s", exc)
        return Fallback(str(exc))
