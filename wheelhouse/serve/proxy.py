"""A caching index proxy (``wheelhouse serve --upstream``): a Starlette app on uvicorn that
answers PEP 503/691 pages for local wheelhouses and upstream indexes, adds PEP 658 metadata to
every wheel, and keeps pages and files in a store that several workers can share.

Its parts: the store of pages and files (``_store``, ``_bucket``), upstream's METADATA and
provenance (``_upstream``), the guards (``_guards``), the OSV API (``_osv``), where pages point
clients (``_links``), how answers are sent (``_sending``), the process's memory (``_memory``).
What stays here (about 1,300 lines) is the app and ``_Proxy``, whose methods share one state:
requests in flight, names known absent, relayed links found, renderings, the store and the
guards. Pages themselves are read, relayed and rendered by ``wheelhouse.simple``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import logging
import os
import re
import resource
import time
import zipfile
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import urllib3
import uvicorn
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from wheelhouse import __version__
from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.urls import file_url_path
from wheelhouse._base.wheels import read_wheel_metadata
from wheelhouse.audit.query import QUERY_PATH
from wheelhouse.errors import InvalidWheelhouseError, UpstreamError, UsageError
from wheelhouse.house.index import HTML_PAGE, INDEX_DIR, JSON_PAGE
from wheelhouse.house.manifest import PROVENANCE_SUFFIX
from wheelhouse.provenance.fetch import PROVENANCE_TYPE
from wheelhouse.serve._asgi import AsgiServer, ServeLimits, bind, index_url, uvicorn_options
from wheelhouse.serve._guards import Guards, Refused
from wheelhouse.serve._links import (
    CHUNK,
    VIA,
    Fronts,
    LinkCounts,
    Rebase,
    base_url,
    file_links,
    relay_links,
)
from wheelhouse.serve._memory import rss_bytes, tame_malloc
from wheelhouse.serve._osv import OsvEndpoint, load_checked
from wheelhouse.serve._sending import Page, served_page, stored_response
from wheelhouse.serve._store import DownloadFailed, PageRecord, PageStamp, Relayed, Stats, Store
from wheelhouse.serve._upstream import fetch_wheel_metadata
from wheelhouse.simple import (
    HTML_TYPE,
    JSON_TYPE,
    NOT_ACCEPTABLE,
    PageFile,
    ProjectPage,
    ProjectStatus,
    negotiate,
    parse_json_page,
    render_html,
    render_json,
    root_html,
    root_json,
)
from wheelhouse.simple.client import PageAnswer, ask_project_page, parse_answer
from wheelhouse.simple.relay import relay_of, relink

__all__ = ["ProxySettings", "app_from_environment", "create_app", "serve_proxy"]

logger = logging.getLogger(__name__)

SETTINGS_ENV = "WHEELHOUSE_PROXY_SETTINGS"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RENDERED_PAGES = 256  # rendered pages kept per process (both forms of a project count two)
_PROJECT = re.compile(r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?", re.IGNORECASE)
# Far beyond any real project name (PyPI's longest are under 100), and short enough that every
# name the store derives from it (<name>.json, rendered/<key>/<name>/) fits NAME_MAX (255).
_MAX_NAME = 200
_MAX_FILENAME = 255  # a file name is only compared with the page's, but has no business longer
# A relayed page's link path (``simple.relay``), only compared with the page's links: no
# "." or ".." segment, no empty one.
_MAX_LINK = 1024
_LINK_PATH = re.compile(r"(?:[A-Za-z0-9_~+!$&'()*,;=:@-][A-Za-z0-9._~+!$&'()*,;=:@-]*/)*"
                        r"[A-Za-z0-9_~+!$&'()*,;=:@-][A-Za-z0-9._~+!$&'()*,;=:@-]*")  # fmt: skip
# Threads for work that waits on upstream (pages, METADATA, revalidation) and for work on the
# store (parsing and rendering pages). Each kind has its own bound, and neither takes threads
# from anyio's default pool, which sends stored files: 50 hanging upstream pages once held all
# of its threads and a stored wheel waited 23 s behind them.
_UPSTREAM_THREADS = 32
_LOCAL_THREADS = 16
# Connections kept open per upstream host: one per upstream thread, and as many again for the
# downloads (a thread each, outside that bound). With 16, uv's burst of concurrent pages made
# the pool discard a connection 20-30 times a run ("Connection pool is full"), and every
# discarded one cost the next request a new TCP and TLS handshake.
_UPSTREAM_CONNECTIONS = 2 * _UPSTREAM_THREADS
# A wheel upstream gives no PEP 658 file for, up to this size, is fetched whole for its METADATA
# instead of read by two range requests: one round trip, a METADATA checked by the wheel's
# sha256 (ranges can be answered from other bytes), and the wheel stored for the client that
# asks for it next (uv and pip do, for each wheel they install).
_WHOLE_WHEEL = 512 * 1024
# How long upstream's "no such project" is believed (at most the page TTL), and for how many
# names: 50 clients asking for a name nobody has must not make 50 upstream requests.
_ABSENT_TTL = 60.0
_ABSENT_NAMES = 10_000
# Relayed links this process has found on their pages (a warm request then reads no page):
# the files of a few installs' worth of pages.
_LINKS = 8192
_GRACE = 1.0  # seconds an upstream call may outlast the deadline its clients were given
# Seconds a page that gained a METADATA hash waits before it is rendered again: a cold uv run
# asks the METADATA of one wheel of every project within a second, and rendering its pages
# again at once (pydantic-core's 15,000 files among them) took the CPU its next pages needed.
_RERENDER_DELAY = 2.0
_T = TypeVar("_T")
_FORMS = {JSON_TYPE: "json", HTML_TYPE: "html", "text/html": "html"}  # rendered files
# One line per request (uvicorn.access) and per event, in every worker process.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "wheelhouse": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
_ACCEPTABLE = NOT_ACCEPTABLE + "\n"


@dataclass(frozen=True)
class ProxySettings:
    """Everything a proxy worker needs; JSON-serializable so that workers can be spawned."""

    store: Path
    upstreams: tuple[str, ...]  # index URLs, possibly with credentials: never log them raw
    local: tuple[Path, ...] = ()
    ttl: float = 600.0
    offline: bool = False
    timeout: float = 15.0
    pip_config: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # A bucket shared by several proxies (``s3://bucket/prefix``); ``store`` is then this
    # instance's local copy of what it read from the bucket.
    bucket: str | None = None
    endpoint_url: str | None = None
    lease_timeout: float = 60.0
    # A private index taking uploads (also the first of ``local``): UploadSettings' JSON.
    upload: str | None = None
    # The private indexes served under /<name>/ each (``upload`` among them), alone: JSON.
    indexes: tuple[str, ...] = ()
    # Peers whose X-Forwarded-Proto/-Host/-Prefix say how clients reach the proxy (uvicorn's
    # --forwarded-allow-ips): comma-separated addresses or networks, or "*".
    forwarded_allow_ips: str = "127.0.0.1"
    # Issue 26: the release cooldown, as `build` and `mirror` take it (docs/cooldown.md),
    # and the OSV snapshot that answers POST /v1/query.
    exclude_newer: str | None = None
    exclude_newer_packages: tuple[str, ...] = ()
    no_upload_time: str = "refuse"
    osv: str | None = None

    @property
    def key(self) -> str:
        """Names the upstream list: a store keeps the pages of each list apart."""
        joined = "\n".join(strip_credentials(u).rstrip("/") for u in self.upstreams)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """What is served, in the order it is looked in, and the store: for the start line."""
        sources = [str(d) for d in self.local]
        sources += [strip_credentials(u) for u in self.upstreams]
        served = ", then ".join(sources) if sources else "nothing"
        return f"{served} (store {self.bucket or self.store})"

    def to_env(self) -> str:
        data = dataclasses.asdict(self)
        data["store"] = str(self.store)
        data["local"] = [str(p) for p in self.local]
        data["pip_config"] = dict(self.pip_config)
        return json.dumps(data)

    @classmethod
    def from_env(cls, text: str) -> ProxySettings:
        data = json.loads(text)
        return cls(
            store=Path(data["store"]),
            upstreams=tuple(data["upstreams"]),
            local=tuple(Path(p) for p in data["local"]),
            ttl=float(data["ttl"]),
            offline=bool(data["offline"]),
            timeout=float(data["timeout"]),
            pip_config=dict(data["pip_config"]),
            bucket=data.get("bucket"),
            endpoint_url=data.get("endpoint_url"),
            lease_timeout=float(data.get("lease_timeout", 60.0)),
            upload=data.get("upload"),
            indexes=tuple(data.get("indexes", ())),
            forwarded_allow_ips=str(data.get("forwarded_allow_ips", "127.0.0.1")),
            exclude_newer=data.get("exclude_newer"),
            exclude_newer_packages=tuple(data.get("exclude_newer_packages", ())),
            no_upload_time=str(data.get("no_upload_time", "refuse")),
            osv=data.get("osv"),
        )


def _open_store(settings: ProxySettings, client: HttpClient, stats: Stats) -> Store:
    """The local store, or the bucket shared with other proxies (with a local copy)."""
    if settings.bucket is None:
        return Store(settings.store, settings.key, client, stats, settings.timeout)
    from wheelhouse._base.storage import open_store
    from wheelhouse.serve._bucket import BucketStore

    objects = open_store(settings.bucket, endpoint_url=settings.endpoint_url)
    objects.get(f"pages/{settings.key}/-")  # reachable? (an error here says what to check)
    return BucketStore(
        settings.store,
        settings.key,
        client,
        stats,
        settings.timeout,
        objects=objects,
        lease_timeout=settings.lease_timeout,
    )


class _Unavailable(Exception):
    """Answer with ``status`` and a one-line ``reason`` (502/503 upstream trouble, 404...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Listing:
    """Who answers for a project and with which files."""

    project: str
    files: tuple[PageFile, ...]
    versions: tuple[str, ...] | None
    local: Path | None  # the wheelhouse that answers alone, or None for an upstream
    # For an upstream's page: when upstream last answered for it (the stored record's
    # ``fetched``), so a rendered page can be reused until the record changes.
    stamp: float | None = None
    status: ProjectStatus = "active"  # PEP 792, and its reason
    status_reason: str | None = None


@dataclass(frozen=True)
class _Found:
    """A lookup in a stored page: its file, or None when the page does not list it."""

    file: PageFile | None


class _Proxy:
    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.stats = Stats()
        # The upstream URLs go in as pip's index options so the client sends their
        # credentials to their hosts (and to files on those hosts), and only there.
        config = dict(settings.pip_config)
        if settings.upstreams:
            config["index-url"] = settings.upstreams[0]
            config["extra-index-url"] = " ".join(settings.upstreams[1:])
        self.client = HttpClient(PipSettings.parse(config), pool_size=_UPSTREAM_CONNECTIONS)
        self.store = _open_store(settings, self.client, self.stats)
        self.store.on_stored = self._check_metadata
        self._render_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._revalidating: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # One upstream request at a time per page or METADATA (single flight): its task, which
        # every client that asks meanwhile awaits (each with its own deadline).
        self._flights: dict[str, asyncio.Task[Any]] = {}
        self._absent: dict[str, float] = {}  # project -> until when upstream's 404 holds
        # (project, link path) -> (the stored page's version, the file it links)
        self._links: dict[tuple[str, str], tuple[str, PageFile]] = {}
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._rerender: set[str] = set()  # projects whose page gained a METADATA hash
        self.started = time.time()
        # Rendered upstream pages, reused while the stored record and what this process has
        # stored of the project's metadata are unchanged: rendering botocore's 5,000 files
        # took 0.2 s of CPU a request, and 20 cold clients asked it at once.
        self._rendered: dict[tuple[str, str], tuple[tuple[float, int, float | None], bytes]] = {}
        self._generation: dict[str, int] = {}
        self.fronts = Fronts.parse(settings.forwarded_allow_ips)
        # How many file links each rendering on disk holds (by its identity), so a page sent
        # with absolute links has its Content-Length without reading it twice.
        self._markers = LinkCounts()
        self.guards = Guards.from_options(
            settings.exclude_newer, settings.exclude_newer_packages, settings.no_upload_time
        )

    # -- who answers --------------------------------------------------------------------

    def _local_dir(self, project: str) -> Path | None:
        for directory in self.settings.local:
            if (directory / INDEX_DIR / project / JSON_PAGE).is_file():
                return directory
        return None

    def _local_listing(self, directory: Path, project: str) -> _Listing:
        page_dir = directory / INDEX_DIR / project
        page = parse_json_page(
            (page_dir / JSON_PAGE).read_bytes(), page_dir.absolute().as_uri() + "/", project
        )
        return _Listing(project, page.files, page.versions, directory)

    # -- threads, deadlines, single flight ------------------------------------------------

    def _limiter(self, kind: str) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the event loop that runs the app.
        if kind not in self._limiters:
            total = _UPSTREAM_THREADS if kind == "upstream" else _LOCAL_THREADS
            self._limiters[kind] = anyio.CapacityLimiter(total)
        return self._limiters[kind]

    async def on_store(self, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)`` on a thread for work on the store (never waits on upstream)."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter("local"))

    async def on_upstream(self, func: Callable[..., _T], *args: Any) -> _T:
        """``func(*args)`` on a thread for work that waits on upstream."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter("upstream"))

    def spawn(self, coroutine: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._settled)
        return task

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here: every client awaiting it may have given up

    def flight(self, key: str, start: Callable[[], Coroutine[Any, Any, _T]]) -> asyncio.Task[_T]:
        """The task under way for ``key``, or a new one made by ``start``."""
        task = self._flights.get(key)
        if task is None:
            task = self.spawn(start())
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._landed, key))
        return task

    def _landed(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]

    async def within_deadline(self, task: asyncio.Task[_T], what: str) -> _T:
        """What ``task`` gives, if it gives it within ``--timeout``; else a 504. The task goes
        on (shielded): its thread cannot be stopped, and what it stores serves the next client."""
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.timeout)
        except TimeoutError:
            self.stats.add(upstream_deadlines=1)
            timeout = self.settings.timeout
            logger.warning("no answer from upstream for %s within %g s", what, timeout)
            raise _Unavailable(
                504, f"upstream did not answer for {what} within --timeout {timeout:g} s"
            ) from None

    # -- who answers, continued -----------------------------------------------------------

    async def listing(self, project: str) -> _Listing:
        local = self._local_dir(project)
        if local is not None:
            return await self.on_store(self._local_listing, local, project)
        return self._from_record(await self.record(project))

    async def record(self, project: str, *, unstored: bool = False) -> PageRecord:
        """``project``'s stored page, else the first upstream's answer (now stored).
        ``unstored``: the caller just saw that the store has no page of ``project`` (no
        stamp), so it is not read: a cold page asked for upstream at once, without a store
        thread's turn first (in a cold uv run that turn took 35-210 ms of 41 pages' time)."""
        record = None if unstored else await self.on_store(self.store.read_page, project)
        if record is not None:
            if self.settings.offline or time.time() - record.fetched < self.settings.ttl:
                self.stats.add(page_hits=1)
            else:
                self.stats.add(page_stale=1)
                self._revalidate_soon(project)
            return record
        if self.settings.offline:
            raise _Unavailable(503, f"offline: {project} is not in the store")
        if self._known_absent(project):
            self.stats.add(page_absent_hits=1)
            raise _Unavailable(404, _absent(project))
        self.stats.add(page_misses=1)
        # The clients' 504 comes at --timeout; the upstream call ends just after it, so what a
        # client sees does not depend on which of the two clocks fired first.
        deadline = time.monotonic() + self.settings.timeout + _GRACE

        async def fetch() -> PageRecord:
            try:
                return await self.on_upstream(self._fetch_leased, project, deadline)
            except _Unavailable as exc:
                if exc.status == 404:
                    self._remember_absent(project)
                raise

        # Concurrent first requests for a project ask upstream once.
        return await self.within_deadline(self.flight(f"page {project}", fetch), project)

    def _known_absent(self, project: str) -> bool:
        until = self._absent.get(project)
        if until is None:
            return False
        if until > time.monotonic():
            return True
        del self._absent[project]
        return False

    def _remember_absent(self, project: str) -> None:
        lasting = min(self.settings.ttl, _ABSENT_TTL)
        if lasting <= 0:
            return
        self._absent.pop(project, None)
        self._absent[project] = time.monotonic() + lasting  # the most recent last
        while len(self._absent) > _ABSENT_NAMES:
            self._absent.pop(next(iter(self._absent)))

    def _fetch_leased(self, project: str, deadline: float) -> PageRecord:
        """The first fetch of a page, once across the proxies sharing a store."""
        with self.store.page_lease(project, wait=True):
            record = self.store.read_page(project)  # another proxy may have fetched it
            return record if record is not None else self._fetch_first(project, deadline)

    @staticmethod
    def _from_record(record: PageRecord) -> _Listing:
        page = record.page
        return _Listing(
            record.project, page.files, page.versions, None, record.fetched, page.status,
            page.status_reason,
        )  # fmt: skip

    def _fetch_first(self, project: str, deadline: float | None = None) -> PageRecord:
        """The page of the first upstream that has ``project`` ("first index wins"), asked
        within ``deadline`` (``time.monotonic()``) when one is given."""
        for number, upstream in enumerate(self.settings.upstreams):
            shown = strip_credentials(upstream)
            timeout = self.settings.timeout
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise _Unavailable(504, f"upstream did not answer for {project} in time")
            self.stats.add(upstream_requests=1)
            try:
                asked = ask_project_page(self.client, upstream, project, timeout=timeout)
                if isinstance(asked, PageAnswer):
                    record = self._record_of(project, number, asked)
            except UpstreamError as exc:
                # A later index must not answer while an earlier one is down: that is how
                # dependency confusion gets in. Say why, and let the client retry.
                self.stats.add(upstream_errors=1)
                logger.warning("upstream %s failed for %s: %s", shown, project, exc.message)
                raise _Unavailable(502, f"upstream {shown} failed: {exc.message}") from exc
            if isinstance(asked, PageAnswer):
                self._keep(record)
                return record
        raise _Unavailable(404, _absent(project))

    def _keep(self, record: PageRecord) -> None:
        """Store upstream's new answer; a relayed one is rendered here and now, in the thread
        that fetched it (for a cold uv run, waiting for a store thread to render each page
        took as long as rendering it)."""
        self.store.write_page(record)
        body = self._relinked(record, "json", self.guards.moment())
        stamp = None if body is None else self.store.page_stamp(record.project)
        if body is not None and stamp is not None:
            self.write_rendered(record.project, "json", stamp.version, body)
            self.stats.add(pages_rendered=1)

    def write_rendered(self, project: str, form: str, version: str, body: bytes) -> None:
        """Keep a rendering in the store, its links counted from the bytes in hand (sending
        it with absolute links needs their number: read back, pydantic-core's 6.9 MB page
        took 5 ms on the event loop)."""
        self._markers.written(self.store.write_rendered(project, form, version, body), form, body)

    @staticmethod
    def _relinked(record: PageRecord, form: str, moment: float | None) -> bytes | None:
        """``record``'s page relayed as clients get it (``simple.relay``), unparsed; None
        when it must be parsed: not relayed, asked as HTML, or filtered by a cooldown."""
        kept = record.relayed
        if kept is None or form != "json" or moment is not None:
            return None
        return relink(kept.body, kept.relay, relay_links(record.project))

    def _record_of(self, project: str, number: int, answer: PageAnswer) -> PageRecord:
        """The record of upstream ``number``'s page: kept as it came when it can be relayed
        (``simple.relay``; a cooldown filters files, so it needs them parsed), else parsed.
        Raises ``UpstreamError`` for a page unfit to use."""
        relay = relay_of(answer.body, answer.content_type) if self.guards.cooldown is None else None
        if relay is not None:
            url = strip_credentials(answer.url)
            kept = Relayed(answer.body, relay, url, answer.etag, answer.last_modified)
            return PageRecord(project, number, time.time(), None, kept)
        page = parse_answer(answer, project).page
        assert page is not None
        return PageRecord(project, number, time.time(), page)

    def _revalidate_soon(self, project: str) -> None:
        if project in self._revalidating:
            return
        self._revalidating.add(project)

        async def run() -> None:
            try:
                await self.on_upstream(self._revalidate, project)
            finally:
                self._revalidating.discard(project)

        self.spawn(run())

    def _revalidate(self, project: str) -> None:
        with self.store.page_lease(project, wait=False) as ours:
            if not ours:
                return  # another proxy revalidates it; this one serves the stale page meanwhile
            current = self.store.read_page(project)
            if current is None or time.time() - current.fetched < self.settings.ttl:
                return  # forgotten, or another proxy revalidated it since we looked
            self._revalidate_now(current)

    def _revalidate_now(self, record: PageRecord) -> None:
        upstream = self.settings.upstreams[record.upstream]
        self.stats.add(upstream_requests=1, page_revalidations=1)
        try:
            asked = ask_project_page(
                self.client,
                upstream,
                record.project,
                etag=record.etag,
                last_modified=record.last_modified,
                timeout=self.settings.timeout,
            )
            if isinstance(asked, PageAnswer):
                self._keep(self._record_of(record.project, record.upstream, asked))
                return
        except UpstreamError as exc:
            self.stats.add(upstream_errors=1)
            logger.warning("serving the stale page of %s: %s", record.project, exc.message)
            return
        if asked.status == "not-modified":
            self.stats.add(page_not_modified=1)
            before = self.store.page_stamp(record.project)
            self.store.write_page(record.revalidated(asked.etag, asked.last_modified))
            after = self.store.page_stamp(record.project)
            if before is not None and after is not None:
                self.store.keep_rendered(record.project, before, after)
        else:
            try:
                self._fetch_first(record.project)
            except _Unavailable as exc:
                if exc.status == 404:
                    self.store.forget_page(record.project)
                logger.warning("revalidating %s: %s", record.project, exc.reason)

    # -- pages as served ----------------------------------------------------------------

    def rebase(self, request: Request, chosen: str) -> Rebase | None:
        """How the page this request gets makes its file links absolute; None: relative."""
        base = base_url(request, self.fronts)
        return None if base is None else Rebase(_FORMS[chosen], base, self._markers)

    async def page(self, project: str, chosen: str) -> Page:
        """``project``'s page as ``chosen``. An upstream's page is rendered once per version
        of its stored record (and again when a METADATA hash becomes known) into the store,
        and sent from there: no parsing and no page in memory per request, also after a
        restart."""
        if self._local_dir(project) is None:
            stamp = self.store.page_stamp(project)
            fresh = None
            if stamp is None:
                unstored = self.store.stamps_all_pages
                fresh = await self.record(project, unstored=unstored)  # upstream's, now stored
                stamp = self.store.page_stamp(project)
                # Rendered from the answer in hand: read back from the store, it was parsed
                # again whenever other pages had pushed it out of the parsed pages meanwhile
                # (a cold uv run stores 43,000 files of pages at once; 16,000 are kept).
            else:
                self._count_page(project, stamp)
            if stamp is not None:
                return await self._rendered_page(project, _FORMS[chosen], stamp, fresh)
            moment = self.guards.moment()
            relayed = None if fresh is None else self._relinked(fresh, _FORMS[chosen], moment)
            if relayed is not None:
                return Page.of(relayed)  # a bucket's (its pages have no stamp here)
            listing = self._from_record(fresh) if fresh is not None else await self.listing(project)
        else:
            listing = await self.listing(project)
        body = await self.on_store(self.render_page, listing, chosen)
        return Page.of(body)

    def _count_page(self, project: str, stamp: PageStamp) -> None:
        if self.settings.offline or time.time() - stamp.fetched < self.settings.ttl:
            self.stats.add(page_hits=1)
        else:
            self.stats.add(page_stale=1)
            self._revalidate_soon(project)

    async def _rendered_page(
        self, project: str, form: str, stamp: PageStamp, fresh: PageRecord | None = None
    ) -> Page:
        moment = self.guards.moment()
        version = self.guards.version(stamp.version, moment)  # one rendering per cutoff
        opened = self.store.open_rendered(project, form, version)
        if opened is None:
            # One rendering per page and form at a time: 20 clients asking for a new page
            # at once must not make 20 copies of it in memory.
            lock = self._render_locks.setdefault((project, form), asyncio.Lock())
            async with lock:
                opened = self.store.open_rendered(project, form, version)
                if opened is None:
                    body = await self.on_store(self._render_stored, project, form, fresh, moment)
                    if body is not None:  # megabytes for big projects: not on the event loop
                        await self.on_store(self.write_rendered, project, form, version, body)
                        opened = self.store.open_rendered(project, form, version)
                    if opened is None:  # the page changed meanwhile: send what we rendered
                        if body is None:
                            raise _Unavailable(503, f"the page of {project} changed; retry")
                        return Page.of(body)
        fd, etag = opened
        return Page(etag, fd=fd)

    def rerender_soon(self) -> None:
        """Render again, in the background, the JSON pages that gained a METADATA hash: the
        next client (often the next run, in a restarted proxy) then finds them rendered
        instead of parsing and rendering pydantic-core's page while it waits. A relayed page
        is parsed and rendered here, off the clients' path: the next clients get its files
        linked by sha256 with their METADATA hashes, and the compact form, which pip 23.2
        reads faster (a warm pip install of the web-service set: 5-12% slower on relayed
        pages, whose links stay valid)."""
        while self._rerender:
            project = self._rerender.pop()

            async def run(project: str = project) -> None:
                await asyncio.sleep(_RERENDER_DELAY)
                stamp = self.store.page_stamp(project)
                if stamp is None:
                    return
                moment = self.guards.moment()
                try:
                    body = await self.on_store(
                        self._render_stored, project, "json", None, moment, False
                    )
                    if body is not None and self.store.page_stamp(project) == stamp:
                        version = self.guards.version(stamp.version, moment)
                        await self.on_store(self.write_rendered, project, "json", version, body)
                except (_Unavailable, OSError) as exc:
                    logger.debug("rendering %s again: %s", project, exc)

            self.spawn(run())

    def _render_stored(
        self,
        project: str,
        form: str,
        fresh: PageRecord | None = None,
        moment: float | None = None,
        relay: bool = True,
    ) -> bytes | None:
        """``project``'s stored page rendered as ``form``: a relayed page relinked when
        ``relay`` (clients wait on it), else parsed and rendered."""
        record = fresh if fresh is not None else self.store.read_page(project)
        if record is None:
            return None
        self.stats.add(pages_rendered=1)
        relayed = self._relinked(record, form, moment) if relay else None
        if relayed is not None:
            return relayed
        chosen = JSON_TYPE if form == "json" else HTML_TYPE
        return self._render(self._from_record(record), chosen, moment)  # kept on disk

    # -- what the pages list --------------------------------------------------------------

    def listed(self, listing: _Listing) -> list[PageFile]:
        """The files of ``listing`` as the proxy lists them: each linked to the proxy by its
        sha256, with the METADATA hash the proxy serves."""
        files = []
        stored_metadata: dict[str, str] = {}
        upstream = listing.local is None
        if upstream:
            wheels = (f.sha256 for f in listing.files if f.sha256 and f.is_wheel)
            stored_metadata = self.store.metadata_sha256s(wheels)
        link_to = file_links(listing.project)
        valid = _SHA256.fullmatch
        for file in listing.files:  # 15,000 for pydantic-core: kept lean
            filename = file.filename
            sha256 = file.hashes.get("sha256")
            if sha256 is None or not valid(sha256):
                # Every file we hand out is checked against a sha256: without one, we cannot.
                logger.debug("not listing %s: upstream gives no sha256", filename)
                continue
            metadata: dict[str, str] | bool = False
            if filename.endswith(".whl"):
                # The hash of the bytes we will serve: ours once stored, else upstream's
                # (we serve its file then), else "true" (PEP 658 allows a bare true).
                served = stored_metadata.get(sha256)
                if served is None and type(file.core_metadata) is dict:
                    served = file.core_metadata.get("sha256")
                metadata = {"sha256": served} if served else True
            size = file.size
            if size is None and upstream and self.store.has_file(sha256):
                size = self.store.file_path(sha256).stat().st_size
            link = link_to(sha256, filename)
            files.append(
                PageFile(
                    filename,
                    link,
                    {"sha256": sha256},
                    file.requires_python,
                    file.yanked,
                    size,
                    file.upload_time,
                    metadata,
                    # PEP 740: the proxy's copy, beside the file (fetched on first request).
                    link + PROVENANCE_SUFFIX if file.provenance else None,
                )
            )
        return files

    async def stored_file(self, project: str, sha256: str, filename: str) -> _Found | None:
        """File ``sha256`` named ``filename`` of ``project``'s page in the store, looked up
        without parsing the page whole when it is not parsed (a cold uv run asks for the
        METADATA of a wheel of 40 pages at once, more files than the parsed pages keep);
        None when no page of ``project`` is stored here or a local wheelhouse answers."""
        if self._local_dir(project) is not None:
            return None
        stamp = self.store.page_stamp(project)
        if stamp is None:
            return None
        self._count_page(project, stamp)
        found = await self.on_store(self.store.find_file, project, sha256, filename)
        return _Found(found)

    async def linked(self, project: str, path: str) -> PageFile | None:
        """The file ``project``'s relayed page links as ``path`` (``simple.relay``), found
        once per version of the stored page: a warm request reads no page."""
        stamp = self.store.page_stamp(project)
        key = (project, path)
        known = self._links.get(key)
        if known is not None and stamp is not None and known[0] == stamp.version:
            return known[1]
        found = await self.on_store(self._find_link, project, path)
        if found is not None and stamp is not None:  # made-up links are not remembered
            self._links.pop(key, None)
            self._links[key] = (stamp.version, found)  # the most recent last
            while len(self._links) > _LINKS:
                self._links.pop(next(iter(self._links)))
        return found

    def _find_link(self, project: str, path: str) -> PageFile | None:
        """``store.find_link``, and the guards' look at the page it read (``check_stored``,
        which remembers it), in the same thread's turn: the request that asks for the link
        then checks its file without a second one (the METADATA requests of a cold uv run
        waited 150-250 ms before their upstream request began, in three threads' turns)."""
        found = self.store.find_link(project, path)
        sha256 = None if found is None else found.sha256
        if sha256 is not None and _SHA256.fullmatch(sha256):
            with contextlib.suppress(Refused):  # remembered: the request answers with it
                self.guards.check_stored(self.store, project, sha256)
        return found

    async def check_stored(self, project: str, sha256: str) -> None:
        """Raise ``Refused`` for a file the guards keep back (``_guards``); a warm file of a
        project whose status this process knows costs a stat, not a thread."""
        known = self.guards.known_refusal(self.store, project, sha256)
        if known is None:
            await self.on_store(self.guards.check_stored, self.store, project, sha256)
        elif known:
            raise Refused(404, known)

    async def provenance(self, file: PageFile, sha256: str) -> Response:
        """The PEP 740 provenance of ``file`` (once from upstream, then from the store)."""
        if file.provenance is None:
            return PlainTextResponse("not found\n", 404)
        try:
            task = self.flight(
                f"provenance {sha256}",
                lambda: self.on_upstream(
                    self.guards.provenance, self.store, self.client, file, self.settings.timeout,
                    self.settings.offline,
                ),
            )  # fmt: skip
            data = await self.within_deadline(task, f"the provenance of {file.filename}")
        except (Refused, _Unavailable) as exc:
            return PlainTextResponse(f"{exc.reason}\n", exc.status)
        except (UpstreamError, OSError) as exc:
            self.stats.add(upstream_errors=1)
            reason = exc.message if isinstance(exc, UpstreamError) else str(exc)
            return PlainTextResponse(f"{reason}\n", 502)
        return Response(data, media_type=PROVENANCE_TYPE)

    def find(self, listing: _Listing, sha256: str, filename: str) -> PageFile | None:
        for file in listing.files:
            if file.sha256 == sha256 and file.filename == filename:
                return file
        return None

    def local_path(self, listing: _Listing, file: PageFile) -> Path | None:
        assert listing.local is not None
        path = file_url_path(file.url)
        real, root = os.path.realpath(path), os.path.realpath(listing.local)
        return path if Path(real).is_relative_to(root) and path.is_file() else None

    # -- metadata -----------------------------------------------------------------------

    def metadata(self, file: PageFile, sha256: str) -> bytes:
        data = self.store.read_metadata(sha256)
        if data is not None:
            self.stats.add(metadata_hits=1)
            return data
        try:
            with self.store.metadata_lease(sha256, timeout=self.settings.timeout * 4):
                data = self.store.read_metadata(sha256)
                if data is not None:
                    self.stats.add(metadata_hits=1)
                    return data
                self.stats.add(metadata_misses=1)
                data = self._obtain_metadata(file, sha256)
                self.store.write_metadata(sha256, data)
                self._changed(file.filename)
                return data
        except TimeoutError as exc:
            raise _Unavailable(503, f"the metadata of {file.filename} is still being read") from exc

    def _check_metadata(self, file: PageFile, sha256: str) -> None:
        """A wheel just stored (its sha256 checked) has the last word on its METADATA: one
        read before with range requests, which nothing could check, or a PEP 658 file, is
        replaced when it differs from the wheel's own."""
        if not file.is_wheel:
            return
        stored = self.store.read_metadata(sha256)
        if stored is None:
            return
        try:
            own = self._metadata_from_stored(file, sha256)
        except _Unavailable as exc:
            logger.warning("cannot check the METADATA of %s: %s", file.filename, exc.reason)
            return
        if own != stored:
            logger.warning(
                "the METADATA upstream gave for %s is not the wheel's own; serving the wheel's",
                file.filename,
            )
            self.store.write_metadata(sha256, own)
            self._changed(file.filename)

    def _changed(self, filename: str) -> None:
        """A page listing ``filename`` now renders differently (its metadata hash is known)."""
        with contextlib.suppress(InvalidWheelFilename):
            project = str(parse_wheel_filename(filename)[0])
            self._generation[project] = self._generation.get(project, 0) + 1
            self.store.forget_rendered(project)
            self._rerender.add(project)

    def render_page(self, listing: _Listing, chosen: str) -> bytes:
        """The page of ``listing`` as ``chosen``, rendered once per version of what it shows."""
        stamp = None
        moment = self.guards.moment()
        if listing.local is None and listing.stamp is not None:
            stamp = (listing.stamp, self._generation.get(listing.project, 0), moment)
            cached = self._rendered.get((listing.project, chosen))
            if cached is not None and cached[0] == stamp:
                return cached[1]
        body = self._render(listing, chosen, moment)
        if stamp is not None:
            if len(self._rendered) >= _RENDERED_PAGES:
                self._rendered.pop(next(iter(self._rendered)), None)
            self._rendered[(listing.project, chosen)] = (stamp, body)
        return body

    def _render(self, listing: _Listing, chosen: str, moment: float | None = None) -> bytes:
        status: ProjectStatus = "active"
        reason = None
        if listing.local is None:  # the guards are on what comes from upstream
            shown, versions = self.guards.shown(
                listing.project, listing.files, listing.versions, listing.status, moment
            )
            listing = dataclasses.replace(listing, files=shown, versions=versions)
            status, reason = listing.status, listing.status_reason
        project = canonicalize_name(listing.project)
        url = f"/{INDEX_DIR}/{project}/"
        page = ProjectPage(
            project,
            url,
            tuple(self.listed(listing)),
            listing.versions,
            status=status,
            status_reason=reason,
        )
        return render_json(page) if chosen == JSON_TYPE else render_html(page)

    def _obtain_metadata(self, file: PageFile, sha256: str) -> bytes:
        if self.store.has_file(sha256):
            return self._metadata_from_stored(file, sha256)
        if self.settings.offline:
            raise _Unavailable(503, f"offline: the metadata of {file.filename} is not stored")
        if not file.core_metadata and file.size is not None and file.size <= _WHOLE_WHEEL:
            try:
                self.store.fetch_file(file, stall=self.settings.timeout)
            except (DownloadFailed, OSError) as exc:
                self.stats.add(errors=1)
                raise _Unavailable(502, f"cannot store {file.filename}: {exc}") from exc
            logger.info("read the metadata of %s (whole, %d bytes)", file.filename, file.size)
            return self._metadata_from_stored(file, sha256)

        def whole(response: urllib3.BaseHTTPResponse) -> bytes:
            # Upstream ignores ranges: this answer is the wheel, so store it (pip will want it
            # next) and read METADATA from the stored, verified file.
            self.store.download_from(file, response)
            return self._metadata_from_stored(file, sha256)

        try:
            got = fetch_wheel_metadata(
                self.client, file, timeout=self.settings.timeout, on_whole=whole
            )
        except (DownloadFailed, OSError) as exc:
            self.stats.add(errors=1)
            raise _Unavailable(502, f"cannot store {file.filename}: {exc}") from exc
        except UpstreamError as exc:
            self.stats.add(upstream_errors=1)
            raise _Unavailable(502, exc.message) from exc
        self.stats.add(upstream_requests=got.requests, upstream_bytes=got.bytes_read)
        logger.info("read the metadata of %s (%s)", file.filename, got.source)
        return got.data

    def _metadata_from_stored(self, file: PageFile, sha256: str) -> bytes:
        try:
            name, version, _, _ = parse_wheel_filename(file.filename)
            data = read_wheel_metadata(self.store.file_path(sha256), name, version)
        except (InvalidWheelFilename, OSError, zipfile.BadZipFile) as exc:
            raise _Unavailable(502, f"cannot read the wheel {file.filename}: {exc}") from exc
        if data is None:
            raise _Unavailable(502, f"the wheel {file.filename} has no METADATA")
        return data

    # -- files ----------------------------------------------------------------------------

    async def open_download(self, file: PageFile, sha256: str) -> tuple[int, bool]:
        """A descriptor of the stored file, or of the partial one a live download writes once
        it has bytes, and whether it is complete. Starts the download when nobody has.

        Waits on the event loop, not on a thread: a client waiting for a download costs no
        thread. Until the first bytes arrive a failure is still a 502 (``DownloadFailed``)
        before any header; after ``--timeout`` without them, a 504 (``_Unavailable``).
        """
        self.store.start_download(file)
        last_start = time.monotonic()
        # With a shared bucket, another proxy may hold the download's lease until it expires.
        waiting = self.settings.lease_timeout if self.settings.bucket else 0.0
        deadline = time.monotonic() + self.settings.timeout + waiting
        while True:
            opened = self.store.open_source(sha256)
            if opened is not None:
                fd, complete = opened
                if complete or os.fstat(fd).st_size > 0:
                    return fd, complete
                os.close(fd)  # nothing to send yet
            elif not self.store.download_active(sha256):
                reason = self.store.failure(sha256)
                if reason is not None:
                    raise DownloadFailed(reason)
                if time.monotonic() - last_start > 0.5:
                    # Another process held the lock and gave up (or died) before writing.
                    self.store.start_download(file)
                    last_start = time.monotonic()
            if time.monotonic() > deadline:
                self.stats.add(upstream_deadlines=1)
                timeout = self.settings.timeout
                raise _Unavailable(
                    504,
                    f"upstream did not answer for {file.filename} within --timeout {timeout:g} s",
                )
            await asyncio.sleep(0.01)


class _Follow:
    """Streams a file from the store while it is being downloaded into it.

    The last chunk is held back until the download is verified and in the store, so a
    client never receives a complete body whose hash did not match: it sees the connection
    close early instead. That is a broken transfer only where the client knows the length:
    with a Content-Length (upstream gave the size, or the file is stored), or chunked
    framing (HTTP/1.1). An HTTP/1.0 client without a Content-Length takes the end of the
    connection for the end of the body, so it gets the file only once it is verified.
    """

    def __init__(self, proxy: _Proxy, file: PageFile, sha256: str) -> None:
        self.proxy = proxy
        self.file = file
        self.sha256 = sha256

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxy, sha256 = self.proxy, self.sha256
        try:
            fd, complete = await proxy.open_download(self.file, sha256)
        except DownloadFailed as exc:
            await PlainTextResponse(f"{exc}\n", status_code=502)(scope, receive, send)
            return
        except _Unavailable as exc:
            await PlainTextResponse(f"{exc.reason}\n", exc.status)(scope, receive, send)
            return
        try:
            if not complete and self.file.size is None and scope.get("http_version") == "1.0":
                try:
                    complete = await self._verified(fd)
                except DownloadFailed as exc:
                    await PlainTextResponse(f"{exc}\n", status_code=502)(scope, receive, send)
                    return
            size = os.fstat(fd).st_size if complete else self.file.size
            headers = [(b"content-type", b"application/octet-stream")]
            if size is not None:
                headers.append((b"content-length", str(size).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            held = b""
            stall = proxy.settings.timeout * 2
            progress = time.monotonic()
            while True:
                chunk = os.read(fd, CHUNK)
                if chunk:
                    if held and scope["method"] != "HEAD":
                        await send({"type": "http.response.body", "body": held, "more_body": True})
                    held, progress = chunk, time.monotonic()
                    continue
                if complete:
                    break
                state = proxy.store.partial_state(fd, sha256)
                if state == "abandoned":  # thrown away after a mismatch, or its writer died
                    reason = proxy.store.failure(sha256) or "the download was abandoned"
                    logger.error("aborting %s: %s", self.file.filename, reason)
                    return  # without the last chunk and without ending the body
                if state == "complete":
                    complete = True
                    continue  # read what was written between our last read and the rename
                if time.monotonic() - progress > stall:
                    logger.error("aborting %s: the download stalled", self.file.filename)
                    return
                await asyncio.sleep(0.01)
            body = held if scope["method"] != "HEAD" else b""
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            os.close(fd)

    async def _verified(self, fd: int) -> bool:
        """Wait until the partial file open at ``fd`` is stored (its sha256 matched)."""
        progress = (os.fstat(fd).st_size, time.monotonic())
        while True:
            state = self.proxy.store.partial_state(fd, self.sha256)
            if state == "complete":
                return True
            if state == "abandoned":
                reason = self.proxy.store.failure(self.sha256) or "the download was abandoned"
                raise DownloadFailed(reason)
            size = os.fstat(fd).st_size
            if size != progress[0]:
                progress = (size, time.monotonic())
            elif time.monotonic() - progress[1] > self.proxy.settings.timeout * 2:
                raise DownloadFailed(f"the download of {self.file.filename} stalled")
            await asyncio.sleep(0.02)


def create_app(settings: ProxySettings) -> Starlette:
    """The proxy as an ASGI app (run it under uvicorn, or any ASGI server)."""
    for directory in settings.local:
        if not (directory / INDEX_DIR / HTML_PAGE).is_file():
            raise InvalidWheelhouseError(
                f"{str(directory)!r} has no package index ({INDEX_DIR}/{HTML_PAGE})",
                hint=f"write it with 'wheelhouse index {directory}'",
            )
    # anyio loads its asyncio backend when the first limiter is made: in the first request,
    # 25-30 ms of imports during which the event loop answered nothing (a cold uv run sends
    # its 41 page requests at once). Loaded here, before the proxy listens.
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")
    proxy = _Proxy(settings)

    async def root(request: Request) -> Response:
        return PlainTextResponse(f"see /{INDEX_DIR}/\n", 302, {"Location": f"/{INDEX_DIR}/"})

    async def index(request: Request) -> Response:
        chosen = negotiate(request.headers.get("accept"))
        if chosen is None:
            return PlainTextResponse(_ACCEPTABLE, 406, {"Vary": "Accept"})
        names: set[str] = set(await proxy.on_store(proxy.store.stored_projects))
        for directory in settings.local:
            names.update(p.parent.name for p in (directory / INDEX_DIR).glob(f"*/{JSON_PAGE}"))
        ordered = sorted(names)
        body = root_json(ordered) if chosen == JSON_TYPE else root_html(ordered)
        return served_page(request, Page.of(body), chosen)

    async def project_page(request: Request) -> Response:
        raw = request.path_params["project"]
        if not _valid_name(raw):
            return PlainTextResponse("not a valid project name\n", 404)
        project = canonicalize_name(raw)
        if project != raw or not request.url.path.endswith("/"):
            location = f"/{INDEX_DIR}/{quote(project)}/"
            return PlainTextResponse(f"see {location}\n", 301, {"Location": location})
        chosen = negotiate(request.headers.get("accept"))
        if chosen is None:
            return PlainTextResponse(_ACCEPTABLE, 406, {"Vary": "Accept"})
        try:
            served = await proxy.page(project, chosen)
        except _Unavailable as exc:
            if exc.status >= 500:
                proxy.stats.add(errors=1)
            return PlainTextResponse(f"{exc.reason}\n", exc.status)
        return served_page(request, served, chosen, proxy.rebase(request, chosen))

    async def file(request: Request) -> Response:
        raw = request.path_params["project"]
        sha256 = request.path_params["sha256"]
        filename = request.path_params["filename"]
        if not _valid_name(raw) or not _SHA256.fullmatch(sha256):
            return PlainTextResponse("not found\n", 404)
        if len(filename) > _MAX_FILENAME:
            return PlainTextResponse("not found\n", 404)
        return await serve_file(request, canonicalize_name(raw), sha256, filename)

    async def relayed_file(request: Request) -> Response:
        """A file a relayed page links by its path on upstream's file host: the path is only
        compared with the stored page's links, and the file found is served as by sha256."""
        raw = request.path_params["project"]
        path = request.path_params["path"]
        if not _valid_name(raw) or len(path) > _MAX_LINK or not _LINK_PATH.fullmatch(path):
            return PlainTextResponse("not found\n", 404)
        project = canonicalize_name(raw)
        suffix = next((s for s in (".metadata", PROVENANCE_SUFFIX) if path.endswith(s)), "")
        if proxy._local_dir(project) is not None:
            return PlainTextResponse("not found\n", 404)
        found = await proxy.linked(project, path.removesuffix(suffix))
        sha256 = found.sha256 if found is not None else None
        if found is None or sha256 is None or not _SHA256.fullmatch(sha256):
            return PlainTextResponse("not found\n", 404)
        return await serve_file(request, project, sha256, found.filename + suffix, found)

    async def serve_file(
        request: Request, project: str, sha256: str, filename: str, known: PageFile | None = None
    ) -> Response:
        """File ``sha256`` of ``project``'s page named ``filename`` (or its METADATA or
        provenance by their suffix); ``known``: its entry, already found on the page."""
        metadata = filename.endswith(".metadata")
        provenance = filename.endswith(PROVENANCE_SUFFIX)
        wanted = filename.removesuffix(".metadata" if metadata else PROVENANCE_SUFFIX)
        if proxy._local_dir(project) is None:
            try:  # the cooldown and a quarantine hold for stored files too
                await proxy.check_stored(project, sha256)
            except Refused as exc:
                return PlainTextResponse(f"{exc.reason}\n", exc.status)
            # Stored by content hash and checked before they were stored: a warm file or
            # METADATA needs no page (pip asks for both of every wheel it installs).
            if not metadata and not provenance and proxy.store.has_file(sha256):
                proxy.stats.add(file_hits=1)
                return stored_response(proxy.store.file_path(sha256), filename, request)
            if metadata and proxy.store.metadata_path(sha256).is_file():
                proxy.stats.add(metadata_hits=1)
                return stored_response(proxy.store.metadata_path(sha256), filename)
        listing = None
        stored = _Found(known) if known is not None else None
        stored = stored or await proxy.stored_file(project, sha256, wanted)
        if stored is not None:
            found = stored.file
        else:
            try:
                listing = await proxy.listing(project)
            except _Unavailable as exc:
                return PlainTextResponse(f"{exc.reason}\n", exc.status)
            found = proxy.find(listing, sha256, wanted)
        if found is None or (metadata and not found.is_wheel):
            return PlainTextResponse("not found\n", 404)
        if listing is not None and listing.local is None:  # a page fetched just now
            try:
                proxy.guards.check(project, found, listing.status, listing.status_reason)
            except Refused as exc:
                return PlainTextResponse(f"{exc.reason}\n", exc.status)
        if listing is not None and listing.local is not None:
            path = proxy.local_path(listing, found)
            if path is not None and (metadata or provenance):
                path = path.with_name(path.name + (".metadata" if metadata else PROVENANCE_SUFFIX))
            if path is None or not path.is_file():
                return PlainTextResponse("not found\n", 404)
            return stored_response(path, filename, request)
        if provenance:
            return await proxy.provenance(found, sha256)
        if metadata:
            try:
                task = proxy.flight(
                    f"metadata {sha256}", lambda: proxy.on_upstream(proxy.metadata, found, sha256)
                )
                data = await proxy.within_deadline(task, f"the metadata of {wanted}")
            except _Unavailable as exc:
                proxy.stats.add(errors=1)
                return PlainTextResponse(f"{exc.reason}\n", exc.status)
            proxy.rerender_soon()
            return Response(data, media_type="text/plain; charset=utf-8")
        if settings.offline:
            return PlainTextResponse(f"offline: {wanted} is not in the store\n", 503)
        proxy.stats.add(file_misses=1)
        return _FollowResponse(_Follow(proxy, found, sha256))

    osv = OsvEndpoint(
        lambda: load_checked(Path(settings.osv)) if settings.osv is not None else None,
        "this proxy answers no OSV query: it was given no snapshot (--osv)",
    )

    async def osv_query(request: Request) -> Response:
        return await osv(request.scope, request.receive)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                **proxy.stats.to_json(),
                "pid": os.getpid(),
                "uptime_seconds": round(time.time() - proxy.started, 3),
                "rss_bytes": rss_bytes(),
                "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        )

    routes = [
        Route("/", root),
        Route(f"/{INDEX_DIR}/", index),
        Route(f"/{INDEX_DIR}/{{project}}/", project_page),
        Route(f"/{INDEX_DIR}/{{project}}", project_page),
        Route(f"/files/{{project}}/{VIA}/{{path:path}}", relayed_file),
        Route("/files/{project}/{sha256}/{filename}", file),
        Route(QUERY_PATH, osv_query, methods=["POST"]),
        Route("/-/health", health),
        Route("/-/stats", stats),
    ]
    app = Starlette(routes=routes)
    app.state.proxy = proxy
    if settings.upload is not None:
        from wheelhouse.upload.app import UploadApp
        from wheelhouse.upload.settings import UploadSettings

        app.add_middleware(UploadApp, settings=UploadSettings.from_json(settings.upload))
    if settings.indexes:
        from wheelhouse.serve._mounts import Mounts
        from wheelhouse.serve.static import index_apps
        from wheelhouse.upload.settings import UploadSettings

        indexes = [UploadSettings.from_json(i) for i in settings.indexes]
        # Outermost: /<name>/... never reaches the proxy's routes or the root's rights.
        # uvicorn's access log has a line for every request here: the indexes log none.
        app.add_middleware(Mounts, mounts=index_apps(indexes, log_access=False))
    return app


class _FollowResponse(Response):
    def __init__(self, follow: _Follow) -> None:
        super().__init__()
        self._follow = follow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._follow(scope, receive, send)


def _valid_name(name: str) -> bool:
    """Whether ``name`` may be a project name: checked before it reaches the file system."""
    return len(name) <= _MAX_NAME and _PROJECT.fullmatch(name) is not None


def _absent(project: str) -> str:
    return f"{project} is on none of the upstream indexes"


def app_from_environment() -> Starlette:
    """The app for a worker process: settings come from ``$WHEELHOUSE_PROXY_SETTINGS``."""
    tame_malloc()
    # A worker is a new interpreter (uvicorn spawns them): it shares its DNS lookups as the
    # command line does, or the burst of connections of a cold start stalls 5 s on lookups
    # this machine's resolver drops.
    from wheelhouse._base._dns import share_dns_lookups

    share_dns_lookups()
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise UsageError(
            f"{SETTINGS_ENV} is not set", hint="start the proxy with 'wheelhouse serve'"
        )
    return create_app(ProxySettings.from_env(text))


def serve_proxy(
    settings: ProxySettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    workers: int = 1,
    limits: ServeLimits | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the proxy until SIGINT or SIGTERM; ``ready`` gets the index URL once listening."""
    tame_malloc()  # before the first thread starts
    settings.store.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)  # checks the settings before we listen, in every mode
    sock = bind(host, port)
    url = index_url(sock, INDEX_DIR)
    # uvicorn's own X-Forwarded-* handling is off: the app reads them itself, from the peers
    # --forwarded-allow-ips names, and needs to see who the peer is (uvicorn replaces it).
    common: dict[str, Any] = {"log_config": LOG_CONFIG, "limits": limits, "proxy_headers": False}
    with sock:
        if ready is not None:  # the caller says where it serves, once
            ready(url)
        else:
            logger.info("proxying %s at %s", settings.describe(), url)
        if workers <= 1:
            AsgiServer(app, sock, **common).run()
            return
        os.environ[SETTINGS_ENV] = settings.to_env()
        config = uvicorn.Config(
            "wheelhouse.serve.proxy:app_from_environment",
            factory=True,
            workers=workers,
            **uvicorn_options(**common),
        )
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
