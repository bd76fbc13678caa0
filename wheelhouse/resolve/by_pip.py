"""Requirements -> a pinned set of files, by pip's own resolver (its ``--dry-run --report``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse._base._pip import hide_credentials, online_env, run_pip
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.targets import Target
from wheelhouse._base.wheels import project_of
from wheelhouse.download.pins import Pin
from wheelhouse.errors import (
    NetworkError,
    ResolutionError,
)
from wheelhouse.house.manifest import FileKind, Sha256
from wheelhouse.inputs.requirements import InputSet
from wheelhouse.resolve.pip_failures import explain_pip_failure, first_project, unreachable

__all__ = [
    "Resolution",
    "download",
    "file_kind",
    "local_pin",
    "pip_version",
    "requested_names",
    "resolve",
]

logger = logging.getLogger(__name__)


class Tap(Protocol):
    """Other URLs for the indexes pip reads, and the way back (``build._pagetap.PageTap``)."""

    @property
    def index_urls(self) -> Sequence[str]: ...

    def untap(self, text: str) -> str: ...


@dataclass(frozen=True)
class Resolution:
    """pip's answer for one target."""

    target: Target
    pins: tuple[Pin, ...]
    environment: dict[str, str]
    pip_version: str


def resolve(inputs: InputSet, pip: PipSettings, target: Target) -> Resolution:
    """Ask pip which distributions and files ``inputs`` need on ``target``; pip reads its
    configuration itself and is given the command line's options (``pip.command_line``)."""
    with tempfile.TemporaryDirectory(prefix="wheelhouse-resolve-") as tmp:
        report_path = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--report", str(report_path)]
        _run_resolver(args, inputs, pip, target, produced=report_path)
        report = json.loads(report_path.read_text(encoding="utf-8"))
    return _from_report(report, target)


def download(
    inputs: InputSet,
    pip: PipSettings,
    target: Target,
    staging: Path,
    *,
    reuse: Sequence[Path] = (),
    tap: Tap | None = None,
    on_output: Callable[[str], None] | None = None,
) -> tuple[tuple[Path, ...], frozenset[Path]] | None:
    """Let pip resolve ``inputs`` and save the file of each distribution it chose in ``staging``.

    The same resolution as :func:`resolve` (``pip download`` ignores what is installed, as
    ``--ignore-installed`` does), but the files pip downloads to read their metadata are kept:
    an index without PEP 658 metadata makes pip download every wheel while resolving, and
    ``pip install --dry-run`` throws them away. ``pip download`` writes no report, so the
    caller learns each file's URL and hash from the index (the pinned path) and checks the
    saved file against it.

    ``reuse`` are verified files from an earlier resolution, linked into ``staging`` first:
    pip takes a file it finds there instead of downloading it, after checking it against the
    hash the index gives (or downloads it again), so a rebuild downloads only what changed.
    ``staging`` must be empty. Returns the files of pip's answer and those of them that were
    reused, or None when pip's output does not say which of the reused files it kept.

    ``tap`` gives pip other URLs for the indexes (every index pip would read, in pip's order,
    as ``tap.index_urls``) and turns them back into the indexes' own in pip's output.
    """
    linked: dict[Path, NormalizedName] = {}
    for path in reuse:
        project = project_of(path.name)
        if project is None:
            continue
        try:
            os.link(path, staging / path.name)
        except OSError:
            continue  # another filesystem: pip downloads it
        linked[staging / path.name] = project
    args = ["download", "--dest", str(staging)]
    output = _run_resolver(
        args, inputs, pip, target, produced=staging, tap=tap, on_output=on_output
    )
    present = sorted(p for p in staging.iterdir() if p.is_file())
    if not linked:
        return tuple(present), frozenset()
    # Unused reused files stay in staging: pip's answer is what it saved now, and the
    # reused files of the projects it says it "downloaded" (one file each) that it did not
    # replace by another.
    done = _DOWNLOADED.search(output)
    if done is None:
        return None
    names = {canonicalize_name(n) for n in done["names"].split()}
    saved = {staging / m["filename"] for m in _SAVED.finditer(output)}
    saved_projects = {project_of(p.name) for p in saved}
    kept = {
        p
        for p in present
        if p not in saved and p in linked and linked[p] in names and linked[p] not in saved_projects
    }
    return tuple(p for p in present if p in saved or p in kept), frozenset(kept)


