"""``wheelhouse mirror -o s3://...``: a mirror kept in object storage.

The mirror runs into a working tree under the cache, keyed by the store's URL, exactly as it
runs into a directory (every byte verified, crash-safe, incremental: the working tree keeps the
validators, the per-project state and the verified files between runs); then the tree is
published with :func:`wheelhouse.house.publish.publish`, which uploads only what changed, pages
after the files they link, the root last, and deletes what an earlier publish wrote and the new
manifest no longer lists, last. A run killed at any moment leaves the bucket as a consistent
earlier state (or partly between two consistent states, never a page linking a missing object),
and the rerun completes it. The cost is disk for the working tree: the size of the mirror.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from wheelhouse._base.files import write_atomic
from wheelhouse._base.progress import NullReporter, Reporter
from wheelhouse._base.storage import Store
from wheelhouse.errors import WheelhouseError
from wheelhouse.house.locations import cache_root
from wheelhouse.house.manifest import MANIFEST_NAME, MIRROR_STATE_DIR, read_manifest
from wheelhouse.house.publish import PublishResult, publish
from wheelhouse.mirror.run import MirrorSettings, MirrorSummary, mirror

__all__ = ["StoreMirrorResult", "mirror_to_store", "working_tree"]

logger = logging.getLogger(__name__)

_WORK = "mirror-stores"


@dataclass(frozen=True)
class StoreMirrorResult:
    """What the mirror did in its working tree, and what the publish did in the store."""

    summary: MirrorSummary
    work_dir: Path
    # None with --dry-run (the store is not touched).
    published: PublishResult | None


def working_tree(
    store: Store, *, endpoint_url: str | None = None, cache: Path | None = None
) -> Path:
    """The cache directory where the mirror for ``store`` keeps its working tree."""
    key = hashlib.sha256(f"{store.url} {endpoint_url or ''}".encode()).hexdigest()[:16]
    return cache_root(cache) / _WORK / key / "tree"


def _recover_manifest(store: Store, work: Path) -> None:
    """A working tree that is new or lost (a new machine, a cleared cache) starts from the
    bucket's manifest, so that the mirror adopts the projects and filters the bucket holds:
    otherwise its publish would delete every object the run did not name."""
    if (work / MIRROR_STATE_DIR).is_dir() or (work / MANIFEST_NAME).exists():
        return
    data = store.get(MANIFEST_NAME)
    if data is None:
        return
    work.mkdir(parents=True, exist_ok=True)
    write_atomic(work / MANIFEST_NAME, data)
    try:
        manifest = read_manifest(work)
    except WheelhouseError as exc:
        logger.warning("%s/%s cannot be read (%s); not adopted", store.url, MANIFEST_NAME, exc)
        manifest = None
    if manifest is None or manifest.kind != "mirror":
        (work / MANIFEST_NAME).unlink()
        return
    logger.info("%s: a new working tree adopts the bucket's manifest", store.url)


def mirror_to_store(
    settings: MirrorSettings,
    store: Store,
    *,
    endpoint_url: str | None = None,
    cache: Path | None = None,
    reporter: Reporter | None = None,
) -> StoreMirrorResult:
    """Bring the mirror in ``store`` up to date: mirror into the working tree, then publish it.

    ``settings.output`` is ignored: the working tree takes its place. Projects that fail are
    reported in the summary; the others are published (the tree is consistent either way).
    """
    report = reporter or NullReporter()
    work = working_tree(store, endpoint_url=endpoint_url, cache=cache)
    work.parent.mkdir(parents=True, exist_ok=True)
    if not settings.dry_run:
        _recover_manifest(store, work)
    summary = mirror(replace(settings, output=work), report)
    if settings.dry_run:
        return StoreMirrorResult(summary, work, None)
    from wheelhouse.house.directory import locked

    # Under the mirror's lock: another run into the same working tree waits until the tree
    # is in the store, and never changes it while it goes up.
    with locked(work, on_wait=report.note):
        report.stage(f"publishing to {store.url}")
        # Only what changed since the last run is hashed again: the mirror verified every
        # file it wrote, and replaces (never edits) a file it changes.
        result = publish(
            work,
            store,
            jobs=settings.jobs,
            state_dir=cache_root(cache) / "publish",
            quick_check=True,
        )
    return StoreMirrorResult(summary, work, result)
