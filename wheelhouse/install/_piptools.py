"""The one module that imports pip-tools (and, through it, pip's internals): pip-sync's diff.

pip has no stable API and pip-tools reaches into it, so nothing else in wheelhouse imports
either; this module is loaded only by ``wheelhouse install --sync`` (importing pip-tools costs
most of a second). It decides; it runs nothing: the installed distributions come from the
target interpreter (``install.sync`` asks it), and the install and uninstall go through the
hermetic path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

__all__ = ["ALWAYS_KEPT", "Installed", "SyncDiff", "sync_diff"]

# pip-sync keeps pip, pip-tools and (on Python < 3.12) setuptools and wheel, with their
# dependencies; wheelhouse keeps itself and what it needs the same way, so that syncing the
# environment wheelhouse runs in cannot uninstall the tool doing it.
ALWAYS_KEPT = ("wheelhouse",)


@dataclass(frozen=True)
class Installed:
    """One distribution installed in the target environment, as the target reports it."""

    name: str
    version: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncDiff:
    """What makes an environment match a lock: names to install (or change), names to remove."""

    install: tuple[NormalizedName, ...]
    uninstall: tuple[NormalizedName, ...]


def sync_diff(
    pins: Iterable[tuple[str, str]],
    installed: Iterable[Installed],
    environment: dict[str, str],
) -> SyncDiff:
    """pip-tools' ``piptools.sync.diff`` of ``name==version`` pins against ``installed``.

    ``environment`` is the target's PEP 508 marker environment: a dependency's marker is
    evaluated for the target, not for the interpreter running wheelhouse. The pins carry no
    markers (the lock was already selected for the target), so pip-tools' own marker check,
    made for this interpreter, has nothing to decide.
    """
    from pip._internal.req.constructors import install_req_from_line
    from piptools._compat import Distribution
    from piptools.sync import dependency_tree, diff
    from piptools.utils import key_from_ireq

    requirements = [install_req_from_line(f"{name}=={version}") for name, version in pins]
    dists: list[Any] = []
    for dist in installed:
        # pip-tools reads .name and .specifier of each: packaging's Requirement has both.
        requires: list[Any] = list(_requires(dist.requires, environment))
        dists.append(Distribution(dist.name, dist.version, requires, direct_url=None))
    to_install, to_uninstall = diff(requirements, dists)
    by_key: dict[str, Any] = {canonicalize_name(dist.key): dist for dist in dists}
    for name in ALWAYS_KEPT:
        to_uninstall -= dependency_tree(by_key, name)
    return SyncDiff(
        install=tuple(sorted(canonicalize_name(key_from_ireq(r)) for r in to_install)),
        uninstall=tuple(sorted(canonicalize_name(key) for key in to_uninstall)),
    )


def _requires(texts: Iterable[str], environment: dict[str, str]) -> Iterable[Requirement]:
    """The requirements that apply without extras in ``environment`` (pip-tools' own rule)."""
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue  # a broken declaration of an installed dist only loses its protection
        marker = requirement.marker
        if marker is None or marker.evaluate({**environment, "extra": ""}):
            yield requirement
