"""``wheelhouse build``: requirements -> lock -> fetch -> build -> wheelhouse, in one direction."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from wheelhouse import __version__
from wheelhouse._http import strip_credentials
from wheelhouse._pip import config_fingerprint, pip_config
from wheelhouse.builder import Built, build_all
from wheelhouse.cache import Cache
from wheelhouse.export import write_requirements
from wheelhouse.fetch import Fetched, fetch_all
from wheelhouse.index import write_index
from wheelhouse.locations import cache_root
from wheelhouse.manifest import (
    BuiltFrom,
    Downloaded,
    FileRecord,
    InputFile,
    Inputs,
    LockEntry,
    Manifest,
    Sha256,
    TargetLock,
    read_manifest,
)
from wheelhouse.progress import NullReporter, Reporter
from wheelhouse.pylock import write_pylock
from wheelhouse.requirements import read_inputs
from wheelhouse.resolve import Resolution, resolve
from wheelhouse.settings import BuildSettings
from wheelhouse.targets import HOST
from wheelhouse.wheelhouse_dir import Writer, check_output_dir, locked, publish

__all__ = ["BuildSummary", "build_wheelhouse"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildSummary:
    """What a build did."""

    output: Path
    manifest: Manifest
    noop: bool
    downloaded: int
    built: int
    reused: int


def build_wheelhouse(settings: BuildSettings, reporter: Reporter | None = None) -> BuildSummary:
    """Build (or bring up to date) the wheelhouse that ``settings`` describe."""
    report = reporter or NullReporter()
    out = settings.output.absolute()
    check_output_dir(out)
    with locked(out, on_wait=report.note):
        previous = read_manifest(out) if out.is_dir() else None
        if previous is not None and not settings.refresh and _up_to_date(out, previous, settings):
            report.note(f"{out} is up to date")
            return BuildSummary(out, previous, noop=True, downloaded=0, built=0, reused=0)

        report.stage("reading requirements")
        inputs = read_inputs(settings.requirements, settings.constraints)
        report.stage("resolving with pip")
        resolution = resolve(inputs, settings.index, HOST)

        cache = Cache(cache_root(settings.cache_dir))
        cache.clean_stale()
        config = dict(pip_config())
        if settings.index.index_url:
            config["index-url"] = settings.index.index_url
        if settings.index.extra_index_urls:
            extra = " ".join(settings.index.extra_index_urls)
            config["extra-index-url"] = f"{config.get('extra-index-url', '')} {extra}".strip()
        missing = [
            p for p in resolution.pins if not (p.sha256 and cache.lookup(p.sha256, p.filename))
        ]
        report.stage(f"fetching {len(resolution.pins)} files ({len(missing)} not cached)")
        if missing:
            report.download_started(len(missing))
        fetched = fetch_all(
            resolution.pins,
            cache,
            pip_config=config,
            allowed=inputs.hashes,
            jobs=max(settings.jobs * 4, 8),
            progress=lambda pin, n: report.downloaded(pin.filename, n),
        )
        sdists = [f for f in fetched if f.pin.kind == "sdist"]
        if sdists:
            report.stage(f"building {len(sdists)} wheels from sdists")
        built = build_all(
            sdists,
            cache,
            HOST,
            jobs=settings.jobs,
            notify=lambda f, status: report.build_event(f.pin.filename, status),
        )

        manifest, sources = _assemble(
            resolution,
            fetched,
            built,
            keep_sdists=settings.keep_sdists,
            inputs=Inputs(
                files=inputs.files,
                options=_options(settings),
                fingerprint=_fingerprint(inputs.files, settings),
            ),
        )
        report.stage(f"writing {out}")
        publish(out, manifest, sources, writers=_writers())
        return BuildSummary(
            out,
            manifest,
            noop=False,
            downloaded=len(missing),
            built=sum(1 for b in built if not b.cached),
            reused=len(fetched) - len(missing),
        )


def _writers() -> list[Writer]:
    # Every file was just copied from the hash-checked cache: the index need not hash it again.
    return [write_requirements, partial(write_index, verify=False), _write_pylock]


def _write_pylock(root: Path, manifest: Manifest) -> None:
    write_pylock(root, manifest)


def _assemble(
    resolution: Resolution,
    fetched: list[Fetched],
    built: list[Built],
    *,
    keep_sdists: bool,
    inputs: Inputs,
) -> tuple[Manifest, dict[str, Path]]:
    built_by_sdist = {b.sdist.pin.filename: b for b in built}
    records: dict[str, FileRecord] = {}
    sources: dict[str, Path] = {}
    entries: list[LockEntry] = []
    for item in fetched:
        pin = item.pin
        names: list[str] = []
        if pin.kind == "wheel" or keep_sdists:
            records[pin.filename] = FileRecord(
                name=pin.name,
                version=pin.version,
                filename=pin.filename,
                sha256=item.sha256,
                size=item.size,
                kind=pin.kind,
                origin=Downloaded(strip_credentials(pin.url)),
                requires_python=pin.requires_python,
            )
            sources[pin.filename] = item.path
            names.append(pin.filename)
        if pin.kind == "sdist":
            wheel = built_by_sdist[pin.filename]
            records[wheel.filename] = FileRecord(
                name=pin.name,
                version=pin.version,
                filename=wheel.filename,
                sha256=wheel.sha256,
                size=wheel.size,
                kind="wheel",
                origin=BuiltFrom(
                    sdist=pin.filename,
                    sdist_sha256=item.sha256,
                    sdist_url=strip_credentials(pin.url),
                    backend=wheel.backend,
                ),
                requires_python=pin.requires_python,
            )
            sources[wheel.filename] = wheel.path
            names.insert(0, wheel.filename)
        entries.append(LockEntry(pin.name, pin.version, tuple(names), pin.requested))
    target = resolution.target
    lock = TargetLock(
        target=target.name,
        tags=(target.key,),
        environment=resolution.environment or target.environment,
        entries=tuple(entries),
    )
    manifest = Manifest(
        generator=f"wheelhouse {__version__}",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=inputs,
        files=tuple(sorted(records.values(), key=lambda r: (r.name, r.filename))),
        locks=(lock,),
    )
    return manifest, sources


def _options(settings: BuildSettings) -> dict[str, Any]:
    return {
        "requirements": [str(p.absolute()) for p in settings.requirements],
        "constraints": [str(p.absolute()) for p in settings.constraints],
        "index-url": settings.index.index_url and strip_credentials(settings.index.index_url),
        "extra-index-urls": [strip_credentials(u) for u in settings.index.extra_index_urls],
        "find-links": list(settings.index.find_links),
        "pre": settings.index.pre,
        "keep-sdists": settings.keep_sdists,
        "targets": [HOST.name],
    }


def _fingerprint(files: tuple[InputFile, ...], settings: BuildSettings) -> str:
    """Everything that decides a wheelhouse's contents, as one digest."""
    data = {
        "version": __version__,
        "files": sorted((f.path, f.sha256) for f in files),
        "options": _options(settings),
        # Credentials are part of what decides, but must not be readable in the manifest.
        "index": [settings.index.index_url, list(settings.index.extra_index_urls)],
        "pip-config": config_fingerprint(),
        "host": HOST.key,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _up_to_date(out: Path, previous: Manifest, settings: BuildSettings) -> bool:
    """True when nothing that decides the contents changed and every file is in place."""
    current: list[InputFile] = []
    for recorded in previous.inputs.files:
        try:
            digest = hashlib.sha256(Path(recorded.path).read_bytes()).hexdigest()
        except OSError:
            return False
        current.append(InputFile(recorded.path, Sha256(digest), recorded.kind))
    if _fingerprint(tuple(current), settings) != previous.inputs.fingerprint:
        return False
    for record in previous.files:
        try:
            if (out / record.filename).stat().st_size != record.size:
                return False
        except OSError:
            return False
    return True
