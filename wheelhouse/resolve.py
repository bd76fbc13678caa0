"""Requirements -> a pinned set of files, by pip's own resolver (its ``--dry-run --report``)."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse._pip import online_env, run_pip
from wheelhouse._subprocess import tail
from wheelhouse.errors import (
    BuildError,
    ConflictError,
    HashMismatchError,
    NetworkError,
    NotFoundError,
    RequirementsError,
    ResolutionError,
    WheelhouseError,
)
from wheelhouse.manifest import FileKind, Sha256
from wheelhouse.requirements import InputSet
from wheelhouse.settings import IndexOptions
from wheelhouse.targets import Target

__all__ = ["Pin", "Resolution", "resolve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pin:
    """One distribution pip chose, and the file it would install it from."""

    name: NormalizedName
    version: str
    url: str
    filename: str
    kind: FileKind
    sha256: Sha256 | None
    requires_python: str | None
    requested: bool


@dataclass(frozen=True)
class Resolution:
    """pip's answer for one target."""

    target: Target
    pins: tuple[Pin, ...]
    environment: dict[str, str]
    pip_version: str


def resolve(inputs: InputSet, index: IndexOptions, target: Target) -> Resolution:
    """Ask pip which distributions and files ``inputs`` need on ``target``."""
    with tempfile.TemporaryDirectory(prefix="wheelhouse-resolve-") as tmp:
        report_path = Path(tmp) / "report.json"
        args = [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--progress-bar",
            "off",
            "--report",
            str(report_path),
            *index.pip_args(),
        ]
        for path in inputs.requirements:
            args += ["-r", str(path.absolute())]
        for path in inputs.constraints:
            args += ["-c", str(path.absolute())]
        result = run_pip(args, env=online_env(), python=target.python)
        if not result.ok or not report_path.exists():
            raise explain_pip_failure(result.stdout + "\n" + result.stderr, index)
        report = json.loads(report_path.read_text(encoding="utf-8"))
    return _from_report(report, target)


def _from_report(report: dict[str, Any], target: Target) -> Resolution:
    pins = []
    for item in report.get("install", []):
        metadata = item["metadata"]
        name = canonicalize_name(metadata["name"])
        version = metadata["version"]
        info = item["download_info"]
        if "dir_info" in info or "vcs_info" in info:
            raise ResolutionError(
                f"{name} {version} comes from {'a directory' if 'dir_info' in info else 'VCS'} "
                f"({info['url']}), which a wheelhouse cannot pin by hash",
                hint="build an sdist or wheel of it and require that file, or publish it to "
                "an index",
            )
        url = info["url"]
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        pins.append(
            Pin(
                name=name,
                version=version,
                url=url,
                filename=filename,
                kind=_kind(filename),
                sha256=_sha256(info.get("archive_info", {})),
                requires_python=metadata.get("requires_python"),
                requested=bool(item.get("requested")),
            )
        )
    pins.sort(key=lambda p: p.name)
    return Resolution(
        target=target,
        pins=tuple(pins),
        environment=dict(report.get("environment", {})),
        pip_version=str(report.get("pip_version", "")),
    )


def _kind(filename: str) -> FileKind:
    if filename.endswith(".whl"):
        try:
            parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            raise ResolutionError(f"pip chose a file with an invalid name: {filename!r}") from exc
        return "wheel"
    try:
        parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        raise ResolutionError(
            f"pip chose {filename!r}, which is neither a wheel nor a standard sdist",
            hint="require a release that publishes wheels or a .tar.gz sdist",
        ) from exc
    return "sdist"


def _sha256(archive_info: dict[str, Any]) -> Sha256 | None:
    hashes = archive_info.get("hashes") or {}
    if "sha256" in hashes:
        return Sha256(hashes["sha256"].lower())
    legacy = archive_info.get("hash", "")
    if legacy.startswith("sha256="):
        return Sha256(legacy.split("=", 1)[1].lower())
    return None


