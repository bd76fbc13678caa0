"""The static package index of a wheelhouse: PEP 503 HTML, PEP 691/700 JSON, PEP 658 metadata."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse._base.files import sha256_file, write_atomic, write_new
from wheelhouse._base.wheels import read_wheel_metadata
from wheelhouse._base.words import count
from wheelhouse.errors import InvalidWheelhouseError, TamperedError
from wheelhouse.house.manifest import (
    PROVENANCE_SUFFIX,
    FileRecord,
    Manifest,
)
from wheelhouse.simple import PageFile, ProjectPage, ProjectStatus
from wheelhouse.simple.render import render_html, render_json, root_html, root_json

__all__ = [
    "INDEX_DIR",
    "METADATA_SUFFIX",
    "IndexEntry",
    "index_directory",
    "index_files",
    "project_pages",
    "render_index",
    "render_project",
    "render_root",
    "requires_python_of",
    "write_if_changed",
    "write_index",
]

logger = logging.getLogger(__name__)

INDEX_DIR = "simple"
HTML_PAGE = "index.html"
JSON_PAGE = "index.json"
METADATA_SUFFIX = ".metadata"


@dataclass(frozen=True)
class IndexEntry:
    """One file as the index advertises it."""

    record: FileRecord
    requires_python: str | None
    metadata_sha256: str | None  # None for sdists: no PEP 658 file
    # PEP 740: the wheelhouse keeps the file's provenance beside it (<filename>.provenance).
    provenance: bool = False


def index_files(manifest: Manifest) -> list[str]:
    """The paths, relative to the wheelhouse and POSIX-style, that ``write_index`` writes."""
    paths = [f"{INDEX_DIR}/{HTML_PAGE}", f"{INDEX_DIR}/{JSON_PAGE}"]
    for name in sorted({record.name for record in manifest.files}):
        paths += [f"{INDEX_DIR}/{name}/{HTML_PAGE}", f"{INDEX_DIR}/{name}/{JSON_PAGE}"]
    paths += [
        record.filename + METADATA_SUFFIX for record in manifest.files if record.kind == "wheel"
    ]
    return sorted(paths)


def index_directory(directory: Path) -> Manifest:
    """Write the index of the existing wheelhouse in ``directory`` (``wheelhouse index DIR``).

    Every file is checked against the manifest first; the manifest is returned for reporting.
    """
    from wheelhouse.house.contents import open_wheelhouse  # it imports this module's names

    manifest = open_wheelhouse(directory)
    write_index(directory, manifest)
    return manifest


def write_index(
    root: Path, manifest: Manifest, *, verify: bool = True, staged: bool = False
) -> None:
    """Write the static index of the wheelhouse in ``root`` for the files ``manifest`` lists.

    Every page and ``.metadata`` file is written to a temporary name and renamed into place,
    and a file whose content would not change is left untouched, so writing the index twice
    gives byte-identical files (and unchanged mtimes, which keeps HTTP validators stable).
    With ``verify`` (the default) each file's size and sha256 are checked against the manifest
    first, because the index advertises those hashes to every client. ``staged`` says that
    ``root`` is a wheelhouse being staged (``publish``), which no one reads and which holds no
    index yet: its files are simply created.
    """
    # Metadata files first, then project pages, then the root (render_index's order): a
    # client reading the index while it is rewritten in place never follows a link to a file
    # that is not there yet.
    rendered = render_index(root, manifest, verify=verify)
    for relative, data in rendered.items():
        if staged:
            write_new(root / relative, data)
        else:
            write_if_changed(root / relative, data)
    names = {record.name for record in manifest.files}
    _prune_stale_projects(root / INDEX_DIR, set(names))
    logger.info("wrote the index of %s in %s", count(len(names), "project"), root / INDEX_DIR)


def render_index(
    root: Path, manifest: Manifest, *, verify: bool = True, provenance: bool = True
) -> dict[str, bytes]:
    """Every file of the index (POSIX path relative to ``root`` -> bytes), in writing order.

    With ``provenance`` (the default) a file's page links the ``<filename>.provenance`` kept
    beside it (PEP 740); without, no page links any (as pages written before it was placed).
    """
    rendered: dict[str, bytes] = {}
    by_project: dict[NormalizedName, list[IndexEntry]] = {}
    for record in sorted(manifest.files, key=lambda r: r.filename):
        path = root / record.filename
        if verify:
            _check_file(path, record)
        requires_python = record.requires_python
        metadata_sha256 = None
        if record.kind == "wheel":
            metadata = _wheel_metadata(path, record)
            metadata_sha256 = hashlib.sha256(metadata).hexdigest()
            rendered[record.filename + METADATA_SUFFIX] = metadata
            if requires_python is None:
                requires_python = _requires_python(metadata)
        linked = provenance and (root / (record.filename + PROVENANCE_SUFFIX)).is_file()
        by_project.setdefault(record.name, []).append(
            IndexEntry(record, requires_python, metadata_sha256, linked)
        )
    names = sorted(by_project)
    for name in names:
        rendered.update(render_project(name, by_project[name]))
    rendered.update(render_root(names))
    return rendered


def project_pages(name: str) -> tuple[str, str]:
    """The paths (relative to the wheelhouse) of a project's HTML and JSON pages."""
    return f"{INDEX_DIR}/{name}/{HTML_PAGE}", f"{INDEX_DIR}/{name}/{JSON_PAGE}"