_DOWNLOADED = re.compile(r"^Successfully downloaded (?P<names>.+)$", re.MULTILINE)
_SAVED = re.compile(r"^Saved .*?(?P<filename>[^/\\\n]+)$", re.MULTILINE)


def _run_resolver(
    command: list[str],
    inputs: InputSet,
    pip: PipSettings,
    target: Target,
    *,
    produced: Path,
    tap: Tap | None = None,
    on_output: Callable[[str], None] | None = None,
) -> str:
    """Run pip's resolver (``command`` and the inputs): its output, or the error it explains."""
    index = pip.command_line
    # The URLs pip is given carry no credentials: pip writes them on a child's command line.
    given = dataclasses.replace(
        index,
        index_url=index.index_url and hide_credentials(index.index_url),
        extra_index_urls=tuple(hide_credentials(u) for u in index.extra_index_urls),
        find_links=tuple(hide_credentials(u) for u in index.find_links),
    )
    # With the tap, pip reads no index itself: the tap holds the indexes' credentials.
    indexes = (index.index_url, *index.extra_index_urls) if tap is None else ()
    own = [u for u in (*indexes, *index.find_links) if u]
    env = online_env(urls=own, indexes=tap is None)
    if tap is not None:
        # pip's configuration and command line extend each other's extra indexes; the
        # environment replaces both (PIP_* variables come last in pip's configuration).
        given = dataclasses.replace(given, index_url=None, extra_index_urls=())
        urls = list(tap.index_urls)
        env["PIP_INDEX_URL"] = urls[0]
        env["PIP_EXTRA_INDEX_URL"] = " ".join(urls[1:])
        # The environment's proxies must not be asked for the tap, which is on loopback.
        for name in ("NO_PROXY", "no_proxy"):
            env[name] = ",".join(filter(None, [env.get(name, ""), "127.0.0.1"]))
    args = [*command, "--progress-bar", "off", *given.pip_args()]
    for path in inputs.requirements:
        args += ["-r", str(path.absolute())]
    for path in inputs.constraints:
        args += ["-c", str(path.absolute())]
    # Offline, pip gives up on an index without a word (with --retries 0, or after its
    # retries) and resolves from whatever else answers: a file:// mirror's older releases.
    # So every index is asked for itself while pip runs, and silence is an error.
    # When that answer comes first, pip is not waited for (offline, it retries each
    # project for seconds).
    abort = threading.Event()

    def probe() -> NetworkError | None:
        error = unreachable(pip, first_project(inputs))
        if error is not None:
            abort.set()
        return error

    with ThreadPoolExecutor(max_workers=1) as pool:
        probed = pool.submit(probe)
        result = run_pip(args, env=env, python=target.python, abort=abort, on_stdout=on_output)
        silent = probed.result()
    if silent is not None:
        raise silent
    untap = tap.untap if tap is not None else str
    if not result.ok or not produced.exists():
        raise explain_pip_failure(untap(result.stdout + "\n" + result.stderr), pip, inputs)
    return untap(result.stdout)


def pip_version() -> str:
    """The version of the pip that resolves for the host (the one installed beside us)."""
    import importlib.metadata  # here: a build that starts uv need not load it first

    try:
        return importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _from_report(report: dict[str, Any], target: Target) -> Resolution:
    pins = []
    for item in report.get("install", []):
        metadata = item["metadata"]
        name = canonicalize_name(metadata["name"])
        version = metadata["version"]
        info = item["download_info"]
        if "dir_info" in info and not info["dir_info"].get("editable"):
            # A local project: build/local.py builds it into an sdist, which replaces this.
            pins.append(local_pin(name, version, info["url"], metadata, item))
            continue
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
                kind=file_kind(filename),
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


def local_pin(
    name: NormalizedName, version: str, url: str, metadata: dict[str, Any], item: dict[str, Any]
) -> Pin:
    return Pin(
        name=name,
        version=version,
        url=url,
        filename=f"{name}-{version}.local-project",
        kind="sdist",
        sha256=None,
        requires_python=metadata.get("requires_python"),
        requested=bool(item.get("requested")),
    )


def file_kind(filename: str) -> FileKind:
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


def requested_names(inputs: InputSet, target: Target) -> set[NormalizedName]:
    """The projects ``inputs`` name for ``target`` (not constraints; markers evaluated)."""
    return {
        canonicalize_name(req.name)
        for req in inputs.requested()
        if req.marker is None or req.marker.evaluate(target.environment)
    }