# pip's messages are not an API; these patterns hold for pip 23.1 to 26.x and anything they
# miss still reaches the user as pip's own last error lines.
_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>.+?) "
    r"\(from versions: (?P<versions>.*?)\)"
)
_CONFLICT_HEAD = re.compile(r"ERROR: Cannot install (?P<what>.+?) because these package versions")
_RETRY = re.compile(r"Retrying \(.*?\) after connection broken by '(?P<why>.+)': (?P<path>\S+)")
_FETCH = re.compile(r"Could not fetch URL (?P<url>\S+?): (?P<why>.+)")
_HASH_GOT = re.compile(
    r"^\s*(?P<req>\S+) from (?P<url>\S+?)(?: \(from .*\))?:?\s*\n"
    r"\s*Expected sha256 (?P<expected>\w+)\s*\n\s*Got\s+(?P<got>\w+)",
    re.MULTILINE,
)


def explain_pip_failure(output: str, index: IndexOptions) -> WheelhouseError:
    """Turn pip's failed output into one error a user can act on."""
    lines = output.splitlines()
    if (fetch := _FETCH.search(output)) is not None:
        return NetworkError(
            f"cannot reach {fetch['url']}: {fetch['why'].strip()}",
            url=fetch["url"],
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if (retry := _RETRY.search(output)) is not None and _NOT_FOUND.search(output):
        where = (index.index_url or "the index").rstrip("/")
        return NetworkError(
            f"cannot reach {where} (while fetching {retry['path']}): {retry['why'][:160]}",
            url=index.index_url,
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if (got := _HASH_GOT.search(output)) is not None:
        return HashMismatchError(
            f"hash mismatch for {got['req']} from {got['url']}: expected sha256 "
            f"{got['expected']}, got {got['got']}",
            filename=got["url"].rsplit("/", 1)[-1],
            expected=got["expected"],
            actual=got["got"],
            hint="the file changed on the index, or the pinned hash is wrong: check before "
            "updating the hash",
        )
    if "Hashes are required in --require-hashes mode" in output:
        missing = [ln.strip() for ln in lines if "--hash=" in ln and "#" not in ln[:2]]
        return RequirementsError(
            "some requirements have no --hash while others do (pip's hash-checking mode needs "
            "every requirement pinned with ==, including dependencies): "
            + "; ".join(m.split(" --hash")[0] for m in missing[:5]),
            hint="add the missing pins with hashes (e.g. with 'pip-compile --generate-hashes'), "
            "or remove the --hash options",
        )
    if (head := _CONFLICT_HEAD.search(output)) is not None:
        causes = _conflict_causes(lines)
        return ConflictError(
            f"conflicting requirements: {head['what']}"
            + (f" ({'; '.join(causes)})" if causes else ""),
            hint="loosen one of the pins above so that they can agree",
        )
    if (not_found := _NOT_FOUND.search(output)) is not None:
        req = not_found["req"]
        versions = not_found["versions"].strip()
        if versions == "none":
            return NotFoundError(
                f"no distribution found for {req!r} on the configured indexes",
                requirement=req,
                hint="check the project name, and --index-url/--extra-index-url/--find-links",
            )
        return NotFoundError(
            f"no version of {req!r} is available (versions found: {versions})",
            requirement=req,
            hint="relax the version specifier, or add --pre for pre-releases",
        )
    if "metadata-generation-failed" in output or "Failed to build" in output:
        project = _last_collected(lines)
        return BuildError(
            f"pip could not prepare the metadata of {project or 'an sdist'} while resolving",
            name=project or "?",
            version="?",
            log_tail=tail(output),
            hint="the sdist's build failed; a compiler or system headers may be missing",
        )
    errors = [ln.removeprefix("ERROR: ").strip() for ln in lines if ln.startswith("ERROR:")]
    message = errors[-1] if errors else (tail(output, 1) or "pip failed without a message")
    return ResolutionError(f"pip could not resolve the requirements: {message}")


def _conflict_causes(lines: list[str]) -> list[str]:
    causes: list[str] = []
    collecting = False
    for line in lines:
        if "The conflict is caused by:" in line:
            collecting = True
            continue
        if collecting:
            text = line.strip()
            if not text or text.startswith(("To fix", "Additionally", "ERROR")):
                break
            causes.append(text)
    return causes


def _last_collected(lines: list[str]) -> str | None:
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("Collecting "):
            return text.removeprefix("Collecting ").split(" ", 1)[0]
    return None
