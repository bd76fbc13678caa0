"""One project's progress through a mirror run: its pages, the files chosen, those to fetch."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import NormalizedName

from wheelhouse.house.manifest import PROVENANCE_SUFFIX
from wheelhouse.mirror.candidates import _Candidate, _yank_reason
from wheelhouse.mirror.settings import PlannedFile, ProjectOutcome, ProjectStatus, _Want
from wheelhouse.mirror.state import _Listing, _Mirrored, _ProjectState
from wheelhouse.simple import PageFile
from wheelhouse.simple import ProjectStatus as UpstreamStatus


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
    files: list[tuple[PageFile, bool]] = field(default_factory=list)
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
