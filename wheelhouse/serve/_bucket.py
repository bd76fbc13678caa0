"""The proxy's store in a bucket that several proxies share (``serve --upstream --store s3://``).

The bucket is the truth that all instances see; each instance keeps a local copy (a plain
:class:`~wheelhouse.serve._store.Store` directory) of what it served, so that a file is read
from the bucket once per instance and streamed to clients from disk. Layout under the prefix::

    pages/<key>/<project>.json      what upstream said about a project (+ validators, time)
    files/<aa>/<sha256>             a file, verified against its sha256 before it got here
    metadata/<aa>/<sha256>          the METADATA of the wheel <sha256>; ``.sha256`` beside it
    leases/files/<sha256>           held by the one instance downloading <sha256>
    leases/pages/<key>/<project>    held by the one instance asking upstream for a page

Single flight across instances: a lease object is created with a conditional write (S3's
``If-None-Match: *``); only its holder asks upstream, verifies the sha256, uploads the file
under its content key and deletes the lease. The others wait for the object. A lease older
than ``lease_timeout`` belongs to an instance that died: it is deleted and taken anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import urllib3

from wheelhouse._base._http import HttpClient
from wheelhouse._base.files import write_atomic
from wheelhouse._base.storage import Store as ObjectStore
from wheelhouse.errors import NetworkError
from wheelhouse.serve._store import DownloadFailed, PageRecord, Stats, Store
from wheelhouse.serve._upstream import UpstreamFile

__all__ = ["BucketStore"]

logger = logging.getLogger(__name__)

_POLL = 0.1


class BucketStore(Store):
    """A :class:`Store` whose pages, files and metadata live in a shared bucket."""

    def __init__(
        self,
        root: Path,
        key: str,
        client: HttpClient,
        stats: Stats,
        timeout: float,
        *,
        objects: ObjectStore,
        lease_timeout: float,
    ) -> None:
        super().__init__(root, key, client, stats, timeout)
        self.objects = objects
        self.key = key
        self.lease_timeout = lease_timeout
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    # -- pages ----------------------------------------------------------------------------

    def _page_key(self, project: str) -> str:
        return f"pages/{self.key}/{project}.json"

    def read_page(self, project: str) -> PageRecord | None:
        data = self.objects.get(self._page_key(project))
        if data is None:
            return None
        try:
            return PageRecord.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
            return None

    def write_page(self, record: PageRecord) -> None:
        data = json.dumps(record.to_json(), separators=(",", ":")).encode()
        self.objects.put_bytes(self._page_key(record.project), data, "application/json")

    def forget_page(self, project: str) -> None:
        self.objects.delete(self._page_key(project))

    def stored_projects(self) -> list[str]:
        base = f"pages/{self.key}/"
        return sorted(
            k[len(base) :].removesuffix(".json")
            for k in self.objects.list()
            if k.startswith(base) and k.endswith(".json")
        )

    @contextlib.contextmanager
    def page_lease(self, project: str, *, wait: bool) -> Iterator[bool]:
        lease = f"leases/pages/{self.key}/{project}"
        ours = self._acquire(lease, wait=wait)
        try:
            yield ours
        finally:
            if ours:
                self.objects.delete(lease)

    # -- files ----------------------------------------------------------------------------

    @staticmethod
    def _file_key(sha256: str) -> str:
        return f"files/{sha256[:2]}/{sha256}"

    def has_file(self, sha256: str) -> bool:
        return super().has_file(sha256) or self._pull(sha256)

    def _pull(self, sha256: str) -> bool:
        """Copy the bucket's file ``sha256`` here, if it is there and its bytes match."""
        try:
            data = self.objects.get(self._file_key(sha256))
        except NetworkError as exc:
            logger.warning("cannot read %s from the bucket: %s", sha256, exc.message)
            return False
        if data is None:
            return False
        if hashlib.sha256(data).hexdigest() != sha256:
            # Never served: the object is not what its key promises (written by something else).
            self.stats.add(hash_mismatches=1)
            logger.error("the bucket's %s has other bytes; not serving it", self._file_key(sha256))
            return False
        target = self.file_path(sha256)
        target.parent.mkdir(exist_ok=True)
        write_atomic(target, data)
        return True

    def _download_locked(
        self, file: UpstreamFile, sha256: str, response: urllib3.BaseHTTPResponse | None = None
    ) -> None:
        # Called under this machine's file lock; the lease keeps the other machines out.
        lease = f"leases/files/{sha256}"
        try:
            while not self._acquire(lease, wait=False):
                if response is not None:
                    response.release_conn()  # another instance downloads it
                    response = None
                if self._pull(sha256):
                    return
                time.sleep(_POLL)
            try:
                if self._pull(sha256):  # it arrived while we took the lease
                    return
                super()._download_locked(file, sha256, response)
                response = None
                self.objects.put_file(
                    self._file_key(sha256), self.file_path(sha256), "application/octet-stream"
                )
                logger.info("uploaded %s to %s", file.filename, self.objects.url)
            finally:
                self.objects.delete(lease)
        except NetworkError as exc:
            raise DownloadFailed(exc.message) from exc
        finally:
            if response is not None:
                response.release_conn()

    # -- metadata -------------------------------------------------------------------------

    @staticmethod
    def _metadata_key(sha256: str) -> str:
        return f"metadata/{sha256[:2]}/{sha256}"

    def read_metadata(self, sha256: str) -> bytes | None:
        data = super().read_metadata(sha256)
        if data is not None:
            return data
        digest = self._bucket_metadata_sha256(sha256)
        if digest is None:
            return None
        data = self.objects.get(self._metadata_key(sha256))
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            return None
        super().write_metadata(sha256, data)
        return data

    def metadata_sha256(self, sha256: str) -> str | None:
        known = super().metadata_sha256(sha256)
        if known is not None:
            return known
        digest = self._bucket_metadata_sha256(sha256)
        if digest is not None:
            self._metadata_hashes[sha256] = digest
        return digest

    def _bucket_metadata_sha256(self, sha256: str) -> str | None:
        data = self.objects.get(self._metadata_key(sha256) + ".sha256")
        return data.decode().strip() if data is not None else None

    def write_metadata(self, sha256: str, data: bytes) -> str:
        digest = super().write_metadata(sha256, data)
        key = self._metadata_key(sha256)
        # The data first: an instance that finds the hash finds the bytes it names.
        self.objects.put_bytes(key, data, "text/plain; charset=utf-8")
        self.objects.put_bytes(key + ".sha256", digest.encode(), "text/plain")
        return digest

    @contextlib.contextmanager
    def metadata_lease(self, sha256: str, *, timeout: float) -> Iterator[None]:
        # This machine's lock, then the bucket's lease: one instance reads it upstream.
        with super().metadata_lease(sha256, timeout=timeout):
            lease = f"leases/metadata/{sha256}"
            ours = self._acquire(lease, wait=True)
            try:
                yield
            finally:
                if ours:
                    self.objects.delete(lease)

    # -- leases ---------------------------------------------------------------------------

    def _acquire(self, lease: str, *, wait: bool) -> bool:
        """Take ``lease`` (create-if-absent); a lease older than the timeout is taken over.
        With ``wait``, poll until it is ours, or the timeout has passed twice: then False, and
        the caller goes on without it (a proxy that cannot reach agreement must still answer)."""
        deadline = time.monotonic() + self.lease_timeout * 2
        while True:
            body = json.dumps({"owner": self._owner, "taken": time.time()}).encode()
            if self.objects.put_bytes(lease, body, "application/json", if_absent=True):
                return True
            held = self.objects.get(lease)
            if held is not None and self._stale(held) and self.objects.get(lease) == held:
                logger.warning("taking over the stale lease %s (%s)", lease, held.decode())
                self.objects.delete(lease)
                continue
            if not wait:
                return False
            if time.monotonic() > deadline:
                logger.warning("going on without the lease %s", lease)
                return False
            time.sleep(_POLL)

    def _stale(self, held: bytes) -> bool:
        try:
            taken = float(json.loads(held)["taken"])
        except (ValueError, KeyError, TypeError):
            return True
        return time.time() - taken > self.lease_timeout
