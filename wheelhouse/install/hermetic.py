"""Hermetic offline install from a wheelhouse: verify it, check the target fits, run pip or uv."""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse._base._pip import offline_env, pip_command
from wheelhouse._base._subprocess import run, tail
from wheelhouse._base._uv import find_uv
from wheelhouse._base.files import write_atomic
from wheelhouse._base.wheels import read_wheel_metadata
from wheelhouse.errors import (
    Hint,
    IncompatibleError,
    InvalidWheelhouseError,
    NotFoundError,
    RequirementsError,
    TamperedError,
    WheelhouseError,
)
from wheelhouse.house.manifest import GENERATOR, LockEntry, Manifest, TargetLock
from wheelhouse.house.verify import VerifyReport, verify
from wheelhouse.install._interpreter import InterpreterInfo, describe

__all__ = [
    "InstallOptions",
    "InstallPlan",
    "InstallResult",
    "Installer",
    "Progress",
    "default_python",
    "execute",
    "find_uv",
    "install",
    "plan_install",
]

logger = logging.getLogger(__name__)

_UV_HINT = "reinstall wheelhouse (uv is one of its dependencies), or use --installer pip"

Installer = Literal["pip", "uv"]
# Told (phase, done, total) while the installer runs: see execute().
Progress = Callable[[Literal["starting", "reading", "installing"], int, int], None]

# The file of DIR that pins the host target, the one a hand-written pip command would use.
_HOST_REQUIREMENTS = "requirements.txt"
_HOST_TARGET = "host"
_REBUILD_HINT = (
    "rebuild the wheelhouse for this interpreter: run 'wheelhouse build' on a machine like the "
    "target, or pass a target matching its tags (e.g. --target {target})"
)


@dataclass(frozen=True)
class InstallOptions:
    """What ``wheelhouse install`` was asked to do."""

    wheelhouse: Path = Path("wheelhouse")
    requirements: tuple[Path, ...] = ()
    packages: tuple[str, ...] = ()
    python: Path | None = None  # None: $VIRTUAL_ENV's python, else the running interpreter
    installer: Installer = "pip"
    installer_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstallPlan:
    """The exact command an install runs, and why: built without running anything but checks."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    installer: Installer
    wheelhouse: Path
    python: Path
    interpreter: InterpreterInfo
    target: str
    entries: tuple[LockEntry, ...]
    requirements_file: Path
    # Set when requirements_file was written for this plan (a subset, or a non-host lock).
    generated: bool


@dataclass(frozen=True)
class InstallResult:
    """A finished install."""

    plan: InstallPlan
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def default_python(environ: Mapping[str, str] | None = None) -> Path:
    """The active virtualenv's interpreter, else the interpreter running wheelhouse."""
    env = os.environ if environ is None else environ
    venv = env.get("VIRTUAL_ENV")
    if venv:
        scripts = Path(venv) / ("Scripts" if sys.platform == "win32" else "bin")
        return scripts / ("python.exe" if sys.platform == "win32" else "python")
    return Path(sys.executable)


def install(options: InstallOptions, progress: Progress | None = None) -> InstallResult:
    """Verify the wheelhouse, check it fits the target interpreter, and install from it offline."""
    with tempfile.TemporaryDirectory(prefix="wheelhouse-install-") as workdir:
        plan = plan_install(options, workdir=Path(workdir))
        return execute(plan, progress)


