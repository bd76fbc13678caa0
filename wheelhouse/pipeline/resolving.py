"""How a target's pins are found: strategies behind one protocol, chosen in one place.

A ``Strategy`` turns the input into one target's pins with their files fetched and verified
(``Resolved``), or answers ``CannotTake`` with the reason it cannot stand for the input
(not a complete set of pins, an option only pip honours, a resolver's answer its files
refute). ``choose_strategies`` is the one place that orders them for an input and a target;
``resolve_target`` takes the first that answers and logs each ``CannotTake`` on the way:

- ``ByLock``: a lock file's own pins (``resolve.from_lock``);
- ``Pinned``: a complete set of ``==`` pins, resolved as pip would without a resolver;
- ``LooseByPip``: ``pip download`` resolves, the pinned path checks its answer;
- ``LooseByUv``: ``uv pip compile`` resolves (``--resolver uv``), its files are checked;
- ``ByPipReport``: pip's own ``--report`` answer, for input only pip can honour;
- ``ForeignByUv``: uv resolves for a target that is not this machine.

The speed-ups around the resolvers (page tap, prefetch, guesses, reading ahead of uv) are
``resolve.speedups.Speedups``: ``WHEELHOUSE_NO_SPEEDUPS=1`` switches them all off.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wheelhouse._base.files import commit_soon, sha256_file
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.progress import PipWatcher, Reporter
from wheelhouse._base.targets import Target
from wheelhouse._base.wheels import distribution_of
from wheelhouse._base.words import count
from wheelhouse.download.cache import Cache
from wheelhouse.download.pins import Pin
from wheelhouse.errors import WheelhouseError
from wheelhouse.house.manifest import Sha256
from wheelhouse.inputs.requirements import InputSet
from wheelhouse.pipeline.settings import BuildSettings
from wheelhouse.resolve.by_pip import (
    Resolution,
    download,
    pip_version,
    requested_names,
    resolve,
)
from wheelhouse.resolve.by_uv import resolve_foreign, resolve_host_uv, uv_version
from wheelhouse.resolve.fully_pinned import Fallback, pin_set, unpinnable
from wheelhouse.resolve.speedups import Speedups

# The modules each step needs are imported by the step: a build that starts a resolver
# (uv above all, which takes a second) must not first wait on loading the HTTP client and the
# pinned path (0.1 s); AheadOfUv loads those while uv starts.
if TYPE_CHECKING:
    from wheelhouse.builder.from_sdist import Built
    from wheelhouse.download.fetch import Fetched
    from wheelhouse.resolve._pagetap import Page
    from wheelhouse.resolve.from_pins import Guesses, PinnedResult
    from wheelhouse.resolve.fully_pinned import PinSet

__all__ = [
    "Build",
    "CannotTake",
    "Resolved",
    "Run",
    "Strategy",
    "choose_strategies",
    "resolve_target",
]

logger = logging.getLogger(__name__)

# "This strategy cannot stand for the input": the reason, for the log. The pinned path's
# own name for it is kept (``resolve.fully_pinned.Fallback``).
CannotTake = Fallback

# Builds wheels from sdists (cached by sdist sha256); the build's one builder.
Build = Callable[[Sequence["Fetched"]], list["Built"]]


@dataclass(frozen=True)
class Resolved:
    """One target's pins, their files fetched and verified, and the wheels built on the way
    (an sdist whose dependencies only a build tells)."""

    resolution: Resolution
    fetched: tuple[Fetched, ...]
    built: tuple[Built, ...] = ()


@dataclass(frozen=True)
class Run:
    """What every strategy of one build shares."""

    settings: BuildSettings
    pip: PipSettings
    cache: Cache
    report: Reporter
    build: Build
    speedups: Speedups
    # Verified files of the wheelhouse being rebuilt: pip may take them instead of downloading.
    reuse: tuple[Path, ...] = ()

    @property
    def jobs(self) -> int:
        # Index pages and downloads wait on the network, not the CPU: more of them than cores.
        return max(self.settings.jobs * 4, 16)

    def label(self, target: Target) -> str:
        return "" if len(self.settings.targets) == 1 else f" for {target.name}"

    def progress(self, pin: Pin, size: int) -> None:
        self.report.downloaded(pin.filename, size)


class Strategy(Protocol):
    """One way to find a target's pins and fetch their files."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake: ...

    def cannot_take(self, why: CannotTake, label: str) -> None:
        """Say why this strategy did not take the input (the next one does)."""


