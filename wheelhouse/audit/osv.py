"""The OSV snapshot: the PyPI export's zip of OSV records, read in memory, and version matching."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import zipfile
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.errors import Hint, OsvSnapshotError, TamperedError

__all__ = [
    "ECOSYSTEM",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "MAX_TOTAL_BYTES",
    "Advisory",
    "Affected",
    "Event",
    "OsvDatabase",
    "Range",
    "load_snapshot",
]

logger = logging.getLogger(__name__)

ECOSYSTEM = "PyPI"
# One OSV record is a few kilobytes; the largest in the PyPI export are well under 1 MiB.
MAX_MEMBER_BYTES = 16 * 1024 * 1024
# The whole export unpacks to a few hundred megabytes; past this, it is not an export.
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
MAX_MEMBERS = 500_000
# The export's zip is tens of megabytes.
MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
# Ranges whose versions the package's own ordering (PEP 440) can compare. GIT ranges need
# the repository's history; the record's `versions` list covers them.
_COMPARABLE_RANGES = frozenset({"ECOSYSTEM", "SEMVER"})


@dataclass(frozen=True)
class Event:
    """One status change of a range: where a vulnerability starts, is fixed, or stops."""

    kind: EventKind
    version: str


@dataclass(frozen=True)
class Range:
    """``affected[].ranges[]``: a timeline of events in one version ordering."""

    type: str
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Affected:
    """``affected[]`` for one PyPI project: its ranges and its enumerated versions."""

    name: NormalizedName
    ranges: tuple[Range, ...]
    versions: frozenset[str]

    def includes(self, version: str) -> bool:
        """Whether ``version`` is affected: listed in ``versions`` or inside a range."""
        if version in self.versions:
            return True
        parsed = _version(version)
        if parsed is None:
            return False
        if any(_version(listed) == parsed for listed in self.versions):
            return True
        return any(_in_range(parsed, r) for r in self.ranges)

    def fixed_after(self, version: str) -> tuple[str, ...]:
        """The ``fixed`` versions of the comparable ranges that are newer than ``version``."""
        parsed = _version(version)
        found = []
        for r in self.ranges:
            if r.type not in _COMPARABLE_RANGES:
                continue
            for event in r.events:
                fixed = _version(event.version) if event.kind == "fixed" else None
                if fixed is not None and (parsed is None or fixed > parsed):
                    found.append(event.version)
        return tuple(found)


@dataclass(frozen=True)
class Advisory:
    """One OSV record, as far as an audit needs it (the whole record stays in the zip)."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    details: str
    modified: str
    published: str | None
    severity: tuple[tuple[str, str], ...]
    affected: tuple[Affected, ...]
    # The zip member the record came from: a label, never a path.
    member: str

    def affects(self, name: NormalizedName, version: str) -> bool:
        return any(a.name == name and a.includes(version) for a in self.affected)

    def fixed_versions(self, name: NormalizedName, version: str) -> tuple[str, ...]:
        found: set[str] = set()
        for affected in self.affected:
            if affected.name == name and affected.includes(version):
                found.update(affected.fixed_after(version))
        return tuple(sorted(found, key=Version))


@dataclass
class OsvDatabase:
    """The advisories of a snapshot, by the canonical name of each project they affect."""

    path: Path
    sha256: str
    records: int
    by_name: dict[NormalizedName, list[Advisory]] = field(default_factory=dict)

    def query(self, name: str, version: str) -> list[Advisory]:
        """The advisories that affect ``name`` at ``version``, in id order."""
        canonical = canonicalize_name(name)
        found = [a for a in self.by_name.get(canonical, ()) if a.affects(canonical, version)]
        return sorted(found, key=lambda a: a.id)

    def advisories(self, name: str) -> list[Advisory]:
        """Every advisory for ``name``, whatever the version."""
        return list(self.by_name.get(canonicalize_name(name), ()))

    def raw(self, advisory: Advisory) -> dict[str, Any]:
        """The whole OSV record of ``advisory``, read again from the snapshot (bounded)."""
        with _open_zip(self.path) as archive:
            try:
                info = archive.getinfo(advisory.member)
            except KeyError as exc:
                raise OsvSnapshotError(
                    f"the OSV snapshot {str(self.path)!r} no longer holds {advisory.member!r}",
                    hint="the snapshot changed while it was in use; run the command again",
                ) from exc
            data = json.loads(_read_member(archive, info, self.path))
        if not isinstance(data, dict):
            raise _malformed(self.path, advisory.member, "the record is not a JSON object")
        return data


