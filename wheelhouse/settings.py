"""Options for a build, gathered once from the command line into one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from wheelhouse.targets import HOST, Target

__all__ = ["BuildSettings", "IndexOptions", "default_jobs"]


def default_jobs() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class IndexOptions:
    """pip's own index options, passed through to pip as given (None means pip's default)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False

    def pip_args(self) -> list[str]:
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.pre:
            args.append("--pre")
        return args


@dataclass(frozen=True)
class BuildSettings:
    """Everything ``wheelhouse build`` needs to know."""

    requirements: tuple[Path, ...]
    output: Path
    constraints: tuple[Path, ...] = ()
    index: IndexOptions = field(default_factory=IndexOptions)
    cache_dir: Path | None = None
    keep_sdists: bool = False
    jobs: int = field(default_factory=default_jobs)
    refresh: bool = False
    targets: tuple[Target, ...] = (HOST,)
