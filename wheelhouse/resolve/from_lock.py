"""A lock file -> the pins and verified files of one target, with no resolver at all.

A lock is pins, not a suggestion: its markers are evaluated for the target, the best file it
lists for the target's tags is taken, fetched from the URL the lock records (else found by
filename or hash on the configured indexes), and checked against the lock's sha256.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse._base._http import strip_credentials
from wheelhouse._base.cooldown import Cooldown
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.targets import Target
from wheelhouse._base.words import count
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched, Fetcher, Progress
from wheelhouse.download.pins import Pin
from wheelhouse.errors import (
    CooldownError,
    FetchError,
    HashMismatchError,
    IncompatibleError,
    RequirementsError,
)
from wheelhouse.house.manifest import FileKind, Sha256
from wheelhouse.inputs import Lock, LockedFile, LockedPackage, Selection
from wheelhouse.inputs.lock import capped
from wheelhouse.resolve.by_pip import Resolution
from wheelhouse.resolve.from_pins import IndexFiles, PinnedResult

__all__ = ["resolve_locked"]

logger = logging.getLogger(__name__)


def resolve_locked(
    lock: Lock,
    selection: Selection,
    pip: PipSettings,
    target: Target,
    cache: Cache,
    *,
    jobs: int,
    progress: Progress | None = None,
) -> PinnedResult:
    """The packages ``lock`` installs on ``target``, each with its file fetched and verified.

    Raises :class:`IncompatibleError` (exit 9) naming every package that has no file the
    target can install, and :class:`HashMismatchError` (exit 6) when a file is not the one
    the lock hashed.
    """
    packages = _one_per_name(lock, lock.packages_for(target, selection), target)
    _check_sources(lock, packages)
    lookup: list[IndexFiles] = []
    guard = threading.Lock()

    def index_files() -> IndexFiles:
        # Made on first need (a lock with URLs never reads an index page), once for all threads.
        with guard:
            if not lookup:
                lookup.append(IndexFiles(pip, target, jobs=jobs))
            return lookup[0]

    def pin_of(package: LockedPackage) -> Pin | _Missing:
        return _pin(package, target, index_files, lock.path)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(packages) or 1))) as pool:
        found = list(pool.map(pin_of, packages))
    missing = [why for why in found if isinstance(why, _Missing)]
    if missing:
        looked_up = [why for why in missing if why.looked_up is not None]
        if looked_up:
            # Files not found on an index that does not answer at all: the network is the
            # cause, not the lock or the target.
            _raise_unreachable(pip, looked_up)
        raise IncompatibleError(
            f"{str(lock.path)!r} cannot be installed on target {target.name!r}: "
            + capped([why.text for why in missing], sep="; "),
            hint="lock for this target too (e.g. 'uv lock' with its environments, or "
            "'pip lock' on such a machine), check --index-url, or drop the target",
        )
    pins = [pin for pin in found if isinstance(pin, Pin)]
    cooldown = pip.cooldown
    if cooldown is not None:
        _check_cooldown(cooldown, pins, packages, index_files, lock.path)
    allowed = {p.name: frozenset(d for f in p.files for d in f.sha256) for p in packages}
    fetcher = Fetcher(
        cache,
        pip=pip,
        allowed={name: digests for name, digests in allowed.items() if digests},
        jobs=jobs,
        progress=progress,
    )

    def fetch(pin: Pin) -> Fetched:
        try:
            try:
                return fetcher.fetch(pin)
            except FetchError as exc:
                # The lock's URL cannot be reached from here (a mirror stands in for the
                # index it was locked against): the same file, by name, from the configured
                # index, checked against the same hash.
                found = index_files().files(pin.name, pin.version).get(pin.filename)
                if found is None or found[0] == pin.url:
                    raise
                logger.warning("%s; taking %s from %s", exc.message, pin.filename, found[0])
                return fetcher.fetch(dataclasses.replace(pin, url=found[0]))
        except HashMismatchError as exc:
            raise HashMismatchError(
                f"{pin.filename} ({pin.name}=={pin.version}) from "
                f"{strip_credentials(pin.url)} has sha256 {exc.actual}, but "
                f"{str(lock.path)!r} records {exc.expected}",
                filename=exc.filename,
                expected=exc.expected,
                actual=exc.actual,
                hint="the file or the lock was changed since it was locked; nothing was "
                "written: lock again if the change is expected",
            ) from exc

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(pins) or 1))) as pool:
        fetched = list(pool.map(fetch, pins))
    logger.info("took %s from %s for %s", count(len(pins), "pin"), lock.path, target.name)
    resolution = Resolution(
        target=target,
        pins=tuple(sorted(pins, key=lambda p: p.name)),
        environment=target.environment,
        pip_version="",
    )
    by_name = {item.pin.name: item for item in fetched}
    return PinnedResult(resolution, tuple(by_name[p.name] for p in resolution.pins))


def _one_per_name(
    lock: Lock, packages: Sequence[LockedPackage], target: Target
) -> list[LockedPackage]:
    """One entry per project: pdm lists a package once more for each extra asked of it."""
    found: dict[str, LockedPackage] = {}
    for package in packages:
        seen = found.get(package.name)
        if seen is None:
            found[package.name] = package
        elif seen.version != package.version:
            raise RequirementsError(
                f"{str(lock.path)!r} locks {package.name} twice for target {target.name!r}, "
                f"to {seen.version} and {package.version}",
                path=lock.path,
                hint="lock again: a target installs one version of each project",
            )
        else:
            files = tuple(dict.fromkeys((*seen.files, *package.files)))
            found[package.name] = dataclasses.replace(
                seen, files=files, requested=seen.requested or package.requested
            )
    return list(found.values())


def _check_sources(lock: Lock, packages: Sequence[LockedPackage]) -> None:
    vcs = [p for p in packages if p.source == "vcs"]
    if vcs:
        raise RequirementsError(
            f"{str(lock.path)!r} locks {capped([f'{p.name} ({p.reference})' for p in vcs])} "
            "from version control, which a wheelhouse cannot pin by hash",
            path=lock.path,
            hint="publish a release of it (or build a wheel) and lock that instead",
        )
    local = [p for p in packages if p.source == "directory"]
    if local:
        raise RequirementsError(
            f"{str(lock.path)!r} locks {capped([f'{p.name} ({p.reference})' for p in local])} "
            "from a local directory, which a lock pins by no hash",
            path=lock.path,
            hint="build it yourself and pass it as a requirement ('-r' a file holding its "
            "path), or lock a published release",
        )


@dataclass(frozen=True)
class _Missing:
    """Why a package has no pin on a target; ``looked_up`` is the package when its file was
    looked for on the indexes and not found there (then an index that does not answer is
    the cause)."""

    text: str
    looked_up: LockedPackage | None = None


def _raise_unreachable(pip: PipSettings, missing: Sequence[_Missing]) -> None:
    """Raise the :class:`NetworkError` of the first index that the files were looked for on
    and that does not answer: the lock's own index for a package, else the configured ones."""
    from wheelhouse.resolve.pip_failures import unreachable as _unreachable

    first = missing[0].looked_up
    assert first is not None
    own = dict.fromkeys(
        why.looked_up.index_url
        for why in missing
        if why.looked_up is not None
        and why.looked_up.index_url
        and urlsplit(why.looked_up.index_url).scheme in ("http", "https")
    )
    probes = [dataclasses.replace(pip, index_url=url) for url in own if url]
    for settings in [*probes, pip]:
        error = _unreachable(settings, first.name)
        if error is not None:
            raise error


