"""Publishing a wheelhouse (or a mirror) as a static index in object storage, in a safe order.

A client that reads the store at any moment must never find a page that links an object that
is not there. So objects go up in ranks: distributions, then their PEP 658 metadata, then the
locks, then project pages, then the root pages and the manifest; objects the new manifest no
longer lists are deleted last, and only those an earlier publish wrote. What the store already
holds with the same bytes is not uploaded again: a listing gives each object's size and ETag,
compared with the MD5 of the local file (a single-part upload's ETag) or with the ETag the
store answered when this machine uploaded those bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from wheelhouse._base.files import write_atomic
from wheelhouse._base.storage import TEMP_SUFFIX, LocalStore, ObjectInfo, Store
from wheelhouse.errors import InvalidWheelhouseError, OutputDirError, TamperedError
from wheelhouse.house.contents import lock_names, open_wheelhouse
from wheelhouse.house.index import HTML_PAGE, INDEX_DIR, JSON_PAGE, index_files
from wheelhouse.house.manifest import MANIFEST_NAME, Manifest
from wheelhouse.simple.media import JSON_TYPE

__all__ = ["PublishPlan", "PublishResult", "plan_publish", "publish"]

logger = logging.getLogger(__name__)

Rank = Literal["dist", "metadata", "lock", "page", "root"]
_RANKS: tuple[Rank, ...] = ("dist", "metadata", "lock", "page", "root")


@dataclass(frozen=True)
class Upload:
    """One object to write: its key (relative to the store's prefix) and where its bytes are."""

    key: str
    path: Path
    size: int
    md5: str
    rank: Rank
    content_type: str


@dataclass(frozen=True)
class PublishPlan:
    """What a publish would do, from one listing of the store."""

    store_url: str
    uploads: tuple[Upload, ...]
    unchanged: int
    deletions: tuple[str, ...]

    @property
    def upload_bytes(self) -> int:
        return sum(u.size for u in self.uploads)


@dataclass
class PublishResult:
    """What a publish did."""

    plan: PublishPlan
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def plan_publish(directory: Path, store: Store, *, state_dir: Path | None = None) -> PublishPlan:
    """Compare the wheelhouse in ``directory`` with what ``store`` holds (one listing)."""
    return _plan(directory, store, _EtagMemory(state_dir, store.url))


def _plan(
    directory: Path, store: Store, known: _EtagMemory, hashes: _HashMemory | None = None
) -> PublishPlan:
    manifest = _verified_manifest(directory, hashes)
    local = _local_objects(directory, manifest, hashes)
    if isinstance(store, LocalStore) and store.root.exists() and not store.root.is_dir():
        raise OutputDirError(
            f"{str(store.root)!r} exists and is not a directory",
            path=store.root,
            hint="publish to a directory: file:///PATH",
        )
    remote = store.list()
    uploads = [u for u in local if not _same(u, remote.get(u.key), known)]
    extra = sorted(set(remote) - {u.key for u in local})
    replaced = [u.key for u in uploads if u.key in remote]
    if isinstance(store, LocalStore) and MANIFEST_NAME not in remote and (extra or replaced):
        # As build, unpack and mirror do: a directory that holds anything but what this very
        # publish writes (a killed first run of it) is someone's, and no place to publish.
        raise OutputDirError(
            f"{str(store.root)!r} is not empty and is not a published wheelhouse "
            f"(it has no {MANIFEST_NAME}); refusing to write into it",
            path=store.root,
            hint="publish to an empty or new directory, or to the one an earlier publish wrote",
        )
    deletions: tuple[str, ...] = ()
    if extra or replaced:
        # Only objects an earlier publish wrote may be replaced or go: read the manifest it
        # left (one GET, and only when the listing shows objects this one would change).
        ours = _written_by(store.get(MANIFEST_NAME))
        foreign = [key for key in replaced if key not in ours]
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise OutputDirError(
                f"publishing to {store.url} would replace {foreign[0]!r}{more}, which no earlier "
                "publish wrote; refusing to write into it",
                path=store.root if isinstance(store, LocalStore) else Path(store.url),
                hint="move that file away, or publish to another place",
            )
        deletions = tuple(key for key in extra if key in ours)
    return PublishPlan(store.url, tuple(uploads), len(local) - len(uploads), deletions)


def publish(
    directory: Path,
    store: Store,
    *,
    jobs: int = 8,
    state_dir: Path | None = None,
    on_upload: Callable[[str], None] | None = None,
    quick_check: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> PublishResult:
    """Make ``store`` serve the wheelhouse in ``directory``; see the module docstring for order.

    With ``quick_check`` (and a ``state_dir``), a file whose size, mtime and inode are those it
    had when this machine last hashed it is not read again (rsync's quick check): for a tree
    only wheelhouse writes, such as a mirror's working tree, where every file was verified as
    it was written and every write replaces the file.

    Two publishes to one ``file://`` store take turns (a lock file beside its directory; the
    second calls ``on_wait`` once and waits): the second then finds the first's objects in
    place. An S3 store has no such lock.
    """
    with _turn(store, on_wait):
        return _publish(directory, store, jobs, state_dir, on_upload, quick_check)


@contextlib.contextmanager
def _turn(store: Store, on_wait: Callable[[str], None] | None) -> Iterator[None]:
    """Hold the lock of a ``file://`` store for the whole publish (nothing for S3)."""
    if not isinstance(store, LocalStore):
        yield
        return
    import filelock

    root = store.root.absolute()
    path = root.parent / f".{root.name}.publish.lock"
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        # filelock retries forever on a lock file it cannot create: find that out first.
        path.touch(exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot write next to {str(root)!r}: {exc.strerror}",
            path=root,
            hint="publish to a directory whose parent you can write",
        ) from exc
    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if on_wait is not None:
            on_wait(f"waiting for another publish to {str(root)!r} to finish")
        lock.acquire()
    try:
        _remove_leftovers(root)
        yield
    finally:
        lock.release()


def _remove_leftovers(root: Path) -> None:
    """Remove the temporary files a killed publish left in ``root``: with the lock held, no
    other publish is writing one (only put_file's names, hidden, are touched)."""
    if not root.is_dir():
        return
    for path in root.rglob(f".*{TEMP_SUFFIX}"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()


def _publish(
    directory: Path,
    store: Store,
    jobs: int,
    state_dir: Path | None,
    on_upload: Callable[[str], None] | None,
    quick_check: bool,
) -> PublishResult:
    known = _EtagMemory(state_dir, store.url)
    hashes = _HashMemory(state_dir, directory) if quick_check and state_dir else None
    plan = _plan(directory, store, known, hashes)
    if hashes is not None:
        hashes.save()
    result = PublishResult(plan)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for rank in _RANKS:
            batch = [u for u in plan.uploads if u.rank == rank]
            # A rank is finished before the next starts: pages go up after what they link.
            for upload, etag in zip(batch, pool.map(lambda u: _put(store, u), batch), strict=True):
                known.remember(upload, etag)
                result.uploaded.append(upload.key)
                if on_upload is not None:
                    on_upload(upload.key)
        known.save()
        # Project pages before the files they linked: the new root no longer lists them.
        deletions = sorted(plan.deletions, key=lambda key: (not key.startswith(INDEX_DIR), key))
        for key in deletions:
            store.delete(key)
            result.deleted.append(key)
    logger.info(
        "published %s to %s: %d uploaded, %d unchanged, %d deleted",
        directory,
        store.url,
        len(result.uploaded),
        plan.unchanged,
        len(result.deleted),
    )
    return result


def _verified_manifest(directory: Path, hashes: _HashMemory | None = None) -> Manifest:
    from wheelhouse.house.verify import verify

    manifest = open_wheelhouse(directory)
    known = None
    if hashes is not None:
        known = {r.filename: d for r in manifest.files if (d := hashes.sha256(r.filename))}
    report = verify(directory, known=known)
    if hashes is not None:
        for check in report.files:
            if check.ok and check.actual_sha256 is not None:
                hashes.remember_sha256(check.filename, check.actual_sha256)
    # A user's own notes are no problem (and are not published): verify's rule, as pack's.
    problems = report.problems
    if problems:
        raise TamperedError(
            f"{str(directory)!r} does not verify, so it is not published: {problems[0].message}",
            hint=f"see 'wheelhouse verify {directory}', then rebuild it",
        )
    return manifest


def _local_objects(
    directory: Path, manifest: Manifest, hashes: _HashMemory | None = None
) -> list[Upload]:
    keys: dict[str, Rank] = {record.filename: "dist" for record in manifest.files}
    for relative in index_files(manifest):
        if not relative.startswith(f"{INDEX_DIR}/"):
            keys[relative] = "metadata"
        elif relative.count("/") == 1:
            keys[relative] = "root"
        else:
            keys[relative] = "page"
    for name in lock_names(manifest):
        # Only the locks the manifest's targets name: a user's requirements.foo.txt is a note.
        if (directory / name).is_file():
            keys[name] = "lock"
    keys[MANIFEST_NAME] = "root"
    return [_upload(directory / key, key, rank, hashes) for key, rank in sorted(keys.items())]


def _upload(path: Path, key: str, rank: Rank, hashes: _HashMemory | None = None) -> Upload:
    md5 = hashes.md5(key) if hashes is not None else None
    if md5 is None:
        with path.open("rb") as stream:
            md5 = hashlib.file_digest(stream, "md5").hexdigest()
        if hashes is not None:
            hashes.remember_md5(key, md5)
    return Upload(key, path, path.stat().st_size, md5, rank, content_type(key))


def content_type(key: str) -> str:
    """The Content-Type a static host should answer with for ``key``."""
    leaf = key.rsplit("/", 1)[-1]
    if key.startswith(f"{INDEX_DIR}/") and leaf == JSON_PAGE:
        return JSON_TYPE
    if leaf == HTML_PAGE:
        return "text/html; charset=utf-8"
    if leaf.endswith((".whl", ".zip")):
        return "application/zip"
    if leaf.endswith((".tar.gz", ".tgz")):
        # Not "Content-Encoding: gzip": clients must get the archive's bytes, unpacked by nobody.
        return "application/gzip"
    if leaf.endswith((".metadata", ".txt")):
        return "text/plain; charset=utf-8"
    if leaf.endswith(".toml"):
        return "application/toml"
    if leaf.endswith(".json"):
        return "application/json"
    return "application/octet-stream"


def _put(store: Store, upload: Upload) -> str | None:
    logger.debug("uploading %s (%d bytes)", upload.key, upload.size)
    return store.put_file(upload.key, upload.path, upload.content_type)


def _same(upload: Upload, remote: ObjectInfo | None, known: _EtagMemory) -> bool:
    if remote is None or remote.size != upload.size:
        return False
    if remote.etag is None:
        return False
    return remote.etag == upload.md5 or known.matches(upload, remote.etag)


def _written_by(manifest_bytes: bytes | None) -> set[str]:
    """The keys an earlier publish of the manifest ``manifest_bytes`` wrote."""
    if manifest_bytes is None:
        return set()
    try:
        manifest = Manifest.from_json(manifest_bytes.decode("utf-8"))
    except (UnicodeDecodeError, InvalidWheelhouseError):
        return set()
    keys = {record.filename for record in manifest.files}
    keys.update(index_files(manifest))
    keys.update(lock_names(manifest, both_forms=True))
    keys.add(MANIFEST_NAME)
    return keys


class _EtagMemory:
    """ETags the store answered for bytes this machine uploaded (stores whose ETag is no MD5)."""

    def __init__(self, state_dir: Path | None, store_url: str) -> None:
        self._path = None
        self._etags: dict[str, str] = {}
        if state_dir is None:
            return
        name = hashlib.sha256(store_url.encode()).hexdigest()[:16]
        self._path = state_dir / f"publish-{name}.json"
        try:
            self._etags = dict(json.loads(self._path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            self._etags = {}

    def matches(self, upload: Upload, etag: str) -> bool:
        return self._etags.get(f"{upload.key} {upload.md5}") == etag

    def remember(self, upload: Upload, etag: str | None) -> None:
        if etag is not None and etag != upload.md5:
            self._etags[f"{upload.key} {upload.md5}"] = etag

    def save(self) -> None:
        if self._path is None or not self._etags:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path, json.dumps(self._etags, sort_keys=True).encode())


class _HashMemory:
    """The sha256 and MD5 of the files of one directory as this machine last hashed them, by
    relative path and (size, mtime, inode): an unchanged file is not read again."""

    def __init__(self, state_dir: Path, directory: Path) -> None:
        name = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
        self._path = state_dir / f"hashes-{name}.json"
        self._directory = directory
        self._entries: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()
        try:
            loaded = json.loads(self._path.read_text(encoding="utf-8"))
            self._entries = {str(k): dict(v) for k, v in loaded.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            self._entries = {}

    def _stamp(self, key: str) -> list[int] | None:
        try:
            info = (self._directory / key).stat()
        except OSError:
            return None
        return [info.st_size, info.st_mtime_ns, info.st_ino]

    def _known(self, key: str, kind: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None or entry.get("stamp") != self._stamp(key):
            return None
        value = entry.get(kind)
        return value if isinstance(value, str) else None

    def sha256(self, key: str) -> str | None:
        return self._known(key, "sha256")

    def md5(self, key: str) -> str | None:
        return self._known(key, "md5")

    def _remember(self, key: str, kind: str, value: str) -> None:
        stamp = self._stamp(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.get("stamp") != stamp:
                entry = self._entries[key] = {"stamp": stamp}
            entry[kind] = value

    def remember_sha256(self, key: str, value: str) -> None:
        self._remember(key, "sha256", value)

    def remember_md5(self, key: str, value: str) -> None:
        self._remember(key, "md5", value)

    def save(self) -> None:
        present = {k: v for k, v in self._entries.items() if v.get("stamp") is not None}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path, json.dumps(present, sort_keys=True).encode())