def execute(plan: InstallPlan, progress: Progress | None = None) -> InstallResult:
    """Run a plan's command; an installer failure becomes a WheelhouseError with its output.

    ``progress`` is told ``(phase, done, total)`` as the installer goes: ``"starting"`` first,
    ``"reading"`` once per wheel pip has read (``done`` of ``total``), then ``"installing"``
    while it unpacks them all (pip says nothing per package there), with ``done == total``
    when it has finished.
    """
    started = time.perf_counter()
    argv = plan.argv
    total = len(plan.entries)
    on_stderr = None
    if progress is not None:
        progress("starting", 0, total)
        # A --log of the user's own (after --) is left alone: pip keeps only one.
        if (
            plan.installer == "pip"
            and os.path.exists(_PIP_LOG)
            and not any(a.split("=", 1)[0] in ("--log", "--log-file", "--local-log") for a in argv)
        ):
            # pip prints its steps on stdout, which the runner hands over only at the end;
            # its log (every line timestamped) goes to standard error, which it reads live.
            argv = (*argv, "--log", _PIP_LOG)
            on_stderr = _PipProgress(progress, total).line
        else:
            progress("installing", 0, total)
    try:
        result = run(argv, env=plan.env, on_stderr=on_stderr)
    except FileNotFoundError as exc:
        raise WheelhouseError(
            f"cannot run {plan.argv[0]!r}: {exc.strerror}",
            hint=Hint.PYTHON,
        ) from exc
    seconds = time.perf_counter() - started
    if on_stderr is not None:
        # pip's own standard error, without the log lines that were there for progress.
        stderr = "".join(
            line for line in result.stderr.splitlines(True) if not _PIP_LOG_LINE.match(line)
        )
        result = replace(result, stderr=stderr)
    if progress is not None and result.ok:
        progress("installing", total, total)
    if not result.ok:
        output = tail(result.stderr + "\n" + result.stdout, 15) or "no output"
        raise WheelhouseError(
            f"{plan.installer} could not install from {str(plan.wheelhouse)!r} into "
            f"{str(plan.python)!r} (exit {result.returncode}):\n{output}",
            hint=f"run 'wheelhouse verify {plan.wheelhouse}'; the lines above are "
            f"{plan.installer}'s own",
        )
    return InstallResult(plan, result.returncode, result.stdout, result.stderr, seconds)


# Where pip's --log goes for progress: the runner reads standard error line by line.
_PIP_LOG = "/dev/stderr"
# A line of pip's --log file: "2026-12-07T03:56:54,812 Processing ./x.whl (from -r ...)".
_PIP_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{3} ?(.*)")


