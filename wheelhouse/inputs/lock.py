"""What every lock reader returns: the pinned packages a target installs, and their files."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse._base.targets import Target
from wheelhouse.errors import RequirementsError
from wheelhouse.house.manifest import Sha256

__all__ = [
    "Lock",
    "LockFormat",
    "LockedFile",
    "LockedPackage",
    "Selection",
    "SourceKind",
    "capped",
    "check_selection",
    "evaluate",
    "parse_hash",
    "python_allows",
    "vcs_url",
]

LockFormat = Literal["pylock", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"]
# Where a lock says a package comes from: an index (files found there by name or hash), a
# direct URL or local archive (the lock's URL is the file), or sources a wheelhouse cannot pin.
SourceKind = Literal["index", "url", "path", "directory", "vcs"]


@dataclass(frozen=True)
class LockedFile:
    """One file the lock allows for a package.

    ``filename`` is None when the lock records only hashes (``Pipfile.lock``): the file is
    then the one of the configured index whose sha256 is among ``sha256``. ``url`` is None
    when the lock names the file but not where it is (poetry, pdm): it is found by filename on
    the configured index.
    """

    filename: str | None
    url: str | None
    sha256: frozenset[Sha256]
    # When the index received it (RFC 3339), where the lock records it (uv.lock, pylock):
    # the release cooldown judges the file by it without asking the index.
    upload_time: str | None = None


@dataclass(frozen=True)
class LockedPackage:
    """One pinned package of a target, as the lock records it."""

    name: NormalizedName
    version: str
    files: tuple[LockedFile, ...]
    source: SourceKind = "index"
    # The VCS URL or directory a package comes from, to name it in errors.
    reference: str = ""
    # The index the lock says the package comes from (poetry's and Pipfile's sources).
    index_url: str | None = None
    requires_python: str | None = None
    requested: bool = False


@dataclass(frozen=True)
class Selection:
    """What the user asked of the lock beyond its main dependencies."""

    extras: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()


class Lock(Protocol):
    """A lock file read by one of the readers of this package."""

    @property
    def path(self) -> Path: ...

    @property
    def format(self) -> LockFormat: ...

    @property
    def requires_python(self) -> str | None:
        """The Pythons the lock was made for, as PEP 440 specifiers (alternatives joined by
        ``||``), or None when it does not say."""
        ...

    def check(self, selection: Selection) -> None:
        """Raise :class:`RequirementsError` for an extra or group the lock does not have."""
        ...

    def packages_for(self, target: Target, selection: Selection) -> tuple[LockedPackage, ...]:
        """Every package ``target`` installs, with the files the lock allows for it."""
        ...


def capped(items: Sequence[str], limit: int = 5, sep: str = ", ") -> str:
    """``items`` joined, the first ``limit`` of them and a count of the rest: an error line
    stays one line whatever the size of the lock."""
    shown = sep.join(items[:limit])
    rest = len(items) - limit
    return f"{shown}{sep}and {rest} more" if rest > 0 else shown


def check_selection(
    path: Path,
    selection: Selection,
    *,
    extras: Collection[str],
    groups: Collection[str],
    extras_where: str,
    groups_where: str,
) -> None:
    """Every extra and group of ``selection`` is one the lock has (names compared normalized),
    else a :class:`RequirementsError` in the words a ``pyproject.toml`` input uses."""
    for asked, known, what, option, where in (
        (selection.extras, extras, "extra", "--extra", extras_where),
        (selection.groups, groups, "dependency group", "--group", groups_where),
    ):
        names = {canonicalize_name(name) for name in known}
        unknown = sorted(name for name in asked if canonicalize_name(name) not in names)
        if unknown:
            listed = capped(sorted(set(known)), 20) or "none"
            raise RequirementsError(
                f"{str(path)!r} has no {what} {unknown[0]!r} (it has: {listed})",
                path=path,
                hint=f"check the {option} name against {where}",
            )


def evaluate(
    marker: str | None,
    environment: Mapping[str, str],
    where: Path,
    *,
    extras: Collection[str] = (),
) -> bool:
    """Whether a lock's marker holds for a target (no marker holds everywhere)."""
    if not marker:
        return True
    try:
        parsed = Marker(marker)
    except InvalidMarker as exc:
        raise RequirementsError(
            f"{str(where)!r} has an invalid marker {marker!r}: {exc}",
            path=where,
            hint="regenerate the lock with the tool that wrote it",
        ) from exc
    return any(parsed.evaluate({**environment, "extra": extra}) for extra in extras or ("",))


def python_allows(requires_python: str, version: str) -> bool | None:
    """Whether ``version`` is among the Pythons ``requires_python`` allows (PEP 440
    specifiers, alternatives joined by ``||``); None when the text cannot be read."""
    try:
        alternatives = [SpecifierSet(part.strip()) for part in requires_python.split("||")]
    except InvalidSpecifier:
        return None
    return any(spec.contains(version, prereleases=True) for spec in alternatives)


def parse_hash(value: str, where: Path) -> Sha256 | None:
    """``sha256:HEX`` (the form uv, poetry, pdm and Pipfile write) as a digest; other
    algorithms are None: the file is then hashed here and checked by the others it has."""
    algorithm, sep, digest = value.partition(":")
    if not sep:
        algorithm, sep, digest = value.partition("=")
    if not sep or not digest:
        raise RequirementsError(
            f"{str(where)!r} records a hash {value!r} that is not ALGORITHM:HEX",
            path=where,
            hint="regenerate the lock with the tool that wrote it",
        )
    return Sha256(digest.lower()) if algorithm.lower() == "sha256" else None


_VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")


def vcs_url(requirement: str) -> str | None:
    """The version-control URL a requirement names (``git+https://...``, as is or after
    ``name @``), or None."""
    head = requirement.split(";", 1)[0].strip()
    url = head.split("@", 1)[1].strip() if " @ " in head or "@ " in head else head
    return url if url.lower().startswith(_VCS_SCHEMES) else None
