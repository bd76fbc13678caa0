"""Requirements -> a pinned set of files by uv's resolver: for a target that is not this
machine (``uv pip compile`` with its platform and Python), and for ``--resolver uv`` (uv's
pylock, read back as pins); uv's failures turned into our errors."""

from __future__ import annotations

import logging
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from wheelhouse._base._uv import pip_settings_as_uv_args, run_uv, uv_env
from wheelhouse._base.pip_settings import FormatControl, PipSettings
from wheelhouse._base.targets import Target
from wheelhouse.download.pins import Pin
from wheelhouse.errors import (
    ConflictError,
    NetworkError,
    NotFoundError,
    ResolutionError,
    WheelhouseError,
)
from wheelhouse.house.manifest import FileKind, Sha256
from wheelhouse.inputs.requirements import InputSet
from wheelhouse.resolve.by_pip import Resolution, file_kind, local_pin, requested_names
from wheelhouse.resolve.pip_failures import NO_VERSIONS, quarantined

__all__ = ["resolve_foreign", "resolve_host_uv", "uv_version"]

logger = logging.getLogger(__name__)


def uv_version(pip: PipSettings) -> str:
    """The version of the uv that resolves (``uv --version``'s number), for messages."""
    result = run_uv(["--version"], env=uv_env(pip), purpose="--resolver uv needs uv")
    words = result.stdout.split()
    return words[1] if result.ok and len(words) > 1 else "?"


def resolve_foreign(inputs: InputSet, target: Target, pip: PipSettings) -> Resolution:
    """Resolve for a target that is not this machine, with uv, under pip's settings ``pip``.

    pip cannot: under ``--platform`` and ``--python-version`` it still evaluates environment
    markers for the host (pip#4304, pip#11010), so a dependency behind
    ``sys_platform == "win32"`` never reaches a Windows lock. uv resolves for a named platform
    with markers evaluated for it; it is given pip's index settings, never its own
    configuration, and the files are then chosen here with ``packaging.tags``.
    """
    platform, extra_env = target.uv_platform
    on_target = [
        "--python-platform",
        platform,
        "--python-version",
        "{}.{}".format(*target.python_version),
    ]
    purpose = f"resolving for target {target.name!r} needs uv (pip evaluates markers for the host)"
    return _uv_lock(inputs, target, pip, on_target, purpose, extra_env)


def resolve_host_uv(
    inputs: InputSet,
    target: Target,
    pip: PipSettings,
    *,
    on_file: Callable[[str], None] | None = None,
) -> Resolution:
    """uv's resolution of ``inputs`` for the interpreter that runs us (``--resolver uv``).

    uv writes a PEP 751 lock whose files carry their URLs and sha256, so the pins are taken
    from it as they are for foreign targets: the index pages are not read a second time.
    ``on_file`` is given the URL of each file uv reads metadata from, as uv reads it.
    """
    return _uv_lock(inputs, target, pip, [], "--resolver uv needs uv", {}, on_file)


def _uv_lock(
    inputs: InputSet,
    target: Target,
    pip: PipSettings,
    on_target: list[str],
    purpose: str,
    extra_env: Mapping[str, str],
    on_file: Callable[[str], None] | None = None,
) -> Resolution:
    with tempfile.TemporaryDirectory(prefix="wheelhouse-resolve-") as tmp:
        lock_path = Path(tmp) / "pylock.toml"
        _uv_compile(inputs, target, pip, on_target, lock_path, purpose, extra_env, on_file)
        lock = tomllib.loads(lock_path.read_text(encoding="utf-8"))
        requested = requested_names(inputs, target)
        formats = pip.formats
        lock_dir = lock_path.parent  # uv writes a local project's path relative to the lock
        pins = [
            pin
            for package in lock.get("packages", [])
            if (pin := _pin_for_target(package, target, requested, lock_dir, formats)) is not None
        ]
    pins.sort(key=lambda p: p.name)
    return Resolution(
        target=target, pins=tuple(pins), environment=target.environment, pip_version=""
    )


def _uv_compile(
    inputs: InputSet,
    target: Target,
    pip: PipSettings,
    on_target: list[str],
    output: Path,
    purpose: str,
    extra_env: Mapping[str, str],
    on_file: Callable[[str], None] | None = None,
) -> None:
    args: list[str | Path] = [
        "pip",
        "compile",
        "--quiet",
        "--python",
        target.python,
        *on_target,
        "--output-file",
        output,
        *pip_settings_as_uv_args(pip),
    ]
    for path in inputs.constraints:
        args += ["--constraint", path.absolute()]
    args += [path.absolute() for path in inputs.requirements]
    env = uv_env(pip)
    env.update(extra_env)
    watch = None
    if on_file is not None:
        # The debug log of uv's HTTP cache client names each file as uv reads its metadata
        # (not an API: a line that no longer matches only means nothing is reported).
        env["RUST_LOG"] = "uv_client::cached_client=debug"
        report = on_file

        def watch(line: str) -> None:
            match = _UV_READS.match(line)
            if match is not None:
                report(match["url"].removesuffix(".metadata"))

    result = run_uv(args, env=env, purpose=purpose, on_stderr=watch)
    if not result.ok or not output.exists():
        said = "".join(
            line for line in result.stderr.splitlines(keepends=True) if not _UV_DEBUG.match(line)
        )
        raise _explain_uv_failure(said or result.stdout, target, pip)