def _check_cooldown(
    cooldown: Cooldown,
    pins: Sequence[Pin],
    packages: Sequence[LockedPackage],
    index_files: Callable[[], IndexFiles],
    lock_path: Path,
) -> None:
    """Refuse a lock that pins a file newer than the cooldown's cutoff (or one whose age
    nobody gives, unless --no-upload-time keep): judged by the upload time the lock records,
    else by the one the index gives."""
    by_name = {package.name: package for package in packages}
    for pin in pins:
        package = by_name.get(pin.name)
        if package is None or package.source != "index":
            continue  # a local path or VCS checkout: not something an index released
        recorded = next((f.upload_time for f in package.files if f.filename == pin.filename), None)
        uploaded = recorded or index_files().upload_time(
            pin.name, pin.version, pin.filename, index_url=package.index_url
        )
        try:
            verdict = cooldown.verdict(pin.name, uploaded)
        except ValueError:
            raise RequirementsError(
                f"{str(lock_path)!r} records the upload-time {uploaded!r} for {pin.filename}, "
                "which is not an ISO 8601 time",
                path=lock_path,
            ) from None
        cutoff = cooldown.describe(pin.name)
        if verdict == "too-new":
            raise CooldownError(
                f"{str(lock_path)!r} pins {pin.filename} ({pin.name}=={pin.version}), uploaded "
                f"at {uploaded}, after the cooldown's cutoff {cutoff}",
                hint="lock again with the same cooldown (uv lock --exclude-newer), or set "
                f"this project's cutoff with --exclude-newer-package {pin.name}=DATE",
            )
        if verdict == "unknown" and cooldown.no_upload_time == "refuse":
            raise CooldownError(
                f"{str(lock_path)!r} pins {pin.filename} ({pin.name}=={pin.version}), whose "
                f"upload time neither the lock nor the index gives, so the cooldown (cutoff "
                f"{cutoff}) cannot tell its age (--no-upload-time refuse)",
                hint="--no-upload-time keep takes files whose age is unknown",
            )


