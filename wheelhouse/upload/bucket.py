"""A private index shared by several servers through a bucket (``serve --store s3://``).

The bucket holds the truth; each server's directory is its own copy, which it brings up to
date before it answers a page. An upload is checked as ever; its bytes go up under their
sha256 (``files/<sha256>/<filename>``, so the loser of a race never overwrites the winner's
file); then it claims its name with a conditional write (``index/uploads/<filename>.json``,
if absent): of two uploads of one name, on any servers, exactly one wins and the other gets
409. A yank is an object of its own (``index/yanks/<filename>.json``), rewritten by each
change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wheelhouse._base.storage import Store
from wheelhouse.errors import UploadRefusedError, WheelhouseError
from wheelhouse.upload.checks import CheckedUpload
from wheelhouse.upload.store import PrivateIndex

__all__ = ["SharedIndex"]

logger = logging.getLogger(__name__)

_UPLOADS = "uploads/"
_YANKS = "yanks/"
_MAX_RECORD = 4 * 1024 * 1024  # a record holds the readme: bounded like METADATA


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """A bucket that cannot be read or written: 503 with the store's line, not a server
    error."""
    try:
        yield
    except UploadRefusedError:
        raise
    except WheelhouseError as exc:
        raise UploadRefusedError(503, f"the index's bucket cannot be used: {exc}") from exc


def _file_key(sha256: str, filename: str) -> str:
    return f"{sha256}/{filename}"


class SharedIndex:
    """``index`` (this server's copy) kept in step with the bucket: ``objects`` holds the
    records and yanks (listed at each sync), ``files`` the files (never listed)."""

    def __init__(self, index: PrivateIndex, objects: Store, files: Store) -> None:
        self.index = index
        self.objects = objects
        self.files = files
        self._lock = threading.Lock()
        self._synced_at = 0.0  # monotonic time a finished sync started
        self._yank_tags: dict[str, str | None] = {}  # yank object -> the version applied

    def upload(self, checked: CheckedUpload, path: Path, user: str) -> None:
        """Put the checked file at ``path`` in the bucket and claim its name (409 when
        another upload has it), then into this server's copy."""
        record = json.dumps({**dataclasses.asdict(checked), "user": user}).encode()
        with _unavailable():
            self.files.put_file(
                _file_key(checked.sha256, checked.filename), path, "application/octet-stream"
            )
            claimed = self.objects.put_bytes(
                f"{_UPLOADS}{checked.filename}.json", record, "application/json", if_absent=True
            )
        if not claimed:
            raise UploadRefusedError(409, f"file {checked.filename!r} already exists")
        self._add(checked, path, user)

    def yank(self, filename: str, reason: str | None, user: str) -> None:
        """Yank (or with ``reason`` None un-yank) on this copy, then for every server."""
        with _unavailable():
            self.sync()
        self.index.set_yanked(filename, reason, user)  # 404, 403 for another's file
        body = json.dumps({"yanked": reason}).encode()
        with _unavailable():
            self.objects.put_bytes(f"{_YANKS}{filename}.json", body, "application/json")

    def sync(self) -> None:
        """Bring this copy up to date with the bucket: what was uploaded or yanked on any
        server before this call is here when it returns."""
        arrived = time.monotonic()
        with self._lock:
            if self._synced_at > arrived:
                return  # a sync that started after this request came finished meanwhile
            started = time.monotonic()
            self._sync()
            self._synced_at = started

    def _sync(self) -> None:
        listing = self.objects.list()
        have = {r.filename for r in self.index.records()}
        for key in sorted(listing):
            if key.startswith(_UPLOADS) and key.endswith(".json"):
                filename = key[len(_UPLOADS) : -len(".json")]
                if filename not in have:
                    self._fetch(key)
        for key, info in sorted(listing.items()):
            if not (key.startswith(_YANKS) and key.endswith(".json")):
                continue
            # A store without ETags: applied again each time (a rewrite of equal pages).
            changed = info.etag is None or self._yank_tags.get(key) != info.etag
            if changed and self._apply_yank(key):
                self._yank_tags[key] = info.etag

    def _fetch(self, key: str) -> None:
        data = self.objects.get(key)
        if data is None or len(data) > _MAX_RECORD:
            return
        try:
            fields: dict[str, Any] = json.loads(data)
            user = str(fields.pop("user", "")) or None
            checked = CheckedUpload(**fields)
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning("the bucket's record %s is not one: %s", key, exc)
            return
        streamed = self.files.stream(_file_key(checked.sha256, checked.filename))
        if streamed is None:
            logger.warning("the bucket has the record of %s but not its file", checked.filename)
            return
        self.index.temp_dir.mkdir(parents=True, exist_ok=True)
        temp = self.index.temp_dir / f".sync-{os.urandom(8).hex()}.part"
        try:
            digest = hashlib.sha256()
            with open(temp, "xb") as out:
                for chunk in streamed.chunks:
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != checked.sha256:  # the bucket is trusted only so far
                logger.warning("%s in the bucket does not match its sha256", checked.filename)
                return
            self._add(checked, temp, user)
        finally:
            temp.unlink(missing_ok=True)

    def _add(self, checked: CheckedUpload, path: Path, user: str | None) -> None:
        try:
            self.index.add(checked, path, user)
        except UploadRefusedError as exc:
            # Another worker of this server (or a sync) put it here first: the same file.
            if exc.status != 409:
                raise

    def _apply_yank(self, key: str) -> bool:
        """Whether the yank object ``key`` is now applied to this copy."""
        data = self.objects.get(key)
        if data is None or len(data) > _MAX_RECORD:
            return False
        try:
            reason = json.loads(data).get("yanked")
        except (ValueError, AttributeError):
            return False
        filename = key[len(_YANKS) : -len(".json")]
        try:
            self.index.set_yanked(filename, None if reason is None else str(reason))
        except UploadRefusedError:  # not here (yet): a later sync applies it
            return False
        return True
