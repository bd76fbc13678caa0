"""Fully pinned requirements -> a Resolution without pip's resolver, checked by the files' metadata.

pip resolves even a complete ``name==version`` set by downloading every wheel to read its
metadata, one at a time. When every requirement is pinned, the only questions left are which
file pip would pick for each pin and whether the pins are complete and consistent; both are
answered here from the index pages and the files' own metadata. Anything this module cannot
answer the way pip would gives a :class:`Fallback` with the reason, and the caller runs pip.

On Linux the index pages are read and parsed ahead by a forked child (``_forked.py``, set
up by ``_read_ahead``): the same calls, on the other core.

Why one module of about 1,250 lines: its sections (where pip looks, which file pip picks,
what the files say, the files of a lock, guesses ahead of pip's resolver) are one model of
pip's finder. The guesses and the lock readers reuse the sources, the page client and the
chooser with their private state (which pages were read, the hashes and constraints in
force); split apart, each would need that state made public or written a second time.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import posixpath
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import urllib3
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.cooldown import Cooldown
from wheelhouse._base.files import sha256_file
from wheelhouse._base.pip_settings import FormatControl, PipSettings
from wheelhouse._base.targets import Target
from wheelhouse._base.urls import file_url_path
from wheelhouse._base.wheels import project_of, read_wheel_metadata
from wheelhouse._base.words import count
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched, Fetcher, Progress
from wheelhouse.download.pins import Pin
from wheelhouse.errors import (
    CooldownError,
    FetchError,
    MalformedUploadTime,
    NetworkError,
    QuarantinedError,
    UpstreamError,
)
from wheelhouse.house.manifest import FileKind, Sha256
from wheelhouse.inputs.requirements import InputSet
from wheelhouse.resolve._forked import MISSING, Ahead
from wheelhouse.resolve.by_pip import Resolution
from wheelhouse.resolve.fully_pinned import (
    Fallback,
    Ineligible,
    PinSet,
    Wanted,
    constraint_specifiers,
    pinned_set,
    python_version,
)
from wheelhouse.simple.client import DEFAULT_TIMEOUT, PageAnswer, fetch_page
from wheelhouse.simple.media import HTML_ONLY, JSON_TYPE, PIP_ACCEPT, TEXT_HTML, Form, form_of
from wheelhouse.simple.model import PageFile
from wheelhouse.simple.parse import parse_page

if TYPE_CHECKING:
    from wheelhouse.resolve._pagetap import Page

__all__ = [
    "BuildSdists",
    "Fallback",
    "Guesses",
    "Metadata",
    "PinnedResult",
    "Unguessable",
    "Wish",
    "fetch_resolved",
    "known_metadata",
    "resolve_pinned",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PinnedResult:
    """The pins as pip would resolve them, and their files, already fetched and verified."""

    resolution: Resolution
    fetched: tuple[Fetched, ...]


def resolve_pinned(
    inputs: InputSet,
    pip: PipSettings,
    target: Target,
    cache: Cache,
    *,
    jobs: int,
    build: BuildSdists | None = None,
    progress: Progress | None = None,
    pages: Mapping[str, Page] | None = None,
    guesses: Guesses | None = None,
    pins: PinSet | None = None,
) -> PinnedResult | Fallback:
    """Resolve a fully pinned ``inputs`` without pip, or say why pip must resolve it.

    ``pip`` is pip's settings with the command line's on top. The chosen files are
    fetched into ``cache`` (hash-verified) and returned, so the caller need not fetch them again.
    ``build`` turns sdists whose dependencies are not static into wheels (in order), whose
    metadata then stands in; without it such an sdist sends the input to pip.
    ``pages`` are index pages already read (by the index URL asked, without credentials), which
    are not asked again. ``guesses`` made from those pages (with the same inputs, options and
    target) answer for the files and metadata they already chose and read. ``pins`` is
    ``pins.pin_set()``'s answer for the same input, when the caller has it.
    """
    try:
        result = _resolve(
            inputs,
            pip,
            target,
            cache,
            jobs=jobs,
            build=build,
            progress=progress,
            pages=pages,
            guesses=guesses,
            pins=pins,
        )
    except Ineligible as exc:
        logger.info("resolving with pip: %s", exc)
        return Fallback(str(exc))
    logger.info("resolved %s without pip's resolver", count(len(result.resolution.pins), "pin"))
    return result


# -- the steps ---------------------------------------------------------------------------------


def _resolve(
    inputs: InputSet,
    pip: PipSettings,
    target: Target,
    cache: Cache,
    *,
    jobs: int,
    build: BuildSdists | None,
    progress: Progress | None,
    pages: Mapping[str, Page] | None,
    guesses: Guesses | None,
    pins: PinSet | None,
) -> PinnedResult:
    environment = target.environment
    found = pins if pins is not None else pinned_set(inputs, pip, environment)
    options, wanted = found.options, found.wanted
    sources = _sources(pip)
    python = python_version(environment)
    cooldown = pip.cooldown
    client = _PageClient(
        pip, pool_size=max(jobs, 1), pages=pages, upload_times=cooldown is not None
    )
    chooser = _Chooser(
        tags={tag: i for i, tag in enumerate(target.tags)},
        python=python,
        prefer_binary=options.prefer_binary,
        formats=pip.formats,
        cooldown=cooldown,
    )

    fetcher = Fetcher(
        cache, pip=pip, allowed=inputs.hashes, jobs=jobs, progress=progress, client=client
    )

    def choose(item: Wanted) -> Pin:
        pin = guesses.chosen.get((item.name, item.version)) if guesses is not None else None
        if pin is None:
            keep = _same_version(item.version)
            found = [c for source in sources for c in source.candidates(client, item.name, keep)]
            pin = chooser.choose(item, found, inputs.hashes.get(item.name, frozenset()))
        return pin

    def fetch(pin: Pin) -> tuple[Fetched, Metadata | None]:
        try:
            fetched = fetcher.fetch(pin)
        except FetchError as exc:
            raise Ineligible(f"cannot fetch the pinned files directly: {exc.message}") from exc
        known = guesses.read.get(fetched.sha256) if guesses is not None else None
        if known is not None:
            return fetched, known
        try:
            return fetched, _read_metadata(fetched)
        except _DynamicSdist:
            if build is None:
                raise
            return fetched, None

    ordered = [wanted[name] for name in sorted(wanted)]
    # Forked before this function starts a thread of its own (see _read_ahead). Pages the
    # tap already read need no child.
    client.ahead = _read_ahead(sources, client, wanted, jobs) if pages is None else None
    try:
        results = _pipelined(
            ordered,
            choose,
            fetch,
            jobs=jobs,
            meanwhile=_load_metadata_reader,
            # A page the child has not read is not waited for once the pipeline stops.
            on_stop=client.ahead.close if client.ahead is not None else None,
        )
    finally:
        if client.ahead is not None:
            client.ahead.close()
    checked = _checked(results, wanted, target, python, build)
    # Pages of find-links servers and simple directory listings often give no hash: those
    # files are taken, and the lock holds the hash of the bytes that arrived. Said once.
    unhashed = sorted(f.pin.filename for f, _ in results if f.pin.sha256 is None)
    if unhashed:
        logger.warning(
            "the index gave no sha256 for: %s; their hashes were computed from the "
            "downloaded bytes",
            ", ".join(unhashed),
        )
    return checked


def _read_ahead(
    sources: Sequence[_Source],
    client: _PageClient,
    wanted: Mapping[NormalizedName, Wanted],
    jobs: int,
) -> Ahead | None:
    """The pages of ``wanted`` on the http(s) indexes, read and parsed by a forked child.

    Parsing pages of thousands of files holds the GIL that the downloads need (pydantic-core's
    page took 0.38 s in-process, 0.05 s with curl); in a child the parses get the other core.
    The child reads with ``client``, which has made no connection yet, and keeps the files of
    each pinned version, as ``choose`` does. Whatever it cannot answer is read in-process.
    """
    calls: dict[str, Callable[[], object]] = {}
    for source in sources:
        if isinstance(source, _Index) and urlsplit(source.url).scheme in ("http", "https"):
            for name, item in sorted(wanted.items()):
                page = source.page_url(name)
                calls[page] = functools.partial(
                    _Index.read, client, page, name, _same_version(item.version)
                )
    return Ahead.start(calls, jobs=jobs, idle=client.page_timeout + 5)


# A project's verified file and what its metadata says (None: an sdist only a build tells).
_Outcome = tuple["Fetched", "Metadata | None"]


def _pipelined(
    items: Sequence[Wanted],
    choose: Callable[[Wanted], Pin],
    fetch: Callable[[Pin], _Outcome],
    *,
    jobs: int,
    meanwhile: Callable[[], object] | None = None,
    on_stop: Callable[[], object] | None = None,
) -> list[_Outcome]:
    """``fetch(choose(item))`` for each of ``items``, in their order, on ``jobs`` threads.

    Every page is asked for before any file: a page gates its project's download, and the
    largest pages (thousands of files) take longest, so none waits behind another project's
    download. Each file is queued as soon as its page named it. As with ``Executor.map``, the
    first item in order that fails raises, and what has not started yet does not start.
    ``meanwhile`` is work for the calling thread while the first pages are on their way;
    ``on_stop`` is called when an item fails (or an interrupt comes), before waiting for the
    calls that have started.
    """
    stop = False
    lock = threading.Lock()
    queued: list[Future[_Outcome]] = []

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items)))) as pool:

        def choose_then_queue(item: Wanted) -> Future[_Outcome]:
            pin = choose(item)
            with lock:  # the pool shuts down only once ``stop`` is set
                if stop:
                    raise CancelledError
                queued.append(pool.submit(fetch, pin))
                return queued[-1]

        choices = [pool.submit(choose_then_queue, item) for item in items]
        try:
            if meanwhile is not None:
                meanwhile()
            return [future.result().result() for future in choices]
        except BaseException:
            with lock:
                stop = True
                for future in choices:
                    future.cancel()
                for queue in queued:
                    queue.cancel()
            if on_stop is not None:
                on_stop()
            raise


def _checked(
    results: Sequence[tuple[Fetched, Metadata | None]],
    wanted: Mapping[NormalizedName, Wanted],
    target: Target,
    python: Version,
    build: BuildSdists | None,
) -> PinnedResult:
    """The fetched files as pins, once their metadata shows the set complete and consistent."""
    environment = target.environment
    fetched = [item for item, _ in results]
    metadata = {item.pin.name: meta for item, meta in results if meta is not None}
    unknown = [item for item, meta in results if meta is None]
    if unknown and build is not None:
        # Building is what pip's resolver would do to learn these dependencies, one sdist at
        # a time; here they build in parallel, into the cache the pipeline builds from.
        for item, wheel in zip(unknown, build(unknown), strict=True):
            metadata[item.pin.name] = _read_built_metadata(item, wheel)
    _check_complete(wanted, metadata, environment, python)
    final = tuple(
        Pin(
            name=item.pin.name,
            version=metadata[item.pin.name].version,
            url=item.pin.url,
            filename=item.pin.filename,
            kind=item.pin.kind,
            sha256=item.sha256,
            requires_python=metadata[item.pin.name].requires_python,
            requested=True,
            provenance=item.pin.provenance,
        )
        for item in fetched
    )
    refetched = tuple(
        dataclasses.replace(item, pin=pin) for pin, item in zip(final, fetched, strict=True)
    )
    resolution = Resolution(target=target, pins=final, environment=environment, pip_version="")
    return PinnedResult(resolution, refetched)


def fetch_resolved(
    pins: Sequence[Pin],
    inputs: InputSet,
    pip: PipSettings,
    target: Target,
    cache: Cache,
    *,
    jobs: int,
    build: BuildSdists | None = None,
    progress: Progress | None = None,
    read: Mapping[Sha256, Metadata] | None = None,
) -> PinnedResult | Fallback:
    """Fetch a resolver's pins whose URLs and sha256 it already gave (uv's pylock), and check
    the graph with the metadata of those same files, or say why pip must resolve.
    ``read`` is metadata already read from files by their sha256 (while uv ran).

    No index page is read: the files are the ones that would be downloaded anyway, and their
    metadata (an sdist's PKG-INFO, or the wheel ``build`` makes of it) shows every dependency
    pinned to a version it accepts. ``inputs`` gives the extras asked of each requirement and
    the user's ``--hash`` pins, which bind the files as everywhere.
    """
    try:
        extras: dict[NormalizedName, set[str]] = {}
        for line in inputs.lines:
            try:
                req = Requirement(line.requirement)
            except InvalidRequirement:
                continue
            if line.constraint:
                continue
            if req.marker is None or req.marker.evaluate(target.environment):
                extras.setdefault(canonicalize_name(req.name), set()).update(
                    canonicalize_name(e) for e in req.extras
                )
        wanted: dict[NormalizedName, Wanted] = {}
        for pin in pins:
            if pin.sha256 is None:
                raise Ineligible(f"the resolver gave no sha256 for {pin.filename}")
            try:
                version = Version(pin.version)
            except InvalidVersion as exc:
                raise Ineligible(f"{pin.filename} has an invalid version") from exc
            wanted[pin.name] = Wanted(
                pin.name,
                version,
                Requirement(f"{pin.name}=={pin.version}"),
                extras.get(pin.name, set()),
            )
        fetcher = Fetcher(cache, pip=pip, allowed=inputs.hashes, jobs=jobs, progress=progress)

        def fetch_and_read(pin: Pin) -> tuple[Fetched, Metadata | None]:
            fetched = fetcher.fetch(pin)  # a FetchError (hash mismatch: exit 6) is the user's
            known = read.get(fetched.sha256) if read is not None else None
            if known is not None:
                return fetched, known
            try:
                return fetched, _read_metadata(fetched)
            except _DynamicSdist:
                if build is None:
                    raise
                return fetched, None

        ordered = sorted(pins, key=lambda p: p.name)
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(ordered)))) as pool:
            results = list(pool.map(fetch_and_read, ordered))
        result = _checked(results, wanted, target, python_version(target.environment), build)
    except Ineligible as exc:
        logger.info("resolving with pip: %s", exc)
        return Fallback(str(exc))
    return result


# -- where pip looks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """One file an index or find-links directory offers."""

    filename: str
    url: str
    sha256: Sha256 | None
    requires_python: str | None
    yanked: bool
    # PEP 700, from a JSON page; None from HTML pages and find-links directories.
    upload_time: str | None = None
    # From an index page (not the user's own find-links directory): a cooldown needs its age.
    dated: bool = False
    # PEP 740: the provenance URL the page names (http(s), on the page's own origin).
    provenance: str | None = None


Keep = Callable[[str], bool]
BuildSdists = Callable[[Sequence[Fetched]], Sequence[Path]]


class _Source:
    def candidates(self, client: _PageClient, name: NormalizedName, keep: Keep) -> list[_Candidate]:
        """The files of ``name`` that ``keep`` accepts by filename."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Index(_Source):
    """A PEP 503/691 index, over HTTP(S) or on disk (``file://``)."""

    url: str

    def page_url(self, name: NormalizedName) -> str:
        return posixpath.join(self.url, quote(name)) + "/"

    def candidates(self, client: _PageClient, name: NormalizedName, keep: Keep) -> list[_Candidate]:
        page = self.page_url(name)
        if urlsplit(page).scheme == "file":
            return self._local(page, name, keep)
        # The child read the page with the same ``keep`` (_read_ahead): its answer, or its
        # exception raised here, stands for this call's.
        parsed = client.ahead.get(page) if client.ahead is not None else MISSING
        if not isinstance(parsed, _Parsed):
            parsed = self.read(client, page, name, keep)
        _check_status(parsed.status, parsed.reason, parsed.url)
        return parsed.candidates

    @staticmethod
    def read(client: _PageClient, page: str, name: NormalizedName, keep: Keep) -> _Parsed:
        """The files of the page that ``keep`` keeps; its PEP 792 status is judged by the
        caller (in the parent process, which logs)."""
        try:
            answer = client.get_page(page)
        except UpstreamError as exc:
            raise Ineligible(f"cannot read {strip_credentials(page)}: {exc.message}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Ineligible(f"cannot read {strip_credentials(page)}: {exc}") from exc
        if answer.status == 404:
            return _Parsed([], None, None, page)
        if answer.status != 200:
            raise Ineligible(f"{strip_credentials(page)} answered HTTP {answer.status}")
        return _parsed_page(answer.body, answer.content_type, answer.url or page, name, keep)

    @staticmethod
    def _local(page: str, name: NormalizedName, keep: Keep) -> list[_Candidate]:
        directory = file_url_path(page)
        # pip reads index.html from a file:// index; index.json, when written beside it, holds
        # the same files.
        for filename, content_type in (("index.json", JSON_TYPE), ("index.html", TEXT_HTML)):
            path = directory / filename
            if path.is_file():
                return _parse_page(path.read_bytes(), content_type, page + filename, name, keep)
        return []


@dataclass(frozen=True)
class _FlatDirectory(_Source):
    """A ``--find-links`` directory: every file in it is a candidate."""

    path: Path

    def candidates(self, client: _PageClient, name: NormalizedName, keep: Keep) -> list[_Candidate]:
        found = []
        # pip ranks find-links files in reverse URL order, ahead of index pages.
        for entry in sorted(self.path.iterdir(), key=lambda p: p.as_uri(), reverse=True):
            if entry.is_file() and project_of(entry.name) == name and keep(entry.name):
                digest, _ = sha256_file(entry)
                found.append(_Candidate(entry.name, entry.as_uri(), Sha256(digest), None, False))
        return found


def _sources(pip: PipSettings) -> list[_Source]:
    """pip's order: find-links files first, then the index, then each extra index."""
    sources: list[_Source] = []
    for link in pip.find_links:
        parts = urlsplit(link)
        if parts.scheme not in ("", "file"):
            raise Ineligible(f"find-links {strip_credentials(link)!r} is a URL, which pip reads")
        path = file_url_path(link) if parts.scheme else Path(link)
        path = Path(os.path.expanduser(path))
        if not path.is_dir():
            raise Ineligible(f"find-links {link!r} is not a directory")
        sources.append(_FlatDirectory(path.absolute()))  # its files become file: URLs
    for url in pip.index_urls:
        if urlsplit(url).scheme not in ("http", "https", "file"):
            raise Ineligible(f"index {strip_credentials(url)!r} is not an http(s) URL")
        sources.append(_Index(url))
    return sources


def _same_version(pinned: Version) -> Keep:
    """A cheap filter on filenames: only files of the pinned version need parsing.

    Big projects list thousands of files; building and ranking candidates for all of them
    cost more CPU than the downloads. Versions that cannot be read from a filename are kept
    for the chooser to judge, so the filter never hides a file pip could pick.
    """
    spec = SpecifierSet(f"=={pinned}")
    verdicts: dict[str, bool] = {}

    def keep(filename: str) -> bool:
        raw = _raw_version(filename)
        if raw is None:
            return True
        verdict = verdicts.get(raw)
        if verdict is None:
            try:
                verdict = spec.contains(Version(raw), prereleases=True)
            except InvalidVersion:
                verdict = True
            verdicts[raw] = verdict
        return verdict

    return keep


def _raw_version(filename: str) -> str | None:
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return parts[1] if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar"):
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            return stem.rsplit("-", 1)[1] if "-" in stem else None
    return None


@dataclass(frozen=True)
class _Parsed:
    """The files of a page that a filter kept, with the page's PEP 792 status and its URL."""

    candidates: list[_Candidate]
    status: object
    reason: object
    url: str


def _parse_page(
    body: bytes, content_type: str, url: str, name: NormalizedName, keep: Keep
) -> list[_Candidate]:
    """The files ``keep`` keeps of the page at ``url``, as the pinned path ranks them."""
    parsed = _parsed_page(body, content_type, url, name, keep)
    _check_status(parsed.status, parsed.reason, url)
    return parsed.candidates


def _parsed_page(
    body: bytes, content_type: str, url: str, name: NormalizedName, keep: Keep
) -> _Parsed:
    shown = strip_credentials(url)
    form = form_of(content_type)
    if form is None:
        raise Ineligible(f"{shown} answered with {content_type!r}, not an index page")
    try:
        page = parse_page(body, content_type, url, name, keep)
    except MalformedUploadTime as exc:
        # One line naming the file: a cooldown could not judge it.
        raise NetworkError(
            f"{shown} gives {exc.filename!r} the upload-time {exc.value!r}, which is "
            "not an ISO 8601 time; the page is not used",
            hint="the index is broken or hostile; ask its operator, or use another index",
        ) from None
    except UpstreamError as exc:
        raise Ineligible(f"{shown} is not a valid index page: {exc.message}") from exc
    return _Parsed([_candidate(f, form) for f in page.files], page.status, page.status_reason, url)


# A warning for an archived or deprecated project is given once per page, however often the
# page is parsed (guesses, the pinned path and lock lookups may each read it).
_WARNED: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()


def _check_status(status: object, reason: object, url: str) -> None:
    """PEP 792: a quarantined project is refused (the index offers none of its files); an
    archived or deprecated one is used, with a warning."""
    if status is None or status == "active":
        return
    shown = strip_credentials(url)
    why = f" ({str(reason)[:200]})" if isinstance(reason, str) and reason else ""
    if status == "quarantined":
        raise QuarantinedError(
            f"{shown} marks the project quarantined{why}: the index offers none of its files, "
            "and wheelhouse does not take them",
            hint="remove the project from the requirements, or ask the index why",
        )
    if status in ("archived", "deprecated"):
        with _WARNED_LOCK:
            if (shown, str(status)) in _WARNED:
                return
            _WARNED.add((shown, str(status)))
        logger.warning("%s marks the project %s%s", shown, status, why)


def _candidate(file: PageFile, form: Form) -> _Candidate:
    # pip names a file of an HTML page by its URL's last segment, not by the anchor's text.
    filename = file.filename
    if form == "html":
        filename = unquote(urlsplit(file.url).path.rsplit("/", 1)[-1])
    sha256 = file.sha256
    return _Candidate(
        filename,
        file.url,
        Sha256(sha256.lower()) if sha256 else None,
        file.requires_python,
        file.yanked is not False,
        file.upload_time,
        True,
        file.provenance,
    )


class _PageClient(HttpClient):
    """HttpClient that asks for index pages as plain PEP 503 HTML (else with pip's Accept header).

    Pages are read by ``wheelhouse.simple``'s page client (its redirects and credential
    policy). ``pages`` already read (pip's, through a ``PageTap``) are answered without
    asking again.
    """

    def __init__(
        self,
        pip: PipSettings,
        *,
        pool_size: int = 8,
        pages: Mapping[str, Page] | None = None,
        kept_only: bool = False,
        upload_times: bool = False,
    ) -> None:
        super().__init__(pip, pool_size=pool_size)
        # Upload times are in JSON pages only (PEP 700): a cooldown asks for those first.
        self._accept = PIP_ACCEPT if upload_times else HTML_ONLY
        # Not "or {}": an empty mapping given may be filled later (the tap's, while pip runs).
        self._pages = pages if pages is not None else {}
        self._kept_only = kept_only
        # The pages a forked child reads and parses meanwhile (the pinned path's own).
        self.ahead: Ahead | None = None

    @property
    def page_timeout(self) -> float:
        """The time limit of one page: a few times pip's timeout, which bounds each read."""
        read = self._timeout.read_timeout
        return 4 * (read if isinstance(read, int | float) else DEFAULT_TIMEOUT)

    def get_page(self, url: str) -> PageAnswer:
        """A project page's answer (redirects followed, the body read and bounded)."""
        kept = self._pages.get(strip_credentials(url))
        if kept is not None:
            return PageAnswer(kept.status, kept.url, kept.content_type, kept.body)
        if self._kept_only:
            raise Ineligible(f"{strip_credentials(url)} was not read")
        return fetch_page(
            self, url, accept=self._accept, if_refused=PIP_ACCEPT, timeout=self.page_timeout
        )


# -- which file pip picks ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Chooser:
    tags: Mapping[Tag, int]
    python: Version
    prefer_binary: bool
    formats: FormatControl = field(default_factory=FormatControl)
    cooldown: Cooldown | None = None

    def choose(
        self, item: Wanted, candidates: Sequence[_Candidate], hashes: frozenset[Sha256]
    ) -> Pin:
        """The file pip would install ``item`` from, following pip's CandidateEvaluator."""
        spec = SpecifierSet(f"=={item.version}")
        applicable: list[tuple[tuple[Any, ...], _Candidate, FileKind]] = []
        for candidate in candidates:
            evaluated = self._evaluate(item.name, candidate, spec)
            if evaluated is not None:
                applicable.append((evaluated[0], candidate, evaluated[1]))
        if hashes and any(c.sha256 in hashes for _, c, _ in applicable):
            # pip drops files whose hash is known and not among the pinned ones.
            applicable = [a for a in applicable if a[1].sha256 is None or a[1].sha256 in hashes]
        if self.cooldown is not None and applicable:
            applicable = self._cooled(item, applicable)
        if not applicable:
            raise Ineligible(
                f"no file of {item.name}=={item.version} fits this target on the indexes"
            )
        all_yanked = all(c.yanked for _, c, _ in applicable)
        best: tuple[tuple[Any, ...], _Candidate, FileKind] | None = None
        for key, candidate, kind in applicable:
            # PEP 592: a yanked file is used only when every file of the pinned version is.
            if candidate.yanked and not all_yanked:
                continue
            full = (int(bool(hashes) and candidate.sha256 in hashes), *key)
            # pip sorts stably and takes the last of equal keys: ">=" keeps the later one.
            if best is None or full >= best[0]:
                best = (full, candidate, kind)
        assert best is not None
        _, chosen, kind = best
        if chosen.yanked:
            logger.warning(
                "%s==%s: the chosen file %s is yanked", item.name, item.version, chosen.filename
            )
        # A page without the file's sha256: the file is taken all the same (as pip takes it),
        # hashed as it is downloaded, and named in a warning (_resolve).
        return Pin(
            name=item.name,
            version=str(item.version),
            url=chosen.url,
            filename=chosen.filename,
            kind=kind,
            sha256=chosen.sha256,
            requires_python=chosen.requires_python,
            requested=True,
            provenance=chosen.provenance,
        )

    def _cooled(
        self, item: Wanted, applicable: list[tuple[tuple[Any, ...], _Candidate, FileKind]]
    ) -> list[tuple[tuple[Any, ...], _Candidate, FileKind]]:
        """The files the cooldown allows (as pip's --uploaded-prior-to would leave them); a
        ``CooldownError`` naming a file when it allows none of the pinned version's."""
        cooldown = self.cooldown
        assert cooldown is not None
        allowed, too_new, unknown = [], [], []
        for entry in applicable:
            candidate = entry[1]
            verdict = cooldown.verdict(item.name, candidate.upload_time)
            if not candidate.dated or verdict == "ok":
                allowed.append(entry)
            elif verdict == "too-new":
                too_new.append(candidate)
            elif cooldown.no_upload_time == "keep":
                allowed.append(entry)
            else:
                unknown.append(candidate)
        if allowed:
            return allowed
        cutoff = cooldown.describe(item.name)
        if too_new:
            newest = too_new[0]
            raise CooldownError(
                f"{item.name}=={item.version}: {newest.filename} was uploaded at "
                f"{newest.upload_time}, after the cooldown's cutoff {cutoff}",
                hint="pin an older version, or set this project's cutoff with "
                f"--exclude-newer-package {item.name}=DATE",
            )
        raise CooldownError(
            f"{item.name}=={item.version}: the index gives no upload-time for "
            f"{unknown[0].filename}, so the cooldown (cutoff {cutoff}) cannot tell its age "
            "(--no-upload-time refuse)",
            hint="--no-upload-time keep takes files whose age the index does not give",
        )

    def _evaluate(
        self, name: NormalizedName, candidate: _Candidate, spec: SpecifierSet
    ) -> tuple[tuple[Any, ...], FileKind] | None:
        """pip's sort key (without the hash part) and kind, or None if pip would skip it."""
        filename = candidate.filename
        try:
            if filename.endswith(".whl"):
                project, version, build, file_tags = parse_wheel_filename(filename)
                priorities = [self.tags[t] for t in file_tags if t in self.tags]
                if not priorities:
                    return None
                pri = -min(priorities)
                kind: FileKind = "wheel"
                binary = int(self.prefer_binary)
                build_tag: tuple[Any, ...] = tuple(build)
            elif filename.endswith((".tar.gz", ".zip")):
                project, version = parse_sdist_filename(filename)
                pri, kind, binary, build_tag = -len(self.tags), "sdist", 0, ()
            else:
                return None
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            return None
        if project != name or not spec.contains(version, prereleases=True):
            return None
        # pip's LinkEvaluator: --no-binary/--only-binary rule files out by their format.
        if ("binary" if kind == "wheel" else "source") not in self.formats.allowed(name):
            return None
        if candidate.requires_python:
            try:
                if not SpecifierSet(candidate.requires_python).contains(
                    self.python, prereleases=True
                ):
                    return None
            except InvalidSpecifier:
                pass  # pip ignores an invalid data-requires-python
        return (-int(candidate.yanked), binary, version, pri, build_tag), kind


# -- what the files say ------------------------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    """What the check of a set of pins reads of one file's metadata."""

    version: str
    requires: tuple[Requirement, ...]
    requires_python: str | None


class _DynamicSdist(Ineligible):
    """An sdist whose dependencies only a build can tell."""


def _load_metadata_reader() -> None:
    import packaging.metadata  # noqa: F401


def _read_metadata(item: Fetched) -> Metadata:
    # Imported at the first file, not before the first page: parse_email brings the email
    # package and packaging's licence tables (0.01 s), which may load while pages arrive.
    import tarfile

    from packaging.metadata import parse_email

    filename = item.pin.filename
    try:
        text = _metadata_text(item.path, item.pin, item.sha256)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, UnicodeDecodeError) as exc:
        raise Ineligible(f"cannot read the metadata of {filename}: {exc}") from exc
    if text is None:
        raise Ineligible(f"{filename} holds no metadata file")
    raw, _ = parse_email(text)
    if item.pin.kind == "sdist":
        try:
            static = Version(raw.get("metadata_version", "1.0")) >= Version("2.2")
        except InvalidVersion:
            static = False
        dynamic = {d.lower() for d in raw.get("dynamic", [])}
        if not static or "requires-dist" in dynamic or "requires-python" in dynamic:
            raise _DynamicSdist(
                f"{filename} is an sdist whose dependencies are only known after a build "
                "(its PKG-INFO is older than Metadata-Version 2.2 or marks them dynamic)"
            )
    name, version = raw.get("name"), raw.get("version")
    if (
        name is None
        or version is None
        or canonicalize_name(name) != item.pin.name
        or Version(version) != Version(item.pin.version)
    ):
        raise Ineligible(f"the metadata of {filename} names {name} {version}")
    try:
        requires = tuple(Requirement(r) for r in raw.get("requires_dist", []))
    except InvalidRequirement as exc:
        raise Ineligible(f"{filename} has an invalid Requires-Dist: {exc}") from exc
    return Metadata(version, requires, raw.get("requires_python"))


def known_metadata(item: Fetched) -> Metadata | None:
    """The metadata of ``item`` read ahead of the check, or None where only the check can
    say why it is unreadable (or an sdist's dependencies need a build)."""
    try:
        return _read_metadata(item)
    except Ineligible:
        return None


def _read_built_metadata(sdist: Fetched, wheel: Path) -> Metadata:
    """The metadata of the wheel built from ``sdist``, for the sdist's pin."""
    built = dataclasses.replace(
        sdist, path=wheel, pin=dataclasses.replace(sdist.pin, kind="wheel", filename=wheel.name)
    )
    return _read_metadata(built)


def _metadata_text(path: Path, pin: Pin, sha256: Sha256) -> str | None:
    if pin.kind == "wheel":
        metadata = read_wheel_metadata(path, pin.name, Version(pin.version), sha256=sha256)
        return None if metadata is None else metadata.decode("utf-8")
    import tarfile  # sdists are rare in a pinned set: see _read_metadata

    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            found = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")]
            return archive.read(found[0]).decode("utf-8") if len(found) == 1 else None
    with tarfile.open(path) as archive:
        for member in archive:
            if (
                member.isfile()
                and member.name.count("/") == 1
                and member.name.endswith("/PKG-INFO")
            ):
                handle = archive.extractfile(member)
                return handle.read().decode("utf-8") if handle else None
    return None


def _check_complete(
    wanted: Mapping[NormalizedName, Wanted],
    metadata: Mapping[NormalizedName, Metadata],
    environment: Mapping[str, str],
    python: Version,
) -> None:
    """Every dependency the target needs is pinned, to a version it accepts."""
    for name, meta in metadata.items():
        if meta.requires_python:
            try:
                ok = SpecifierSet(meta.requires_python).contains(python, prereleases=True)
            except InvalidSpecifier as exc:
                raise Ineligible(f"{name} has an invalid Requires-Python") from exc
            if not ok:
                raise Ineligible(
                    f"{name} {meta.version} requires Python {meta.requires_python}, not {python}"
                )
    extras: dict[NormalizedName, set[str]] = {name: set(w.extras) for name, w in wanted.items()}
    done: set[tuple[NormalizedName, str]] = set()
    todo = [(name, extra) for name in wanted for extra in ("", *sorted(extras[name]))]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in done:
            continue
        done.add((name, extra))
        meta = metadata[name]
        env = {**environment, "extra": extra}
        for req in meta.requires:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if req.marker is None and extra:
                continue  # already checked without the extra
            if req.marker is not None and extra and req.marker.evaluate({**env, "extra": ""}):
                continue  # not specific to this extra; checked without it
            _check_dependency(name, meta.version, extra, req, wanted)
            dep = canonicalize_name(req.name)
            for sub in sorted(canonicalize_name(e) for e in req.extras):
                todo.append((dep, sub))


def _check_dependency(
    name: NormalizedName,
    version: str,
    extra: str,
    req: Requirement,
    wanted: Mapping[NormalizedName, Wanted],
) -> None:
    owner = f"{name}[{extra}] {version}" if extra else f"{name} {version}"
    if req.url:
        raise Ineligible(f"{owner} requires {req} by URL")
    dep = canonicalize_name(req.name)
    shown = f"{req.name}{req.specifier}" if req.specifier else req.name
    if dep not in wanted:
        raise Ineligible(f"pins are not complete: {owner} requires {shown}, which is not pinned")
    pinned = wanted[dep].version
    if not req.specifier.contains(pinned, prereleases=True):
        raise Ineligible(
            f"pins are not consistent: {owner} requires {shown}, but {dep} is pinned to {pinned}"
        )


# -- for lock files ------------------------------------------------------------------------------


class IndexFiles:
    """The files of a pinned version on the configured indexes and find-links directories, as
    the pinned path sees them: for lock files that name a file (or only its hashes) but not
    where it is."""

    def __init__(self, pip: PipSettings, target: Target, *, jobs: int) -> None:
        try:
            self._sources = _sources(pip)
        except Ineligible as exc:
            raise FetchError(
                f"cannot look files up on the configured indexes: {exc}",
                hint="give the indexes as http(s) URLs and find-links as directories",
            ) from exc
        cooldown = pip.cooldown
        self._client = _PageClient(pip, pool_size=max(jobs, 1), upload_times=cooldown is not None)
        self._chooser = _Chooser(
            tags={tag: i for i, tag in enumerate(target.tags)},
            python=python_version(target.environment),
            prefer_binary=False,
            cooldown=cooldown,
        )

    def files(
        self, name: NormalizedName, version: str, *, index_url: str | None = None
    ) -> dict[str, tuple[str, Sha256 | None]]:
        """filename -> (URL, sha256 the index gives) for every file of ``name==version``;
        ``index_url`` (the index a lock names for the package) is asked first."""
        found: dict[str, tuple[str, Sha256 | None]] = {}
        for candidate in self._candidates(name, version, index_url):
            found.setdefault(candidate.filename, (candidate.url, candidate.sha256))
        return found

    def upload_time(
        self, name: NormalizedName, version: str, filename: str, *, index_url: str | None = None
    ) -> str | None:
        """The upload time the indexes give ``filename`` of ``name==version``, or None."""
        for candidate in self._candidates(name, version, index_url):
            if candidate.filename == filename and candidate.upload_time is not None:
                return candidate.upload_time
        return None

    def choose(
        self,
        name: NormalizedName,
        version: str,
        hashes: frozenset[Sha256],
        *,
        index_url: str | None = None,
    ) -> Pin | None:
        """The file pip would install ``name==version`` from among those whose sha256 is in
        ``hashes`` (every file when ``hashes`` is empty), or None when none fits the target."""
        item = Wanted(name, Version(version), Requirement(f"{name}=={version}"))
        candidates = self._candidates(name, version, index_url)
        if hashes:
            candidates = [c for c in candidates if c.sha256 in hashes]
        try:
            return self._chooser.choose(item, candidates, hashes)
        except Ineligible:
            return None

    def _candidates(
        self, name: NormalizedName, version: str, index_url: str | None
    ) -> list[_Candidate]:
        keep = _same_version(Version(version))
        sources: list[_Source] = list(self._sources)
        if index_url and urlsplit(index_url).scheme in ("http", "https", "file"):
            sources.insert(0, _Index(index_url.rstrip("/")))
        found: list[_Candidate] = []
        for source in sources:
            try:
                found += source.candidates(self._client, name, keep)
            except Ineligible as exc:
                logger.info("looking up %s %s: %s", name, version, exc)
        return found


# -- guesses ahead of pip's resolver -------------------------------------------------------------


@dataclass(frozen=True)
class Wish:
    """A requirement as a guess sees it: a project, the versions it allows, the extras."""

    name: NormalizedName
    specifier: SpecifierSet
    extras: frozenset[str]


class Guesses:
    """The file pip will most likely take for a loose requirement, found the way the pinned
    path finds a pinned one (the same sources, in pip's order, and pip's choice of file), so it
    can be downloaded before pip's resolver asks: the newest version the requirement and the
    constraints allow. A guess only: pip's resolver decides, and may backtrack elsewhere.

    ``pages`` are the index pages already read, by URL (the tap's); no other page is read.
    Raises :class:`Unguessable` when the configuration is one the pinned path cannot follow.
    """

    def __init__(
        self,
        inputs: InputSet,
        pip: PipSettings,
        target: Target,
        pages: Mapping[str, Page],
    ) -> None:
        self.environment = target.environment
        try:
            self._sources = _sources(pip)
            constraints = constraint_specifiers(inputs, pip, self.environment)
        except Ineligible as exc:
            raise Unguessable(str(exc)) from exc
        self._constraints: dict[NormalizedName, SpecifierSet] = {}
        for name, spec, _ in constraints:
            self._constraints[name] = self._constraints.get(name, SpecifierSet()) & spec
        # Only pages the tap read: a guess never costs a page request of its own.
        self._client = _PageClient(pip, pages=pages, kept_only=True)
        self._pre = pip.pre
        # What the guesses chose and read, for the pinned path to take as its own: the file
        # of a version is chosen the same way there, and metadata is the file's.
        self.chosen: dict[tuple[NormalizedName, Version], Pin] = {}
        self.read: dict[Sha256, Metadata] = {}
        self._hashes = inputs.hashes
        self._chooser = _Chooser(
            tags={tag: i for i, tag in enumerate(target.tags)},
            python=python_version(self.environment),
            prefer_binary=pip.prefer_binary,
            formats=pip.formats,
            cooldown=pip.cooldown,
        )

    def requested(self, inputs: InputSet) -> list[Wish]:
        """The requirements of ``inputs`` that apply here (not constraints, paths or URLs)."""
        return self._applying([req for req in inputs.requested() if req.url is None], {""})

    def dependencies(self, item: Fetched, extras: set[str]) -> list[Wish] | None:
        """What ``item`` requires with ``extras`` (and none), or None when its metadata
        cannot tell without a build (an sdist with dynamic dependencies) or is unreadable."""
        try:
            metadata = self.read.get(item.sha256) or _read_metadata(item)
        except Ineligible:
            return None
        self.read[item.sha256] = metadata
        return self._applying(metadata.requires, {"", *extras})

    def _applying(self, requirements: Sequence[Requirement], extras: set[str]) -> list[Wish]:
        return [
            Wish(
                canonicalize_name(req.name),
                req.specifier & self._constraints.get(canonicalize_name(req.name), SpecifierSet()),
                frozenset(canonicalize_name(e) for e in req.extras),
            )
            for req in requirements
            if req.url is None
            and (
                req.marker is None
                or any(
                    req.marker.evaluate({**self.environment, "extra": e}, context="requirement")
                    for e in extras
                )
            )
        ]

    def choose(self, name: NormalizedName, specifier: SpecifierSet) -> Pin | None:
        """The file of the newest version ``specifier`` allows (pip's pre-release rule) that
        has a file for this target, chosen among that version's files as pip chooses."""
        seen: set[str] = set()

        def record(filename: str) -> bool:
            raw = _raw_version(filename)
            if raw is not None:
                seen.add(raw)
            return False  # only the versions are wanted here: no candidate is built

        try:
            for source in self._sources:
                source.candidates(self._client, name, record)
            versions = [v for raw in seen if (v := _parsed(raw)) is not None]
            allowed = specifier.filter(versions, prereleases=True if self._pre else None)
            newest = sorted(allowed, reverse=True)[:_GUESSED_VERSIONS]
            # One more parse, of the files of those versions only: the newest releases may
            # all want a newer Python than this one, and each parse reads the whole page.
            raws = {raw for raw in seen if _parsed(raw) in newest}
            found = [
                c
                for source in self._sources
                for c in source.candidates(self._client, name, lambda f: _raw_version(f) in raws)
                if not c.yanked
            ]
            for version in newest:
                wanted = Wanted(name, version, Requirement(f"{name}=={version}"))
                try:
                    pin = self._chooser.choose(wanted, found, self._hashes.get(name, frozenset()))
                except (Ineligible, CooldownError):
                    continue  # the cooldown holds this version back: pip takes an older one
                # Yanked files were left out above: with one file of the version not yanked,
                # pip's choice among all of them is among those (PEP 592), as here.
                self.chosen[(name, version)] = pin
                return pin
            logger.debug("no guess for %s%s: no file fits", name, specifier)
        except (
            Ineligible,
            urllib3.exceptions.HTTPError,
            OSError,
            QuarantinedError,
            NetworkError,
        ) as exc:
            # pip's resolver reads the same page and says what is wrong with it.
            logger.debug("no guess for %s: %s", name, exc)
        return None


class Unguessable(Exception):
    """The configuration names sources or constraints that :class:`Guesses` cannot read."""


# Versions tried, newest first, before a guess gives up.
_GUESSED_VERSIONS = 30


def _parsed(raw: str) -> Version | None:
    try:
        return Version(raw)
    except InvalidVersion:
        return None
