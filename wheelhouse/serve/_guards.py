"""What the caching proxy lets through (issue 26): the release cooldown applied server-side,
PEP 792 project status passed on (a quarantined project offers no files), and PEP 740
provenance fetched once into the store. Works on the page dataclasses; proxy.py calls it."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse._base.cooldown import Cooldown
from wheelhouse._base.files import write_atomic
from wheelhouse.provenance.fetch import fetch_provenance
from wheelhouse.simple import PageFile

if TYPE_CHECKING:
    from wheelhouse._base._http import HttpClient
    from wheelhouse.serve._store import Store

__all__ = ["BUCKET_SECONDS", "Guards", "Refused"]

logger = logging.getLogger(__name__)

# A duration's cutoff moves with the clock; pages are filtered once per bucket of this many
# seconds (a file shows up at most this late), so a warm page is still read from the rendering
# on disk instead of being filtered again per request.
BUCKET_SECONDS = 60.0
_KNOWN = 10_000  # projects whose stored page's verdicts this process remembers
# A store whose pages live in a bucket has no cheap version of a page to compare: what it
# said of a project's status is believed this long, not asked again per file.
_BUCKET_STATUS_SECONDS = 60.0


class Refused(Exception):
    """Answer 404 (or 503 offline) with the one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Known:
    """What the guards said of the files of one stored page, as of one cutoff moment."""

    version: str | None  # of the stored page it was read from; None: a bucket's page
    moment: float | None
    until: float  # a bucket's page: believed until then (time.monotonic())
    quarantine: str | None  # the refusal of every file, or None
    refused: dict[str, str]  # sha256 -> the cooldown's refusal


