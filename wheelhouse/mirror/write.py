"""What a mirror run writes once the files are fetched: each project's pages and state, the
manifest and its lock files, the root listing; deletions last."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import Version

from wheelhouse._base._http import HttpClient
from wheelhouse._base.files import sha256_file, write_atomic
from wheelhouse._base.progress import Reporter
from wheelhouse._base.targets import HOST, Target
from wheelhouse._base.words import count
from wheelhouse.errors import WheelhouseError
from wheelhouse.house.index import (
    METADATA_SUFFIX,
    IndexEntry,
    project_pages,
    render_project,
    render_root,
    write_if_changed,
)
from wheelhouse.house.manifest import (
    GENERATOR,
    MANIFEST_NAME,
    MIRROR_STATE_DIR,
    PROVENANCE_SUFFIX,
    FileRecord,
    InputFile,
    Inputs,
    LockEntry,
    Manifest,
    Sha256,
    TargetLock,
    read_manifest,
)
from wheelhouse.mirror.candidates import _Candidate
from wheelhouse.mirror.download import _keep_provenance, _obtain
from wheelhouse.mirror.project import _Project
from wheelhouse.mirror.settings import (
    MirrorSettings,
    ProjectOutcome,
    ProjectStatus,
    _index_options,
    _Pins,
    _Want,
)
from wheelhouse.mirror.state import (
    _Journal,
    _journal_path,
    _ProjectState,
    _state_path,
    _write_state,
)

logger = logging.getLogger(__name__)


_TMP = "tmp"


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
