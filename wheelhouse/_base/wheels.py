"""Reading a wheel: which member is its METADATA, and its bytes (the one rule, used everywhere)."""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["metadata_member", "read_wheel_metadata"]


def metadata_member(members: Iterable[str], name: NormalizedName, version: Version) -> str | None:
    """The ``{name}-{version}.dist-info/METADATA`` member among ``members``, or None.

    Only a top-level ``.dist-info`` of this distribution counts: a wheel may vendor another
    project's ``.dist-info`` (deeper down, or of another name), which must never win.
    """
    # The directory is named after the distribution as the build backend spelled it (not always
    # normalized, e.g. "Foo_Bar-1.0.dist-info"), so match it by what it means, not by spelling.
    for member in members:
        directory, slash, leaf = member.partition("/")
        if leaf != "METADATA" or not slash or not directory.endswith(".dist-info"):
            continue
        dist, dash, dist_version = directory.removesuffix(".dist-info").rpartition("-")
        if not dash or canonicalize_name(dist) != name:
            continue
        with contextlib.suppress(InvalidVersion):
            if Version(dist_version) == version:
                return member
    return None


def read_wheel_metadata(path: Path, name: NormalizedName, version: Version) -> bytes | None:
    """The METADATA of the wheel at ``path``, byte for byte, or None if it has none.

    Raises ``OSError`` or ``zipfile.BadZipFile`` for a file that is not a readable zip: callers
    word that for their own context.
    """
    with zipfile.ZipFile(path) as archive:
        member = metadata_member(archive.namelist(), name, version)
        return None if member is None else archive.read(member)
