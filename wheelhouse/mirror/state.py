"""What a mirror keeps between runs under ``DIR/.mirror/projects/``: each project's listings,
files and owned names, the ownership journal, and the checks that keep names from a page or a
state file from ever becoming paths."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from wheelhouse._base._http import strip_credentials
from wheelhouse._base.files import write_atomic
from wheelhouse.errors import OutputDirError
from wheelhouse.house.index import METADATA_SUFFIX
from wheelhouse.house.manifest import (
    MIRROR_STATE_DIR,
    Downloaded,
    FileRecord,
    record_from_dict,
    record_to_dict,
)

logger = logging.getLogger(__name__)


STATE_VERSION = 1
_PROJECTS = "projects"
# Appended (and fsynced) as each file is verified, before it is put in place: the mirror's
# claim on the name until the project's state file takes the claim over.
_OWNED = ".owned"
# A name and its ".metadata" must fit in one path component (255 bytes on most systems).
_MAX_FILENAME = 255 - len(METADATA_SUFFIX)


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