def choose_strategies(inputs: InputSet, target: Target, run: Run) -> list[Strategy]:
    """The strategies to try for ``inputs`` on ``target``, in order: the first that does not
    answer ``CannotTake`` gives the pins. The last of the list always answers."""
    if inputs.lock is not None:
        return [ByLock(run)]
    chosen: list[Strategy] = []
    if not run.settings.refresh:
        chosen.append(Pinned(run))
    if not target.is_host:
        return [*chosen, ForeignByUv(run)]
    loose: Strategy = LooseByUv(run) if run.settings.resolver == "uv" else LooseByPip(run)
    return [*chosen, loose, ByPipReport(run)]


def resolve_target(inputs: InputSet, target: Target, run: Run) -> Resolved:
    """The pins and files of ``inputs`` for ``target``: the first strategy's that can take it."""
    for strategy in choose_strategies(inputs, target, run):
        result = strategy.resolve(inputs, target)
        if isinstance(result, Resolved):
            return result
        strategy.cannot_take(result, run.label(target))
    raise AssertionError("the last strategy always answers")  # pragma: no cover


class _Strategy:
    def __init__(self, run: Run) -> None:
        self.run = run

    def cannot_take(self, why: CannotTake, label: str) -> None:
        """Say why this strategy did not take the input (the next one does)."""
        logger.info("%s cannot take the input%s: %s", type(self).__name__, label, why.reason)


class ByLock(_Strategy):
    """A lock file's pins, as they are."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake:
        from wheelhouse.resolve.from_lock import resolve_locked

        run = self.run
        assert inputs.lock is not None
        run.report.stage(f"taking the pins of {inputs.lock.path.name}{run.label(target)}")
        locked = resolve_locked(
            inputs.lock,
            inputs.selection,
            run.pip,
            target,
            run.cache,
            jobs=run.jobs,
            progress=run.progress,
        )
        return Resolved(locked.resolution, locked.fetched)


class Pinned(_Strategy):
    """A complete set of ``==`` pins, resolved as pip would without a resolver."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake:
        run = self.run
        pins = pin_set(inputs, run.pip, target)
        if isinstance(pins, CannotTake):
            return pins
        # Said only for a set of pins: loose requirements are checked after pip's resolve.
        run.report.stage(f"checking the pins{run.label(target)}")
        return _check_pins(run, inputs, target, pins=pins)

    def cannot_take(self, why: CannotTake, label: str) -> None:
        logger.info("not a complete set of pins%s: %s", label, why.reason)