def load_snapshot(
    path: Path, *, names: Collection[str] | None = None, expected_sha256: str | None = None
) -> OsvDatabase:
    """Read the OSV export zip at ``path``: every record is checked, PyPI ones are indexed.

    With ``names``, only the advisories affecting those projects are kept (an audit needs
    no others); every record is still read and checked, so a malformed one is found.
    Withdrawn records are skipped. Members are read in memory, each and all bounded; their
    names are labels, never paths. With ``expected_sha256`` (recorded when it was fetched),
    a snapshot that differs is refused before anything in it is read.
    """
    wanted = None if names is None else {canonicalize_name(n) for n in names}
    sha256 = _sha256_of(path)
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise TamperedError(
            f"the OSV snapshot {str(path)!r} has sha256 {sha256}, but {expected_sha256} was "
            "recorded when it was fetched",
            hint="the snapshot was damaged or replaced; fetch it again with "
            "'wheelhouse audit fetch'",
        )
    database = OsvDatabase(path=path, sha256=sha256, records=0)
    seen: dict[str, str] = {}
    total = 0
    with _open_zip(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise OsvSnapshotError(
                f"the OSV snapshot {str(path)!r} has {len(infos)} members, more than "
                f"{MAX_MEMBERS}; it is not an OSV export",
            )
        for info in infos:
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            data = _read_member(archive, info, path)
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise OsvSnapshotError(
                    f"the OSV snapshot {str(path)!r} unpacks to more than "
                    f"{MAX_TOTAL_BYTES // 2**20} MiB; it is not an OSV export",
                )
            try:
                record = json.loads(data)
            except (ValueError, RecursionError) as exc:
                raise _malformed(path, info.filename, f"not JSON ({exc})") from exc
            found = _advisory(record, path, info.filename, wanted)
            if found is None:
                continue
            ident, advisory = found
            if ident in seen:
                raise _malformed(path, info.filename, f"its id {ident!r} is also {seen[ident]!r}'s")
            seen[ident] = info.filename
            database.records += 1
            if advisory is None:
                continue
            for name in {a.name for a in advisory.affected}:
                database.by_name.setdefault(name, []).append(advisory)
    return database


def _sha256_of(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise OsvSnapshotError(
            f"there is no OSV snapshot at {str(path)!r}",
            hint="fetch one on the connected side with 'wheelhouse audit fetch DIR' "
            "(or name one with --osv FILE)",
        ) from exc
    except OSError as exc:
        raise OsvSnapshotError(
            f"cannot read the OSV snapshot {str(path)!r}: {exc.strerror}"
        ) from exc
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        # A FIFO or a device would be read forever.
        if not stat.S_ISREG(status.st_mode):
            raise OsvSnapshotError(f"the OSV snapshot {str(path)!r} is not a regular file")
        if status.st_size > MAX_SNAPSHOT_BYTES:
            raise OsvSnapshotError(
                f"the OSV snapshot {str(path)!r} is {status.st_size} bytes, more than "
                f"{MAX_SNAPSHOT_BYTES // 2**20} MiB; it is not an OSV export",
            )
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise OsvSnapshotError(
            f"the OSV snapshot {str(path)!r} is not a zip file ({exc})",
            hint="fetch it again with 'wheelhouse audit fetch'",
        ) from exc
    except OSError as exc:
        raise OsvSnapshotError(f"cannot read the OSV snapshot {str(path)!r}: {exc}") from exc


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """A member's bytes, at most ``MAX_MEMBER_BYTES`` whatever its header claims."""
    if info.file_size > MAX_MEMBER_BYTES:
        raise _too_big(path, info.filename)
    try:
        with archive.open(info) as member:
            data = member.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
        raise _malformed(path, info.filename, f"it cannot be unpacked ({exc})") from exc
    if len(data) > MAX_MEMBER_BYTES:
        raise _too_big(path, info.filename)
    return data


def _too_big(path: Path, member: str) -> OsvSnapshotError:
    return _malformed(path, member, f"it unpacks to more than {MAX_MEMBER_BYTES // 2**20} MiB")


def _malformed(path: Path, member: str, why: str) -> OsvSnapshotError:
    return OsvSnapshotError(
        f"the OSV snapshot {str(path)!r} has a malformed record {member!r}: {why}",
        hint=Hint.REFETCH_OSV,
    )


class _Malformed(Exception):
    pass


def _kind(value: object) -> str:
    return type(value).__name__


def _str(value: object, what: str) -> str:
    if type(value) is not str:
        raise _Malformed(f"{what} is {_kind(value)}, not a string")
    return value


def _optional_str(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    return _str(value, f"'{key}'")


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise _Malformed(f"{what} is {_kind(value)}, not a list")
    return value


def _dict(value: object, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Malformed(f"{what} is {_kind(value)}, not an object")
    return value


def _strings(value: object, what: str) -> list[str]:
    items = _list(value, what)
    for item in items:
        if type(item) is not str:
            raise _Malformed(f"{what} has a {_kind(item)}, not a string")
    return items


def _advisory(
    record: object, path: Path, member: str, wanted: set[NormalizedName] | None
) -> tuple[str, Advisory | None] | None:
    """The record's id and Advisory (None when it is about none of ``wanted``); None when it
    is withdrawn or about no PyPI project. Every field an audit reads is checked, whether
    the record is kept or not."""
    try:
        return _advisory_of(_dict(record, "the record"), member, wanted)
    except _Malformed as exc:
        raise _malformed(path, member, str(exc)) from None


def _advisory_of(
    record: dict[str, Any], member: str, wanted: set[NormalizedName] | None
) -> tuple[str, Advisory | None] | None:
    ident = _str(record.get("id"), "'id'")
    if not ident:
        raise _Malformed("'id' is empty")
    aliases = _strings(record.get("aliases"), "'aliases'")
    summary = _optional_str(record, "summary")
    details = _optional_str(record, "details")
    modified = _optional_str(record, "modified")
    published = record.get("published")
    if published is not None:
        _str(published, "'published'")
    severity = []
    for i, item in enumerate(_list(record.get("severity"), "'severity'")):
        item = _dict(item, f"severity[{i}]")
        severity.append(
            (
                _str(item.get("type"), f"severity[{i}].type"),
                _str(item.get("score"), f"severity[{i}].score"),
            )
        )
    affected = []
    pypi = False
    for i, entry in enumerate(_list(record.get("affected"), "'affected'")):
        about, found = _affected(_dict(entry, f"affected[{i}]"), f"affected[{i}]", wanted)
        pypi = pypi or about
        if found is not None:
            affected.append(found)
    withdrawn = record.get("withdrawn")
    if withdrawn is not None:
        _str(withdrawn, "'withdrawn'")
        return None
    if not pypi:
        return None
    if not affected:
        return ident, None
    return ident, Advisory(
        id=ident,
        aliases=tuple(aliases),
        summary=summary,
        details=details,
        modified=modified,
        published=published,
        severity=tuple(severity),
        affected=tuple(affected),
        member=member,
    )


def _affected(
    entry: dict[str, Any], where: str, wanted: set[NormalizedName] | None
) -> tuple[bool, Affected | None]:
    """Whether the entry is about a PyPI project, and the entry when it is a wanted one."""
    package = _dict(entry.get("package"), f"{where}.package")
    ecosystem = _str(package.get("ecosystem"), f"{where}.package.ecosystem")
    name = _str(package.get("name"), f"{where}.package.name")
    versions = _strings(entry.get("versions"), f"{where}.versions")
    ranges = [
        _range(_dict(r, f"{where}.ranges[{i}]"), f"{where}.ranges[{i}]")
        for i, r in enumerate(_list(entry.get("ranges"), f"{where}.ranges"))
    ]
    if ecosystem != ECOSYSTEM:
        return False, None
    canonical = canonicalize_name(name)
    if wanted is not None and canonical not in wanted:
        return True, None
    return True, Affected(
        name=canonical,
        ranges=tuple(Range(kind, tuple(Event(*e) for e in events)) for kind, events in ranges),
        versions=frozenset(versions),
    )


def _range(entry: dict[str, Any], where: str) -> tuple[str, list[tuple[EventKind, str]]]:
    kind = _str(entry.get("type"), f"{where}.type")
    events: list[tuple[EventKind, str]] = []
    for i, event in enumerate(_list(entry.get("events"), f"{where}.events")):
        if type(event) is not dict or len(event) != 1:
            # An event has exactly one key; fields other than the four are not allowed.
            _dict(event, f"{where}.events[{i}]")
            raise _Malformed(
                f"{where}.events[{i}] must have exactly one of {', '.join(_EVENT_KINDS)}"
            )
        ((key, value),) = event.items()
        if key not in _EVENT_KINDS:
            raise _Malformed(
                f"{where}.events[{i}] must have exactly one of {', '.join(_EVENT_KINDS)}"
            )
        events.append((key, _str(value, f"{where}.events[{i}].{key}")))
    return kind, events


# -- matching ---------------------------------------------------------------------------------


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


# The order of events at the same version: the schema sorts by version alone.
_KIND_ORDER: dict[EventKind, int] = {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}


def _in_range(version: Version, r: Range) -> bool:
    """The OSV schema's evaluation of one range (its ``IncludedInRanges`` for one entry)."""
    if r.type not in _COMPARABLE_RANGES:
        return False
    events = _parsed_events(r.events)
    if events is None:
        logger.debug("a range with a version PEP 440 cannot read is skipped: %r", r)
        return False
    limits = [v for kind, v in events if kind == "limit"]
    # No limit is an implicit "*"; a "*" limit is infinity.
    if limits and not any(limit is None or version < limit for limit in limits):
        return False
    vulnerable = False
    for kind, at in events:
        if kind == "introduced" and (at is None or version >= at):
            vulnerable = True
        elif kind == "fixed" and at is not None and version >= at:  # noqa: SIM114 - as the schema
            vulnerable = False
        elif kind == "last_affected" and at is not None and version > at:
            vulnerable = False
    return vulnerable


def _parsed_events(events: Iterable[Event]) -> list[tuple[EventKind, Version | None]] | None:
    """The events sorted by version ("0" introduced first, "*" limit last); None when a
    version cannot be read (the range then cannot be evaluated, only ``versions`` can)."""
    parsed: list[tuple[EventKind, Version | None]] = []
    for event in events:
        if event.kind == "introduced" and event.version == "0":
            parsed.append((event.kind, None))
            continue
        if event.kind == "limit" and "*" in event.version:
            parsed.append((event.kind, None))
            continue
        version = _version(event.version)
        if version is None:
            return None
        parsed.append((event.kind, version))

    def key(item: tuple[EventKind, Version | None]) -> tuple[int, Version | None, int]:
        kind, at = item
        rank = 0 if at is None and kind == "introduced" else 2 if at is None else 1
        return (rank, at if at is not None else Version("0"), _KIND_ORDER[kind])

    return sorted(parsed, key=key)
