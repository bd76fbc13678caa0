"""Local project directories in the input (``.``, ``./path``, ``file:`` URLs) -> sdists.

pip resolves a local directory like any requirement (its own dependencies included) but
reports no file and no hash for it. Each one is built here into an sdist with ``build``; the
sdist, hashed and stored in the cache, then takes the place of the directory, and is built into
a wheel like every other sdist.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import InvalidSdistFilename, parse_sdist_filename

from wheelhouse._base._pip import hide_credentials, online_env
from wheelhouse._base._subprocess import run, tail
from wheelhouse._base.files import sha256_file
from wheelhouse._base.pip_settings import IndexOptions, PipSettings
from wheelhouse._base.urls import file_url_path
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched
from wheelhouse.download.pins import Pin
from wheelhouse.errors import BuildError
from wheelhouse.house.manifest import Sha256

__all__ = ["build_local_sdists", "local_directory"]

logger = logging.getLogger(__name__)


def local_directory(pin: Pin) -> Path | None:
    """The project directory ``pin`` stands for, or None when it is a file."""
    parts = urlsplit(pin.url)
    if parts.scheme != "file":
        return None
    path = file_url_path(pin.url)
    return path if path.is_dir() else None


def build_local_sdists(pins: Sequence[Pin], cache: Cache, pip: PipSettings) -> dict[str, Fetched]:
    """An sdist for every pin that is a local directory, by the pin's filename. ``build``
    runs pip itself, which reads pip's configuration: it is given the command line's options."""
    built: dict[str, Fetched] = {}
    for pin in pins:
        directory = local_directory(pin)
        if directory is not None:
            built[pin.filename] = _sdist(pin, directory, cache, pip.command_line)
    return built


def _sdist(pin: Pin, directory: Path, cache: Cache, index: IndexOptions) -> Fetched:
    work = cache.new_tmp_dir("local-")
    try:
        result = run(
            [sys.executable, "-P", "-m", "build", "--sdist", "--outdir", work, directory],
            env=_hidden(index).over_env(online_env(urls=_urls(index))),
        )
        found = [p for p in work.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
        if not result.ok or len(found) != 1:
            raise BuildError(
                f"the local project {str(directory)!r} ({pin.name} {pin.version}) could not be "
                "built into an sdist",
                name=pin.name,
                version=pin.version,
                log_tail=tail(result.stdout + "\n" + result.stderr),
                hint="run 'python -m build --sdist' in it to see why",
            )
        sdist = found[0]
        sha256, size = sha256_file(sdist)
        digest = Sha256(sha256)
        stored = cache.store(sdist, digest, sdist.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("built %s from %s", sdist.name, directory)
    try:
        version = str(parse_sdist_filename(sdist.name)[1])
    except InvalidSdistFilename:
        version = pin.version
    final = dataclasses.replace(
        pin, filename=sdist.name, kind="sdist", sha256=digest, version=pin.version or version
    )
    return Fetched(final, stored, digest, size, downloaded=False)


def _urls(index: IndexOptions) -> list[str]:
    return [u for u in (index.index_url, *index.extra_index_urls, *index.find_links) if u]


def _hidden(index: IndexOptions) -> IndexOptions:
    """``index`` without credentials in its URLs (``online_env`` gives them to pip): pip writes
    its index URLs on a child's command line."""
    return dataclasses.replace(
        index,
        index_url=index.index_url and hide_credentials(index.index_url),
        extra_index_urls=tuple(hide_credentials(u) for u in index.extra_index_urls),
        find_links=tuple(hide_credentials(u) for u in index.find_links),
    )
