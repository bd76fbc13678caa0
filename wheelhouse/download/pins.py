"""The pinned file: one distribution chosen for a target, and the file it is installed from."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import NormalizedName

from wheelhouse.house.manifest import FileKind, Sha256

__all__ = ["Pin"]


@dataclass(frozen=True)
class Pin:
    """One distribution a resolver chose, and the file it would install it from."""

    name: NormalizedName
    version: str
    url: str
    filename: str
    kind: FileKind
    sha256: Sha256 | None
    requires_python: str | None
    requested: bool
    # PEP 740: the URL of the file's provenance, when the index page read for it names one.
    provenance: str | None = None
