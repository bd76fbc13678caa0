"""Requirements -> a pinned set of files, by pip's own resolver (its ``--dry-run --report``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import tempfile
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse._base._pip import hide_credentials, online_env, run_pip
from wheelhouse._base._subprocess import tail
from wheelhouse._base._uv import pip_settings_as_uv_args, run_uv, uv_env
from wheelhouse._base.pip_settings import PYPI_SIMPLE, FormatControl, PipSettings
from wheelhouse._base.targets import Target
from wheelhouse._base.urls import strip_credentials
from wheelhouse._base.wheels import project_of
from wheelhouse.download.pins import Pin
from wheelhouse.errors import (
    BuildError,
    ConflictError,
    HashMismatchError,
    NetworkError,
    NotFoundError,
    QuarantinedError,
    RequirementsError,
    ResolutionError,
    WheelhouseError,
)
from wheelhouse.house.manifest import FileKind, Sha256
from wheelhouse.inputs.requirements import InputSet

__all__ = [
    "Resolution",
    "download",
    "pip_version",
    "requested_names",
    "resolve",
    "resolve_foreign",
    "resolve_host_uv",
    "uv_version",
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
        error = _unreachable(pip, _first_project(inputs))
        if error is not None:
            abort.set()
        return error

    with ThreadPoolExecutor(max_workers=1) as pool:
        probed = pool.submit(probe)
        result = run_pip(args, env=env, python=target.python, abort=abort, on_stdout=on_output)
        unreachable = probed.result()
    if unreachable is not None:
        raise unreachable
    untap = tap.untap if tap is not None else str
    if not result.ok or not produced.exists():
        raise explain_pip_failure(untap(result.stdout + "\n" + result.stderr), pip, inputs)
    return untap(result.stdout)


def uv_version(pip: PipSettings) -> str:
    """The version of the uv that resolves (``uv --version``'s number), for messages."""
    result = run_uv(["--version"], env=uv_env(pip), purpose="--resolver uv needs uv")
    words = result.stdout.split()
    return words[1] if result.ok and len(words) > 1 else "?"


def pip_version() -> str:
    """The version of the pip that resolves for the host (the one installed beside us)."""
    import importlib.metadata  # here: a build that starts uv need not load it first

    try:
        return importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _first_project(inputs: InputSet) -> str:
    for line in inputs.lines:
        with contextlib.suppress(InvalidRequirement):
            return canonicalize_name(Requirement(line.requirement).name)
    return ""


def _unreachable(pip: PipSettings, project: str = "") -> NetworkError | None:
    """The first http(s) index pip would read that does not answer at all, as an error.

    Any HTTP answer counts as reachable (a private index may want credentials that pip has
    and we do not), and so does a TLS or proxy refusal (pip may trust a certificate store, or
    hold credentials, that we do not): only a host that cannot be looked up or connected to
    is an error. A project's page is asked for, not the index's root: PyPI's takes 0.6 s.
    """
    # Imported here, after a failure: a build that starts uv does not wait on them.
    import urllib3

    from wheelhouse._base._http import HttpClient

    client = HttpClient(pip)
    for url in [u for u in pip.index_urls if u.startswith(("http://", "https://"))]:
        try:
            # Asked once: a probe that retried would only delay the error it exists to give.
            page = f"{url.rstrip('/')}/{project}/" if project else url
            # HEAD: the status line is enough, and a page's body can be megabytes (and
            # PyPI's /simple/ 40 MB), read for nothing but a count of bytes over pip's.
            response = client.get(page, retries=False, method="HEAD")
            response.close()
            response.release_conn()
        except (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
        ) as exc:
            why = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>: ", "", str(exc))
            return NetworkError(
                f"cannot reach {strip_credentials(url)}: {why}",
                url=strip_credentials(url),
                hint="check the network, the index URL and pip's proxy and cert settings",
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            logger.debug("index probe of %s: %s; pip decides", strip_credentials(url), exc)
    return None


def _from_report(report: dict[str, Any], target: Target) -> Resolution:
    pins = []
    for item in report.get("install", []):
        metadata = item["metadata"]
        name = canonicalize_name(metadata["name"])
        version = metadata["version"]
        info = item["download_info"]
        if "dir_info" in info and not info["dir_info"].get("editable"):
            # A local project: build/local.py builds it into an sdist, which replaces this.
            pins.append(_local_pin(name, version, info["url"], metadata, item))
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


def _local_pin(
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
    r"^\s*(?P<req>\S+(?: @ \S+)?) from (?P<url>\S+?)(?: \(from .*\))?:?\s*\n"
    r"\s*Expected sha256 (?P<expected>\w+)\s*\n\s*Got\s+(?P<got>\w+)",
    re.MULTILINE,
)


_UNPINNED_HEAD = "all requirements must have their versions pinned with =="


def explain_pip_failure(
    output: str, pip: PipSettings, inputs: InputSet | None = None
) -> WheelhouseError:
    """Turn pip's failed output into one error a user can act on."""
    lines = output.splitlines()
    if (fetch := _FETCH.search(output)) is not None:
        return NetworkError(
            f"cannot reach {fetch['url']}: {fetch['why'].strip()}",
            url=fetch["url"],
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if (retry := _RETRY.search(output)) is not None and _NOT_FOUND.search(output):
        url = strip_credentials(pip.index_url or PYPI_SIMPLE)
        where = url.rstrip("/")
        why = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>: ", "", retry["why"])
        return NetworkError(
            f"cannot reach {where} (while fetching {retry['path']}): {why[:200]}",
            url=url,
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if (got := _HASH_GOT.search(output)) is not None:
        bare = got["url"].split("#", 1)[0]
        return HashMismatchError(
            f"hash mismatch for {got['req']} from {got['url']}: expected sha256 "
            f"{got['expected']}, got {got['got']}",
            filename=bare.rsplit("/", 1)[-1],
            expected=got["expected"],
            actual=got["got"],
            hint="the file changed on the index, or the pinned hash is wrong: check before "
            "updating the hash",
        )
    if _UNPINNED_HEAD in output:
        after = output.split(_UNPINNED_HEAD, 1)[1].splitlines()[1:]
        unpinned = [ln.strip().split(" from ", 1)[0] for ln in after if ln.startswith("    ")]
        return RequirementsError(
            "hash-checking mode needs every requirement, dependencies included, pinned with == "
            "and a --hash; not pinned: " + ", ".join(unpinned[:5]),
            hint="pin the whole graph with hashes (e.g. 'pip-compile --generate-hashes'), or "
            "remove the --hash options",
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
        what = _name_input_lines(head["what"], inputs) if inputs else head["what"]
        return ConflictError(
            f"conflicting requirements: {what}" + (f" ({'; '.join(causes)})" if causes else ""),
            hint="loosen one of the pins above so that they can agree",
        )
    if (not_found := _NOT_FOUND.search(output)) is not None:
        req = not_found["req"]
        versions = not_found["versions"].strip()
        if versions == "none":
            return (
                _quarantined(req, pip)
                or _sdists_forbidden(req, pip)
                or NotFoundError(
                    f"no distribution found for {req!r} on the configured indexes",
                    requirement=req,
                    hint="check the project name, and --index-url/--extra-index-url/--find-links"
                    + (
                        "; the release cooldown (--exclude-newer) may hold back every release"
                        if pip.command_line.cooldown is not None
                        else ""
                    ),
                )
            )
        found = versions.split(", ")
        if len(found) > _SHOWN_VERSIONS:
            # pip lists every release, oldest first: the newest say what is there.
            older = len(found) - _SHOWN_VERSIONS
            versions = f"{older} older, then " + ", ".join(found[-_SHOWN_VERSIONS:])
        return NotFoundError(
            f"no version of {req!r} is available (versions found: {versions})",
            requirement=req,
            hint="relax the version specifier, or add --pre for pre-releases",
        )
    if "metadata-generation-failed" in output or "Failed to build" in output:
        project = _last_collected(lines)
        name, version = _last_sdist_file(lines)
        # A local path or find-links file has no 'Collecting' line, only 'Processing PATH'.
        what = project or (f"{name} {version}" if name else None)
        from wheelhouse.builder.from_sdist import sdist_build_hint

        log = _subprocess_output(lines) or output
        return BuildError(
            f"pip could not prepare the metadata of {what or 'an sdist'} while resolving",
            name=name or project or "?",
            version=version or "?",
            log_tail=tail(log),
            hint=sdist_build_hint(log),
        )
    errors = [ln.removeprefix("ERROR: ").strip() for ln in lines if ln.startswith("ERROR:")]
    message = errors[-1] if errors else (tail(output, 1) or "pip failed without a message")
    return ResolutionError(f"pip could not resolve the requirements: {message}")


# uv's words for a project whose page lists no file: "there are no versions of NAME".
_NO_VERSIONS = re.compile(r"there (?:are|is) no versions of (?P<name>[A-Za-z0-9._-]+)")


def _quarantined(req: str, pip: PipSettings) -> WheelhouseError | None:
    """pip found no file of ``req`` because the index quarantines the project (PEP 792: it
    lists none), as the one line the pinned path gives for it; else None."""
    try:
        name = canonicalize_name(Requirement(req).name)
    except InvalidRequirement:
        return None
    from wheelhouse._base.targets import HOST
    from wheelhouse.resolve.from_pins import IndexFiles

    try:
        IndexFiles(pip, HOST, jobs=1).files(name, "0")
    except QuarantinedError as exc:
        return exc
    except WheelhouseError:
        return None
    return None


def _sdists_forbidden(req: str, pip: PipSettings) -> NotFoundError | None:
    """pip found no version of ``req`` because ``--only-binary`` rules out the sdists the
    index has (pip says only "versions: none"), as an error saying so; else None."""
    try:
        requirement = Requirement(req)
    except InvalidRequirement:
        return None
    name = canonicalize_name(requirement.name)
    formats = pip.formats
    if "source" in formats.allowed(name):
        return None
    flag = f"--only-binary {name if name in formats.only_binary else ':all:'}"
    hint = f"allow it with --no-binary {name}, or drop {flag}"
    pinned = [
        s.version for s in requirement.specifier if s.operator == "==" and "*" not in s.version
    ]
    if len(pinned) != 1:
        # Which versions the index has is not known here: the flag is named as a cause.
        return NotFoundError(
            f"no wheel of {req!r} on the configured indexes that fits, and {flag} rules out "
            "building one from an sdist",
            requirement=req,
            hint=f"check the project name and the indexes; if it publishes only sdists, {hint}",
        )
    from wheelhouse._base.targets import HOST
    from wheelhouse.resolve.from_pins import IndexFiles

    try:
        files = IndexFiles(pip, HOST, jobs=1).files(name, pinned[0])
    except WheelhouseError:
        return None
    sdists = sorted(f for f in files if not f.endswith(".whl"))
    if not sdists:
        return None
    has = (
        "no wheel for this machine, only an sdist" if len(files) > len(sdists) else "only an sdist"
    )
    return NotFoundError(
        f"{req} has {has} on the configured indexes ({sdists[0]}), and {flag} forbids building it",
        requirement=req,
        hint=hint,
    )


def _subprocess_output(lines: list[str]) -> str:
    """The backend's own output, which pip frames between '[N lines of output]' and '[end...]'."""
    block: list[str] = []
    inside = False
    for line in lines:
        if re.search(r"\[\d+ lines? of output\]", line):
            inside, block = True, []
        elif "[end of output]" in line:
            inside = False
        elif inside:
            block.append(line)
    return "\n".join(block)


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


def _last_sdist_file(lines: list[str]) -> tuple[str | None, str | None]:
    """Name and version of the sdist file pip processed or downloaded last
    (``Processing ./x-1.0.tar.gz``, ``Downloading x-1.0.tar.gz``)."""
    for line in reversed(lines):
        text = line.strip()
        for prefix in ("Processing ", "Downloading ", "Using cached "):
            if text.startswith(prefix):
                filename = unquote(text.removeprefix(prefix).split(" ", 1)[0].rsplit("/", 1)[-1])
                try:
                    name, version = parse_sdist_filename(filename)
                except InvalidSdistFilename:
                    continue
                return str(name), str(version)
    return None, None


_SHOWN_VERSIONS = 10
_INPUT_LINE = re.compile(r"-[rc] (?P<path>.+?) \(line (?P<line>\d+)\)")


def _name_input_lines(text: str, inputs: InputSet) -> str:
    """pip's ``-r FILE (line N)`` as the requirement written there, with its place."""
    written = {(line.path.absolute(), line.line): line.requirement for line in inputs.lines}

    def named(match: re.Match[str]) -> str:
        place = (Path(match["path"]).absolute(), int(match["line"]))
        requirement = written.get(place)
        where = f"{match['path']}:{match['line']}"
        return f"{requirement!r} ({where})" if requirement else match[0]

    return _INPUT_LINE.sub(named, text)


def _last_collected(lines: list[str]) -> str | None:
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("Collecting "):
            return text.removeprefix("Collecting ").split(" ", 1)[0]
    return None


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


def requested_names(inputs: InputSet, target: Target) -> set[NormalizedName]:
    """The projects ``inputs`` name for ``target`` (not constraints; markers evaluated)."""
    return {
        canonicalize_name(req.name)
        for req in inputs.requested()
        if req.marker is None or req.marker.evaluate(target.environment)
    }


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
        return _local_pin(name, version, where.as_uri(), {}, {"requested": name in requested})
    elif "archive" in package and "url" in package["archive"]:
        # A direct URL requirement (name @ https://...): the one file there is.
        chosen, filename = package["archive"], _lock_filename(package["archive"])
        kind = _kind(filename)
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
    if pip is not None and (empty := _NO_VERSIONS.search(detail)) is not None:
        # A project whose page lists no file at all: one the index quarantines (PEP 792)?
        quarantined = _quarantined(empty["name"], pip)
        if quarantined is not None:
            return quarantined
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