# uv's HTTP cache client at debug level: "DEBUG Sending fresh HEAD request for: URL" (GET for
# a .metadata file or a whole file), where the URL is a distribution's.
_UV_READS = re.compile(
    r"^DEBUG Sending (?:fresh|revalidation) (?:HEAD|GET) request for: "
    r"(?P<url>https?://\S+?\.(?:whl|tar\.gz|zip)(?:\.metadata)?)$"
)


_UV_DEBUG = re.compile(r"^\s*(?:DEBUG|TRACE)\b")


def _pin_for_target(
    package: dict[str, Any],
    target: Target,
    requested: set[NormalizedName],
    lock_dir: Path,
    formats: FormatControl | None = None,
) -> Pin | None:
    name = canonicalize_name(package["name"])
    # uv gives no version for a local project (build/local.py learns it from its sdist).
    version = str(package.get("version", "") if "directory" in package else package["version"])
    marker = package.get("marker")
    if marker and not Marker(marker).evaluate(target.environment):
        return None
    allowed = (formats or FormatControl()).allowed(name)
    best: tuple[int, dict[str, Any], str] | None = None
    for wheel in package.get("wheels", []) if "binary" in allowed else ():
        filename = _lock_filename(wheel)
        try:
            _, _, _, wheel_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        rank = target.accepts(wheel_tags)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel, filename)
    if best is not None:
        _, chosen, filename = best
        kind: FileKind = "wheel"
    elif "sdist" in package and "source" in allowed:
        chosen, filename, kind = package["sdist"], _lock_filename(package["sdist"]), "sdist"
    elif "directory" in package:
        where = (lock_dir / package["directory"]["path"]).resolve()
        return local_pin(name, version, where.as_uri(), {}, {"requested": name in requested})
    elif "archive" in package and "url" in package["archive"]:
        # A direct URL requirement (name @ https://...): the one file there is.
        chosen, filename = package["archive"], _lock_filename(package["archive"])
        kind = file_kind(filename)
        if kind == "wheel" and target.accepts(parse_wheel_filename(filename)[3]) is None:
            raise ResolutionError(
                f"{name} {version} is required as {filename}, which does not fit target "
                f"{target.name!r}",
                hint="require a file that fits the target, or drop the target",
            )
    else:
        raise ResolutionError(
            f"{name} {version} has no wheel for target {target.name!r} and no sdist"
            + ("" if allowed == {"binary", "source"} else " that --no-binary/--only-binary allow"),
            hint="pin another version, or drop the target",
        )
    return Pin(
        name=name,
        version=version,
        url=_lock_url(chosen, lock_dir),
        filename=filename,
        kind=kind,
        sha256=Sha256(str(chosen["hashes"]["sha256"]).lower())
        if "sha256" in chosen.get("hashes", {})
        else None,
        requires_python=package.get("requires-python"),
        requested=name in requested,
    )


def _lock_url(entry: dict[str, Any], lock_dir: Path) -> str:
    # A find-links file may be written as a path (relative to the lock) instead of a URL.
    if entry.get("url"):
        return str(entry["url"])
    return (lock_dir / str(entry["path"])).resolve().as_uri()


def _lock_filename(entry: dict[str, Any]) -> str:
    if entry.get("name"):
        return str(entry["name"])
    location = str(entry.get("url") or entry.get("path") or "")
    return unquote(urlsplit(location).path.rsplit("/", 1)[-1])


def _explain_uv_failure(
    output: str, target: Target, pip: PipSettings | None = None
) -> WheelhouseError:
    causes = [
        line.strip().removeprefix("cause:").strip()
        for line in output.splitlines()
        if line.strip() and not line.startswith("error:")
    ]
    detail = " ".join(causes) or output.strip() or "uv failed without a message"
    where = f"for target {target.name!r}"
    if pip is not None and (empty := NO_VERSIONS.search(detail)) is not None:
        # A project whose page lists no file at all: one the index quarantines (PEP 792)?
        refused = quarantined(empty["name"], pip)
        if refused is not None:
            return refused
    if "was not found in the package registry" in detail:
        name = detail.split("Because ", 1)[-1].split(" was not found", 1)[0]
        return NotFoundError(
            f"no distribution found for {name!r} on the configured indexes ({where})",
            requirement=name,
            hint="check the project name, and --index-url/--extra-index-url/--find-links",
        )
    if "there is no version of" in detail:
        req = detail.split("there is no version of ", 1)[-1].split(" and ", 1)[0]
        return NotFoundError(
            f"no version of {req!r} is available {where}",
            requirement=req,
            hint="relax the version specifier, or add --pre for pre-releases",
        )
    if "Failed to fetch" in detail or "error sending request" in detail:
        url = detail.split("Failed to fetch: ", 1)[-1].split(" ", 1)[0]
        return NetworkError(
            f"cannot reach {url} ({where})",
            url=url,
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if "unsatisfiable" in detail or "No solution found" in output:
        return ConflictError(
            f"conflicting requirements {where}: {detail}",
            hint="loosen one of the pins so that they can agree",
        )
    return ResolutionError(f"uv could not resolve the requirements {where}: {detail}")
