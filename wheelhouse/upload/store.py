"""A private index on disk: a wheelhouse directory that uploads are added to, one at a time.

The directory is an ordinary wheelhouse (a ``wheelhouse.json`` manifest, the files, a
``simple/`` index with PEP 658 metadata), so ``wheelhouse serve DIR`` and the proxy's local
wheelhouses serve it as they serve any other. An upload takes the index's lock, refuses a
file name that exists, hard-links the checked file into place (which fails if the name was
taken meanwhile), and rewrites the manifest and the index pages, each atomically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sqlite3
from datetime import UTC, datetime
from email.parser import BytesParser
from pathlib import Path

import filelock
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse._base.files import write_atomic
from wheelhouse.errors import UploadRefusedError, UsageError
from wheelhouse.house.index import (
    HTML_PAGE,
    INDEX_DIR,
    JSON_PAGE,
    METADATA_SUFFIX,
    render_index,
    render_project,
    render_root,
    write_if_changed,
)
from wheelhouse.house.manifest import (
    GENERATOR,
    MANIFEST_NAME,
    Downloaded,
    FileRecord,
    Inputs,
    Manifest,
    Sha256,
    read_manifest,
)
from wheelhouse.upload.catalog import Catalog
from wheelhouse.upload.checks import CheckedUpload

__all__ = ["UPLOAD_SOURCE", "PrivateIndex"]

logger = logging.getLogger(__name__)

# The origin's "source" of an uploaded file in the manifest.
UPLOAD_SOURCE = "upload"
_LOCK_NAME = ".upload.lock"
_OWNERS_NAME = ".uploaders.json"  # filename -> the user who uploaded it (yanks are theirs)
_RESERVED_NAME = ".reserved.json"  # names reserved before any upload
# PEP 508's name, as the Simple API's project pages accept it.
_PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
_TEMP_DIR = ".upload-tmp"
_LOCK_TIMEOUT = 60.0
_MAX_METADATA = 4 * 1024 * 1024  # seconds an upload waits for another to be written


class PrivateIndex:
    """The private index in ``root``; created (empty) when it does not exist."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp_dir = root / _TEMP_DIR
        self.catalog = Catalog(root)
        self._cached: tuple[tuple[int, int, int], Manifest] | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(exist_ok=True)
        with self._lock():
            if read_manifest(root) is None:
                self._publish(_empty_manifest())
            if not self.catalog.path.exists():
                self._fill_catalog()

    def _fill_catalog(self) -> None:
        """The catalog of an index that has none (made before it, or removed): each project's
        summary and readme from the METADATA of its newest wheel."""
        newest: dict[str, FileRecord] = {}
        for record in self._manifest().files:
            if record.kind != "wheel":
                continue
            known = newest.get(record.name)
            if known is None or _version_key(record.version) > _version_key(known.version):
                newest[record.name] = record
        for name, record in sorted(newest.items()):
            try:
                metadata = (self.root / (record.filename + METADATA_SUFFIX)).read_bytes()
            except OSError:
                continue
            headers = BytesParser().parsebytes(metadata[:_MAX_METADATA])
            summary = str(headers.get("Summary", "")).strip() or None
            kind = str(headers.get("Description-Content-Type", "")).strip() or None
            body = headers.get_payload()
            description = body if isinstance(body, str) and body.strip() else None
            self.catalog.put(name, summary, description, kind)

    def _lock(self) -> filelock.BaseFileLock:
        # Not a singleton: each upload in each worker takes the lock for itself.
        return filelock.FileLock(self.root / _LOCK_NAME, timeout=_LOCK_TIMEOUT, is_singleton=False)

    def has_project(self, name: str) -> bool:
        """Whether the private index has (or had) files of the project ``name``."""
        return (self.root / INDEX_DIR / canonicalize_name(name) / JSON_PAGE).is_file()

    def add(self, upload: CheckedUpload, temp: Path, user: str | None = None) -> None:
        """Link the checked file at ``temp`` into the index as ``upload.filename``.

        409 when a file of that name exists (files are immutable); ``temp`` is left to the
        caller either way.
        """
        target = self.root / upload.filename
        try:
            lock = self._lock()
            lock.acquire()
        except filelock.Timeout as exc:
            raise UploadRefusedError(503, "the index is busy; try again") from exc
        try:
            manifest = self._manifest()
            if any(r.filename == upload.filename for r in manifest.files):
                raise UploadRefusedError(409, f"file {upload.filename!r} already exists")
            os.chmod(temp, 0o644)
            try:
                os.link(temp, target)  # fails if the name is taken: never replaces a file
            except FileExistsError as exc:
                raise UploadRefusedError(409, f"file {upload.filename!r} already exists") from exc
            record = FileRecord(
                name=upload.name,
                version=upload.version,
                filename=upload.filename,
                sha256=Sha256(upload.sha256),
                size=upload.size,
                kind=upload.kind,
                origin=Downloaded(url="", source=UPLOAD_SOURCE),
                requires_python=upload.requires_python,
            )
            try:
                if user is not None:
                    owners = self._owners()
                    owners[upload.filename] = user
                    write_atomic(self.root / _OWNERS_NAME, _json(owners), fsync=True)
                files = (*manifest.files, record)
                self._publish(dataclasses.replace(manifest, files=files), {upload.name})
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            try:
                self.catalog.put(
                    upload.name, upload.summary, upload.description, upload.description_type
                )
            except sqlite3.Error as exc:  # the index has the file; only the browse page lags
                logger.warning("cannot update the catalog of %s: %s", self.root, exc)
        finally:
            lock.release()
        logger.info(
            "uploaded %s (%d bytes, sha256 %s)", upload.filename, upload.size, upload.sha256
        )

    def set_yanked(self, filename: str, reason: str | None, user: str | None = None) -> FileRecord:
        """Yank (``reason`` a string, maybe empty) or un-yank (None) one file (PEP 592).

        Given ``user``, only a file that user uploaded (403 otherwise); without, any file
        (the server's owner, at its directory).
        """
        with self._lock():
            manifest = self._manifest()
            for record in manifest.files:
                if record.filename == filename:
                    break
            else:
                raise UploadRefusedError(404, f"no file {filename!r} on this index")
            owner = self._owners().get(filename)
            if user is not None and owner != user:
                raise UploadRefusedError(
                    403, f"{filename!r} was not uploaded by {user!r}: only its uploader yanks it"
                )
            changed = dataclasses.replace(record, yanked=reason)
            files = tuple(changed if r.filename == filename else r for r in manifest.files)
            self._publish(dataclasses.replace(manifest, files=files), {record.name})
        return changed

    def reserved(self) -> set[NormalizedName]:
        """The names reserved on this index (kept from upstream before any upload)."""
        try:
            data = json.loads((self.root / _RESERVED_NAME).read_bytes())
        except FileNotFoundError:
            return set()
        return {canonicalize_name(str(n)) for n in data} if isinstance(data, list) else set()

    def reserve(self, name: str) -> NormalizedName:
        """Reserve ``name``: from now on it is this index's, with or without files."""
        if not _PROJECT.fullmatch(name):
            raise UsageError(f"{name!r} is not a valid project name")
        wanted = canonicalize_name(name)
        with self._lock():
            names = sorted(self.reserved() | {wanted})
            write_atomic(self.root / _RESERVED_NAME, _json_list(names), fsync=True)
            self._publish(self._manifest(), {wanted})
        return wanted

    def records(self) -> tuple[FileRecord, ...]:
        """Every file of the index."""
        return self._read_manifest().files

    def files_of(self, name: str) -> list[FileRecord]:
        """The files of project ``name`` on this index."""
        wanted: NormalizedName = canonicalize_name(name)
        return [r for r in self._read_manifest().files if r.name == wanted]

    def _read_manifest(self) -> Manifest:
        """The manifest for the pages, parsed again only when it was replaced (it always is
        replaced, never written in place): parsing 5,000 projects' manifest took 40 ms, a
        page's whole budget. Writers under the lock read it afresh (``_manifest``)."""
        try:
            found = os.stat(self.root / MANIFEST_NAME)
        except FileNotFoundError:
            return _empty_manifest()
        key = (found.st_ino, found.st_size, found.st_mtime_ns)
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        manifest = self._manifest()
        self._cached = (key, manifest)
        return manifest

    def _owners(self) -> dict[str, str]:
        try:
            data = json.loads((self.root / _OWNERS_NAME).read_bytes())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _manifest(self) -> Manifest:
        manifest = read_manifest(self.root)
        return manifest if manifest is not None else _empty_manifest()

    def _publish(self, manifest: Manifest, changed: set[NormalizedName] | None = None) -> None:
        """Write the pages of ``manifest`` (those of the ``changed`` projects and the root,
        or all), then the manifest."""
        # The pages (and PEP 658 files) first, then the manifest that vouches for them: a
        # client never follows a link to a file that is not there. The files were checked
        # when they were uploaded, so they are not hashed again here.
        files = tuple(sorted(manifest.files, key=lambda r: r.filename))
        manifest = dataclasses.replace(
            manifest, files=files, created=datetime.now(UTC).isoformat(timespec="seconds")
        )
        # Not write_index: it prunes the pages of projects without files, and a reserved name's
        # empty page must never be missing, not even for a moment (upstream would answer).
        # Nothing is pruned here: files of a private index are never removed. Only the changed
        # projects are rendered: rendering all of 5,000 projects took 1.3 s an upload.
        subset = manifest
        if changed is not None:
            subset = dataclasses.replace(
                manifest, files=tuple(r for r in files if r.name in changed)
            )
        rendered = render_index(self.root, subset, verify=False)
        for page in (f"{INDEX_DIR}/{HTML_PAGE}", f"{INDEX_DIR}/{JSON_PAGE}"):
            rendered.pop(page, None)  # the root is rendered below, from every name
        names = {r.name for r in manifest.files}
        reserved = self.reserved() - names
        for name in sorted(reserved):
            rendered.update(render_project(name, []))
        rendered.update(render_root(sorted(names | reserved)))  # the root last
        for relative, data in rendered.items():
            write_if_changed(self.root / relative, data)
        write_atomic(self.root / MANIFEST_NAME, manifest.to_json().encode(), fsync=True)


def _version_key(version: str) -> tuple[int, Version]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, Version("0"))


def _json_list(data: list[NormalizedName]) -> bytes:
    return (json.dumps(data, indent=1) + "\n").encode()


def _json(data: dict[str, str]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def _empty_manifest() -> Manifest:
    return Manifest(
        generator=GENERATOR,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=Inputs(files=()),
        files=(),
        locks=(),
        kind="mirror",
    )
