"""The installers a bundle can carry (pip's wheel, uv's), resolved and hash-checked for each
target of a wheelhouse, so the far side needs nothing but Python."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from wheelhouse._base.pip_settings import IndexOptions, PipSettings
from wheelhouse._base.targets import HOST, Target, is_native, parse_target
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import fetch_all
from wheelhouse.errors import UsageError
from wheelhouse.house.locations import cache_root
from wheelhouse.house.manifest import Manifest
from wheelhouse.inputs.requirements import read_inputs
from wheelhouse.resolve.by_pip import resolve
from wheelhouse.resolve.by_uv import resolve_foreign

__all__ = ["fetch_installers"]

logger = logging.getLogger(__name__)


def _target_of(name: str) -> Target:
    if name == HOST.name:
        return HOST
    if is_native(name):
        # A host lock that a merge named after its machine: as a target, by its tag.
        name = name.removeprefix(f"{HOST.name}-")
    try:
        return parse_target(name)
    except UsageError as exc:
        raise UsageError(
            f"cannot choose an installer wheel for the target {name!r}: {exc.message}",
            hint="pack without --with-installer, and carry pip's wheel by hand",
        ) from exc


def fetch_installers(
    manifest: Manifest,
    installers: Sequence[str],
    *,
    index: IndexOptions,
    directory: Path,
    cache_dir: Path | None = None,
) -> list[tuple[str, Path]]:
    """The wheels of ``installers`` (``pip``, ``uv``) for every target, as (filename, path).

    Resolved by pip (uv for foreign targets) like any requirement, fetched through the cache,
    and checked against the sha256 the index gives; only wheels, since the far side has no
    way to build an sdist.
    """
    requirements = directory / "installers.txt"
    requirements.write_text("".join(f"{name}\n" for name in installers), encoding="utf-8")
    inputs = read_inputs((requirements,), ())
    pip = PipSettings.read(index)
    cache = Cache(cache_root(cache_dir))
    found: dict[str, Path] = {}
    for lock in manifest.locks:
        target = _target_of(lock.target)
        if target.is_host:
            resolution = resolve(inputs, pip, target)
        else:
            resolution = resolve_foreign(inputs, target, pip)
        pins = [pin for pin in resolution.pins if pin.name in installers]
        for pin in pins:
            if pin.kind != "wheel":
                raise UsageError(
                    f"the index has no wheel of {pin.name} {pin.version} for the target "
                    f"{lock.target!r}, only {pin.filename!r}",
                    hint="pack without --with-installer, or give an index that has the wheel",
                )
        for fetched in fetch_all(pins, cache, pip=pip, allowed={}, jobs=2):
            if fetched.pin.filename not in found:
                copy = directory / fetched.pin.filename
                shutil.copyfile(fetched.path, copy)
                found[fetched.pin.filename] = copy
                logger.info("installer %s for %s", fetched.pin.filename, lock.target)
    return sorted(found.items())