class LooseByPip(_Strategy):
    """pip resolves (``pip download``, which keeps the files it read metadata from), then the
    pinned path takes its answer as pins: each file's URL and hash from the index pages (the
    ones pip read, through the speed-ups' tap), each file checked against them, and the graph
    against the files' metadata."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake:
        run = self.run
        reason = unpinnable(inputs, run.pip)
        if reason is not None:
            return CannotTake(reason)
        label = run.label(target)
        work = run.cache.new_tmp_dir("resolve-")
        try:
            resolving = f"resolving with pip {pip_version()}{label}"
            run.report.stage(resolving)
            staging = work / "files"
            staging.mkdir()
            aids_of = run.speedups.around_pip(run.pip, inputs, target, run.cache, jobs=run.jobs)
            with aids_of as aids:
                tap = aids.tap
                try:
                    found = download(
                        inputs, run.pip, target, staging, reuse=run.reuse, tap=tap,
                        on_output=PipWatcher(run.report, resolving),
                    )  # fmt: skip
                except WheelhouseError:
                    if tap is None or not (tap.failures or not tap.forwarded):
                        raise
                    # pip may reach what our client cannot (its trust store, keyring), or
                    # may not reach the tap at all: pip resolves again, reading the indexes
                    # itself, and explains any failure.
                    why = tap.failures[0] if tap.failures else "anything: pip asked nothing"
                    return CannotTake(f"the page tap could not forward {why}")
            if found is None:
                return CannotTake("pip's output does not say which files it kept")
            files, reused = found
            pins: list[tuple[str, str]] = []
            staged: set[Sha256] = set()
            for path in files:
                name_version = _name_version(path.name)
                if name_version is None:
                    return CannotTake(f"pip chose {path.name!r}, which is not a standard file name")
                pins.append(name_version)
                given = aids.given(path.name)
                if given is not None and given.path.stat().st_size == path.stat().st_size:
                    # pip's copy of a file the prefetcher gave it (pip checked it against the
                    # page's hash, as the prefetcher did): the cache holds it already.
                    digest = given.sha256
                else:
                    digest = Sha256(sha256_file(path)[0])
                    run.cache.store(path, digest, path.name)
                if path not in reused and (given is None or given.downloaded):
                    staged.add(digest)
            # The user's --hash pins still bind the files chosen.
            pinned_inputs = InputSet.of_pins(
                sorted(pins, key=lambda nv: f"{nv[0]}=={nv[1]}"),
                source=work / "pins.txt",
                hashes=inputs.hashes,
            )
            run.report.stage(f"checking the pins{label}")
            checked = _check_pins(
                run, pinned_inputs, target, pages=aids.pages, guesses=aids.guesses
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if isinstance(checked, CannotTake):
            _refuted("pip", checked, label)
            return checked
        return _as_requested(checked, inputs, target, staged, pip_version())

    def cannot_take(self, why: CannotTake, label: str) -> None:
        _pip_resolves(why, label)


class LooseByUv(_Strategy):
    """uv resolves (``uv pip compile`` to a PEP 751 lock, whose files carry their URLs and
    sha256), then its files are fetched and the graph is checked against their metadata: no
    index page is read again."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake:
        run = self.run
        reason = unpinnable(inputs, run.pip)
        if reason is not None:
            return CannotTake(reason)
        label = run.label(target)
        run.report.stage(f"resolving with uv {uv_version(run.pip)}{label}")
        with run.speedups.around_uv(run.pip, run.cache, jobs=run.jobs) as early:
            by_uv = resolve_host_uv(inputs, target, run.pip, on_file=early)
        # What was downloaded while uv ran (the cache's scratch directory saw every file)
        # reaches the disk while the files are checked, not at the manifest's fsync.
        commit_soon(run.cache.tmp)
        from wheelhouse.resolve.from_pins import fetch_resolved  # loaded while uv ran

        run.report.stage(f"fetching {count(len(by_uv.pins), 'file')}{label}")
        builder = _Builder(run.build)
        result = fetch_resolved(
            by_uv.pins,
            inputs,
            run.pip,
            target,
            run.cache,
            jobs=run.jobs,
            build=builder,
            progress=run.progress,
            read=early.read if early is not None else None,
        )
        checked = builder.resolved(result)
        if isinstance(checked, CannotTake):
            _refuted("uv", checked, label)
            return checked
        staged = early.downloaded if early is not None else set()
        return _as_requested(checked, inputs, target, staged, "")

    def cannot_take(self, why: CannotTake, label: str) -> None:
        _pip_resolves(why, label)


class ByPipReport(_Strategy):
    """pip's own answer (``pip install --dry-run --report``), for input only pip can honour:
    its files are then fetched as the report names them."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake:
        run = self.run
        label = run.label(target)
        run.report.stage(f"resolving with pip {pip_version()}{label}")
        return _fetched(resolve(inputs, run.pip, target), inputs, target, run)


class ForeignByUv(_Strategy):
    """uv resolves for a target that is not this machine (pip evaluates markers for the
    host), and the files are chosen for the target's tags."""

    def resolve(self, inputs: InputSet, target: Target) -> Resolved | CannotTake:
        run = self.run
        run.report.stage(f"resolving with uv{run.label(target)}")
        return _fetched(resolve_foreign(inputs, target, run.pip), inputs, target, run)


