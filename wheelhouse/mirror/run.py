"""``wheelhouse mirror``: an index's files that chosen targets can install, each verified against
the index's sha256, copied incrementally and crash-safely into a static wheelhouse tree."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.utils import NormalizedName
from packaging.version import Version

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.cooldown import Cooldown
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.progress import NullReporter, Reporter
from wheelhouse._base.targets import HOST, Target
from wheelhouse._base.words import count
from wheelhouse.errors import OutputDirError, UsageError
from wheelhouse.house.manifest import MANIFEST_NAME, MIRROR_STATE_DIR, InputFile, read_manifest
from wheelhouse.mirror.candidates import _from_record, _select, _selection
from wheelhouse.mirror.pages import _read_pages, _root_names
from wheelhouse.mirror.project import _Counter, _dry_outcome, _plan, _planned, _Project
from wheelhouse.mirror.selection import (
    FILTER_KEYS,
    Filters,
    Remembered,
    adopt,
    merge_filters,
    read_selection,
    selection_path,
    write_selection,
)
from wheelhouse.mirror.settings import (
    MirrorSettings,
    MirrorSummary,
    PlannedFile,
    ProjectOutcome,
    ProjectStatus,
    SelectionChange,
    _index_options,
    _parse_projects,
    _Pins,
    _Want,
)
from wheelhouse.mirror.state import STATE_VERSION, _project_name, _ProjectState, _read_states
from wheelhouse.mirror.write import _apply

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


# -- the run ---------------------------------------------------------------------------------


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
    if not PipSettings.read(settings.index).index_urls:
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
        pip = PipSettings.read(settings.index)
        urls = [url.rstrip("/") + "/" for url in pip.index_urls]
        client = HttpClient(pip, pool_size=settings.jobs)
        wanted, pins = _wanted(out, settings, urls, client, counter, pip, report)
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
    pip: PipSettings,
    report: Reporter,
) -> tuple[dict[NormalizedName, _Want], _Pins]:
    wanted = _parse_projects(settings.projects)
    pins: _Pins = []
    if settings.requirements:
        from wheelhouse.inputs.requirements import read_inputs
        from wheelhouse.resolve.by_pip import resolve
        from wheelhouse.resolve.by_uv import resolve_foreign

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
                resolution = resolve(inputs, pip, target)
            else:
                report.stage(f"resolving with uv for {target.name}")
                resolution = resolve_foreign(inputs, target, pip)
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
