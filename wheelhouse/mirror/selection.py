"""What a mirror directory mirrors, remembered between runs (``DIR/.mirror/selection.json``):
its projects, its requirement files, ``--all``, and the filters that choose files.

Naming projects adds to it, ``--remove`` takes away, a plain rerun refreshes all of it, and a
filter differs from the remembered one only with ``--replace-filters``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from dataclasses import replace as replace_dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from wheelhouse._base._http import strip_credentials
from wheelhouse._base.files import write_atomic
from wheelhouse.errors import OutputDirError, UsageError
from wheelhouse.house.manifest import MIRROR_STATE_DIR, read_manifest

__all__ = [
    "FILTER_KEYS",
    "SELECTION_NAME",
    "SELECTION_VERSION",
    "FilterKey",
    "Filters",
    "Remembered",
    "adopt",
    "describe_filters",
    "merge_filters",
    "read_selection",
    "selection_path",
    "write_selection",
]

logger = logging.getLogger(__name__)

SELECTION_VERSION = 1
SELECTION_NAME = "selection.json"

FilterKey = Literal[
    "targets",
    "sdists",
    "latest",
    "prereleases",
    "max-file-size",
    "yanked",
    "index",
    "exclude-newer",
]
FILTER_KEYS: tuple[FilterKey, ...] = (
    "targets",
    "sdists",
    "latest",
    "prereleases",
    "max-file-size",
    "yanked",
    "index",
    "exclude-newer",
)


@dataclass(frozen=True)
class Filters:
    """The options that choose a project's files, as the mirror remembers them."""

    targets: tuple[str, ...] = ()
    sdists: bool = True
    latest: int | None = None
    prereleases: bool = True
    max_file_size: int | None = None
    yanked: bool = True
    # Without credentials (they live in the user's configuration, or on the command line).
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    # The release cooldown as given: a duration stays a duration (the cutoff moves with each
    # run), a date stays that date. Per-project exceptions as NAME=VALUE.
    exclude_newer: str | None = None
    exclude_newer_packages: tuple[str, ...] = ()
    no_upload_time: str = "refuse"

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": list(self.targets),
            "sdists": self.sdists,
            "latest": self.latest,
            "prereleases": self.prereleases,
            "max-file-size": self.max_file_size,
            "yanked": self.yanked,
            "index-url": self.index_url,
            "extra-index-urls": list(self.extra_index_urls),
            "exclude-newer": self.exclude_newer,
            "exclude-newer-packages": list(self.exclude_newer_packages),
            "no-upload-time": self.no_upload_time,
        }

    def value(self, key: FilterKey) -> object:
        if key == "targets":
            return frozenset(self.targets)  # the order given does not choose other files
        if key == "index":
            return (self.index_url, self.extra_index_urls)
        if key == "exclude-newer":
            return (self.exclude_newer, self.exclude_newer_packages, self.no_upload_time)
        return self.to_dict()[key]


@dataclass(frozen=True)
class Remembered:
    """What a mirror directory mirrors."""

    # Each project and its specifier ("" for every version), by normalized name.
    projects: tuple[tuple[NormalizedName, str], ...] = ()
    # Requirement files, as absolute paths.
    requirements: tuple[str, ...] = ()
    all_projects: bool = False
    filters: Filters = field(default_factory=Filters)

    @property
    def names(self) -> dict[NormalizedName, str]:
        return dict(self.projects)

    def to_json(self) -> str:
        data = {
            "version": SELECTION_VERSION,
            "projects": dict(sorted(self.projects)),
            "requirements": list(self.requirements),
            "all": self.all_projects,
            "filters": self.filters.to_dict(),
        }
        return json.dumps(data, indent=1) + "\n"


def selection_path(out: Path) -> Path:
    return out / MIRROR_STATE_DIR / SELECTION_NAME


def write_selection(out: Path, remembered: Remembered) -> None:
    path = selection_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, remembered.to_json().encode(), fsync=True)