def _check_pins(
    run: Run,
    inputs: InputSet,
    target: Target,
    *,
    pins: PinSet | None = None,
    pages: Mapping[str, Page] | None = None,
    guesses: Guesses | None = None,
) -> Resolved | CannotTake:
    """The pinned path over complete pins (``inputs``), with the wheels it built kept."""
    from wheelhouse.resolve.from_pins import resolve_pinned

    builder = _Builder(run.build)
    result = resolve_pinned(
        inputs, run.pip, target, run.cache, jobs=run.jobs, build=builder,
        progress=run.progress, pins=pins, pages=pages, guesses=guesses,
    )  # fmt: skip
    return builder.resolved(result)


@dataclass
class _Builder:
    """The build's builder as the pinned path calls it (wheel paths back), keeping what it
    built for the ``Resolved`` answer."""

    build: Build
    built: list[Built] = dataclasses.field(default_factory=list)

    def __call__(self, sdists: Sequence[Fetched]) -> list[Path]:
        done = self.build(sdists)
        self.built += done
        return [b.path for b in done]

    def resolved(self, result: PinnedResult | CannotTake) -> Resolved | CannotTake:
        if isinstance(result, CannotTake):
            return result
        return Resolved(result.resolution, result.fetched, tuple(self.built))


def _fetched(resolution: Resolution, inputs: InputSet, target: Target, run: Run) -> Resolved:
    """A resolver's pins with their files: local projects built into sdists, the rest
    fetched and checked against the hashes the resolver gave."""
    from wheelhouse.builder.local import build_local_sdists, local_directory
    from wheelhouse.download.fetch import fetch_all

    label = run.label(target)
    if any(local_directory(pin) for pin in resolution.pins):
        run.report.stage(f"building sdists of local projects{label}")
    local = build_local_sdists(resolution.pins, run.cache, run.pip)
    if local:
        pins = tuple(local[p.filename].pin if p.filename in local else p for p in resolution.pins)
        resolution = dataclasses.replace(resolution, pins=pins)
    built_here = {item.pin.filename for item in local.values()}
    run.report.stage(f"fetching {count(len(resolution.pins), 'file')}{label}")
    files = fetch_all(
        [pin for pin in resolution.pins if pin.filename not in built_here],
        run.cache,
        pip=run.pip,
        allowed=inputs.hashes,
        jobs=run.jobs,
        progress=run.progress,
    )
    return Resolved(resolution, (*local.values(), *files))


def _as_requested(
    result: Resolved,
    inputs: InputSet,
    target: Target,
    staged: set[Sha256],
    resolver_version: str,
) -> Resolved:
    """A resolver's answer as checked by the pinned path, with what the input asked for
    marked, and the files the resolver's run downloaded (``staged``) counted as downloaded."""
    requested = requested_names(inputs, target)
    chosen = [dataclasses.replace(p, requested=p.name in requested) for p in result.resolution.pins]
    fetched = tuple(
        dataclasses.replace(item, pin=pin, downloaded=item.downloaded or item.sha256 in staged)
        for item, pin in zip(result.fetched, chosen, strict=True)
    )
    resolution = dataclasses.replace(
        result.resolution, pins=tuple(chosen), pip_version=resolver_version
    )
    return Resolved(resolution, fetched, result.built)


def _refuted(resolver: str, why: CannotTake, label: str) -> None:
    logger.warning(
        "the pins %s resolved%s could not be checked (%s); pip resolves again",
        resolver,
        label,
        why.reason,
    )


def _pip_resolves(why: CannotTake, label: str) -> None:
    logger.info("pip resolves%s and its report names the files: %s", label, why.reason)


def _name_version(filename: str) -> tuple[str, str] | None:
    found = distribution_of(filename)
    return None if found is None else (str(found[0]), str(found[1]))
