"""``wheelhouse build``: requirements -> pins and files -> wheels -> wheelhouse.

pip's settings are parsed once here (``PipSettings``); each target's pins and files come from
the strategy ``pipeline.resolving`` chooses; sdists are built here, the one place builds start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    canonicalize_name,
    parse_wheel_filename,
)

from wheelhouse import __version__
from wheelhouse._base._pip import config_fingerprint, pip_config
from wheelhouse._base.files import sha256_file
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.progress import NullReporter, Reporter
from wheelhouse._base.targets import HOST
from wheelhouse._base.urls import file_url_path, strip_credentials
from wheelhouse._base.words import count
from wheelhouse.download.cache import Cache
from wheelhouse.errors import IncompatibleError
from wheelhouse.house.contents import writers
from wheelhouse.house.directory import check_output_dir, locked, put_in_place
from wheelhouse.house.locations import cache_root
from wheelhouse.house.manifest import (
    GENERATOR,
    PROVENANCE_SUFFIX,
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
from wheelhouse.inputs import Selection
from wheelhouse.inputs.requirements import InputSet, read_inputs
from wheelhouse.pipeline.resolving import Run, resolve_target
from wheelhouse.pipeline.settings import BuildSettings
from wheelhouse.resolve.by_pip import Resolution
from wheelhouse.resolve.speedups import Speedups

# The modules each step needs are imported by the step: a build that starts a resolver
# (uv above all, which takes a second) must not first wait on loading the HTTP client and the
# pinned path (0.1 s); AheadOfUv loads those while uv starts.
if TYPE_CHECKING:
    from wheelhouse._base.cooldown import Cooldown
    from wheelhouse.builder.from_sdist import Built
    from wheelhouse.download.fetch import Fetched

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
    with locked(out, on_wait=report.note), tempfile.TemporaryDirectory(prefix="wheelhouse-") as tmp:
        previous = read_manifest(out) if out.is_dir() else None
        if previous is not None and not settings.refresh and _up_to_date(out, previous, settings):
            return BuildSummary(out, previous, noop=True, downloaded=0, built=0, reused=0)

        report.stage("reading requirements")
        # Loading pip's configuration and parsing the requirements each import parts of pip:
        # side by side they overlap.
        with ThreadPoolExecutor(max_workers=1) as background:
            pending_config = background.submit(pip_config)
            inputs = read_inputs(
                settings.requirements,
                settings.constraints,
                selection=Selection(frozenset(settings.extras), frozenset(settings.groups)),
                scratch=Path(tmp),
            )
            for target in settings.targets:
                inputs.check_python(target)
            cache = Cache(cache_root(settings.cache_dir))
            cache.clean_stale()
            # pip's settings, parsed once: every stage below takes this value.
            pip = PipSettings.parse(pending_config.result(), settings.index)
        # The HTTP client's modules and TLS context load beside the work before the first
        # request, not in front of it (a build that starts uv first needs neither yet).
        threading.Thread(target=_load_tls, args=(pip,), name="wheelhouse-tls", daemon=True).start()

        run = Run(
            settings,
            pip,
            cache,
            report,
            build=lambda sdists: _build(sdists, settings, pip, cache, report),
            speedups=Speedups.from_environment(settings.speedups),
            # The files of the wheelhouse being rebuilt: pip may take them instead of
            # downloading.
            reuse=_reusable(previous, cache),
        )
        resolutions: list[Resolution] = []
        fetched: dict[str, Fetched] = {}
        # sdists built by this run: checking the pins may build some before the build stage,
        # which then finds them in the cache.
        fresh: set[Sha256] = set()
        for target in settings.targets:
            resolved = resolve_target(inputs, target, run)
            resolutions.append(resolved.resolution)
            fresh |= _fresh(resolved.built)
            for item in resolved.fetched:
                fetched.setdefault(item.pin.filename, item)

        sdists = [f for f in fetched.values() if f.pin.kind == "sdist"]
        # Checking the pins, or an earlier run, may have built them (then the cache has them).
        if pending := _to_build(sdists, fresh, cache):
            report.stage(f"building {count(len(pending), 'wheel')} from sdists")
        built = _build(sdists, settings, pip, cache, report)
        fresh |= _fresh(built)
        build_resolutions: list[Resolution] = []
        if settings.keep_sdists and built:
            build_resolutions, files, more = _build_requirements(resolutions, fetched, built, run)
            fresh |= more
            for item in files:
                fetched.setdefault(item.pin.filename, item)

        manifest, sources = _assemble(
            resolutions,
            fetched,
            {b.sdist.sha256: b for b in built},
            keep_sdists=settings.keep_sdists,
            inputs=Inputs(
                files=inputs.files,
                options=_options(settings),
                fingerprint=_fingerprint(inputs.files, settings),
            ),
            build_resolutions=build_resolutions,
        )
        manifest = _with_sources(manifest, inputs)
        carried = (
            _fetch_provenance(manifest, fetched, pip, Path(tmp), run.jobs)
            if settings.provenance
            else {}
        )
        report.stage(f"writing {out}")
        # Every file was just copied from the hash-checked cache: the index need not hash it.
        put_in_place(out, manifest, sources, writers=writers(verify_index=False), carried=carried)
        downloaded = sum(1 for f in fetched.values() if f.downloaded)
        return BuildSummary(
            out,
            manifest,
            noop=False,
            downloaded=downloaded,
            built=len(fresh & {b.sdist.sha256 for b in built}),
            reused=len(fetched) - downloaded,
        )


def _fetch_provenance(
    manifest: Manifest,
    fetched: Mapping[str, Fetched],
    pip: PipSettings,
    scratch: Path,
    jobs: int,
) -> dict[str, Path]:
    """The PEP 740 provenance of each downloaded file whose index page named one, fetched
    and checked against the file's name and sha256 (``<filename>.provenance`` -> a scratch
    copy); one that cannot be had is a warning, and the file goes in without it."""
    wanted = [
        (record, fetched[record.filename].pin.provenance)
        for record in manifest.files
        if record.filename in fetched and fetched[record.filename].pin.provenance is not None
    ]
    if not wanted:
        return {}
    from wheelhouse._base._http import HttpClient
    from wheelhouse.errors import UpstreamError
    from wheelhouse.provenance.fetch import fetch_provenance
    from wheelhouse.simple.model import PageFile

    client = HttpClient(pip, pool_size=max(1, min(jobs, len(wanted))))
    directory = scratch / "provenance"
    directory.mkdir(exist_ok=True)

    def one(item: tuple[FileRecord, str | None]) -> tuple[str, Path] | None:
        record, url = item
        file = PageFile(
            filename=record.filename,
            url=fetched[record.filename].pin.url,
            hashes={"sha256": record.sha256},
            provenance=url,
        )
        try:
            data = fetch_provenance(client, file)
        except UpstreamError as exc:
            logger.warning("%s: its provenance is not kept: %s", record.filename, exc.message)
            return None
        name = record.filename + PROVENANCE_SUFFIX
        (directory / name).write_bytes(data)
        return name, directory / name

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(wanted)))) as pool:
        return dict(found for found in pool.map(one, wanted) if found is not None)


def _build(
    sdists: Sequence[Fetched],
    settings: BuildSettings,
    pip: PipSettings,
    cache: Cache,
    report: Reporter,
) -> list[Built]:
    """Build wheels from sdists here (cached by sdist sha256): the one place builds start."""
    if not sdists:
        return []
    # Imported here: a build of wheels alone never needs the builder.
    from wheelhouse.builder.from_sdist import build_all

    return build_all(
        sdists,
        cache,
        HOST,
        jobs=settings.jobs,
        notify=lambda f, status: report.build_event(f.pin.filename, status),
        pip=pip,
    )


def _to_build(sdists: Sequence[Fetched], fresh: set[Sha256], cache: Cache) -> list[Fetched]:
    """The sdists whose wheel no build of this run or an earlier one left in the cache."""
    if not sdists:
        return []
    from wheelhouse.builder.from_sdist import built_earlier

    return [f for f in sdists if f.sha256 not in fresh and not built_earlier(f, cache, HOST)]


def _fresh(built: Sequence[Built]) -> set[Sha256]:
    """The sdists of ``built`` whose wheel this run built (not taken from the cache)."""
    return {b.sdist.sha256 for b in built if not b.cached}


def _build_requirements(
    resolutions: list[Resolution],
    fetched: Mapping[str, Fetched],
    built: list[Built],
    run: Run,
) -> tuple[list[Resolution], list[Fetched], set[Sha256]]:
    """Resolve and fetch, per target, what the shipped sdists need to be built again offline:
    the resolutions, their files, and the sdists built on the way.

    No installer resolves build requirements ahead of time (pip#7863); they are known here
    because each sdist was built with ``build``, which asked its backend.
    """
    requires = {b.sdist.sha256: b.requires for b in built}
    found: list[Resolution] = []
    files: list[Fetched] = []
    fresh: set[Sha256] = set()
    cache, report = run.cache, run.report
    for resolution in resolutions:
        wanted = sorted(
            {
                requirement
                for pin in resolution.pins
                if pin.kind == "sdist"
                for requirement in requires[fetched[pin.filename].sha256]
            }
        )
        if not wanted:
            continue
        target = resolution.target
        listing = cache.new_tmp_file(suffix=".txt")
        try:
            listing.write_text("\n".join(wanted) + "\n", encoding="utf-8")
            inputs = read_inputs((listing,), ())
            report.stage(f"resolving build requirements for {target.name}: {', '.join(wanted)}")
            resolved = resolve_target(inputs, target, dataclasses.replace(run, reuse=()))
        finally:
            listing.unlink(missing_ok=True)
        files += resolved.fetched
        fresh |= _fresh(resolved.built)
        found.append(resolved.resolution)
    return found, files, fresh


def _reusable(previous: Manifest | None, cache: Cache) -> tuple[Path, ...]:
    if previous is None:
        return ()
    found = [
        cache.lookup(record.sha256, record.filename)
        if isinstance(record.origin, Downloaded)
        else cache.lookup(record.origin.sdist_sha256, record.origin.sdist)
        for record in previous.files
    ]
    return tuple(dict.fromkeys(path for path in found if path is not None))


def _assemble(
    resolutions: list[Resolution],
    fetched: dict[str, Fetched],
    built: dict[Sha256, Built],
    *,
    keep_sdists: bool,
    inputs: Inputs,
    build_resolutions: list[Resolution] | None = None,
) -> tuple[Manifest, dict[str, Path]]:
    records: dict[str, FileRecord] = {}
    sources: dict[str, Path] = {}
    locks: list[TargetLock] = []
    unusable: list[str] = []
    for resolution in resolutions:
        target = resolution.target
        entries: list[LockEntry] = []
        for pin in resolution.pins:
            item = fetched[pin.filename]
            names: list[str] = []
            if pin.kind == "wheel" or keep_sdists:
                records[pin.filename] = _downloaded_record(item)
                sources[pin.filename] = item.path
                names.append(pin.filename)
            if pin.kind == "sdist":
                wheel = built[item.sha256]
                if target.accepts(parse_wheel_filename(wheel.filename)[3]) is not None:
                    records[wheel.filename] = _built_record(item, wheel)
                    sources[wheel.filename] = wheel.path
                    names.insert(0, wheel.filename)
                elif not keep_sdists:
                    unusable.append(f"{pin.name} {pin.version} (built {wheel.filename})")
                    continue
            entries.append(LockEntry(pin.name, pin.version, tuple(names), pin.requested))
        if unusable:
            raise IncompatibleError(
                f"target {target.name!r} needs {', '.join(unusable)}, which only ship as "
                "sdists, and their wheels built here are for this machine's platform only",
                hint=f"build the wheelhouse on a {target.name} machine (the default target, "
                "host) and join them with 'wheelhouse merge', or pass --keep-sdists to ship "
                "the sdists",
            )
        locks.append(
            TargetLock(
                target=target.name,
                tags=(target.key,),
                environment=resolution.environment or target.environment,
                entries=tuple(entries),
            )
        )
    build_locks: list[TargetLock] = []
    for resolution in build_resolutions or ():
        for pin in resolution.pins:
            records.setdefault(pin.filename, _downloaded_record(fetched[pin.filename]))
            sources[pin.filename] = fetched[pin.filename].path
        build_locks.append(
            TargetLock(
                target=resolution.target.name,
                tags=(resolution.target.key,),
                environment=resolution.environment or resolution.target.environment,
                entries=tuple(
                    LockEntry(p.name, p.version, (p.filename,), p.requested)
                    for p in resolution.pins
                ),
            )
        )
    manifest = Manifest(
        generator=GENERATOR,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=inputs,
        files=tuple(sorted(records.values(), key=lambda r: (r.name, r.filename))),
        locks=tuple(locks),
        build_locks=tuple(build_locks),
    )
    return manifest, sources


def _with_sources(manifest: Manifest, inputs: InputSet) -> Manifest:
    """Each file's origin says how the input asked for it, when not by name from an index."""
    direct: set[str] = set()
    for line in inputs.lines:
        with contextlib.suppress(InvalidRequirement):
            if (req := Requirement(line.requirement)).url:
                direct.add(canonicalize_name(req.name))
    lock = f"lock:{inputs.lock.format}" if inputs.lock is not None else None

    def source(record: FileRecord) -> str | None:
        origin = record.origin
        url = origin.url if isinstance(origin, Downloaded) else origin.sdist_url
        parts = urlsplit(url)
        if parts.scheme == "file" and file_url_path(url).is_dir():
            return "local-project"
        if record.name in direct:
            return "direct-url"
        return lock

    files = tuple(
        dataclasses.replace(r, origin=dataclasses.replace(r.origin, source=found))
        if (found := source(r)) is not None
        else r
        for r in manifest.files
    )
    return dataclasses.replace(manifest, files=files)


def _downloaded_record(item: Fetched) -> FileRecord:
    pin = item.pin
    return FileRecord(
        name=pin.name,
        version=pin.version,
        filename=pin.filename,
        sha256=item.sha256,
        size=item.size,
        kind=pin.kind,
        origin=Downloaded(strip_credentials(pin.url)),
        requires_python=pin.requires_python,
    )


def _built_record(item: Fetched, wheel: Built) -> FileRecord:
    pin = item.pin
    return FileRecord(
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


def _options(settings: BuildSettings) -> dict[str, Any]:
    return {
        "requirements": [str(p.absolute()) for p in settings.requirements],
        "constraints": [str(p.absolute()) for p in settings.constraints],
        "index-url": settings.index.index_url and strip_credentials(settings.index.index_url),
        "extra-index-urls": [strip_credentials(u) for u in settings.index.extra_index_urls],
        "find-links": list(settings.index.find_links),
        "pre": settings.index.pre,
        # In the order given: pip applies them in that order.
        "binary": [[f"--{option}", value] for option, value in settings.index.binary],
        "prefer-binary": settings.index.prefer_binary,
        "keep-sdists": settings.keep_sdists,
        "targets": [target.name for target in settings.targets],
        "resolver": settings.resolver,
        **({"extras": list(settings.extras)} if settings.extras else {}),
        **({"groups": list(settings.groups)} if settings.groups else {}),
        **_cooldown_options(settings.index.cooldown),
    }


def _cooldown_options(cooldown: Cooldown | None) -> dict[str, Any]:
    """The release cooldown as given (a duration stays one, as mirror keeps it): another
    cutoff may choose other versions, so changing it builds again."""
    if cooldown is None:
        return {}
    return {
        "exclude-newer": None if cooldown.default is None else cooldown.default.text,
        "exclude-newer-package": {name: cutoff.text for name, cutoff in cooldown.packages},
        "no-upload-time": cooldown.no_upload_time,
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
            digest, _ = sha256_file(Path(recorded.path))
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


def _load_tls(pip: PipSettings) -> None:
    from wheelhouse._base._http import load_tls

    load_tls(pip)
