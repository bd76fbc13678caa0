"""The Simple API's data: a project page (PEP 503/691) and the files it lists, as frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.utils import NormalizedName

__all__ = [
    "PROJECT_STATUSES",
    "CoreMetadata",
    "PageFile",
    "ProjectPage",
    "ProjectStatus",
]

CoreMetadata = bool | dict[str, str]  # False: none; True: available, no hash; else its hashes
# PEP 792: a project has exactly one status, "active" when the page names none.
ProjectStatus = Literal["active", "archived", "quarantined", "deprecated"]
PROJECT_STATUSES: tuple[ProjectStatus, ...] = ("active", "archived", "quarantined", "deprecated")


@dataclass(frozen=True, slots=True)  # slots: a proxy keeps tens of thousands in memory
class PageFile:
    """One file a project page lists, as the page describes it."""

    filename: str
    url: str  # absolute, fragment removed; may carry credentials: never show it unstripped
    hashes: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool | str = False  # PEP 592: False, True, or the reason given
    size: int | None = None
    upload_time: str | None = None  # PEP 700, checked to be an ISO 8601 time
    core_metadata: CoreMetadata = False  # PEP 658/714
    # PEP 740: the URL of the file's provenance object, on the page's own origin; it may
    # carry credentials like ``url``.
    provenance: str | None = None

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for caches), "filename" first; ``from_json`` reads it back.
        Values at their default are left out: a proxy's store writes 43,000 of these for the
        pages of one cold install."""
        data: dict[str, Any] = {"filename": self.filename, "url": self.url, "hashes": self.hashes}
        if self.requires_python is not None:
            data["requires_python"] = self.requires_python
        if self.yanked is not False:
            data["yanked"] = self.yanked
        if self.size is not None:
            data["size"] = self.size
        if self.upload_time is not None:
            data["upload_time"] = self.upload_time
        if self.core_metadata is not False:
            data["core_metadata"] = self.core_metadata
        if self.provenance is not None:
            data["provenance"] = self.provenance
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PageFile:
        return cls(
            filename=str(data["filename"]),
            url=str(data["url"]),
            hashes={str(k): str(v) for k, v in dict(data.get("hashes") or {}).items()},
            requires_python=data.get("requires_python"),
            yanked=data.get("yanked", False),
            size=data.get("size"),
            upload_time=data.get("upload_time"),
            core_metadata=data.get("core_metadata", False),
            provenance=data.get("provenance"),
        )


@dataclass(frozen=True)
class ProjectPage:
    """A project's page on one index."""

    name: NormalizedName
    url: str  # the page URL that answered (after redirects)
    files: tuple[PageFile, ...]
    versions: tuple[str, ...] | None = None  # PEP 700, when the page gives them
    api_version: str = "1.0"
    etag: str | None = None
    last_modified: str | None = None
    # PEP 792: "quarantined" means the index offers no file of the project.
    status: ProjectStatus = "active"
    status_reason: str | None = None
