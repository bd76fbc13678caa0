"""``wheelhouse mirror``: an index's files that chosen targets can install, each verified against
the index's sha256, copied incrementally and crash-safely into a static wheelhouse tree."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import urllib3
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base._pip import index_urls, pip_config
from wheelhouse._base.cooldown import Cooldown
from wheelhouse._base.files import sha256_file, write_atomic
from wheelhouse._base.progress import NullReporter, Reporter
from wheelhouse._base.targets import HOST, Target
from wheelhouse._base.urls import file_url_path
from wheelhouse._base.wheels import read_wheel_metadata
from wheelhouse._base.words import count
from wheelhouse.errors import (
    FetchError,
    HashMismatchError,
    NetworkError,
    OutputDirError,
    UsageError,
    WheelhouseError,
)
from wheelhouse.house.index import (
    METADATA_SUFFIX,
    IndexEntry,
    project_pages,
    render_project,
    render_root,
    requires_python_of,
    write_if_changed,
)
from wheelhouse.house.manifest import (
    GENERATOR,
    MANIFEST_NAME,
    MIRROR_STATE_DIR,
    PROVENANCE_SUFFIX,
    Downloaded,
    FileKind,
    FileRecord,
    InputFile,
    Inputs,
    LockEntry,
    Manifest,
    Sha256,
    TargetLock,
    read_manifest,
    record_from_dict,
    record_to_dict,
)
from wheelhouse.mirror.selection import (
    FILTER_KEYS,
    FilterKey,
    Filters,
    Remembered,
    adopt,
    merge_filters,
    read_selection,
    selection_path,
    write_selection,
)
from wheelhouse.pipeline.settings import IndexOptions
from wheelhouse.serve._upstream import (
    ACCEPT,
    PageResult,
    UpstreamError,
    UpstreamFile,
    fetch_project_page,
    fetch_provenance,
    parse_html_page,
    parse_json_page,
    project_page_url,
    read_page,
)
from wheelhouse.serve._upstream import (
    ProjectStatus as UpstreamStatus,
)

__all__ = [
    "STATE_VERSION",
    "MirrorSettings",
    "MirrorSummary",
    "PlannedFile",
    "ProjectOutcome",
    "ProjectStatus",
    "SelectionChange",
    "mirror",
]

logger = logging.getLogger(__name__)

STATE_VERSION = 1
_PROJECTS = "projects"
# Appended (and fsynced) as each file is verified, before it is put in place: the mirror's
# claim on the name until the project's state file takes the claim over.
_OWNED = ".owned"
_TMP = "tmp"
_CHUNK = 1024 * 1024
_ATTEMPTS = 3
# The root listing of --all, inflated: PyPI's lists about 930,000 names in about 46 MB.
_MAX_ROOT = 96 * 1024 * 1024
# ...and the time it may take to arrive (it is read once per run).
_ROOT_TIMEOUT = 300.0
# A name and its ".metadata" must fit in one path component (255 bytes on most systems).
_MAX_FILENAME = 255 - len(METADATA_SUFFIX)

ProjectStatus = Literal["new", "updated", "unchanged", "removed", "failed"]
# Per target of -r: the (name, version, requested) pip or uv chose, for the manifest's locks.
_Pins = list[tuple[Target, list[tuple[NormalizedName, str, bool]]]]


@dataclass(frozen=True)
class MirrorSettings:
    """Everything ``wheelhouse mirror`` needs to know."""

    output: Path
    # Requirement strings (``django>=4.2``): the project, and which of its versions.
    projects: tuple[str, ...] = ()
    # Requirements files: their dependency closure for every target, resolved as build does.
    requirements: tuple[Path, ...] = ()
    all_projects: bool = False
    index: IndexOptions = field(default_factory=IndexOptions)
    # A wheel is kept when one of them accepts one of its tags; none keeps every wheel.
    targets: tuple[Target, ...] = ()
    sdists: bool = True
    latest: int | None = None
    prereleases: bool = True
    max_file_size: int | None = None
    yanked: bool = True
    # The release cooldown (see docs/cooldown.md): files uploaded after the cutoff are not
    # mirrored yet; a file whose upload time the index does not give is kept or refused.
    exclude_newer: str | None = None
    exclude_newer_packages: tuple[str, ...] = ()
    no_upload_time: str = "refuse"
    # The above, read once per run (durations count back from the run's start).
    cooldown: Cooldown | None = None
    jobs: int = 8
    dry_run: bool = False
    # Resolve -r again even when the requirements, targets and indexes have not changed.
    refresh: bool = False
    # The filters the user gave (the others are the mirror's remembered ones); None: all of
    # them, as these settings hold them.
    filters_given: frozenset[FilterKey] | None = None
    # Make the filters given (defaults for the others) the mirror's, for every project.
    replace_filters: bool = False
    # Forget the projects, requirement files and --all given, and delete what they brought.
    remove: bool = False
    # PEP 740: a file whose provenance the index does not name, or that cannot be fetched
    # and checked, is not mirrored (without it: a warning, and the file is).
    require_provenance: bool = False


@dataclass(frozen=True)
class PlannedFile:
    """A file the selection keeps, from the upstream page alone."""

    project: NormalizedName
    filename: str
    size: int | None
    fetch: bool  # not in the mirror yet


@dataclass(frozen=True)
class ProjectOutcome:
    """What a run did to one project."""

    name: NormalizedName
    status: ProjectStatus
    files: int = 0
    bytes: int = 0
    fetched: int = 0
    fetched_bytes: int = 0
    removed: int = 0
    errors: tuple[str, ...] = ()
    # Files of its pages that were refused (paths, another project's, file: URLs), and why.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SelectionChange:
    """How a run changed what the mirror remembers (``DIR/.mirror/selection.json``)."""

    added: tuple[NormalizedName, ...] = ()
    # Named for the first time, but no index has them (a typo) or their page failed.
    not_added: tuple[NormalizedName, ...] = ()
    removed: tuple[NormalizedName, ...] = ()
    requirements_added: tuple[str, ...] = ()
    requirements_removed: tuple[str, ...] = ()
    filters_replaced: bool = False
    # An older mirror's projects, taken over on its first run with this version.
    adopted: tuple[NormalizedName, ...] = ()
    # What the mirror remembers after the run (before it, with --dry-run: what it would).
    remembered: Remembered = field(default_factory=Remembered)


@dataclass(frozen=True)
class MirrorSummary:
    """What a run did, project by project."""

    output: Path
    dry_run: bool
    projects: tuple[ProjectOutcome, ...]
    planned: tuple[PlannedFile, ...]
    requests: int
    seconds: float
    selection: SelectionChange = field(default_factory=SelectionChange)

    @property
    def failed(self) -> tuple[ProjectOutcome, ...]:
        return tuple(p for p in self.projects if p.status == "failed")


# -- what to mirror --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Want:
    """Which versions of a project to keep: a specifier, or the exact versions pinned."""

    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    versions: frozenset[Version] | None = None

    def allows(self, version: Version) -> bool:
        if self.versions is not None:
            return version in self.versions
        return self.specifier.contains(version, prereleases=True)


def _parse_projects(texts: Iterable[str]) -> dict[NormalizedName, _Want]:
    wanted: dict[NormalizedName, _Want] = {}
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise UsageError(
                f"{text!r} is not a project name with an optional version specifier: {exc}",
                hint="write it as pip does, e.g. 'django' or 'django>=4.2'",
            ) from exc
        name = canonicalize_name(requirement.name)
        previous = wanted.get(name)
        specifier = requirement.specifier
        if previous is not None:
            specifier &= previous.specifier
        wanted[name] = _Want(specifier=specifier)
    return wanted


# -- the state kept between runs -------------------------------------------------------------


@dataclass(frozen=True)
class _Listing:
    """The validators of one index's page of a project, as last seen.

    The page itself is not kept (PyPI's largest run to megabytes): a 304 means that the
    files chosen from it last time are still the right ones, as long as the selection is
    the same (``_ProjectState.selection``); when it is not, the page is asked for whole.
    """

    url: str
    etag: str | None
    last_modified: str | None
    # The page's sha256: an index that sends no validators (this machine's) still answers
    # the same bytes when nothing changed, and parsing PyPI's largest pages takes seconds.
    digest: str | None = None


@dataclass(frozen=True)
class _Mirrored:
    """A file in the mirror, verified, with its PEP 658 metadata's hash (wheels)."""

    record: FileRecord
    metadata_sha256: str | None


@dataclass(frozen=True)
class _ProjectState:
    name: NormalizedName
    listings: tuple[_Listing, ...] = ()
    files: tuple[_Mirrored, ...] = ()
    # What chose ``files`` from the pages: the filters and the versions wanted.
    selection: str = ""
    # Every file the mirror put in place for this project, each verified first: the only
    # files it may ever overwrite or delete. A superset of ``files`` while a run is under way.
    owned: frozenset[str] = frozenset()
    # Read from a file that must be written again: it held credentials, names that are not
    # the project's files, or claims from the ownership journal.
    stale: bool = field(default=False, compare=False)


def _state_path(out: Path, name: str) -> Path:
    return out / MIRROR_STATE_DIR / _PROJECTS / f"{name}.json"


def _journal_path(out: Path, name: str) -> Path:
    return out / MIRROR_STATE_DIR / _PROJECTS / f"{name}{_OWNED}"


def _write_state(out: Path, state: _ProjectState) -> None:
    data = {
        "state-version": STATE_VERSION,
        "name": state.name,
        "listings": [
            {
                "url": strip_credentials(listing.url),
                "etag": listing.etag,
                "last-modified": listing.last_modified,
                "sha256": listing.digest,
            }
            for listing in state.listings
        ],
        "selection": state.selection,
        "files": [
            {
                **record_to_dict(replace(m.record, origin=_stripped(m.record.origin))),
                "metadata-sha256": m.metadata_sha256,
            }
            for m in state.files
        ],
        "owned": sorted(state.owned),
    }
    path = _state_path(out, state.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fsync: the journal's claims are dropped next, once the state holds them durably.
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode(), fsync=True)
    _journal_path(out, state.name).unlink(missing_ok=True)


class _Journal:
    """Claims on file names, one line each, durable before the file is put in place.

    A claim is made only for bytes verified against the index's sha256, so a name the
    mirror claims is one whose file it wrote: a file someone else put there is never
    claimed, and so never overwritten or deleted later.
    """

    def __init__(self, out: Path) -> None:
        self._out = out
        self._lock = threading.Lock()

    def claim(self, project: NormalizedName, filename: str) -> None:
        assert _refusal(filename, project) is None, filename
        path = _journal_path(self._out, project)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, filename.encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)


