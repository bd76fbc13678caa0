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
from wheelhouse.serve._upstream import UpstreamFile, fetch_provenance

if TYPE_CHECKING:
    from wheelhouse._base._http import HttpClient
    from wheelhouse.serve._store import Store

__all__ = ["BUCKET_SECONDS", "Guards", "Refused"]

logger = logging.getLogger(__name__)

# A duration's cutoff moves with the clock; pages are filtered once per bucket of this many
# seconds (a file shows up at most this late), so a warm page is still read from the rendering
# on disk instead of being filtered again per request.
BUCKET_SECONDS = 60.0
_STATUSES = 10_000  # projects whose stored status this process remembers
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
class _Status:
    version: str | None  # of the stored page it was read from; None: a bucket's page
    status: str
    reason: str | None
    until: float = 0.0  # a bucket's page: believed until then (time.monotonic())


class Guards:
    """The proxy's cooldown (None: none) and what it remembers of the projects' status."""

    def __init__(self, cooldown: Cooldown | None) -> None:
        self.cooldown = cooldown
        # Absolute cutoffs never move: one rendering serves every request.
        self._moving = cooldown is not None and (
            (cooldown.default is not None and cooldown.default.age is not None)
            or any(c.age is not None for _, c in cooldown.packages)
        )
        self._statuses: dict[str, _Status] = {}
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
    def _passes(cooldown: Cooldown, project: str, file: UpstreamFile) -> bool:
        try:
            verdict = cooldown.verdict(project, file.upload_time)
        except ValueError:  # the page reader refuses such pages; a stored one is not trusted
            return False
        return verdict == "ok" or (verdict == "unknown" and cooldown.no_upload_time == "keep")

    def shown(
        self,
        project: str,
        files: tuple[UpstreamFile, ...],
        versions: tuple[str, ...] | None,
        status: str,
        moment: float | None,
    ) -> tuple[tuple[UpstreamFile, ...], tuple[str, ...] | None]:
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

    def check(self, project: str, file: UpstreamFile, status: str, reason: str | None) -> None:
        """Raise ``Refused`` when the proxy must not serve ``file`` (nor its METADATA or
        provenance), even asked by URL and already stored."""
        if status == "quarantined":
            raise Refused(404, _quarantined(project, reason))
        moment = self.moment()
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

    def quarantined_now(self, store: Store, project: str) -> str | None:
        """Without a cooldown, the check a warm file needs, answered from what this process
        remembers (a stat of the stored page): the refusal, "" when the file may go, or
        None when the page must be read first (``check_stored`` on a thread)."""
        stamp = store.page_stamp(project)
        known = self._statuses.get(project)
        if known is None:
            return None
        if stamp is None and (known.version is not None or known.until < time.monotonic()):
            return None
        if stamp is not None and known.version != stamp.version:
            return None
        return _quarantined(project, known.reason) if known.status == "quarantined" else ""

    def check_stored(self, store: Store, project: str, sha256: str, filename: str) -> None:
        """``check`` for a file of ``project``'s stored page (nothing when none is stored:
        the page is fetched first, and checked then). Reads the page: not on the loop."""
        stamp = store.page_stamp(project)
        record = store.read_page(project)
        if record is None:
            return
        page = record.page
        version = stamp.version if stamp is not None else None
        until = time.monotonic() + _BUCKET_STATUS_SECONDS
        with self._lock:
            self._statuses.pop(project, None)  # the most recent last
            self._statuses[project] = _Status(version, page.status, page.status_reason, until)
            while len(self._statuses) > _STATUSES:
                self._statuses.pop(next(iter(self._statuses)))
        if page.status == "quarantined":
            raise Refused(404, _quarantined(project, page.status_reason))
        if self.cooldown is None:
            return
        found = store.find_file(project, sha256, filename)
        if found is not None:
            self.check(project, found, page.status, page.status_reason)

    # -- provenance -----------------------------------------------------------------------

    def provenance(
        self, store: Store, client: HttpClient, file: UpstreamFile, timeout: float, offline: bool
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