def _pin(
    package: LockedPackage,
    target: Target,
    index_files: Callable[[], IndexFiles],
    package_lock: Path,
) -> Pin | _Missing:
    """The pin for ``package`` on ``target``, or why there is none (for the one error)."""
    what = f"{package.name} {package.version}"
    named = [f for f in package.files if f.filename]
    if not named:
        if not package.files:
            return _Missing(f"{what} (the lock lists no files for it)")
        # Pipfile.lock: only hashes. The index's file with one of them that suits the target.
        digests = frozenset(d for f in package.files for d in f.sha256)
        pin = index_files().choose(
            package.name, package.version, digests, index_url=package.index_url
        )
        if pin is None:
            offered = index_files().choose(
                package.name, package.version, frozenset(), index_url=package.index_url
            )
            if offered is not None:
                # The index has a file for the target, but not one the lock hashed.
                raise HashMismatchError(
                    f"{offered.filename} ({what}) on the index has sha256 {offered.sha256}, "
                    f"which is not among the hashes {str(package_lock)!r} records for it: "
                    f"{', '.join(sorted(digests))}",
                    filename=offered.filename,
                    expected=", ".join(sorted(digests)),
                    actual=offered.sha256 or "",
                    hint="the file or the lock was changed since it was locked; nothing was "
                    "written: lock again if the change is expected",
                )
            return _Missing(
                f"{what} (no file with a locked hash fits the target on the indexes)", package
            )
        return _with(pin, package)
    chosen = _best(named, target)
    if chosen is None:
        return _Missing(
            f"{what} (no wheel for the target among {len(named)} locked files, no sdist)"
        )
    file, kind = chosen
    url = file.url
    assert file.filename is not None
    if url is None:
        on_index = index_files().files(package.name, package.version, index_url=package.index_url)
        if file.filename not in on_index:
            return _Missing(f"{what} ({file.filename} is not on the configured indexes)", package)
        url = on_index[file.filename][0]
    locked = sorted(file.sha256)
    return Pin(
        name=package.name,
        version=package.version,
        url=url,
        filename=file.filename,
        kind=kind,
        sha256=Sha256(locked[0]) if len(locked) == 1 else None,
        requires_python=package.requires_python,
        requested=package.requested,
    )


def _with(pin: Pin, package: LockedPackage) -> Pin:
    return Pin(
        name=pin.name,
        version=pin.version,
        url=pin.url,
        filename=pin.filename,
        kind=pin.kind,
        sha256=pin.sha256,
        requires_python=package.requires_python or pin.requires_python,
        requested=package.requested,
    )


def _best(files: Sequence[LockedFile], target: Target) -> tuple[LockedFile, FileKind] | None:
    """The locked wheel the target prefers most, else the locked sdist."""
    best: tuple[int, LockedFile] | None = None
    sdist: LockedFile | None = None
    for file in files:
        filename = file.filename or ""
        if filename.endswith(".whl"):
            try:
                tags = parse_wheel_filename(filename)[3]
            except InvalidWheelFilename:
                continue
            rank = target.accepts(tags)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, file)
        elif sdist is None:
            try:
                parse_sdist_filename(filename)
            except InvalidSdistFilename:
                continue
            sdist = file
    if best is not None:
        return best[1], "wheel"
    if sdist is not None:
        return sdist, "sdist"
    return None