class Guards:
    """The proxy's cooldown (None: none) and what it remembers of the projects' status."""

    def __init__(self, cooldown: Cooldown | None) -> None:
        self.cooldown = cooldown
        # Absolute cutoffs never move: one rendering serves every request.
        self._moving = cooldown is not None and (
            (cooldown.default is not None and cooldown.default.age is not None)
            or any(c.age is not None for _, c in cooldown.packages)
        )
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_options(
        cls, exclude_newer: str | None, packages: Sequence[str], no_upload_time: str
    ) -> Guards:
        return cls(Cooldown.from_options(exclude_newer, packages, no_upload_time))

    # -- the cooldown ---------------------------------------------------------------------

    def moment(self, now: float | None = None) -> float | None:
        """The "now" a request at ``now`` is filtered with (the start of its bucket); None
        without a cooldown. Pages rendered with the same moment are the same."""
        if self.cooldown is None:
            return None
        if not self._moving:
            return 0.0
        now = time.time() if now is None else now
        return now - now % BUCKET_SECONDS

    def version(self, version: str, moment: float | None) -> str:
        """The name of a stored page's rendering ``version`` filtered as of ``moment``."""
        return version if moment is None else f"{version}-c{int(moment):x}"

    def _at(self, moment: float) -> Cooldown:
        assert self.cooldown is not None
        return dataclasses.replace(self.cooldown, now=datetime.fromtimestamp(moment, UTC))

    @staticmethod
    def _passes(cooldown: Cooldown, project: str, file: PageFile) -> bool:
        try:
            verdict = cooldown.verdict(project, file.upload_time)
        except ValueError:  # the page reader refuses such pages; a stored one is not trusted
            return False
        return verdict == "ok" or (verdict == "unknown" and cooldown.no_upload_time == "keep")

    def shown(
        self,
        project: str,
        files: tuple[PageFile, ...],
        versions: tuple[str, ...] | None,
        status: str,
        moment: float | None,
    ) -> tuple[tuple[PageFile, ...], tuple[str, ...] | None]:
        """The files and PEP 700 versions an upstream page shows through the proxy: none of a
        quarantined project; none newer than the cutoff, the versions then recomputed from
        the files kept (None: the renderer computes them)."""
        if status == "quarantined":
            return (), ()
        if moment is None:
            return files, versions
        cooldown = self._at(moment)
        kept = tuple(f for f in files if self._passes(cooldown, project, f))
        return (files, versions) if len(kept) == len(files) else (kept, None)

    # -- one file -------------------------------------------------------------------------

    def check(
        self,
        project: str,
        file: PageFile,
        status: str,
        reason: str | None,
        moment: float | None = None,
    ) -> None:
        """Raise ``Refused`` when the proxy must not serve ``file`` (nor its METADATA or
        provenance), even asked by URL and already stored."""
        if status == "quarantined":
            raise Refused(404, _quarantined(project, reason))
        moment = self.moment() if moment is None else moment
        if moment is None:
            return
        cooldown = self._at(moment)
        if self._passes(cooldown, project, file):
            return
        if file.upload_time is None:
            raise Refused(
                404,
                f"{file.filename} has no upload time and the proxy's cooldown "
                "(--no-upload-time refuse) serves no such file",
            )
        raise Refused(
            404,
            f"{file.filename} was uploaded at {file.upload_time}, after the proxy's cooldown "
            f"cutoff {cooldown.describe(project)} (--exclude-newer)",
        )

    def known_refusal(self, store: Store, project: str, sha256: str) -> str | None:
        """The check a warm file needs, from what this process remembers of ``project``'s
        stored page (a stat, no thread): the refusal, "" when the file may go, or None when
        the page must be read first (``check_stored``, on a thread)."""
        known = self._known.get(project)
        if known is None or known.moment != self.moment():
            return None
        stamp = store.page_stamp(project)
        if stamp is None:
            if known.version is not None or known.until < time.monotonic():
                return None
        elif known.version != stamp.version:
            return None
        return known.quarantine or known.refused.get(sha256, "")

    def check_stored(self, store: Store, project: str, sha256: str) -> None:
        """``check`` for the file ``sha256`` of ``project``'s stored page, remembered for the
        whole page (nothing when no page is stored: it is fetched first, and checked then).
        Reads the page: not on the event loop."""
        stamp = store.page_stamp(project)
        moment = self.moment()
        quarantine = None
        refused: dict[str, str] = {}
        if moment is None:
            # No cooldown: the status is all there is to check, and the page's first line
            # says it (a cold uv run asks for a file of 41 pages at once, 43,000 files).
            head = store.page_head(project)
            if head is None:
                return
            if head.status == "quarantined":
                quarantine = _quarantined(project, head.status_reason)
        else:
            record = store.read_page(project)
            if record is None:
                return
            page = record.page
            if page.status == "quarantined":
                quarantine = _quarantined(project, page.status_reason)
            else:
                refused = self._refusals(
                    project, page.files, page.status, page.status_reason, moment
                )
        known = _Known(
            stamp.version if stamp is not None else None,
            moment,
            time.monotonic() + _BUCKET_STATUS_SECONDS,
            quarantine,
            refused,
        )
        with self._lock:
            self._known.pop(project, None)  # the most recent last
            self._known[project] = known
            while len(self._known) > _KNOWN:
                self._known.pop(next(iter(self._known)))
        reason = quarantine or refused.get(sha256)
        if reason:
            raise Refused(404, reason)

    def _refusals(
        self,
        project: str,
        files: tuple[PageFile, ...],
        status: str,
        reason: str | None,
        moment: float,
    ) -> dict[str, str]:
        """sha256 -> why the cooldown refuses it, for the files of a page it refuses."""
        refused: dict[str, str] = {}
        for file in files:
            try:
                self.check(project, file, status, reason, moment)
            except Refused as exc:
                if file.sha256 is not None:
                    refused[file.sha256] = exc.reason
        return refused

    # -- provenance -----------------------------------------------------------------------

    def provenance(
        self, store: Store, client: HttpClient, file: PageFile, timeout: float, offline: bool
    ) -> bytes:
        """``file``'s PEP 740 provenance object: from the store, else fetched once from the
        URL its page gives, checked against its name and sha256, and kept by its sha256."""
        sha256 = file.sha256
        assert sha256 is not None and file.provenance is not None
        path = provenance_path(store, sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        if offline:
            raise Refused(503, f"offline: the provenance of {file.filename} is not stored")
        data = fetch_provenance(client, file, timeout=timeout)  # UpstreamError: a 502
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        logger.info("stored the provenance of %s", file.filename)
        return data


def provenance_path(store: Store, sha256: str) -> Path:
    """Where the store keeps the provenance of the file ``sha256`` (any upstream's)."""
    return store.root / "provenance" / sha256[:2] / sha256


def _quarantined(project: str, reason: str | None) -> str:
    # One line: the reason is upstream's text (at most 1 KiB, as the page reader keeps it).
    why = f": {' '.join(reason.split())}" if reason else ""
    return f"{project} is quarantined upstream (PEP 792), so its files are not served{why}"
