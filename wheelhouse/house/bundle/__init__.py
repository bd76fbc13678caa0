"""One-file bundles of a wheelhouse: pack, unpack (verified, then published atomically),
updates against an older wheelhouse (``--since``) and volumes for media with a size limit."""

from __future__ import annotations

from wheelhouse.house.bundle.layout import (
    BUNDLE_FORMAT,
    INFO_NAME,
    INSTALL_NAME,
    SUMS_NAME,
    BundleKind,
    Compression,
    PackResult,
    UnpackResult,
    Volume,
    compression_of,
    manifest_id,
    parse_size,
)
from wheelhouse.house.bundle.packing import pack
from wheelhouse.house.bundle.reader import base_of
from wheelhouse.house.bundle.unpacking import unpack

__all__ = [
    "BUNDLE_FORMAT",
    "INFO_NAME",
    "INSTALL_NAME",
    "SUMS_NAME",
    "BundleKind",
    "Compression",
    "PackResult",
    "UnpackResult",
    "Volume",
    "base_of",
    "compression_of",
    "manifest_id",
    "pack",
    "parse_size",
    "unpack",
]