def read_selection(out: Path) -> Remembered | None:
    """What ``out`` remembers, or None for a directory that has no selection file."""
    path = selection_path(out)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputDirError(
            f"the mirror's selection {str(path)!r} cannot be read: {exc.strerror}", path=path
        ) from exc
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != SELECTION_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise ValueError(f"version {version!r}, not {SELECTION_VERSION}")
        projects = _projects(data["projects"], str(path))
        filters = _filters(data["filters"])
        return Remembered(
            projects=projects,
            requirements=tuple(str(item) for item in data["requirements"]),
            all_projects=data["all"] is True,
            filters=filters,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OutputDirError(
            f"the mirror's selection {str(path)!r} cannot be read: {exc}",
            path=path,
            hint="restore it, or remove it: the next run then remembers the projects already "
            "mirrored there",
        ) from exc


def _projects(data: Mapping[str, Any], where: str) -> tuple[tuple[NormalizedName, str], ...]:
    projects: dict[NormalizedName, str] = {}
    for text, specifier in dict(data).items():
        try:
            name = canonicalize_name(str(text), validate=True)
            spec = str(SpecifierSet(str(specifier)))
        except (InvalidName, InvalidSpecifier):
            # A name becomes a directory of the mirror: never one that is not a name.
            logger.warning(
                "%s names %r %r, not a project and specifier; ignored", where, text, specifier
            )
            continue
        projects[name] = spec
    return tuple(sorted(projects.items()))


def _filters(data: Mapping[str, Any]) -> Filters:
    def optional_int(value: object) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{value!r} is not a number")
        return value

    def optional_str(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is not a string")
        return value

    index_url = data.get("index-url")
    return Filters(
        targets=tuple(str(t) for t in data["targets"]),
        sdists=bool(data["sdists"]),
        latest=optional_int(data["latest"]),
        prereleases=bool(data["prereleases"]),
        max_file_size=optional_int(data["max-file-size"]),
        yanked=bool(data["yanked"]),
        index_url=strip_credentials(str(index_url)) if index_url is not None else None,
        extra_index_urls=tuple(strip_credentials(str(u)) for u in data["extra-index-urls"]),
        # Absent from selections written before the cooldown existed: none.
        exclude_newer=optional_str(data.get("exclude-newer")),
        exclude_newer_packages=tuple(str(p) for p in data.get("exclude-newer-packages") or ()),
        no_upload_time="keep" if data.get("no-upload-time") == "keep" else "refuse",
    )


def describe_filters(filters: Filters, keys: Iterable[FilterKey]) -> str:
    """The filters named by ``keys`` as the command line gives them, for one message line."""
    parts: list[str] = []
    for key in keys:
        if key == "targets":
            parts.append(
                " ".join(f"--target {t}" for t in filters.targets)
                if filters.targets
                else "no --target (every wheel)"
            )
        elif key == "sdists":
            parts.append("--sdists" if filters.sdists else "--no-sdists")
        elif key == "prereleases":
            parts.append("--prereleases" if filters.prereleases else "--no-prereleases")
        elif key == "yanked":
            parts.append("--yanked" if filters.yanked else "--no-yanked")
        elif key == "latest":
            parts.append(f"--latest {filters.latest}" if filters.latest else "no --latest")
        elif key == "max-file-size":
            size = filters.max_file_size
            parts.append(f"--max-file-size {size}" if size is not None else "no --max-file-size")
        elif key == "exclude-newer":
            words = [f"--exclude-newer {filters.exclude_newer}"] if filters.exclude_newer else []
            words += [f"--exclude-newer-package {p}" for p in filters.exclude_newer_packages]
            words.append(f"--no-upload-time {filters.no_upload_time}")
            parts.append(" ".join(words) if len(words) > 1 else "no --exclude-newer")
        else:
            index = (
                f"--index-url {filters.index_url}"
                if filters.index_url
                else "pip's configured index"
            )
            parts.append(
                " ".join([index, *(f"--extra-index-url {u}" for u in filters.extra_index_urls)])
            )
    return ", ".join(parts)


def merge_filters(
    out: Path,
    remembered: Filters | None,
    given: Filters,
    keys_given: frozenset[FilterKey],
    *,
    replace: bool,
) -> Filters:
    """The filters a run applies: the remembered ones, with those given on the command line.

    A given filter that differs from the remembered one is refused (one line), unless
    ``replace``: then the filters given (defaults for the others) replace the remembered ones,
    except the indexes, which change only when given (pip's default index is never a
    surprise: a project it does not have would leave the mirror).
    """
    if remembered is None:
        return given
    if replace:
        if "index" in keys_given:
            return given
        return replace_dataclass(
            given,
            index_url=remembered.index_url,
            extra_index_urls=remembered.extra_index_urls,
        )
    differ = [
        key
        for key in FILTER_KEYS
        if key in keys_given and given.value(key) != remembered.value(key)
    ]
    if differ:
        raise UsageError(
            f"the mirror in {str(out)!r} keeps {describe_filters(remembered, differ)}; "
            f"this run asks for {describe_filters(given, differ)}",
            hint="leave the option out to keep the mirror's filters, or add --replace-filters "
            "to make this run's filters the mirror's, for every project (files they exclude "
            "are deleted)",
        )
    values = {key: (given if key in keys_given else remembered) for key in FILTER_KEYS}
    return Filters(
        targets=values["targets"].targets,
        sdists=values["sdists"].sdists,
        latest=values["latest"].latest,
        prereleases=values["prereleases"].prereleases,
        max_file_size=values["max-file-size"].max_file_size,
        yanked=values["yanked"].yanked,
        index_url=values["index"].index_url,
        extra_index_urls=values["index"].extra_index_urls,
        exclude_newer=values["exclude-newer"].exclude_newer,
        exclude_newer_packages=values["exclude-newer"].exclude_newer_packages,
        no_upload_time=values["exclude-newer"].no_upload_time,
    )


def adopt(out: Path, names: Iterable[NormalizedName]) -> Remembered | None:
    """What an older mirror (no selection file) mirrors: the projects it has state for or its
    manifest lists, and the requirement files, ``--all`` and filters its manifest records,
    so that upgrading deletes nothing; None when there is no such mirror in ``out``."""
    manifest = read_manifest(out)
    options: Mapping[str, Any] = {}
    names = set(names)
    if manifest is not None and manifest.kind == "mirror":
        found = manifest.inputs.options.get("mirror", {})
        options = found if isinstance(found, Mapping) else {}
        for record in manifest.files:
            with contextlib.suppress(InvalidName):
                names.add(canonicalize_name(record.name, validate=True))
    if not names:
        return None
    specifiers: dict[NormalizedName, str] = {}
    for text in options.get("projects", ()):
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement:
            continue
        name = canonicalize_name(requirement.name)
        specifiers[name] = str(requirement.specifier)
    requirements: list[str] = []
    pinned: dict[NormalizedName, set[str]] = {}
    if manifest is not None and manifest.kind == "mirror":
        for item in manifest.inputs.files:
            path = Path(item.path).absolute()
            if item.kind == "requirements" and path.is_file():
                requirements.append(str(path))
        for lock in manifest.locks:
            for entry in lock.entries:
                pinned.setdefault(canonicalize_name(entry.name), set()).add(entry.version)
    all_projects = options.get("all") is True
    projects: dict[NormalizedName, str] = {}
    for name in sorted(names):
        if name in specifiers:
            projects[name] = specifiers[name]
        elif name in pinned and requirements:
            continue  # the requirement files' closure brings it
        elif name in pinned and len(pinned[name]) == 1:
            projects[name] = f"=={next(iter(pinned[name]))}"  # its file is gone: keep the pin
        elif not all_projects:
            projects[name] = ""
    try:
        filters = _filters(
            {
                "targets": [t for t in options.get("targets", ())],
                "sdists": options.get("sdists", True),
                "latest": options.get("latest"),
                "prereleases": options.get("prereleases", True),
                "max-file-size": options.get("max-file-size"),
                "yanked": options.get("yanked", True),
                "index-url": (options.get("index") or {}).get("index-url"),
                "extra-index-urls": (options.get("index") or {}).get("extra-index-urls", ()),
            }
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        filters = Filters()
    return Remembered(tuple(sorted(projects.items())), tuple(requirements), all_projects, filters)
