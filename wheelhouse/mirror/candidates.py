"""Which files of a project's pages the mirror keeps: the filters, one file at a time."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from wheelhouse._base.targets import Target
from wheelhouse.house.manifest import Downloaded, FileKind, FileRecord
from wheelhouse.mirror.settings import MirrorSettings, _Want
from wheelhouse.mirror.state import _NOT_A_DIST, _refusal
from wheelhouse.simple import PageFile

# -- selection -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    file: PageFile
    name: NormalizedName
    version: Version
    kind: FileKind
    tags: frozenset[Tag]
    # Listed by a file:// index (the user's own): only then may its URL be a file:// URL.
    local: bool = False


def _yank_reason(file: PageFile) -> str | None:
    """PEP 592 as the manifest records it: None, or the reason ("" when none was given)."""
    if file.yanked is False:
        return None
    return file.yanked if isinstance(file.yanked, str) else ""


def _candidate(file: PageFile, local: bool) -> _Candidate:
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
    files: Iterable[tuple[PageFile, bool]],
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
    file = PageFile(
        filename=record.filename,
        url=record.origin.url,
        hashes={"sha256": record.sha256},
        requires_python=record.requires_python,
        yanked=False if record.yanked is None else (record.yanked or True),
        size=record.size,
    )
    assert _refusal(record.filename, record.name) is None, record.filename  # _checked_state
    return _candidate(file, local)