def render_project(
    name: NormalizedName,
    entries: list[IndexEntry],
    *,
    status: ProjectStatus | None = None,
    status_reason: str | None = None,
) -> dict[str, bytes]:
    """A project's two pages (path relative to the wheelhouse -> bytes), entries in order.

    ``status`` (PEP 792: "archived", "quarantined", "deprecated"; None for "active") is
    written as the pages' ``project-status`` and ``pypi:project-status`` meta tag.
    """
    html_path, json_path = project_pages(name)
    page = ProjectPage(
        name,
        f"{INDEX_DIR}/{name}/",
        tuple(_page_file(entry) for entry in entries),
        tuple(_sorted_versions({entry.record.version for entry in entries})),
        status=status or "active",
        status_reason=status_reason if status is not None else None,
    )
    return {html_path: render_html(page), json_path: render_json(page, indent=2)}


def render_root(names: Iterable[str]) -> dict[str, bytes]:
    """The root listing in both forms (path relative to the wheelhouse -> bytes)."""
    return {
        f"{INDEX_DIR}/{HTML_PAGE}": root_html(names),
        f"{INDEX_DIR}/{JSON_PAGE}": root_json(names, indent=2),
    }


def _check_file(path: Path, record: FileRecord) -> None:
    try:
        digest, size = sha256_file(path)
    except FileNotFoundError as exc:
        raise TamperedError(
            f"{record.filename!r} is listed in the manifest but missing from {str(path.parent)!r}",
            hint="rebuild the wheelhouse with 'wheelhouse build'",
        ) from exc
    if size != record.size or digest != record.sha256:
        raise TamperedError(
            f"{record.filename!r} does not match the manifest "
            f"(sha256 {digest!r}, {size} bytes; expected {record.sha256!r}, "
            f"{record.size} bytes)",
            hint="rebuild the wheelhouse with 'wheelhouse build'",
        )


def _wheel_metadata(path: Path, record: FileRecord) -> bytes:
    """The ``*.dist-info/METADATA`` of the wheel at ``path``, byte for byte."""
    try:
        name, version, _, _ = parse_wheel_filename(record.filename)
    except InvalidWheelFilename as exc:
        raise InvalidWheelhouseError(
            f"{record.filename!r} is not a valid wheel name: {exc}"
        ) from exc
    try:
        metadata = read_wheel_metadata(path, name, version, sha256=record.sha256)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidWheelhouseError(
            f"cannot read the wheel {str(path)!r}: {exc}",
            hint="rebuild the wheelhouse with 'wheelhouse build'",
        ) from exc
    if metadata is None:
        raise InvalidWheelhouseError(
            f"the wheel {record.filename!r} has no {name}-{version}.dist-info/METADATA",
            hint="the wheel is broken; rebuild the wheelhouse with 'wheelhouse build'",
        )
    return metadata


def requires_python_of(metadata: bytes) -> str | None:
    """The ``Requires-Python`` of a METADATA file, as the index advertises it."""
    return _requires_python(metadata)


def _requires_python(metadata: bytes) -> str | None:
    # Imported here: the email package costs 0.015 s, and a build reaches this only after
    # resolving (this module is loaded at the start, for index_files).
    from email.parser import BytesHeaderParser

    value = BytesHeaderParser().parsebytes(metadata).get("Requires-Python")
    if value is None:
        return None
    return str(value).strip() or None


def _file_url(filename: str) -> str:
    """The URL of a wheelhouse file from a project page (``simple/<name>/``)."""
    return "../../" + quote(filename)


def _provenance_url(filename: str) -> str:
    """The URL of a file's kept provenance from a project page (PEP 740)."""
    return _file_url(filename + PROVENANCE_SUFFIX)


def _page_file(entry: IndexEntry) -> PageFile:
    record = entry.record
    return PageFile(
        filename=record.filename,
        url=_file_url(record.filename),
        hashes={"sha256": record.sha256},
        requires_python=entry.requires_python,
        # PEP 592/691: the reason, or true when the index gave none.
        yanked=False if record.yanked is None else (record.yanked or True),
        size=record.size,
        core_metadata=(
            {"sha256": entry.metadata_sha256} if entry.metadata_sha256 is not None else False
        ),
        provenance=_provenance_url(record.filename) if entry.provenance else None,
    )


def _sorted_versions(versions: Iterable[str]) -> list[str]:
    def key(version: str) -> tuple[int, Version | str]:
        try:
            return (0, Version(version))
        except InvalidVersion:
            return (1, version)

    parsed = [key(v) for v in versions]
    valid = sorted((k for k in parsed if k[0] == 0), key=lambda k: k[1])
    legacy = sorted(str(k[1]) for k in parsed if k[0] == 1)
    return [str(k[1]) for k in valid] + legacy


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically make ``path`` hold ``data``; leave it alone when it already does.

    Returns whether the file was written.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return True


def _prune_stale_projects(simple: Path, names: set[str]) -> None:
    """Remove project pages this module wrote for projects the manifest no longer lists."""
    for directory in _subdirectories(simple):
        if directory.name in names:
            continue
        for page in (HTML_PAGE, JSON_PAGE):
            (directory / page).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: something we did not write is there
            directory.rmdir()


def _subdirectories(path: Path) -> Iterator[Path]:
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield Path(entry.path)
