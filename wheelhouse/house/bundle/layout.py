"""What a wheelhouse bundle is: its member names and format, what pack and unpack report,
compression and sizes, and which file names a bundled manifest may hold."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse.errors import UsageError
from wheelhouse.house.manifest import Manifest

if TYPE_CHECKING:
    # Imported where pack renders the SBOMs: unpack needs none of it.
    from wheelhouse.house.sbom import SbomFormat


BUNDLE_FORMAT = 1


INFO_NAME = "bundle.json"


SUMS_NAME = "SHA256SUMS"


INSTALL_NAME = "INSTALL.txt"


HOUSE_DIR = "wheelhouse"


INSTALLERS_DIR = "installers"


SBOM_NAMES: dict[SbomFormat, str] = {
    "cyclonedx-json": "sbom.cdx.json",
    "spdx-json": "sbom.spdx.json",
}


# Every member carries the same time and owner, so the same wheelhouse gives the same bytes;
# 1980-01-01 is the earliest time a wheel's zip entries can carry.
MTIME = 315532800


CHUNK = 1 << 20


# bundle.json and SHA256SUMS are read into memory: a bundle with larger ones is not ours.
MAX_HEADER = 64 << 20


MAGIC_GZIP = b"\x1f\x8b"


MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"


VOLUME_SUFFIX = re.compile(r"\.(\d{3})$")


Compression = Literal["none", "gzip", "zstd"]


BundleKind = Literal["full", "update"]


# Member name -> where its bytes come from: a file on disk, or bytes made here.
_Source = Path | bytes


@dataclass(frozen=True)
class Volume:
    """One file that pack wrote: the bundle, or one of its volumes."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class PackResult:
    """What ``pack`` wrote."""

    volumes: tuple[Volume, ...]
    kind: BundleKind
    members: int
    files: int  # wheelhouse files (wheels and sdists) in the bundle
    base: str | None  # the base manifest's id for an update
    compression: Compression

    @property
    def size(self) -> int:
        return sum(v.size for v in self.volumes)


@dataclass(frozen=True)
class UnpackResult:
    """What ``unpack`` published."""

    directory: Path
    manifest: Manifest
    kind: BundleKind
    files: int  # wheelhouse files that came from the bundle
    reused: int  # files taken from the base wheelhouse (updates)
    removed: tuple[str, ...] = field(default=())  # files of the base the new one no longer has


def compression_of(path: Path) -> Compression:
    """The compression a bundle's name asks for: ``.tar``, ``.tar.gz`` (``.tgz``), ``.tar.zst``."""
    name = path.name
    if name.endswith((".tar.gz", ".tgz")):
        return "gzip"
    if name.endswith((".tar.zst", ".tzst")):
        return "zstd"
    if name.endswith(".tar"):
        return "none"
    raise UsageError(
        f"cannot tell the bundle format from {str(path)!r}",
        hint="name the bundle FILE.tar, FILE.tar.gz or FILE.tar.zst",
    )


def parse_size(text: str) -> int:
    """Bytes in ``4G``, ``700M``, ``100K`` or ``1048576`` (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match or int(match.group(1)) == 0:
        raise UsageError(
            f"--split {text!r} is not a size",
            hint="give a size such as 4G, 700M or 100K (powers of 1024)",
        )
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(match.group(1)) * int(1024**power)


def manifest_id(manifest: Manifest) -> str:
    """The sha256 of the manifest as wheelhouse writes it: what an update names as its base."""
    return hashlib.sha256(manifest.to_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Member:
    name: str
    source: _Source
    size: int
    sha256: str | None  # known beforehand: checked while the file is streamed


def unsafe_name(manifest: Manifest) -> str | None:
    """The first file name of ``manifest`` that is not one plain wheel or sdist file name (a
    single path component), else None: the manifest's names are data, never paths."""
    for record in manifest.files:
        name = record.filename
        if (
            not name
            or name.startswith(".")
            or any(c in name for c in "/\\\x00:")
            or PurePosixPath(name).name != name
        ):
            return name
        try:
            if name.endswith(".whl"):
                parse_wheel_filename(name)
            else:
                parse_sdist_filename(name)
        except (InvalidWheelFilename, InvalidSdistFilename):
            return name
    return None
