"""Options for a build, gathered once from the command line into one frozen object."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wheelhouse._base.pip_settings import IndexOptions
from wheelhouse._base.targets import HOST, Target

__all__ = ["RESOLVERS", "BuildSettings", "Resolver", "default_jobs"]

# Who resolves loose requirements for the host: pip (the default, pip's own answer) or uv
# (much faster; its answer then goes through the pinned path, as a pip-compile output would).
Resolver = Literal["pip", "uv"]
RESOLVERS: tuple[Resolver, ...] = ("pip", "uv")


def default_jobs() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BuildSettings:
    """Everything ``wheelhouse build`` needs to know."""

    requirements: tuple[Path, ...]
    output: Path
    constraints: tuple[Path, ...] = ()
    index: IndexOptions = field(default_factory=IndexOptions)
    cache_dir: Path | None = None
    keep_sdists: bool = False
    # PEP 740: keep each downloaded file's provenance where its index page names one.
    provenance: bool = True
    jobs: int = field(default_factory=default_jobs)
    refresh: bool = False
    targets: tuple[Target, ...] = (HOST,)
    resolver: Resolver = "pip"
    # Optional dependencies and PEP 735 groups taken from a pyproject.toml or lock input.
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # The speed-ups of resolution (page tap, prefetch, guesses, reading ahead of uv): they
    # change how fast a build is, not what it gives. WHEELHOUSE_NO_SPEEDUPS=1 also turns
    # them off (resolve/speedups.py).
    speedups: bool = True
