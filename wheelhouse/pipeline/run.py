"""``wheelhouse build``: requirements -> lock -> fetch -> build -> wheelhouse, in one direction."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
from wheelhouse._base.files import commit_soon, sha256_file
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.progress import NullReporter, PipWatcher, Reporter
from wheelhouse._base.targets import HOST, Target, surely_foreign
from wheelhouse._base.urls import file_url_path, strip_credentials
from wheelhouse._base.wheels import distribution_of
from wheelhouse._base.words import count
from wheelhouse.download.cache import Cache
from wheelhouse.download.pins import Pin
from wheelhouse.errors import IncompatibleError, WheelhouseError
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
from wheelhouse.pipeline.settings import BuildSettings
from wheelhouse.resolve._uv_ahead import AheadOfUv
from wheelhouse.resolve.by_pip import (
    Resolution,
    download,
    pip_version,
    requested_names,
    resolve,
    resolve_foreign,
    resolve_host_uv,
    uv_version,
)
from wheelhouse.resolve.fully_pinned import Fallback, PinSet, pin_set, unpinnable

# The modules each step needs are imported by the step: a build that starts a resolver
# (uv above all, which takes a second) must not first wait on loading the HTTP client and the
# pinned path (0.1 s); AheadOfUv loads those while uv starts.
if TYPE_CHECKING:
    from wheelhouse.builder.from_sdist import Built
    from wheelhouse.download.fetch import Fetched
    from wheelhouse.resolve._pagetap import PageTap
    from wheelhouse.resolve._prefetch import Prefetcher
    from wheelhouse.resolve.from_pins import PinnedResult

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

        resolutions: list[Resolution] = []
        fetched: dict[str, Fetched] = {}
        # sdists built by this run: checking the pins may build some before the build stage,
        # which then finds them in the cache.
        fresh: set[Sha256] = set()
        # The files of the wheelhouse being rebuilt: pip may take them instead of downloading.
        reuse = _reusable(previous, cache)
        for target in settings.targets:
            resolution, files = _resolve_and_fetch(
                inputs, settings, target, pip, cache, report, fresh, reuse
            )
            resolutions.append(resolution)
            for item in files:
                fetched.setdefault(item.pin.filename, item)

        sdists = [f for f in fetched.values() if f.pin.kind == "sdist"]
        # Checking the pins may have built them already (then they come from the cache).
        if pending := [f for f in sdists if f.sha256 not in fresh]:
            report.stage(f"building {count(len(pending), 'wheel')} from sdists")
        built = _build(sdists, settings, pip, cache, report, fresh)
        build_resolutions: list[Resolution] = []
        if settings.keep_sdists and built:
            build_resolutions = _build_requirements(
                resolutions, fetched, built, settings, pip, cache, report, fresh
            )

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
            _fetch_provenance(manifest, fetched, pip, Path(tmp), _network_jobs(settings))
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
    from wheelhouse.serve._upstream import fetch_provenance
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
    fresh: set[Sha256],
) -> list[Built]:
    """Build wheels from sdists here (cached by sdist sha256): the one place builds start."""
    if not sdists:
        return []
    # Imported here: a build of wheels alone never needs the builder.
    from wheelhouse.builder.from_sdist import build_all

    built = build_all(
        sdists,
        cache,
        HOST,
        jobs=settings.jobs,
        notify=lambda f, status: report.build_event(f.pin.filename, status),
        pip=pip,
    )
    fresh.update(b.sdist.sha256 for b in built if not b.cached)
    return built


def _network_jobs(settings: BuildSettings) -> int:
    # Index pages and downloads wait on the network, not the CPU: more of them than cores.
    return max(settings.jobs * 4, 16)


def _build_requirements(
    resolutions: list[Resolution],
    fetched: dict[str, Fetched],
    built: list[Built],
    settings: BuildSettings,
    pip: PipSettings,
    cache: Cache,
    report: Reporter,
    fresh: set[Sha256],
) -> list[Resolution]:
    """Resolve and fetch, per target, what the shipped sdists need to be built again offline.

    No installer resolves build requirements ahead of time (pip#7863); they are known here
    because each sdist was built with ``build``, which asked its backend.
    """
    requires = {b.sdist.sha256: b.requires for b in built}
    found: list[Resolution] = []
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
            build_resolution, files = _resolve_and_fetch(
                inputs, settings, target, pip, cache, report, fresh
            )
        finally:
            listing.unlink(missing_ok=True)
        for item in files:
            fetched.setdefault(item.pin.filename, item)
        found.append(build_resolution)
    return found


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


def _resolve_and_fetch(
    inputs: InputSet,
    settings: BuildSettings,
    target: Target,
    pip: PipSettings,
    cache: Cache,
    report: Reporter,
    fresh: set[Sha256],
    reuse: Sequence[Path] = (),
) -> tuple[Resolution, list[Fetched]]:
    """Pins and files for one target: without a resolver when the input pins everything."""
    jobs = _network_jobs(settings)
    label = "" if len(settings.targets) == 1 else f" for {target.name}"
    if inputs.lock is not None:
        from wheelhouse.resolve.from_lock import resolve_locked

        report.stage(f"taking the pins of {inputs.lock.path.name}{label}")
        locked = resolve_locked(
            inputs.lock,
            inputs.selection,
            pip,
            target,
            cache,
            jobs=jobs,
            progress=lambda pin, n: report.downloaded(pin.filename, n),
        )
        return locked.resolution, list(locked.fetched)
    if not settings.refresh:
        fast: PinSet | PinnedResult | Fallback = pin_set(inputs, pip, target)
        if isinstance(fast, PinSet):
            # Said only for a set of pins: loose requirements are checked after pip's resolve.
            report.stage(f"checking the pins{label}")
            from wheelhouse.resolve.from_pins import resolve_pinned

            fast = resolve_pinned(
                inputs,
                pip,
                target,
                cache,
                jobs=jobs,
                build=lambda sdists: [
                    b.path for b in _build(sdists, settings, pip, cache, report, fresh)
                ],
                progress=lambda pin, n: report.downloaded(pin.filename, n),
                pins=fast,
            )
        if not isinstance(fast, Fallback):
            return fast.resolution, list(fast.fetched)
        logger.info("not a complete set of pins%s: %s", label, fast.reason)
    if target.is_host:
        reason = unpinnable(inputs, pip)
        if reason is None:
            pinned = _resolve_loose(inputs, settings, target, pip, cache, report, fresh, reuse)
            if isinstance(pinned, tuple):
                return pinned
            reason = pinned.reason
        logger.info("pip resolves%s and its report names the files: %s", label, reason)
        report.stage(f"resolving with pip {pip_version()}{label}")
        resolution = resolve(inputs, pip, target)
    else:
        report.stage(f"resolving with uv{label}")
        resolution = resolve_foreign(inputs, target, pip)
    from wheelhouse.builder.local import build_local_sdists, local_directory
    from wheelhouse.download.fetch import fetch_all

    if any(local_directory(pin) for pin in resolution.pins):
        report.stage(f"building sdists of local projects{label}")
    local = build_local_sdists(resolution.pins, cache, pip)
    if local:
        pins = tuple(local[p.filename].pin if p.filename in local else p for p in resolution.pins)
        resolution = dataclasses.replace(resolution, pins=pins)
    built_here = {item.pin.filename for item in local.values()}
    report.stage(f"fetching {count(len(resolution.pins), 'file')}{label}")
    files = fetch_all(
        [pin for pin in resolution.pins if pin.filename not in built_here],
        cache,
        pip=pip,
        allowed=inputs.hashes,
        jobs=jobs,
        progress=lambda pin, n: report.downloaded(pin.filename, n),
    )
    return resolution, [*local.values(), *files]


def _resolve_loose(
    inputs: InputSet,
    settings: BuildSettings,
    target: Target,
    pip: PipSettings,
    cache: Cache,
    report: Reporter,
    fresh: set[Sha256],
    reuse: Sequence[Path],
) -> tuple[Resolution, list[Fetched]] | Fallback:
    """Resolve for the host with ``settings.resolver``, then take its answer as pins.

    pip (``pip download``) keeps every file it downloaded to read metadata; they are put in
    the cache under their sha256, and the pinned path finds them there when the index names
    the same sha256 (so each file is downloaded once, and checked against the index); the
    pinned path learns each file's URL and hash from the index pages. uv (``uv pip compile``
    to a PEP 751 lock) gives each file's URL and sha256 itself, so no page is read again.
    Either way the graph is checked against the metadata of the files fetched.
    """
    label = "" if len(settings.targets) == 1 else f" for {target.name}"

    def build(sdists: Sequence[Fetched]) -> list[Path]:
        return [b.path for b in _build(sdists, settings, pip, cache, report, fresh)]

    def progress(pin: Pin, n: int) -> None:
        report.downloaded(pin.filename, n)

    jobs = _network_jobs(settings)
    staged: set[Sha256] = set()
    result: PinnedResult | Fallback
    if settings.resolver == "uv":
        report.stage(f"resolving with uv {uv_version(pip)}{label}")
        with AheadOfUv(cache, pip=pip, jobs=jobs) as early:
            by_uv = resolve_host_uv(inputs, target, pip, on_file=early)
        # What was downloaded while uv ran (the cache's scratch directory saw every file)
        # reaches the disk while the files are checked, not at the manifest's fsync.
        commit_soon(cache.tmp)
        from wheelhouse.resolve.from_pins import fetch_resolved  # loaded while uv ran (AheadOfUv)

        staged |= early.downloaded
        report.stage(f"fetching {count(len(by_uv.pins), 'file')}{label}")
        result = fetch_resolved(
            by_uv.pins,
            inputs,
            pip,
            target,
            cache,
            jobs=jobs,
            build=build,
            progress=progress,
            read=early.read,
        )
    else:
        work = cache.new_tmp_dir("resolve-")
        try:
            pins = work / "pins.txt"
            resolving = f"resolving with pip {pip_version()}{label}"
            report.stage(resolving)
            staging = work / "files"
            staging.mkdir()
            with _page_tap(settings, pip, inputs, target, cache) as (tap, ahead):
                try:
                    found = download(
                        inputs, pip, target, staging, reuse=reuse,
                        tap=tap, on_output=PipWatcher(report, resolving),
                    )  # fmt: skip
                except WheelhouseError:
                    if tap is None or not (tap.failures or not tap.forwarded):
                        raise
                    # pip may reach what our client cannot (its trust store, keyring), or
                    # may not reach the tap at all: pip resolves again, reading the indexes
                    # itself, and explains any failure.
                    why = tap.failures[0] if tap.failures else "anything: pip asked nothing"
                    return Fallback(f"the page tap could not forward {why}")
            if found is None:
                return Fallback("pip's output does not say which files it kept")
            pages = tap.pages if tap is not None else {}
            files, reused = found
            lines = []
            for path in files:
                name_version = _name_version(path.name)
                if name_version is None:
                    return Fallback(f"pip chose {path.name!r}, which is not a standard file name")
                lines.append("{}=={}\n".format(*name_version))
                given = ahead.given.get(path.name) if ahead is not None else None
                if given is not None and given.path.stat().st_size == path.stat().st_size:
                    # pip's copy of a file the prefetcher gave it (pip checked it against the
                    # page's hash, as the prefetcher did): the cache holds it already.
                    digest = given.sha256
                else:
                    digest = Sha256(sha256_file(path)[0])
                    cache.store(path, digest, path.name)
                if path not in reused and (given is None or given.downloaded):
                    staged.add(digest)
            pins.write_text("".join(sorted(lines)), encoding="utf-8")
            # The user's --hash pins still bind the files chosen.
            pinned_inputs = dataclasses.replace(read_inputs((pins,), ()), hashes=inputs.hashes)
            report.stage(f"checking the pins{label}")
            from wheelhouse.resolve.from_pins import resolve_pinned

            result = resolve_pinned(
                pinned_inputs,
                pip,
                target,
                cache,
                jobs=jobs,
                build=build,
                progress=progress,
                pages=pages,
                guesses=ahead.guesses if ahead is not None else None,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if isinstance(result, Fallback):
        logger.warning(
            "the pins %s resolved%s could not be checked (%s); pip resolves again",
            settings.resolver,
            label,
            result.reason,
        )
        return result
    requested = requested_names(inputs, target)
    chosen = [dataclasses.replace(p, requested=p.name in requested) for p in result.resolution.pins]
    fetched = [
        dataclasses.replace(item, pin=pin, downloaded=item.downloaded or item.sha256 in staged)
        for item, pin in zip(result.fetched, chosen, strict=True)
    ]
    resolution = dataclasses.replace(
        result.resolution,
        pins=tuple(chosen),
        pip_version=pip_version() if settings.resolver == "pip" else "",
    )
    return resolution, fetched


@contextlib.contextmanager
def _page_tap(
    settings: BuildSettings,
    pip: PipSettings,
    inputs: InputSet,
    target: Target,
    cache: Cache,
) -> Iterator[tuple[PageTap | None, Prefetcher | None]]:
    """A tap that keeps the index pages pip reads (None when pip reads no http(s) index), so
    the pins are checked against them instead of reading them again; with one http(s) index,
    a prefetcher downloads through it what pip will most likely ask for next (yielded too).
    For the host (``target``): pip is not shown the wheels it could never install here."""
    from wheelhouse._base._http import HttpClient
    from wheelhouse.resolve._pagetap import PageTap
    from wheelhouse.resolve._prefetch import Prefetcher
    from wheelhouse.resolve.from_pins import Guesses, Unguessable

    urls = pip.index_urls
    remote = [u for u in urls if urlsplit(u).scheme in ("http", "https")]
    # pip sends every request to its configured proxy, which cannot reach our loopback.
    if pip.proxy or not remote:
        yield None, None
        return
    jobs = _network_jobs(settings)
    client = HttpClient(pip, pool_size=jobs)
    # Guessed files come from the one index whose pages the tap reads for the guesses.
    ahead = len(remote) == 1
    # Files linked on other origins are asked without the indexes' credentials (pip sends
    # them to an index's own scheme, host and port only).
    elsewhere = HttpClient(pip.without_indexes(), pool_size=jobs)
    with PageTap(urls, client, ahead=ahead, hide=surely_foreign, elsewhere=elsewhere) as tap:
        if not ahead:
            yield tap, None
            return
        try:
            guesses = Guesses(inputs, pip, target, tap.pages)
        except Unguessable as exc:
            logger.info("nothing is fetched ahead of pip: %s", exc)
            yield tap, None
            return
        with Prefetcher(
            tap,
            guesses,
            remote[0],
            cache,
            pip=pip,
            allowed=inputs.hashes,
            jobs=jobs,
        ) as prefetcher:
            prefetcher.start(inputs)
            yield tap, prefetcher


def _name_version(filename: str) -> tuple[str, str] | None:
    found = distribution_of(filename)
    return None if found is None else (str(found[0]), str(found[1]))


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
