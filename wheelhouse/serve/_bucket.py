"""The proxy's store in a bucket that several proxies share (``serve --upstream --store s3://``).

The bucket is the truth that all instances see; each instance keeps a local copy (a plain
:class:`~wheelhouse.serve._store.Store` directory) of what it served, so that a file is read
from the bucket once per instance and streamed to clients from disk. Layout under the prefix::

    pages/<key>/<project>.json      what upstream said about a project (+ validators, time)
    files/<aa>/<sha256>             a file, verified against its sha256 before it got here
    upstream-metadata/<key>/<aa>/<sha256>
                                    the METADATA of the wheel <sha256> as the upstreams <key>
                                    gave it (never shared with others); ``.sha256`` beside it
    leases/files/<sha256>           held by the one instance downloading <sha256>
    leases/pages/<key>/<project>    held by the one instance asking upstream for a page
    leases/metadata/<key>/<sha256>  held by the one instance reading a wheel's METADATA

Single flight across instances: a lease object is created with a conditional write (S3's
``If-None-Match: *``); only its holder asks upstream, verifies the sha256, uploads the file
under its content key and deletes the lease. The others wait for the object. The holder
renews its lease (rewrites its time) every third of ``lease_timeout`` while it works, so a
download longer than the timeout keeps it; a lease older than ``lease_timeout`` belongs to an
instance that died: it is deleted and taken anew.

A file is streamed from the bucket into this instance's partial file, as a download from
upstream is, so its clients get bytes while it arrives and no object is held in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import urllib3

from wheelhouse._base._http import HttpClient
from wheelhouse._base.storage import Store as ObjectStore
from wheelhouse.download.stream import CHUNK, copy_into
from wheelhouse.errors import HashMismatchError, NetworkError
from wheelhouse.serve._store import DownloadFailed, PageHead, PageRecord, Stats, Store
from wheelhouse.simple.model import PageFile

__all__ = ["BucketStore"]

logger = logging.getLogger(__name__)

_POLL = 0.05  # the first wait for a lease or an object; it grows to _POLL_MAX
_POLL_MAX = 0.5
_PARSED_PAGES = 256  # parsed stored pages kept per process


class BucketStore(Store):
    """A :class:`Store` whose pages, files and metadata live in a shared bucket."""

    stamps_all_pages = False  # its pages are in the bucket: only read_page finds them

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
        self.lease_timeout = lease_timeout
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._bucket_pages: dict[str, tuple[str, PageRecord]] = {}

    # -- pages ----------------------------------------------------------------------------

    def _page_key(self, project: str) -> str:
        return f"pages/{self.key}/{project}.json"

    def read_page(self, project: str) -> PageRecord | None:
        # Parsed once per version of the object: a conditional GET (If-None-Match) answers
        # 304 while it is unchanged. Reading and parsing large pages on every request made
        # 30 cold clients over three proxies spend minutes of CPU.
        cached = self._bucket_pages.get(project)
        fetched = self.objects.get_changed(self._page_key(project), cached and cached[0])
        if fetched is None:
            self._bucket_pages.pop(project, None)
            return None
        if fetched.data is None and cached is not None:
            return cached[1]
        try:
            record = PageRecord.from_bytes(fetched.data or b"")
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the unreadable stored page of %s: %s", project, exc)
            return None
        if fetched.etag is not None:
            if len(self._bucket_pages) >= _PARSED_PAGES:
                self._bucket_pages.pop(next(iter(self._bucket_pages)), None)
            self._bucket_pages[project] = (fetched.etag, record)
        return record

    def write_page(self, record: PageRecord) -> None:
        data = record.to_bytes()
        self.objects.put_bytes(self._page_key(record.project), data, "application/json")

    def forget_page(self, project: str) -> None:
        self.objects.delete(self._page_key(project))

    def page_head(self, project: str) -> PageHead | None:
        record = self.read_page(project)  # the bucket's page (parsed once per version)
        return None if record is None else record.head_of

    def find_file(self, project: str, sha256: str, filename: str) -> PageFile | None:
        record = self.read_page(project)  # the bucket's page, not this instance's copy
        if record is None:
            return None
        return record.find(sha256, filename)

    def stored_projects(self) -> list[str]:
        base = f"pages/{self.key}/"
        return sorted(
            k[len(base) :].removesuffix(".json")
            for k in self.objects.list()
            if k.startswith(base) and k.endswith(".json")
        )

    @contextlib.contextmanager
    def page_lease(self, project: str, *, wait: bool) -> Iterator[bool]:
        with self._lease(f"leases/pages/{self.key}/{project}", wait=wait) as ours:
            yield ours

    # -- files ----------------------------------------------------------------------------

    @staticmethod
    def _file_key(sha256: str) -> str:
        return f"files/{sha256[:2]}/{sha256}"

    def _pull(self, file: PageFile, sha256: str) -> bool:
        """Stream the bucket's file ``sha256`` into this machine's store, if it is there and
        its bytes match. Called under the machine's file lock: the bytes go through the
        partial file, which this instance's clients follow as it grows (and see unlinked,
        never renamed into place, when the bytes do not match)."""
        key = self._file_key(sha256)
        try:
            streamed = self.objects.stream(key)
        except NetworkError as exc:
            logger.warning("cannot read %s from the bucket: %s", sha256, exc.message)
            return False
        if streamed is None:
            return False
        if file.size is not None and streamed.size != file.size:
            # Known wrong before any byte reaches a client.
            self.stats.add(hash_mismatches=1)
            logger.error("the bucket's %s has other bytes; not serving it", key)
            return False
        partial = self.partial_path(sha256)
        fd = self.create_partial(sha256)
        try:
            # Unbuffered: this instance's readers follow the partial file as it grows.
            with open(fd, "wb", buffering=0, closefd=False) as out:
                try:
                    received = copy_into(
                        streamed.chunks, out, url=self.objects.url + key, sha256=sha256
                    )
                except NetworkError as exc:
                    logger.warning("reading %s from the bucket failed: %s", sha256, exc.message)
                    partial.unlink(missing_ok=True)
                    return False
                except HashMismatchError:
                    # Never served: the object is not what its key promises (written by
                    # something else). Its readers here see the partial file unlinked.
                    self.stats.add(hash_mismatches=1)
                    logger.error("the bucket's %s has other bytes; not serving it", key)
                    partial.unlink(missing_ok=True)
                    return False
            os.fsync(fd)
            target = self.file_path(sha256)
            target.parent.mkdir(exist_ok=True)
            os.replace(partial, target)
            logger.info("read %s from the bucket (%d bytes)", sha256, received.size)
            self.stored(file, sha256)
            return True
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def _download_locked(
        self, file: PageFile, sha256: str, response: urllib3.BaseHTTPResponse | None = None
    ) -> None:
        # Called under this machine's file lock; the lease keeps the other machines out.
        lease = f"leases/files/{sha256}"
        try:
            pause = _POLL
            while True:
                if self._pull(file, sha256):  # in the bucket already, or it arrived while we waited
                    return
                with self._lease(lease, wait=False) as ours:
                    if ours:
                        if self._pull(file, sha256):  # it arrived while we took the lease
                            return
                        given, response = response, None
                        self._download_uploading(file, sha256, given)
                        return
                if response is not None:
                    response.release_conn()  # another instance downloads it
                    response = None
                time.sleep(pause)
                pause = min(pause * 1.5, _POLL_MAX)
        except NetworkError as exc:
            raise DownloadFailed(exc.message) from exc
        finally:
            if response is not None:
                response.release_conn()

    def _download_uploading(
        self, file: PageFile, sha256: str, response: urllib3.BaseHTTPResponse | None
    ) -> None:
        """Download ``file`` from upstream into this machine's store (verified, as on disk)
        while a second thread uploads the bytes already written, so the other instances wait
        for the download and the upload's last part, not for a whole second transfer. The
        upload completes only once the download is verified and renamed into place; otherwise
        it is aborted and no object appears."""
        done = threading.Event()  # the download ended, well or badly
        failed: list[BaseException] = []

        def upload() -> None:
            try:
                with self.objects.writer(self._file_key(sha256), "application/octet-stream") as out:
                    self._tail_partial(sha256, out.write, done)
            except BaseException as exc:
                failed.append(exc)

        uploader = threading.Thread(target=upload, name=f"upload {sha256[:12]}", daemon=True)
        uploader.start()
        try:
            super()._download_locked(file, sha256, response)
        finally:
            done.set()
            uploader.join()
        if failed:
            if isinstance(failed[0], NetworkError):
                raise failed[0]
            raise DownloadFailed(f"uploading {file.filename} failed: {failed[0]}")
        logger.info("uploaded %s to %s", file.filename, self.objects.url)

    def _tail_partial(
        self, sha256: str, write: Callable[[bytes], object], done: threading.Event
    ) -> None:
        """Pass the partial file's bytes to ``write`` as the download appends them; return
        once it is the verified file in the store, raise (aborting the upload) if it is not."""
        partial, final = self.partial_path(sha256), self.file_path(sha256)
        complete = False
        while True:  # the download creates the partial file first
            finished = done.is_set()
            with contextlib.suppress(FileNotFoundError):
                fd = os.open(partial, os.O_RDONLY)
                break
            if finished:
                # Renamed into place before we looked (a small file), or it never began.
                with contextlib.suppress(FileNotFoundError):
                    fd = os.open(final, os.O_RDONLY)
                    complete = True
                    break
                raise _NotStored(f"the download of {sha256} stored nothing")
            time.sleep(0.01)
        try:
            while True:
                chunk = os.read(fd, CHUNK)
                if chunk:
                    write(chunk)
                    continue
                if complete:
                    return
                finished = done.is_set()  # before looking: the rename happens before this
                info = os.fstat(fd)
                if info.st_nlink == 0:
                    raise _NotStored(f"the download of {sha256} was thrown away")
                with contextlib.suppress(FileNotFoundError):
                    stored = os.stat(final)
                    complete = (stored.st_ino, stored.st_dev) == (info.st_ino, info.st_dev)
                if complete:
                    continue  # read what was written between our last read and the rename
                if finished:
                    raise _NotStored(f"the download of {sha256} was not stored")
                time.sleep(0.01)
        finally:
            os.close(fd)

    # -- metadata -------------------------------------------------------------------------

    def _metadata_key(self, sha256: str) -> str:
        # Not "metadata/": that folder of older proxies mixed the METADATA of all upstreams.
        return f"upstream-metadata/{self.key}/{sha256[:2]}/{sha256}"

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
        with (
            super().metadata_lease(sha256, timeout=timeout),
            self._lease(f"leases/metadata/{self.key}/{sha256}", wait=True),
        ):
            yield

    # -- leases ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lease(self, lease: str, *, wait: bool) -> Iterator[bool]:
        """Hold ``lease`` (yields True), renewed while the block runs, deleted after it; or
        yields False when another instance holds it (after waiting for it, with ``wait``)."""
        token = self._acquire(lease, wait=wait)
        if token is None:
            yield False
            return
        done = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(lease, token, done), name=f"renew {lease}", daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            done.set()
            renewer.join()
            if self._holder(lease) == token:
                self.objects.delete(lease)

    def _acquire(self, lease: str, *, wait: bool) -> str | None:
        """Take ``lease`` (create-if-absent) and return its token; a lease older than the
        timeout is taken over. With ``wait``, poll until it is ours, or the timeout has passed
        twice: then None, and the caller goes on without it (a proxy that cannot reach
        agreement must still answer)."""
        deadline = time.monotonic() + self.lease_timeout * 2
        pause = _POLL
        while True:
            token = uuid.uuid4().hex
            if self.objects.put_bytes(lease, self._lease_body(token), _JSON, if_absent=True):
                return token
            held = self.objects.get(lease)
            if held is not None and self._stale(held) and self.objects.get(lease) == held:
                logger.warning("taking over the stale lease %s (%s)", lease, held.decode())
                self.objects.delete(lease)
                continue
            if not wait:
                return None
            if time.monotonic() > deadline:
                logger.warning("going on without the lease %s", lease)
                return None
            time.sleep(pause)
            pause = min(pause * 1.5, _POLL_MAX)

    def _renew(self, lease: str, token: str, done: threading.Event) -> None:
        """Rewrite the lease's time every third of the timeout until ``done``, while it is
        still ours: a long download must not look like a dead instance's."""
        while not done.wait(self.lease_timeout / 3):
            try:
                if self._holder(lease) != token:
                    logger.warning("lost the lease %s to another instance", lease)
                    return
                self.objects.put_bytes(lease, self._lease_body(token), _JSON)
            except NetworkError as exc:
                logger.warning("cannot renew the lease %s: %s", lease, exc.message)

    def _lease_body(self, token: str) -> bytes:
        return json.dumps({"owner": self._owner, "token": token, "taken": time.time()}).encode()

    def _holder(self, lease: str) -> str | None:
        """The token of whoever holds ``lease`` now (None: nobody, or unreadable)."""
        held = self.objects.get(lease)
        try:
            return str(json.loads(held)["token"]) if held is not None else None
        except (ValueError, KeyError, TypeError):
            return None

    def _stale(self, held: bytes) -> bool:
        try:
            taken = float(json.loads(held)["taken"])
        except (ValueError, KeyError, TypeError):
            return True
        return time.time() - taken > self.lease_timeout


_JSON = "application/json"


class _NotStored(Exception):
    """The download did not end with the verified file in the store: abort its upload."""
