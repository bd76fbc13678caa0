"""What a mirror run is asked to do and what it reports: its settings, the versions wanted of
each project, and the summary of a run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelhouse._base._http import strip_credentials
from wheelhouse._base.cooldown import Cooldown
from wheelhouse._base.pip_settings import IndexOptions
from wheelhouse._base.targets import Target
from wheelhouse.errors import UsageError
from wheelhouse.mirror.selection import FilterKey, Remembered

__all__ = [
    "MirrorSettings",
    "MirrorSummary",
    "PlannedFile",
    "ProjectOutcome",
    "ProjectStatus",
    "SelectionChange",
]


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


def _index_options(settings: MirrorSettings) -> dict[str, Any]:
    # Recorded in the manifest, which is served and published: never with credentials.
    index_url = settings.index.index_url
    return {
        "index-url": strip_credentials(index_url) if index_url is not None else None,
        "extra-index-urls": [strip_credentials(url) for url in settings.index.extra_index_urls],
    }