class _PipProgress:
    """Turns pip's log lines into (phase, done, total): one "Processing" line per wheel read."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.total = total
        self.read = 0

    def line(self, text: str) -> None:
        match = _PIP_LOG_LINE.match(text)
        if match is None:
            return
        message = match.group(1)
        if message.startswith("Processing "):
            self.read = min(self.read + 1, self.total)
            self.progress("reading", self.read, self.total)
        elif message.startswith("Installing collected packages:"):
            self.progress("installing", 0, self.total)


def plan_install(options: InstallOptions, *, workdir: Path) -> InstallPlan:
    """Check the wheelhouse and the target, and return the exact installer command to run.

    Refuses a wheelhouse that no longer matches its manifest (``TamperedError``) and one that
    has no wheel the target can install (``IncompatibleError``). When only some packages are
    asked for, a requirements file pinning them and their dependencies to the lock's versions
    and hashes is written in ``workdir`` (the caller's, which it
    removes): pip 23.2 and uv refuse an unpinned name under ``--require-hashes``, even with
    the lock as constraints.
    """
    directory = options.wheelhouse.absolute()
    python = (options.python or default_python()).absolute()
    uv = (
        find_uv(purpose="--installer uv was asked for", hint=_UV_HINT)
        if options.installer == "uv"
        else None
    )
    # Hashing the wheelhouse and starting the target interpreter overlap.
    with ThreadPoolExecutor(max_workers=2) as pool:
        described = pool.submit(describe, python)
        # The index and pylock.toml play no part in an install from --find-links.
        report = verify(directory, generated=False)
        info = described.result()
    _refuse_tampered(report)
    manifest = report.manifest
    lock = _select_lock(manifest, info, directory)
    asked = _asked(options)
    if asked:
        entries, extras = _closure(asked, lock, manifest, info, directory)
    else:
        entries, extras = list(lock.entries), {}
    _precheck(entries, manifest, info, directory)

    host_file = directory / _HOST_REQUIREMENTS
    if not asked and lock.target == _HOST_TARGET and _as_written(host_file, manifest, lock):
        requirements, generated = host_file, False
    else:
        requirements, generated = _write_requirements(workdir, entries, extras, manifest), True

    hermetic = ["--no-index", "--find-links", str(directory)]
    if uv is not None:
        argv = [str(uv), "pip", "install", "--offline", *hermetic, "--python", str(python)]
        argv += ["--no-config", "--only-binary", ":all:"]
    elif info.has_pip:
        argv = [*pip_command(python), "install", *hermetic, "--only-binary=:all:"]
    else:
        # pip >= 22.3 can install into another interpreter: use ours for one that has none.
        argv = [*pip_command(), "--python", str(python), "install", *hermetic]
        argv += ["--only-binary=:all:"]
    argv += ["--require-hashes", "-r", str(requirements), *options.installer_args]
    return InstallPlan(
        argv=tuple(argv),
        env=offline_env(),
        installer=options.installer,
        wheelhouse=directory,
        python=python,
        interpreter=info,
        target=lock.target,
        entries=tuple(entries),
        requirements_file=requirements,
        generated=generated,
    )


def _refuse_tampered(report: VerifyReport) -> None:
    # A user's own files (a README) are no problem (house/manifest.py's one rule); a stray
    # wheel is, since pip could pick it from --find-links.
    problems = list(report.problems)
    if not problems:
        return
    names = ", ".join(repr(p.filename) for p in problems if p.filename)
    lines = "\n".join(f"  {p.message}" for p in problems)
    raise TamperedError(
        f"the wheelhouse {str(report.directory)!r} does not match its manifest ({names}):\n{lines}",
        hint=f"rebuild it with 'wheelhouse build', or see 'wheelhouse verify {report.directory}'",
    )


def _as_written(path: Path, manifest: Manifest, lock: TargetLock) -> bool:
    """Whether ``path`` holds the requirements this version writes for ``lock``.

    Raises ``TamperedError`` when it does not although this version wrote the wheelhouse;
    another version's file (another header, perhaps) is not used, but not refused either.
    """
    from wheelhouse.house.export import render_requirements

    try:
        written = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if manifest.generator != GENERATOR:
        return False
    if written != render_requirements(manifest, lock):
        raise TamperedError(
            f"the wheelhouse's {path.name!r} does not match its manifest: it was changed after "
            f"the wheelhouse was built ({str(path)!r})",
            hint=f"rebuild it with 'wheelhouse build', or see 'wheelhouse verify {path.parent}'",
        )
    return True


def _select_lock(manifest: Manifest, info: InterpreterInfo, directory: Path) -> TargetLock:
    if not manifest.locks:
        raise InvalidWheelhouseError(
            f"the {manifest.kind} {str(directory)!r} has no lock to install from",
            hint=(
                # A mirror of named projects holds every version: nothing says which to take.
                "install from it by name: pip install --index-url "
                f"{(directory.absolute() / 'simple').as_uri()} NAME; a mirror made with"
                " '-r FILE' has a lock for 'wheelhouse install -w'"
                if manifest.kind == "mirror"
                else "rebuild it with 'wheelhouse build'"
            ),
        )
    if len(manifest.locks) == 1:
        return manifest.locks[0]
    rank = {tag: i for i, tag in enumerate(info.tags)}

    def score(lock: TargetLock) -> tuple[int, int]:
        best = min((rank[t] for t in lock.tags if t in rank), default=len(rank))
        return (best, 0 if lock.target == _HOST_TARGET else 1)

    return min(manifest.locks, key=score)


def _asked(options: InstallOptions) -> list[Requirement]:
    asked: list[Requirement] = []
    for text in options.packages:
        asked.append(_parse(text, where=None))
    if options.requirements:
        # The project's reader of requirement files (pip's own syntax, nested -r included).
        from wheelhouse.inputs.requirements import read_inputs

        inputs = read_inputs(tuple(options.requirements), ())
        for line in inputs.lines:
            if not line.constraint:
                asked.append(_parse(line.requirement, where=f"{line.path}:{line.line}: "))
    return asked


def _parse(text: str, *, where: str | None) -> Requirement:
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsError(
            f"{where or ''}{text!r} is not a requirement a wheelhouse can satisfy: "
            f"{str(exc).splitlines()[0]}",
            hint="name packages the wheelhouse holds, e.g. 'requests' or 'requests==2.32.3'",
        ) from exc
    if requirement.url:
        raise RequirementsError(
            f"{where or ''}{text!r} is a direct reference; an install from a wheelhouse "
            "takes packages by name",
            hint=f"ask for {requirement.name!r}",
        )
    return requirement


def _closure(
    asked: list[Requirement],
    lock: TargetLock,
    manifest: Manifest,
    info: InterpreterInfo,
    directory: Path,
) -> tuple[list[LockEntry], dict[NormalizedName, set[str]]]:
    """The lock entries that the asked requirements and their dependencies need."""
    by_name = {entry.name: entry for entry in lock.entries}
    todo: list[tuple[Requirement, str | None]] = [
        (r, None) for r in asked if _applies(r.marker, info.environment, "")
    ]
    done: set[tuple[NormalizedName, str]] = set()
    extras: dict[NormalizedName, set[str]] = {}
    failures: list[str] = []
    while todo:
        requirement, parent = todo.pop()
        name = canonicalize_name(requirement.name)
        needed_by = f" (needed by {parent})" if parent else ""
        entry = by_name.get(name)
        if entry is None:
            failures.append(f"{str(requirement)!r}{needed_by}: the wheelhouse holds no {name!r}")
            continue
        if not _satisfies(entry.version, requirement.specifier):
            failures.append(
                f"{str(requirement)!r}{needed_by}: the wheelhouse holds {name} {entry.version}"
            )
            continue
        wanted = {canonicalize_name(e) for e in requirement.extras}
        extras.setdefault(name, set()).update(wanted)
        for extra in sorted({"", *wanted}):
            if (name, extra) in done:
                continue
            done.add((name, extra))
            for dependency in _requires(entry, manifest, info, directory):
                if _applies(dependency.marker, info.environment, extra):
                    todo.append((dependency, f"{entry.name} {entry.version}"))
    if failures:
        raise NotFoundError(
            f"the wheelhouse {str(directory)!r} cannot satisfy what was asked for "
            f"(target {lock.target!r}):\n" + "\n".join(f"  {f}" for f in sorted(set(failures))),
            requirement=str(asked[0]) if asked else "",
            hint="ask only for what the wheelhouse holds, or rebuild it with those requirements",
        )
    names = {name for name, _ in done}
    return [entry for entry in lock.entries if entry.name in names], extras


def _applies(marker: Marker | None, environment: dict[str, str], extra: str) -> bool:
    return marker is None or marker.evaluate({**environment, "extra": extra})


def _satisfies(version: str, specifier: SpecifierSet) -> bool:
    try:
        return specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return str(specifier) in {"", f"=={version}", f"==={version}"}


_requires_cache: dict[tuple[Path, str], tuple[Requirement, ...]] = {}


def _requires(
    entry: LockEntry, manifest: Manifest, info: InterpreterInfo, directory: Path
) -> tuple[Requirement, ...]:
    """The Requires-Dist of an entry, read from the METADATA of one of its (verified) wheels."""
    wheels = [f for f in entry.filenames if f.endswith(".whl")]
    if not wheels:
        return ()  # only an sdist: the pre-check reports it as uninstallable
    supported = set(info.tags)
    wheels.sort(key=lambda f: not (_wheel_tags(f) & supported))
    path = directory / wheels[0]
    key = (path, manifest.file(wheels[0]).sha256)
    if key in _requires_cache:
        return _requires_cache[key]
    import email.parser  # only an install of some packages reads metadata (5 ms to import)

    try:
        # The wheel's own {name}-{version}.dist-info, never one it vendors.
        metadata = read_wheel_metadata(path, entry.name, Version(entry.version))
    except (OSError, zipfile.BadZipFile, InvalidVersion) as exc:
        raise InvalidWheelhouseError(
            f"cannot read the metadata of {wheels[0]!r} in {str(directory)!r}: {exc}",
            hint=Hint.REBUILD,
        ) from exc
    if metadata is None:
        raise InvalidWheelhouseError(
            f"{wheels[0]!r} in {str(directory)!r} has no "
            f"{entry.name}-{entry.version}.dist-info/METADATA",
            hint=Hint.REBUILD,
        )
    message = email.parser.BytesParser().parsebytes(metadata)
    try:
        found = tuple(Requirement(r) for r in message.get_all("Requires-Dist") or ())
    except InvalidRequirement as exc:
        raise InvalidWheelhouseError(
            f"{wheels[0]!r} declares a dependency that cannot be parsed: {exc}"
        ) from exc
    _requires_cache[key] = found
    return found


def _wheel_tags(filename: str) -> set[str]:
    try:
        return {str(tag) for tag in parse_wheel_filename(filename)[3]}
    except InvalidWheelFilename:
        return set()


def _precheck(
    entries: Iterable[LockEntry], manifest: Manifest, info: InterpreterInfo, directory: Path
) -> None:
    """Fail before the installer runs if any entry has no wheel the target can install."""
    supported = set(info.tags)
    lines: list[str] = []
    for entry in entries:
        if any(_fits(filename, manifest, info, supported) for filename in entry.filenames):
            continue
        has = ", ".join(entry.filenames) or "no file"
        lines.append(f"  {entry.name} {entry.version}: the wheelhouse has {has}")
    if not lines:
        return
    from wheelhouse._base.targets import target_name  # only this error needs it

    tag = _portable_tag(info)
    raise IncompatibleError(
        f"the wheelhouse {str(directory)!r} has no wheel that {str(info.executable)!r} "
        f"(Python {info.version}, best tag {tag}) can install for:\n" + "\n".join(lines),
        hint=_REBUILD_HINT.format(target=target_name(tag)),
    )


def _fits(filename: str, manifest: Manifest, info: InterpreterInfo, supported: set[str]) -> bool:
    if not _wheel_tags(filename) & supported:
        return False
    try:
        requires_python = manifest.file(filename).requires_python
    except KeyError:
        return False
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(info.version, prereleases=True)
    except InvalidSpecifier:
        return True  # pip decides; it is not ours to refuse on a bad declaration


def _portable_tag(info: InterpreterInfo) -> str:
    # The first tag is a plain 'linux_x86_64' one that no index serves; name one a wheel can have.
    for tag in info.tags:
        if not tag.rsplit("-", 1)[-1].startswith("linux_"):
            return tag
    return info.tags[0] if info.tags else "(none)"


def _write_requirements(
    workdir: Path,
    entries: Iterable[LockEntry],
    extras: dict[NormalizedName, set[str]],
    manifest: Manifest,
) -> Path:
    lines = ["# written by 'wheelhouse install': the lock's pins and hashes for what was asked"]
    for entry in entries:
        wanted = sorted(extras.get(entry.name, ()))
        name = f"{entry.name}[{','.join(wanted)}]" if wanted else entry.name
        hashes = sorted({manifest.file(f).sha256 for f in entry.filenames})
        lines.append(
            f"{name}=={entry.version}" + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes)
        )
    path = workdir / "requirements.txt"
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path