_NOT_A_DIST = "is not a wheel or sdist file name"


def _refusal(filename: str, project: NormalizedName) -> str | None:
    """Why ``filename`` cannot be a file of ``project`` in the mirror, or None if it can.

    A name from an index page (or from a state file) is data: it is used as a path only if
    it is a single, plain path component and parses as a wheel or sdist of the project.
    """
    if (
        not filename
        or any(c in filename for c in "/\\")
        or not filename.isprintable()  # NUL, newlines and other control characters
        or filename.strip(".") == ""
    ):
        return "is a path or not a file name"
    if len(filename.encode("utf-8", errors="replace")) > _MAX_FILENAME:
        return "is too long for a file name"
    try:
        if filename.endswith(".whl"):
            name = parse_wheel_filename(filename)[0]
        else:
            name = parse_sdist_filename(filename)[0]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return _NOT_A_DIST
    if name != project:
        return f"is a file of {name!r}, not of {project!r}"
    return None


def _project_name(text: str) -> NormalizedName | None:
    """``text`` as a normalized project name, or None when it is not a valid one (so that a
    name from a page or a state file never becomes a path with separators in it)."""
    try:
        return canonicalize_name(text, validate=True)
    except InvalidName:
        return None


def _read_states(out: Path) -> dict[NormalizedName, _ProjectState]:
    states: dict[NormalizedName, _ProjectState] = {}
    directory = out / MIRROR_STATE_DIR / _PROJECTS
    if not directory.is_dir():
        return states
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("state-version") != STATE_VERSION:
                raise ValueError(f"state version {data.get('state-version')!r}")
            name = _project_name(str(data["name"]))
            if name is None or name != path.name.removesuffix(".json"):
                logger.warning(
                    "%s names the project %r: not a valid project name for this file; ignored "
                    "(the files it lists are left alone)",
                    path,
                    data["name"],
                )
                continue
            state = _ProjectState(
                name=name,
                listings=tuple(
                    _Listing(
                        url=str(item["url"]),
                        etag=item.get("etag"),
                        last_modified=item.get("last-modified"),
                        digest=item.get("sha256"),
                    )
                    for item in data["listings"]
                ),
                selection=str(data.get("selection", "")),
                files=tuple(
                    _Mirrored(record_from_dict(item), item.get("metadata-sha256"))
                    for item in data["files"]
                ),
                owned=frozenset(str(item) for item in data["owned"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputDirError(
                f"the mirror state {str(path)!r} cannot be read: {exc}",
                path=path,
                hint=f"remove {str(out / MIRROR_STATE_DIR)!r} and the mirror's files, "
                "and mirror again",
            ) from exc
        states[name] = _checked_state(path, state)
    for path in sorted(directory.glob(f"*{_OWNED}")):
        # Claims of a run killed before it wrote the project's state.
        name = _project_name(path.name.removesuffix(_OWNED))
        if name is None or name != path.name.removesuffix(_OWNED):
            continue
        try:
            claims = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise OutputDirError(
                f"the mirror state {str(path)!r} cannot be read: {exc.strerror}", path=path
            ) from exc
        state = states.get(name, _ProjectState(name))
        owned = state.owned | {c for c in claims if _refusal(c, name) is None}
        states[name] = replace(state, owned=owned, stale=True)
    return states


def _checked_state(path: Path, state: _ProjectState) -> _ProjectState:
    """``state`` without names that are not its project's files (a state written by an
    older run, or edited), and without credentials in its URLs; stale if it had any."""
    name = state.name
    bad = sorted(
        {m.record.filename for m in state.files if _refusal(m.record.filename, name)}
        | {m.record.filename for m in state.files if m.record.name != name}
        | {f for f in state.owned if _refusal(f, name)}
    )
    for filename in bad:
        logger.warning(
            "%s records %r, which %s; it is never used as a path (not overwritten, not deleted)",
            path,
            filename,
            _refusal(filename, name) or f"is not a file of {name!r}",
        )
    listings = tuple(replace(item, url=strip_credentials(item.url)) for item in state.listings)
    files = tuple(
        replace(m, record=replace(m.record, origin=_stripped(m.record.origin)))
        for m in state.files
        if m.record.filename not in bad
    )
    checked = replace(
        state,
        listings=listings,
        files=files,
        owned=frozenset(f for f in state.owned if f not in bad),
    )
    return replace(checked, stale=checked != state)


def _stripped(origin: object) -> Downloaded:
    assert isinstance(origin, Downloaded)
    return replace(origin, url=strip_credentials(origin.url))


# -- selection -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    file: UpstreamFile
    name: NormalizedName
    version: Version
    kind: FileKind
    tags: frozenset[Tag]
    # Listed by a file:// index (the user's own): only then may its URL be a file:// URL.
    local: bool = False


def _yank_reason(file: UpstreamFile) -> str | None:
    """PEP 592 as the manifest records it: None, or the reason ("" when none was given)."""
    if file.yanked is False:
        return None
    return file.yanked if isinstance(file.yanked, str) else ""


def _candidate(file: UpstreamFile, local: bool) -> _Candidate:
    """A file whose name ``_refusal`` accepted, as a candidate."""
    if file.filename.endswith(".whl"):
        name, version, _, tags = parse_wheel_filename(file.filename)
        return _Candidate(file, name, version, "wheel", tags, local)
    name, version = parse_sdist_filename(file.filename)
    return _Candidate(file, name, version, "sdist", frozenset(), local)


@dataclass
class _Selection:
    chosen: list[_Candidate] = field(default_factory=list)
    # Files the cooldown holds back this run (mirrored by a later one, once old enough).
    held: int = 0
    # Why files that would have been chosen were not (logged at INFO).
    skipped: list[str] = field(default_factory=list)
    # Files whose names are refused: paths, another project's files (warnings).
    refused: list[str] = field(default_factory=list)
    # How many files had an acceptable name.
    named: int = 0


def _select(
    files: Iterable[tuple[UpstreamFile, bool]],
    project: NormalizedName,
    want: _Want,
    settings: MirrorSettings,
    targets: tuple[Target, ...],
) -> _Selection:
    """The files to mirror of one project, and why others that would have been were not.

    ``files`` pairs each file with whether a ``file://`` index listed it.
    """
    selection = _Selection()
    kept: dict[str, _Candidate] = {}
    cooldown = settings.cooldown
    for file, local in files:
        reason = _refusal(file.filename, project)
        if reason == _NOT_A_DIST:
            continue  # eggs, installers, names no installer can read: installers skip them
        if reason is not None:
            selection.refused.append(f"{file.filename!r} {reason}")
            continue
        selection.named += 1
        candidate = _candidate(file, local)
        if file.filename in kept:
            continue
        version = candidate.version
        if not want.allows(version):
            continue
        if not settings.prereleases and (version.is_prerelease or version.is_devrelease):
            continue
        if file.yanked is not False and not settings.yanked:
            continue
        if candidate.kind == "sdist" and not settings.sdists:
            continue
        if candidate.kind == "wheel" and targets and not _fits(candidate, targets):
            continue
        if not _python_fits(file.requires_python, targets):
            continue
        if settings.max_file_size is not None and (file.size or 0) > settings.max_file_size:
            continue
        if file.sha256 is None:
            # Nothing to verify the bytes against: such a file is never mirrored.
            selection.skipped.append(f"{file.filename} has no sha256 on the index; not mirrored")
            continue
        if cooldown is not None:
            verdict = cooldown.verdict(project, file.upload_time)
            if verdict == "too-new":
                selection.held += 1
                selection.skipped.append(
                    f"{file.filename} was uploaded at {file.upload_time}, after the cooldown's "
                    f"cutoff {cooldown.describe(project)}; mirrored once it is older"
                )
                continue
            if verdict == "unknown" and cooldown.no_upload_time == "refuse":
                selection.held += 1
                selection.refused.append(
                    f"{file.filename!r} has no upload-time on the index, so the cooldown cannot "
                    "tell its age (--no-upload-time refuse)"
                )
                continue
        kept[file.filename] = candidate
    chosen = list(kept.values())
    if settings.latest is not None:
        releases = sorted({c.version for c in chosen if c.file.yanked is False}, reverse=True)
        latest = set(releases[: settings.latest])
        chosen = [c for c in chosen if c.version in latest]
    selection.chosen = chosen
    return selection


def _fits(candidate: _Candidate, targets: tuple[Target, ...]) -> bool:
    return any(target.accepts(candidate.tags) is not None for target in targets)


def _python_fits(requires_python: str | None, targets: tuple[Target, ...]) -> bool:
    if not requires_python or not targets:
        return True
    return _python_fits_cached(requires_python, targets)


@functools.lru_cache(maxsize=4096)
def _python_fits_cached(requires_python: str, targets: tuple[Target, ...]) -> bool:
    # A big project's page repeats a handful of Requires-Python values thousands of times.
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # installers ignore what they cannot read; so does the mirror
    return any(
        specifier.contains(target.environment["python_full_version"], prereleases=True)
        for target in targets
    )


# -- the run ---------------------------------------------------------------------------------


@dataclass
class _Counter:
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self) -> None:
        with self._lock:
            self.requests += 1


@dataclass
class _Project:
    """One project's progress through a run."""

    name: NormalizedName
    want: _Want
    old: _ProjectState
    selection: str = ""
    listings: tuple[_Listing, ...] = ()
    # Each file, and whether a file:// index listed it.
    files: list[tuple[UpstreamFile, bool]] = field(default_factory=list)
    # Files of the pages that are not mirrored, and why (logged as warnings).
    refused: list[str] = field(default_factory=list)
    # Every index answered 304 to the same selection: the files chosen last time stand.
    unchanged: bool = False
    found: bool = True
    page_failed: bool = False
    errors: list[str] = field(default_factory=list)
    chosen: list[_Candidate] = field(default_factory=list)
    reused: dict[str, _Mirrored] = field(default_factory=dict)
    fetched: dict[str, _Mirrored] = field(default_factory=dict)
    to_fetch: list[_Candidate] = field(default_factory=list)
    # Files in the mirror already whose provenance the page names and the mirror lacks.
    to_attest: list[_Candidate] = field(default_factory=list)
    # Names claimed in the ownership journal this run.
    claimed: set[str] = field(default_factory=set)
    # PEP 792, from the pages: a quarantined project offers no files.
    status: UpstreamStatus = "active"
    status_reason: str | None = None
    # Files the cooldown held back: the next run reads the pages again to take them.
    held: int = 0


def mirror(settings: MirrorSettings, reporter: Reporter | None = None) -> MirrorSummary:
    """Bring the mirror in ``settings.output`` up to date with the index (or plan it, dry)."""
    report = reporter or NullReporter()
    started = time.monotonic()
    out = settings.output.absolute()
    if settings.remove and not (
        settings.projects or settings.requirements or settings.all_projects
    ):
        raise UsageError(
            "--remove needs the projects (or -r files, or --all) to stop mirroring",
            hint="e.g. wheelhouse mirror -o DIR --remove django",
        )
    a_mirror = (out / MIRROR_STATE_DIR).is_dir() or (out / MANIFEST_NAME).is_file()
    if settings.remove and not a_mirror:
        raise UsageError(f"there is no mirror in {str(out)!r}: nothing to remove")
    if not (settings.projects or settings.requirements or settings.all_projects) and not a_mirror:
        raise UsageError(
            "nothing to mirror", hint="name projects, pass -r FILE, or --all for the whole index"
        )
    _check_output(out)
    if not index_urls(settings.index.over(pip_config())):
        raise UsageError(
            "there is no index to mirror (pip's configuration sets no-index)",
            hint="name one with --index-url",
        )
    counter = _Counter()
    lock: contextlib.AbstractContextManager[None]
    if settings.dry_run:
        lock = contextlib.nullcontext()
    else:
        from wheelhouse.house.directory import locked

        out.mkdir(parents=True, exist_ok=True)
        lock = locked(out, on_wait=report.note)
    with lock:
        states = _read_states(out)
        # What the mirror remembers, with this run's additions, removals and filters.
        settings, pending = _remember(out, settings, states)
        config = settings.index.over(pip_config())
        urls = [url.rstrip("/") + "/" for url in index_urls(config)]
        client = HttpClient(config, pool_size=settings.jobs)
        wanted, pins = _wanted(out, settings, urls, client, counter, config, report)
        targets = settings.targets or ((HOST,) if settings.requirements else ())
        projects = [
            _Project(
                name,
                want,
                states.get(name, _ProjectState(name)),
                selection=_selection(want, settings, targets),
            )
            for name, want in sorted(wanted.items())
        ]
        report.stage(f"reading {count(len(projects), 'project page')}")
        with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
            list(pool.map(lambda p: _read_pages(p, urls, client, counter), projects))
        for project in projects:
            if project.unchanged:
                local = any(item.url.startswith("file:") for item in project.listings)
                project.chosen = [_from_record(m.record, local) for m in project.old.files]
                _plan(project, out)
            elif project.found and not project.page_failed:
                _choose(project, settings, targets)
                if not project.page_failed:
                    _plan(project, out)
        planned = tuple(file for p in projects for file in _planned(p))
        change = _settle(pending, projects)
        if settings.dry_run:
            outcomes = [_with_warnings(_dry_outcome(p), p) for p in projects]
            outcomes += [
                ProjectOutcome(name, "removed", removed=len(state.files))
                for name, state in states.items()
                if name not in wanted
            ]
            return MirrorSummary(
                out,
                True,
                tuple(outcomes),
                planned,
                counter.requests,
                time.monotonic() - started,
                change,
            )
        # Remembered before any file is deleted: a run killed after it converges next time.
        # Compared as bytes: a file with entries that were ignored (not names) is rewritten.
        try:
            written: bytes | None = selection_path(out).read_bytes()
        except FileNotFoundError:
            written = None
        if written != change.remembered.to_json().encode():
            write_selection(out, change.remembered)
        # The manifest records what the mirror keeps (not a name no index has).
        settings = replace(
            settings, projects=tuple(f"{n}{spec}" for n, spec in change.remembered.projects)
        )
        outcomes = _apply(
            out,
            projects,
            states,
            wanted,
            settings,
            client,
            report,
            pins,
            targets,
            removing=frozenset(pending.removing),
        )
        by_name = {p.name: p for p in projects}
        outcomes = [
            _with_warnings(o, by_name[o.name]) if o.name in by_name else o for o in outcomes
        ]
    return MirrorSummary(
        out, False, tuple(outcomes), planned, counter.requests, time.monotonic() - started, change
    )


@dataclass(frozen=True)
class _Pending:
    """What the mirror will remember once this run has read the pages."""

    remembered: Remembered
    previous: frozenset[NormalizedName]
    # Named this run and not remembered before: remembered only if an index has them.
    new: frozenset[NormalizedName]
    removing: tuple[NormalizedName, ...]
    requirements_added: tuple[str, ...]
    requirements_removed: tuple[str, ...]
    filters_replaced: bool
    adopted: tuple[NormalizedName, ...]


def _given_filters(settings: MirrorSettings) -> Filters:
    return Filters(
        targets=tuple(dict.fromkeys(t.name for t in settings.targets)),
        sdists=settings.sdists,
        latest=settings.latest,
        prereleases=settings.prereleases,
        max_file_size=settings.max_file_size,
        yanked=settings.yanked,
        exclude_newer=settings.exclude_newer,
        exclude_newer_packages=settings.exclude_newer_packages,
        no_upload_time=settings.no_upload_time,
        index_url=strip_credentials(settings.index.index_url)
        if settings.index.index_url is not None
        else None,
        extra_index_urls=tuple(strip_credentials(u) for u in settings.index.extra_index_urls),
    )


def _remember(
    out: Path, settings: MirrorSettings, states: Mapping[NormalizedName, _ProjectState]
) -> tuple[MirrorSettings, _Pending]:
    """The settings this run applies (the remembered projects, requirement files and filters,
    with this run's), and what the mirror will remember; a usage error for a filter that
    differs without --replace-filters, or a --remove of something it does not keep."""
    from wheelhouse._base.targets import parse_target

    previous = read_selection(out)
    adopted: tuple[NormalizedName, ...] = ()
    if previous is None:
        previous = adopt(out, states)
        if previous is not None:
            adopted = tuple(sorted({*states, *(name for name, _ in previous.projects)}))
            logger.info(
                "%s has no %s: remembering the %d projects mirrored there",
                out,
                selection_path(out).name,
                len(adopted),
            )
    given = _given_filters(settings)
    keys = frozenset(FILTER_KEYS) if settings.filters_given is None else settings.filters_given
    filters = merge_filters(
        out,
        previous.filters if previous is not None else None,
        given,
        keys,
        replace=settings.replace_filters,
    )
    named = _parse_projects(settings.projects)
    files = [os.path.abspath(path) for path in settings.requirements]
    projects = previous.names if previous is not None else {}
    requirements = list(previous.requirements) if previous is not None else []
    all_projects = previous.all_projects if previous is not None else False
    removing: list[NormalizedName] = []
    added_files: list[str] = []
    removed_files: list[str] = []
    if settings.remove:
        for name in named:
            if name not in projects:
                raise UsageError(
                    f"{name!r} is not one of the projects the mirror in {str(out)!r} keeps; "
                    "nothing was removed",
                    hint="a project that a -r file needs goes when the file no longer needs it "
                    "(or with --remove -r FILE); the projects kept are listed in "
                    f"{str(selection_path(out))!r}",
                )
            del projects[name]
            removing.append(name)
        for path in files:
            if path not in requirements:
                raise UsageError(
                    f"{path!r} is not one of the requirement files the mirror in {str(out)!r} "
                    "keeps; nothing was removed"
                )
            requirements.remove(path)
            removed_files.append(path)
        if settings.all_projects:
            if not all_projects:
                raise UsageError(f"the mirror in {str(out)!r} does not keep --all")
            all_projects = False
    else:
        for name, want in named.items():
            projects[name] = str(want.specifier)
        for path in files:
            if path not in requirements:
                requirements.append(path)
                added_files.append(path)
        all_projects = all_projects or settings.all_projects
    remembered = Remembered(
        tuple(sorted(projects.items())), tuple(requirements), all_projects, filters
    )
    old_names = frozenset(previous.names) if previous is not None else frozenset()
    index = settings.index
    if "index" not in keys:
        # Remembered without credentials: pip's configuration, netrc or -i supply them.
        index = replace(
            index, index_url=filters.index_url, extra_index_urls=filters.extra_index_urls
        )
    targets = (
        settings.targets
        if "targets" in keys or settings.replace_filters
        else tuple(dict.fromkeys(parse_target(t) for t in filters.targets))
    )
    cooldown = Cooldown.from_options(
        filters.exclude_newer, filters.exclude_newer_packages, filters.no_upload_time
    )
    # -r files are resolved under the same cooldown (pip and uv are given it), so that the
    # closure is made of files the mirror will take.
    index = replace(index, cooldown=cooldown)
    effective = replace(
        settings,
        projects=tuple(f"{name}{spec}" for name, spec in remembered.projects),
        requirements=tuple(Path(p) for p in requirements),
        all_projects=all_projects,
        index=index,
        targets=targets,
        sdists=filters.sdists,
        latest=filters.latest,
        prereleases=filters.prereleases,
        max_file_size=filters.max_file_size,
        yanked=filters.yanked,
        exclude_newer=filters.exclude_newer,
        exclude_newer_packages=filters.exclude_newer_packages,
        no_upload_time=filters.no_upload_time,
        cooldown=cooldown,
    )
    pending = _Pending(
        remembered=remembered,
        previous=old_names,
        new=frozenset(n for n in named if n not in old_names)
        if not settings.remove
        else frozenset(),
        removing=tuple(removing),
        requirements_added=tuple(added_files),
        requirements_removed=tuple(removed_files),
        filters_replaced=previous is not None and filters != previous.filters,
        adopted=adopted,
    )
    return effective, pending


def _settle(pending: _Pending, projects: Iterable[_Project]) -> SelectionChange:
    """What the mirror remembers after reading the pages: a name no index has is not
    remembered (a typo), and a remembered one that the indexes no longer have is forgotten
    (its files go, as upstream dropped it)."""
    absent = {p.name for p in projects if not p.found and not p.page_failed}
    unreadable = {p.name for p in projects if p.page_failed}
    kept = tuple(
        (name, spec)
        for name, spec in pending.remembered.projects
        if name not in absent and not (name in pending.new and name in unreadable)
    )
    remembered = replace(pending.remembered, projects=kept)
    kept_names = {name for name, _ in kept}
    return SelectionChange(
        added=tuple(sorted(n for n in pending.new if n in kept_names)),
        not_added=tuple(sorted(n for n in pending.new if n not in kept_names)),
        removed=tuple(sorted({*pending.removing, *(pending.previous - kept_names)})),
        requirements_added=pending.requirements_added,
        requirements_removed=pending.requirements_removed,
        filters_replaced=pending.filters_replaced,
        adopted=pending.adopted,
        remembered=remembered,
    )


def _choose(project: _Project, settings: MirrorSettings, targets: tuple[Target, ...]) -> None:
    """Choose the project's files from its pages; a page whose every file is refused fails
    the project (its mirrored files stay), other refusals are warnings."""
    if project.status == "quarantined":
        # PEP 792: the index offers none of its files, and the mirror keeps none.
        logger.warning(
            "%s: the index has quarantined the project%s; the mirror keeps none of its files",
            project.name,
            f" ({project.status_reason})" if project.status_reason else "",
        )
        project.chosen = []
        return
    selection = _select(project.files, project.name, project.want, settings, targets)
    project.held = selection.held
    for why in selection.skipped:
        logger.info("%s: %s", project.name, why)
    refused = project.refused + selection.refused
    for why in refused:
        logger.warning("%s: %s; skipped", project.name, why)
    project.refused = refused
    if refused and not selection.named:
        project.errors.append(
            f"the index lists {count(len(refused), 'file')} for {project.name} and every one was "
            "refused (see the warnings); the mirror keeps what it had of the project"
        )
        project.page_failed = True
        return
    project.chosen = selection.chosen


def _with_warnings(outcome: ProjectOutcome, project: _Project) -> ProjectOutcome:
    return replace(outcome, warnings=tuple(project.refused)) if project.refused else outcome


def _check_output(out: Path) -> None:
    if (out / MIRROR_STATE_DIR).is_dir():
        return  # a mirror, perhaps one whose first run was killed before its manifest
    from wheelhouse.house.directory import check_output_dir

    check_output_dir(out)
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is not None and manifest.kind != "mirror":
        raise OutputDirError(
            f"{str(out)!r} is a wheelhouse built by 'wheelhouse build', not a mirror",
            path=out,
            hint="choose another directory with -o",
        )


def _wanted(
    out: Path,
    settings: MirrorSettings,
    urls: list[str],
    client: HttpClient,
    counter: _Counter,
    config: dict[str, str],
    report: Reporter,
) -> tuple[dict[NormalizedName, _Want], _Pins]:
    wanted = _parse_projects(settings.projects)
    pins: _Pins = []
    if settings.requirements:
        from wheelhouse.inputs.requirements import read_inputs
        from wheelhouse.resolve.by_pip import resolve, resolve_foreign

        inputs = read_inputs(settings.requirements, ())
        versions: dict[NormalizedName, set[Version]] = {}
        previous = None if settings.refresh else _previous_pins(out, settings, inputs.files)
        if previous is not None:
            # As `build` does: resolving again costs pip and uv runs (seconds) on every rerun.
            logger.info("the requirements have not changed: using the last run's resolution")
            pins = previous
        for target in settings.targets or (HOST,) if previous is None else ():
            if target.is_host:
                report.stage(f"resolving with pip for {target.name}")
                resolution = resolve(inputs, settings.index, target, config=config)
            else:
                report.stage(f"resolving with uv for {target.name}")
                resolution = resolve_foreign(inputs, target, config)
            pins.append((target, [(p.name, p.version, p.requested) for p in resolution.pins]))
        for _, entries in pins:
            for name, version, _ in entries:
                if _project_name(name) != name:  # it becomes a directory of the mirror
                    logger.warning("the resolution pins %r, not a project name; skipped", name)
                    continue
                versions.setdefault(name, set()).add(Version(version))
        for name, found in versions.items():
            if name not in wanted:
                wanted[name] = _Want(versions=frozenset(found))
    if settings.all_projects:
        report.stage("reading the index's list of projects")
        for url in urls:
            for name in _root_names(url, client, counter):
                wanted.setdefault(name, _Want())
    return wanted, pins


def _previous_pins(
    out: Path, settings: MirrorSettings, files: tuple[InputFile, ...]
) -> _Pins | None:
    """The last run's resolution, when the same requirements were resolved for the same
    targets and indexes (as ``build`` does; ``--refresh`` resolves again)."""
    from wheelhouse._base.targets import parse_target

    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is None or manifest.kind != "mirror":
        return None
    previous = manifest.inputs.options.get("mirror", {})
    targets = settings.targets or (HOST,)
    same = (
        [f.sha256 for f in manifest.inputs.files] == [f.sha256 for f in files]
        and previous.get("resolved-for") == [t.name for t in targets]
        and previous.get("index") == _index_options(settings)
        and [lock.target for lock in manifest.locks] == [t.name for t in targets]
    )
    if not same:
        return None
    return [
        (parse_target(lock.target), [(e.name, e.version, e.requested) for e in lock.entries])
        for lock in manifest.locks
    ]


def _index_options(settings: MirrorSettings) -> dict[str, Any]:
    # Recorded in the manifest, which is served and published: never with credentials.
    index_url = settings.index.index_url
    return {
        "index-url": strip_credentials(index_url) if index_url is not None else None,
        "extra-index-urls": [strip_credentials(url) for url in settings.index.extra_index_urls],
    }


def _root_names(url: str, client: HttpClient, counter: _Counter) -> list[NormalizedName]:
    """Every project the index lists at its root (PEP 691 JSON, else PEP 503 HTML)."""
    from html.parser import HTMLParser

    shown = strip_credentials(url)
    if url.startswith("file:"):
        root = file_url_path(url)
        try:
            listed = [p.name for p in root.iterdir() if (p / "index.html").is_file()]
            return sorted(_valid_names(listed, shown))
        except OSError as exc:
            raise NetworkError(f"cannot list {str(root)!r}: {exc.strerror}", url=url) from exc
    counter.add()
    try:
        response = client.get(url, headers={"Accept": ACCEPT})
        try:
            if response.status != 200:
                response.close()
                raise NetworkError(
                    f"the index {shown} answered HTTP {response.status} for its list of projects",
                    url=shown,
                )
            body = read_page(client, response, url, limit=_MAX_ROOT, timeout=_ROOT_TIMEOUT)
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise NetworkError(
            f"cannot read the list of projects at {shown}: {exc}",
            url=shown,
            hint="check the network, the index URL and pip's proxy and cert settings",
        ) from exc
    if "json" in response.headers.get("Content-Type", ""):
        try:
            listed = [str(p["name"]) for p in json.loads(body)["projects"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"{shown} sent a malformed PEP 691 root page: {exc}") from exc
        return _valid_names(listed, shown)
    names: list[str] = []

    class Anchors(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.inside = False
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "a":
                self.inside, self.text = True, []

        def handle_data(self, data: str) -> None:
            if self.inside:
                self.text.append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "a" and self.inside:
                self.inside = False
                if text := "".join(self.text).strip():
                    names.append(text)

    Anchors().feed(body.decode("utf-8", errors="replace"))
    return _valid_names(names, shown)


def _valid_names(listed: Iterable[str], shown: str) -> list[NormalizedName]:
    """The project names of a root page that are valid names (each becomes a directory)."""
    names: list[NormalizedName] = []
    for text in listed:
        name = _project_name(text)
        if name is None:
            logger.warning("%s lists %r, which is not a project name; skipped", shown, text)
        else:
            names.append(name)
    return names


def _read_pages(project: _Project, urls: list[str], client: HttpClient, counter: _Counter) -> None:
    """Ask each index for the project's page: conditionally when the selection is the same as
    last time, so that a 304 from every index means nothing to do for the project."""
    same = project.old.selection == project.selection
    old = {listing.url: listing for listing in project.old.listings} if same else {}
    digests: dict[str, str | None] = {}
    # Listings are kept under the index URL without its credentials (never written).
    results = {
        base: _read_page(project, base, old.get(strip_credentials(base)), client, counter, digests)
        for base in urls
    }
    if project.errors:
        project.page_failed = True
        return
    statuses = {base: result.status for base, result in results.items()}
    if "not-modified" in statuses.values() and "ok" in statuses.values():
        # Another index's page changed: the full page of this one is needed after all.
        for base, status in statuses.items():
            if status == "not-modified":
                results[base] = _read_page(project, base, None, client, counter, digests)
        if project.errors:
            project.page_failed = True
            return
    listings: list[_Listing] = []
    for base, result in results.items():
        if result.status == "not-modified":
            # Validators that came with the answer replace the old ones (same page bytes).
            kept = old[strip_credentials(base)]
            listings.append(
                replace(
                    kept,
                    etag=result.etag or kept.etag,
                    last_modified=result.last_modified or kept.last_modified,
                )
            )
        elif result.status == "ok" and result.page is not None:
            digest = digests.get(base)
            shown = strip_credentials(base)
            listings.append(_Listing(shown, result.etag, result.last_modified, digest))
            page = result.page
            if page.status == "quarantined" or (
                page.status != "active" and project.status == "active"
            ):
                project.status, project.status_reason = page.status, page.status_reason
            project.files += _usable(project, base, page.files)
    project.listings = tuple(listings)
    found = [s for s in statuses.values() if s != "not-found"]
    project.found = bool(found)
    project.unchanged = bool(found) and all(s == "not-modified" for s in found)


def _usable(
    project: _Project, base: str, files: Iterable[UpstreamFile]
) -> list[tuple[UpstreamFile, bool]]:
    """The page's files that may be fetched, each with whether it is local: a file:// index
    (the user's own) may link anything, a remote one its http(s) URLs only."""
    if base.startswith("file:"):
        return [(file, True) for file in files]
    usable: list[tuple[UpstreamFile, bool]] = []
    for file in files:
        scheme = urlsplit(file.url).scheme.lower()
        if scheme in ("http", "https"):
            usable.append((file, False))
        else:
            project.refused.append(
                f"{file.filename!r} has a {scheme}: URL on {strip_credentials(base)}, and "
                "files of a remote index are fetched over http(s) only"
            )
    return usable


def _read_page(
    project: _Project,
    base: str,
    previous: _Listing | None,
    client: HttpClient,
    counter: _Counter,
    digests: dict[str, str | None],
) -> PageResult:
    try:
        if base.startswith("file:"):  # read from disk: not a request
            result = _local_page(base, project.name, previous.etag if previous else None)
        else:
            counter.add()
            result, digests[base] = _remote_page(client, base, project.name, previous)
    except UpstreamError as exc:
        project.errors.append(exc.message)
        return PageResult("not-found")
    if result.status == "not-modified" and previous is None:
        project.errors.append(f"{strip_credentials(base)} answered 304 to a first request")
    return result


def _remote_page(
    client: HttpClient, base: str, name: NormalizedName, previous: _Listing | None
) -> tuple[PageResult, str | None]:
    """A project's page over HTTP, and its sha256; "not-modified" for a 304, or for the
    same bytes as last time (then the page is not parsed again)."""
    import hashlib

    headers = {"Accept": ACCEPT}
    if previous is not None and previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous is not None and previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    url = project_page_url(base, name)
    shown = strip_credentials(url)
    try:
        response = client.get(url, headers=headers)
        try:
            status = response.status
            body = read_page(client, response, url) if status == 200 else b""
            if status == 304:
                response.drain_conn()  # nothing to read: the connection is reused
            elif status != 200:
                response.close()  # a body nobody reads may be endless
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise UpstreamError(f"{shown} cannot be reached: {exc}", url=shown) from exc
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    if status in (301, 302, 303, 307, 308):
        # The shared reader follows redirects (keeping credentials on the same host only).
        return fetch_project_page(client, base, name), None
    if status == 304:
        return PageResult("not-modified", etag=etag, last_modified=modified), None
    if status in (404, 410):
        return PageResult("not-found"), None
    if status != 200:
        raise UpstreamError(f"{shown} answered HTTP {status}", url=shown)
    digest = hashlib.sha256(body).hexdigest()
    if previous is not None and previous.digest == digest:
        return PageResult("not-modified", etag=etag, last_modified=modified), digest
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type.endswith("json"):
        page = parse_json_page(body, url, name)
    else:
        page = parse_html_page(body, url, name)
    return PageResult("ok", page, etag=etag, last_modified=modified), digest


def _selection(want: _Want, settings: MirrorSettings, targets: tuple[Target, ...]) -> str:
    """What decides which of a project's files are kept, as one comparable string."""
    versions = sorted(str(v) for v in want.versions) if want.versions is not None else None
    return json.dumps(
        {
            "specifier": str(want.specifier),
            "versions": versions,
            "targets": [t.name for t in targets],
            "sdists": settings.sdists,
            "latest": settings.latest,
            "prereleases": settings.prereleases,
            "max-file-size": settings.max_file_size,
            "yanked": settings.yanked,
            "exclude-newer": [
                settings.exclude_newer,
                list(settings.exclude_newer_packages),
                settings.no_upload_time,
            ],
        },
        sort_keys=True,
    )


def _from_record(record: FileRecord, local: bool) -> _Candidate:
    """A file mirrored last time, as a candidate again (its index page has not changed);
    ``local`` when a file:// index lists the project."""
    assert isinstance(record.origin, Downloaded)
    file = UpstreamFile(
        filename=record.filename,
        url=record.origin.url,
        hashes={"sha256": record.sha256},
        requires_python=record.requires_python,
        yanked=False if record.yanked is None else (record.yanked or True),
        size=record.size,
    )
    assert _refusal(record.filename, record.name) is None, record.filename  # _checked_state
    return _candidate(file, local)


def _local_page(base: str, name: NormalizedName, etag: str | None) -> PageResult:
    """A project's page on a ``file://`` index (pip reads ``<name>/index.html`` there).

    The page file's mtime and size stand in for an ETag, so a rerun reads nothing new.
    """
    directory = file_url_path(base) / name
    page = directory / "index.html"
    try:
        stat = page.stat()
    except (FileNotFoundError, NotADirectoryError):
        return PageResult("not-found")
    except OSError as exc:
        raise UpstreamError(f"cannot read {str(page)!r}: {exc.strerror}", url=base) from exc
    tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    if tag == etag:
        return PageResult("not-modified", etag=tag)
    try:
        data = page.read_bytes()
    except OSError as exc:
        raise UpstreamError(f"cannot read {str(page)!r}: {exc.strerror}", url=base) from exc
    parsed = parse_html_page(data, directory.as_uri() + "/", name)
    return PageResult("ok", parsed, etag=tag)


def _plan(project: _Project, out: Path) -> None:
    """Split the chosen files into those already verified in the mirror and those to fetch."""
    known = {m.record.filename: m for m in project.old.files}
    for candidate in project.chosen:
        file = candidate.file
        mirrored = known.get(file.filename)
        if mirrored is not None and mirrored.record.sha256 == file.sha256:
            path = out / file.filename
            with contextlib.suppress(OSError):
                if path.stat().st_size == mirrored.record.size:
                    project.reused[file.filename] = _refreshed(mirrored, candidate)
                    # Mirrored before its index named provenance, or before this did.
                    kept = (out / (file.filename + PROVENANCE_SUFFIX)).exists()
                    if file.provenance is not None and not candidate.local and not kept:
                        project.to_attest.append(candidate)
                    continue
        project.to_fetch.append(candidate)


def _refreshed(mirrored: _Mirrored, candidate: _Candidate) -> _Mirrored:
    # The bytes are the same; what the index says of them (a yank) may have changed.
    return replace(mirrored, record=replace(mirrored.record, yanked=_yank_reason(candidate.file)))


def _planned(project: _Project) -> list[PlannedFile]:
    fetching = {c.file.filename for c in project.to_fetch}
    return [
        PlannedFile(project.name, c.file.filename, c.file.size, c.file.filename in fetching)
        for c in project.chosen
    ]


def _dry_outcome(project: _Project) -> ProjectOutcome:
    if project.page_failed:
        return ProjectOutcome(project.name, "failed", errors=tuple(project.errors))
    if not project.found:
        status: ProjectStatus = "removed" if project.old.files else "failed"
        errors = () if project.old.files else (f"{project.name} is not on the index",)
        return ProjectOutcome(project.name, status, removed=len(project.old.files), errors=errors)
    # Files the index dropped or the filters now exclude (a run that fails keeps them).
    dropped = {m.record.filename for m in project.old.files} - {
        c.file.filename for c in project.chosen
    }
    return ProjectOutcome(
        project.name,
        "unchanged"
        if not project.to_fetch and not dropped
        else "updated"
        if project.old.files
        else "new",
        files=len(project.chosen),
        bytes=sum(c.file.size or 0 for c in project.chosen),
        fetched=len(project.to_fetch),
        fetched_bytes=sum(c.file.size or 0 for c in project.to_fetch),
        removed=len(dropped),
    )


def _apply(
    out: Path,
    projects: list[_Project],
    states: dict[NormalizedName, _ProjectState],
    wanted: Mapping[NormalizedName, _Want],
    settings: MirrorSettings,
    client: HttpClient,
    report: Reporter,
    pins: _Pins,
    targets: tuple[Target, ...],
    *,
    removing: frozenset[NormalizedName] = frozenset(),
) -> list[ProjectOutcome]:
    """Files first, then each project's pages, then the manifest and the root; deletions last.

    A project no longer wanted goes only if ``removing`` names it or no project failed: a
    run that fails removes nothing it was not told to.
    """
    tmp = out / MIRROR_STATE_DIR / _TMP
    shutil.rmtree(tmp, ignore_errors=True)  # partial downloads of a killed run
    tmp.mkdir(parents=True, exist_ok=True)
    for stale in states.values():
        if stale.stale:
            # Without the credentials, foreign names or journal it was read with.
            _write_state(out, stale)
    # Ownership of each file is claimed (durably) once its bytes are verified, before it is
    # put in place: never for a file that someone else put there.
    journal = _Journal(out)
    jobs = [(p, c) for p in projects for c in p.to_fetch]
    if jobs:
        total = sum(c.file.size or 0 for _, c in jobs)
        report.stage(f"fetching {count(len(jobs), 'file')} ({total / 1e6:.1f} MB)")

    def fetch(job: tuple[_Project, _Candidate]) -> None:
        project, candidate = job

        def claim() -> None:
            journal.claim(project.name, candidate.file.filename)
            project.claimed.add(candidate.file.filename)

        try:
            mirrored = _obtain(
                out, tmp, candidate, project.old, client, settings, report, claim, project.refused
            )
        except WheelhouseError as exc:
            project.errors.append(exc.message)
            return
        except OSError as exc:
            where = f" {str(exc.filename)!r}" if exc.filename else ""
            project.errors.append(
                f"cannot write {candidate.file.filename}{where}: {exc.strerror or exc}"
            )
            return
        project.fetched[candidate.file.filename] = mirrored

    def attest(job: tuple[_Project, _Candidate]) -> None:
        project, candidate = job
        try:
            _keep_provenance(out, candidate, client, settings, project.refused)
        except WheelhouseError as exc:
            project.errors.append(exc.message)
        except OSError as exc:
            project.errors.append(f"cannot write {exc.filename!r}: {exc.strerror or exc}")

    attesting = [(p, c) for p in projects for c in p.to_attest]
    with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
        list(pool.map(fetch, jobs))
        list(pool.map(attest, attesting))

    report.stage("writing the pages")
    outcomes: list[ProjectOutcome] = []
    current: dict[NormalizedName, _ProjectState] = {}
    deletions: dict[NormalizedName, set[str]] = {}
    for project in projects:
        outcome, state, doomed = _commit(out, project)
        outcomes.append(outcome)
        if state is not None:
            current[project.name] = state
        if doomed:
            deletions[project.name] = doomed
    failed = any(outcome.status == "failed" for outcome in outcomes)
    for name, state in states.items():
        if name in wanted:
            continue
        if failed and name not in removing:
            logger.info("%s is no longer wanted; kept until a run in which nothing fails", name)
            current[name] = state
            continue
        # Removed, no longer needed by a -r file, or gone from --all's listing: its pages
        # go first.
        _remove_pages(out, name)
        deletions[name] = set(state.owned)
        outcomes.append(ProjectOutcome(name, "removed", removed=len(state.files)))
    _write_manifest(out, current, settings, pins, targets)
    listed = sorted(name for name, state in current.items() if state.files)
    for relative, data in render_root(listed).items():
        write_if_changed(out / relative, data)
    for name, doomed in deletions.items():
        for filename in sorted(doomed):
            for suffix in ("", METADATA_SUFFIX, PROVENANCE_SUFFIX):
                (out / (filename + suffix)).unlink(missing_ok=True)
        if name in current:
            state = current[name]
            _write_state(out, replace(state, owned=state.owned - doomed))
        else:
            _state_path(out, name).unlink(missing_ok=True)
            _journal_path(out, name).unlink(missing_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return outcomes


def _commit(out: Path, project: _Project) -> tuple[ProjectOutcome, _ProjectState | None, set[str]]:
    """Write one project's pages for the files now verified in place, and its state."""
    old = project.old
    if project.page_failed:
        # A page could not be read (from one index of several, perhaps): what the project
        # lists is unknown, so the mirror keeps what it had of it, pages and files.
        return (
            ProjectOutcome(project.name, "failed", errors=tuple(project.errors)),
            old if old.files or old.owned else None,
            set(),
        )
    if not project.found:
        _remove_pages(out, project.name)
        status: ProjectStatus = "removed" if old.files else "failed"
        errors = () if old.files else (f"{project.name} is not on the index",)
        outcome = ProjectOutcome(project.name, status, removed=len(old.files), errors=errors)
        return outcome, None, set(old.owned)
    kept = {**project.reused, **project.fetched}
    if project.errors:
        # A project that failed keeps what it had: files the index dropped or the filters
        # exclude go in the next run that mirrors it without an error.
        for previous in old.files:
            name = previous.record.filename
            with contextlib.suppress(OSError):
                if name not in kept and (out / name).stat().st_size == previous.record.size:
                    kept[name] = previous
    mirrored = tuple(kept[f] for f in sorted(kept))
    entries = [
        IndexEntry(
            m.record,
            m.record.requires_python,
            m.metadata_sha256,
            (out / (m.record.filename + PROVENANCE_SUFFIX)).is_file(),
        )
        for m in mirrored
    ]
    page_status = None if project.status == "active" else project.status
    if mirrored or page_status == "quarantined":
        # A quarantined project keeps its (empty) pages: they say why it has no files.
        pages = render_project(
            project.name, entries, status=page_status, status_reason=project.status_reason
        )
        for relative, data in pages.items():
            write_if_changed(out / relative, data)
    else:
        _remove_pages(out, project.name)
    doomed = set() if project.errors else set(old.owned) - set(kept)
    state = _ProjectState(
        project.name,
        # A file failed, or the cooldown held one back, or the project's status is not
        # "active": no validators, so that the next run reads the page whole (and tries the
        # file again, takes it once old enough, writes the status) instead of hearing "304".
        ()
        if project.errors or project.held or project.status != "active" or _unattested(out, project)
        else project.listings,
        mirrored,
        project.selection,
        frozenset(old.owned | set(kept) | project.claimed),
    )
    if state != old or project.claimed:
        _write_state(out, state)
    outcome_status: ProjectStatus
    if project.errors:
        outcome_status = "failed"
    elif not old.files and mirrored:
        outcome_status = "new"
    elif project.fetched or doomed or state.files != old.files:
        outcome_status = "updated"
    else:
        outcome_status = "unchanged"
    outcome = ProjectOutcome(
        project.name,
        outcome_status,
        files=len(mirrored),
        bytes=sum(m.record.size for m in mirrored),
        fetched=len(project.fetched),
        fetched_bytes=sum(m.record.size for m in project.fetched.values()),
        removed=len(doomed & {m.record.filename for m in old.files}),
        errors=tuple(project.errors),
    )
    return outcome, state, doomed


def _unattested(out: Path, project: _Project) -> bool:
    """Whether a file's provenance, named by the page, could not be kept (to try again)."""
    return any(
        c.file.provenance is not None
        and not c.local
        and not (out / (c.file.filename + PROVENANCE_SUFFIX)).is_file()
        for c in project.chosen
    )


def _remove_pages(out: Path, name: str) -> None:
    for relative in project_pages(name):
        (out / relative).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: something we did not write is there
        (out / project_pages(name)[0]).parent.rmdir()


# -- one file --------------------------------------------------------------------------------


def _obtain(
    out: Path,
    tmp: Path,
    candidate: _Candidate,
    old: _ProjectState,
    client: HttpClient,
    settings: MirrorSettings,
    report: Reporter,
    claim: Callable[[], None],
    warnings: list[str],
) -> _Mirrored:
    """The file verified in place: found there already (a killed run's), or downloaded.

    ``claim`` records durably that the mirror owns the file's name: called once the bytes
    are verified, before they are put in place.
    """
    file = candidate.file
    assert file.sha256 is not None
    # Checked by _select (or _checked_state): one plain file name of the project, in `out`.
    assert _refusal(file.filename, candidate.name) is None, file.filename
    path = out / file.filename
    if path.exists():
        digest, size = sha256_file(path)
        if digest == file.sha256:
            if not (out / (file.filename + PROVENANCE_SUFFIX)).exists():
                _keep_provenance(out, candidate, client, settings, warnings)
            return _place_metadata(out, path, candidate, size)
        if file.filename not in old.owned:
            raise WheelhouseError(
                f"{str(path)!r} exists, was not written by the mirror, and is not the file "
                f"the index lists (sha256 {file.sha256}); left alone"
            )
    partial = tmp / f"{uuid.uuid4().hex}.part"
    try:
        digest, size = _download(client, candidate, partial, settings, report)
        if digest != file.sha256:
            shown = strip_credentials(file.url)
            raise HashMismatchError(
                # A local file's own hash is not for the index's page to learn by listing it.
                f"{file.filename} from {shown} does not have the sha256 the index promised "
                f"({file.sha256}); not mirrored"
                if candidate.local
                else f"{file.filename} from {shown} has sha256 {digest}, "
                f"but the index promised {file.sha256}; not mirrored",
                filename=file.filename,
                expected=file.sha256,
                actual=digest,
            )
        partial.chmod(0o644)
        metadata = _metadata(partial, candidate)
        provenance = _provenance(candidate, client, settings, warnings)
        claim()
        if metadata is not None:
            write_atomic(out / (file.filename + METADATA_SUFFIX), metadata)
        # What proved other bytes of this name (a file the index replaced) proves nothing now.
        _write_provenance(out, file.filename, provenance)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return _mirrored(candidate, size, metadata)


def _provenance(
    candidate: _Candidate, client: HttpClient, settings: MirrorSettings, warnings: list[str]
) -> bytes | None:
    """The file's PEP 740 provenance from the index, checked against its name and sha256;
    None (with a warning) when the page names none or it cannot be had, unless the settings
    require it (then ``WheelhouseError``: the file is not mirrored)."""
    file = candidate.file
    if file.provenance is None or candidate.local:
        if settings.require_provenance:
            raise WheelhouseError(
                f"{file.filename}: the index names no provenance for it, and "
                "--require-provenance is given; not mirrored"
            )
        return None
    try:
        return fetch_provenance(client, file)
    except UpstreamError as exc:
        if settings.require_provenance:
            raise WheelhouseError(
                f"{file.filename}: its provenance cannot be had ({exc.message}), and "
                "--require-provenance is given; not mirrored"
            ) from exc
        warning = f"{file.filename}: its provenance is not kept: {exc.message}"
        logger.warning("%s: %s", candidate.name, warning)
        warnings.append(warning)
        return None


def _keep_provenance(
    out: Path,
    candidate: _Candidate,
    client: HttpClient,
    settings: MirrorSettings,
    warnings: list[str],
) -> None:
    """Fetch the provenance of a file the mirror has (verified) and keep it beside it."""
    provenance = _provenance(candidate, client, settings, warnings)
    if provenance is not None:
        _write_provenance(out, candidate.file.filename, provenance)


def _write_provenance(out: Path, filename: str, provenance: bytes | None) -> None:
    path = out / (filename + PROVENANCE_SUFFIX)
    if provenance is None:
        path.unlink(missing_ok=True)
    else:
        write_if_changed(path, provenance)


def _place_metadata(out: Path, path: Path, candidate: _Candidate, size: int) -> _Mirrored:
    metadata = _metadata(path, candidate)
    if metadata is not None:
        write_if_changed(out / (candidate.file.filename + METADATA_SUFFIX), metadata)
    return _mirrored(candidate, size, metadata)


def _metadata(path: Path, candidate: _Candidate) -> bytes | None:
    if candidate.kind != "wheel":
        return None
    import zipfile
    import zlib

    try:
        metadata = read_wheel_metadata(path, candidate.name, candidate.version)
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,  # and a METADATA past the reader's size limit
        zlib.error,
        RuntimeError,  # an encrypted member
        NotImplementedError,  # a compression method zipfile does not know
        ValueError,
    ) as exc:
        raise WheelhouseError(
            f"{candidate.file.filename} is not a readable wheel: {exc}; not mirrored"
        ) from exc
    if metadata is None:
        raise WheelhouseError(
            f"{candidate.file.filename} has no {candidate.name}-{candidate.version}"
            ".dist-info/METADATA; not mirrored"
        )
    return metadata


def _mirrored(candidate: _Candidate, size: int, metadata: bytes | None) -> _Mirrored:
    import hashlib

    file = candidate.file
    requires_python = file.requires_python
    if requires_python is None and metadata is not None:
        # As the index writer does, so that `wheelhouse verify` renders the same pages.
        requires_python = requires_python_of(metadata)
    record = FileRecord(
        name=candidate.name,
        version=str(candidate.version),
        filename=file.filename,
        sha256=Sha256(str(file.sha256)),
        size=size,
        kind=candidate.kind,
        origin=Downloaded(strip_credentials(file.url)),
        requires_python=requires_python,
        yanked=_yank_reason(file),
    )
    digest = hashlib.sha256(metadata).hexdigest() if metadata is not None else None
    advertised = file.core_metadata
    if isinstance(advertised, dict) and digest and advertised.get("sha256") not in (None, digest):
        # PEP 658 says they are the same bytes; the wheel's own is what the mirror serves.
        logger.warning("%s: the index's PEP 658 metadata differs from the wheel's", file.filename)
    return _Mirrored(record, digest)


def _download(
    client: HttpClient,
    candidate: _Candidate,
    partial: Path,
    settings: MirrorSettings,
    report: Reporter,
) -> tuple[str, int]:
    file = candidate.file
    if file.url.startswith("file:"):
        return _copy_local(candidate, partial, settings, report)
    if urlsplit(file.url).scheme.lower() not in ("http", "https"):
        # _usable keeps only http(s) URLs of remote pages; a state file could hold others.
        raise FetchError(
            f"{file.filename} has a URL that is neither http(s) nor a local index's file: "
            f"{strip_credentials(file.url)!r}; not mirrored",
            url=strip_credentials(file.url),
        )
    last: Exception | None = None
    for attempt in range(_ATTEMPTS):
        try:
            return _get(client, file, partial, settings, report)
        except (urllib3.exceptions.HTTPError, OSError, _Retry) as exc:
            last = exc
            logger.warning("fetching %s failed (%s); attempt %d", file.filename, exc, attempt + 1)
            if attempt + 1 < _ATTEMPTS:
                time.sleep(0.2 * 2**attempt)
    raise FetchError(
        f"cannot download {strip_credentials(file.url)}: {last}",
        url=strip_credentials(file.url),
        hint="check the network and the index's credentials, proxy and certificates",
    ) from last


class _Retry(Exception):
    pass


def _copy_local(
    candidate: _Candidate, partial: Path, settings: MirrorSettings, report: Reporter
) -> tuple[str, int]:
    """A file a file:// index lists, copied and hashed; at most --max-file-size bytes are
    copied, and only from a regular file (not a device, a FIFO or a directory)."""
    import hashlib

    file = candidate.file
    if not candidate.local:
        # _usable drops them from remote pages; a state file could hold one.
        raise FetchError(
            f"{file.filename} has a file: URL, but only a file:// index may list local files; "
            "not mirrored",
            url=file.url,
        )
    source = file_url_path(file.url)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError as exc:
        raise FetchError(f"{str(source)!r} is listed but missing", url=file.url) from exc
    except OSError as exc:
        raise FetchError(f"cannot read {str(source)!r}: {exc.strerror}", url=file.url) from exc
    with open(fd, "rb", closefd=True) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FetchError(
                f"{str(source)!r} is listed as {file.filename} but is not a regular file; "
                "not mirrored",
                url=file.url,
            )
        digest = hashlib.sha256()
        size = 0
        with partial.open("wb") as copy:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if too_big := _too_big(file, settings, size):
                    raise FetchError(too_big, url=file.url)
                copy.write(chunk)
                digest.update(chunk)
    report.downloaded(file.filename, size)
    return digest.hexdigest(), size


def _too_big(file: UpstreamFile, settings: MirrorSettings, size: int) -> str | None:
    """Why a transfer that reached ``size`` bytes stops, checked as it goes: past
    --max-file-size, or past the size the page gives (the bytes cannot be the listed file)."""
    limit = settings.max_file_size
    if limit is not None and size > limit:
        return f"{file.filename} is larger than --max-file-size ({limit} bytes); not mirrored"
    if file.size is not None and size > file.size:
        return (
            f"{file.filename} is larger than the {file.size} bytes the index gives for it; "
            "not mirrored"
        )
    return None


def _get(
    client: HttpClient,
    file: UpstreamFile,
    partial: Path,
    settings: MirrorSettings,
    report: Reporter,
) -> tuple[str, int]:
    import hashlib

    response = client.get(file.url)
    try:
        if response.status >= 500 or response.status == 429:
            response.close()
            raise _Retry(f"HTTP {response.status}")
        if response.status != 200:
            response.close()
            raise FetchError(
                f"cannot download {strip_credentials(file.url)}: HTTP {response.status}",
                url=strip_credentials(file.url),
            )
        digest = hashlib.sha256()
        size = 0
        with partial.open("wb") as handle:
            for chunk in response.stream(_CHUNK):
                size += len(chunk)
                if too_big := _too_big(file, settings, size):
                    response.close()
                    raise FetchError(too_big, url=strip_credentials(file.url))
                handle.write(chunk)
                digest.update(chunk)
                report.downloaded(file.filename, len(chunk))
        return digest.hexdigest(), size
    finally:
        response.release_conn()


# -- the manifest ----------------------------------------------------------------------------


def _write_manifest(
    out: Path,
    states: Mapping[NormalizedName, _ProjectState],
    settings: MirrorSettings,
    pins: _Pins,
    targets: tuple[Target, ...],
) -> None:
    records = sorted(
        (m.record for state in states.values() for m in state.files), key=lambda r: r.filename
    )
    locks = tuple(_lock(target, entries, records) for target, entries in pins)
    inputs = Inputs(
        files=tuple(
            InputFile(str(path), Sha256(sha256_file(path)[0]), "requirements")
            for path in settings.requirements
        ),
        options=_options(settings, targets),
    )
    previous = read_manifest(out)
    manifest = Manifest(
        generator=GENERATOR,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=inputs,
        files=tuple(records),
        locks=locks,
        kind="mirror",
    )
    if previous is not None and replace(previous, created=manifest.created) == manifest:
        # Unchanged: so are the lock files, written from it before it (`verify` checks them).
        return
    from wheelhouse.house.export import render_requirements, requirements_filename
    from wheelhouse.house.pylock import PYLOCK_NAME, render_pylock

    # The lock files come before the manifest that vouches for them.
    for lock in manifest.locks:
        write_if_changed(
            out / requirements_filename(lock, manifest),
            render_requirements(manifest, lock).encode(),
        )
    write_if_changed(out / PYLOCK_NAME, render_pylock(manifest).encode())
    write_atomic(out / MANIFEST_NAME, manifest.to_json().encode(), fsync=True)


def _lock(
    target: Target,
    entries: list[tuple[NormalizedName, str, bool]],
    records: list[FileRecord],
) -> TargetLock:
    by_release: dict[tuple[str, str], list[FileRecord]] = {}
    for record in records:
        by_release.setdefault((record.name, str(Version(record.version))), []).append(record)
    locked: list[LockEntry] = []
    for name, version, requested in entries:
        files = by_release.get((name, str(Version(version))), [])
        fitting = [
            r.filename
            for r in files
            if r.kind == "sdist" or target.accepts(parse_wheel_filename(r.filename)[3]) is not None
        ]
        locked.append(LockEntry(name, version, tuple(sorted(fitting)), requested))
    return TargetLock(
        target=target.name,
        tags=tuple(str(t) for t in target.tags),
        environment=target.environment,
        entries=tuple(locked),
    )


def _options(settings: MirrorSettings, targets: tuple[Target, ...]) -> dict[str, Any]:
    return {
        "mirror": {
            "projects": list(settings.projects),
            "all": settings.all_projects,
            "targets": [t.name for t in targets],
            "sdists": settings.sdists,
            "latest": settings.latest,
            "prereleases": settings.prereleases,
            "max-file-size": settings.max_file_size,
            "yanked": settings.yanked,
            "exclude-newer": settings.exclude_newer,
            "exclude-newer-packages": list(settings.exclude_newer_packages),
            "no-upload-time": settings.no_upload_time,
            "index": _index_options(settings),
            "resolved-for": [t.name for t in settings.targets or (HOST,)]
            if settings.requirements
            else [],
        }
    }
