"""Object storage behind one small interface: S3-compatible buckets (obstore) and local trees.

obstore was chosen over boto3 by measurement: it imports in ~40 ms (boto3: ~1.7 s, a cost every
command that touches a store would pay), streams, and exposes S3's conditional writes
(``If-None-Match: *``), which several proxies sharing one bucket rely on. Credentials come from
the standard places: ``AWS_*`` variables, else the shared ``~/.aws/credentials`` and
``~/.aws/config`` files for ``AWS_PROFILE``; they are never logged or shown in an error.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from wheelhouse._base.files import atomic_writer, write_atomic
from wheelhouse.errors import NetworkError, OutputDirError, UsageError

__all__ = [
    "Fetched",
    "LocalStore",
    "ObjectInfo",
    "S3Store",
    "Store",
    "Streamed",
    "Writer",
    "open_store",
]


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing says of one object: its key below the store's prefix, size and ETag."""

    key: str
    size: int
    etag: str | None  # without quotes; the MD5 hex digest for a single-part upload to S3


@dataclass(frozen=True)
class Fetched:
    """An object read with :meth:`Store.get_changed`: its bytes (None when unchanged) and the
    version they are (an ETag)."""

    data: bytes | None
    etag: str | None


@dataclass(frozen=True)
class Streamed:
    """An object being read: its size (known before its bytes) and its bytes, in chunks."""

    size: int
    chunks: Iterator[bytes]


class Writer(Protocol):
    """What :meth:`Store.writer` yields."""

    def write(self, chunk: bytes, /) -> int: ...


class Store(Protocol):
    """A flat namespace of immutable-by-convention objects under one prefix."""

    url: str

    def list(self) -> dict[str, ObjectInfo]:
        """Every object under the prefix, by key."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        ...

    def get_changed(self, key: str, etag: str | None) -> Fetched | None:
        """The object unless its version is still ``etag`` (then ``data`` is None and the
        caller's copy is current), or None when there is no such object."""
        ...

    def stream(self, key: str) -> Streamed | None:
        """The object's size, and its bytes in chunks of about 256 KiB (never the whole
        object in memory); None when there is no such object."""
        ...

    def put_file(self, key: str, path: Path, content_type: str) -> str | None:
        """Upload the file at ``path`` as ``key``; returns the new ETag where the store has one."""
        ...

    def writer(self, key: str, content_type: str) -> contextlib.AbstractContextManager[Writer]:
        """Write ``key`` in pieces (``write(chunk)`` as they come): the object appears, whole,
        when the block ends normally; an exception leaves no object (a multipart upload is
        aborted)."""
        ...

    def put_bytes(
        self, key: str, data: bytes, content_type: str, *, if_absent: bool = False
    ) -> bool:
        """Write ``data`` as ``key``; with ``if_absent``, only if no such object exists yet.

        Returns False when ``if_absent`` and the object was already there (nothing written).
        """
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...


def open_store(url: str, *, endpoint_url: str | None = None) -> Store:
    """The store that ``url`` names: ``s3://bucket[/prefix]`` or ``file:///path``."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise UsageError(f"{url!r} names no bucket", hint="write s3://BUCKET/PREFIX")
        return S3Store(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint_url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"{url!r} names a remote host; a file: URL must be local")
        return LocalStore(Path(parts.path))
    raise UsageError(
        f"cannot publish to {url!r}: the URL must start with s3:// or file://",
        hint="for example s3://my-bucket/wheelhouse or file:///srv/wheelhouse",
    )


# What put_file's temporary files end with (a leftover of a killed publish ends so too).
TEMP_SUFFIX = ".publish.tmp"


class LocalStore:
    """A directory used as a store (``file://``): atomic writes, keys are relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def list(self) -> dict[str, ObjectInfo]:
        found: dict[str, ObjectInfo] = {}
        if not self.root.is_dir():
            return found
        for path in _walk(self.root):
            key = path.relative_to(self.root).as_posix()
            if _is_temporary(key):
                continue
            # A local tree has no ETag: the MD5 S3 would give keeps comparisons the same.
            with path.open("rb") as stream:
                md5 = hashlib.file_digest(stream, "md5").hexdigest()
            found[key] = ObjectInfo(key, path.stat().st_size, md5)
        return found

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get_changed(self, key: str, etag: str | None) -> Fetched | None:
        path = self._path(key)
        try:
            with path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                # Every write replaces the file (a new inode): these name one version.
                version = f"{info.st_ino}-{info.st_mtime_ns}-{info.st_size}"
                if version == etag:
                    return Fetched(None, etag)
                return Fetched(handle.read(), version)
        except FileNotFoundError:
            return None

    def stream(self, key: str) -> Streamed | None:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            return None
        size = os.fstat(handle.fileno()).st_size

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk

        return Streamed(size, chunks())

    def put_file(self, key: str, path: Path, content_type: str) -> str | None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own: two writers of one key must not write into one temp file.
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TEMP_SUFFIX, dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            shutil.copyfile(path, tmp)
            tmp.chmod(0o644)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return None

    @contextlib.contextmanager
    def writer(self, key: str, content_type: str) -> Iterator[Writer]:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(dest, fsync=True) as handle:
            yield handle

    def put_bytes(
        self, key: str, data: bytes, content_type: str, *, if_absent: bool = False
    ) -> bool:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if if_absent:
            try:
                with dest.open("xb") as handle:
                    handle.write(data)
            except FileExistsError:
                return False
            return True
        write_atomic(dest, data)
        return True

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Leave no empty directory behind, but never remove one that holds anything.
        for parent in path.parents:
            if parent == self.root or self.root not in parent.parents:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()

    def _path(self, key: str) -> Path:
        path = self.root / key
        if ".." in Path(key).parts or Path(key).is_absolute():
            raise UsageError(f"refusing the object key {key!r}: it leaves the store")
        # A directory of the tree that is a symbolic link would lead the write out of it (the
        # file itself is replaced by a rename, which never follows a link).
        for parent in reversed(path.parents):
            if parent != self.root and self.root in parent.parents and parent.is_symlink():
                raise OutputDirError(
                    f"{str(parent)!r} is a symbolic link, which would lead {key!r} out of "
                    f"{str(self.root)!r}; refusing to write through it",
                    path=parent,
                    hint="remove the link, or publish to another place",
                )
        return path


class S3Store:
    """An S3-compatible bucket (AWS, MinIO, Ceph, SeaweedFS, R2, ...) through obstore."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None) -> None:
        from obstore.store import S3Store as _ObstoreS3

        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        config = _aws_settings(os.environ, endpoint_url)
        options: dict[str, object] = {"timeout": "60s", "connect_timeout": "10s"}
        if str(config.get("endpoint", "")).startswith("http://"):
            options["allow_http"] = True
        anonymous = "access_key_id" not in config
        self._endpoint = str(config.get("endpoint") or "")
        self._anonymous = anonymous
        self._store = _ObstoreS3(
            bucket,
            config=config,  # type: ignore[arg-type]  # obstore's TypedDict of string keys
            client_options=options,  # type: ignore[arg-type]
            skip_signature=anonymous,
            # obstore retries for up to 3 minutes by default; a store that is down should be
            # reported within seconds, as pip reports an index that is down.
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=20)},
        )

    def list(self) -> dict[str, ObjectInfo]:
        import obstore

        found: dict[str, ObjectInfo] = {}
        base = f"{self.prefix}/" if self.prefix else ""
        with self._errors("list"):
            for batch in obstore.list(self._store, prefix=base or None):
                for meta in batch:
                    key = str(meta["path"])[len(base) :]
                    etag = meta.get("e_tag")
                    found[key] = ObjectInfo(key, int(meta["size"]), _unquote(etag))
        return found

    def get(self, key: str) -> bytes | None:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            with self._errors(f"read {key!r} from"):
                return bytes(obstore.get(self._store, self._key(key)).bytes())
        except (NotFoundError, FileNotFoundError):  # obstore raises the builtin one for S3
            return None

    def get_changed(self, key: str, etag: str | None) -> Fetched | None:
        import obstore
        from obstore.exceptions import NotFoundError, NotModifiedError

        try:
            with self._errors(f"read {key!r} from"):
                options = {"if_none_match": f'"{etag}"'} if etag else None
                result = obstore.get(self._store, self._key(key), options=options)  # type: ignore[arg-type]
                data = bytes(result.bytes())
        except (NotFoundError, FileNotFoundError):
            return None
        except NotModifiedError:
            return Fetched(None, etag)
        return Fetched(data, _unquote(result.meta.get("e_tag")))

    def stream(self, key: str) -> Streamed | None:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            with self._errors(f"read {key!r} from"):
                result = obstore.get(self._store, self._key(key))
        except (NotFoundError, FileNotFoundError):
            return None

        def chunks() -> Iterator[bytes]:
            with self._errors(f"read {key!r} from"):
                yield from result.stream(min_chunk_size=_CHUNK)

        return Streamed(int(result.meta["size"]), chunks())

    def put_file(self, key: str, path: Path, content_type: str) -> str | None:
        import obstore

        with self._errors(f"upload {key!r} to"):
            # One PUT, not a multipart upload, while S3 allows it (5 GiB), so that the ETag
            # stays the MD5 of the bytes and a later run can compare without downloading.
            result = obstore.put(
                self._store,
                self._key(key),
                path,
                attributes={"Content-Type": content_type},
                use_multipart=path.stat().st_size > _SINGLE_PUT_LIMIT,
            )
        return _unquote(result.get("e_tag"))

    @contextlib.contextmanager
    def writer(self, key: str, content_type: str) -> Iterator[Writer]:
        import obstore

        # Parts of _PART bytes go up while the caller writes (S3's smallest part is 5 MiB); a
        # smaller object is one PUT when the block ends. obstore aborts the multipart upload
        # when the block raises, so no object appears.
        with (
            self._errors(f"upload {key!r} to"),
            obstore.open_writer(
                self._store,
                self._key(key),
                attributes={"Content-Type": content_type},
                buffer_size=_PART,
            ) as handle,
        ):
            yield handle

    def put_bytes(
        self, key: str, data: bytes, content_type: str, *, if_absent: bool = False
    ) -> bool:
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            with self._errors(f"upload {key!r} to"):
                obstore.put(
                    self._store,
                    self._key(key),
                    data,
                    attributes={"Content-Type": content_type},
                    mode="create" if if_absent else "overwrite",
                )
        except (AlreadyExistsError, PreconditionError, FileExistsError):
            return False
        return True

    def delete(self, key: str) -> None:
        import obstore

        with self._errors(f"delete {key!r} from"):
            obstore.delete(self._store, self._key(key))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from obstore.exceptions import (
            AlreadyExistsError,
            BaseError,
            NotFoundError,
            NotModifiedError,
            PreconditionError,
        )

        try:
            yield
        except (NotFoundError, AlreadyExistsError, PreconditionError, NotModifiedError):
            raise
        except (FileNotFoundError, FileExistsError):
            raise
        except BaseError as exc:
            why, hint = self._explain(exc)
            raise NetworkError(
                f"cannot {doing} {self.url}: {why}", url=self.url, hint=hint
            ) from exc

    def _explain(self, exc: BaseException) -> tuple[str, str]:
        """One line and a hint for an obstore error, whose text is the request, the server's
        whole XML reply and a debug dump (never credentials): the S3 error code decides."""
        text = str(exc)
        code = _xml_field(text, "Code")
        status = re.search(r"status code: (\d{3})", text)
        where = self._endpoint or "AWS S3"
        endpoint_hint = "--endpoint-url (or AWS_ENDPOINT_URL)"
        if code == "NoSuchBucket":
            return (
                f"the bucket {self.bucket!r} does not exist at {where}",
                f"create it first, or check the bucket name and {endpoint_hint}",
            )
        denied = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
        if code in denied or (status is not None and status.group(1) in ("401", "403")):
            who = (
                "no credentials were found, so the request was anonymous"
                if self._anonymous
                else "the credentials were refused or may not do this"
            )
            label = code or (f"HTTP {status.group(1)}" if status else "denied")
            return (
                f"access denied by {where} ({label}): {who}",
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that "
                f"they may read and write the bucket {self.bucket!r}",
            )
        if "kind: Connect" in text or "error sending request" in text or "timed out" in text:
            if "dns error" in text:
                cause = "its host name does not resolve"
            elif "ConnectionRefused" in text:
                cause = "connection refused"
            elif "timed out" in text or "Timeout" in text:
                cause = "timed out"
            else:
                cause = "no connection"
            return (
                f"cannot reach the endpoint {where} ({cause})",
                f"check {endpoint_hint} and that the store is up and reachable from here",
            )
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        first = first.split(": <?xml", 1)[0].split(" - Server returned", 1)[0]
        if code:
            message = _xml_field(text, "Message")
            first = f"the store answered {code}" + (f" ({message})" if message else "")
        return (
            first,
            f"check the bucket, {endpoint_hint} and the credentials (AWS_ACCESS_KEY_ID, "
            "AWS_PROFILE)",
        )


_SINGLE_PUT_LIMIT = 5 * 1024**3
_CHUNK = 256 * 1024
_PART = 8 * 1024 * 1024


def _unquote(etag: object) -> str | None:
    return str(etag).strip('"') if etag else None


def _aws_settings(environ: Mapping[str, str], endpoint_url: str | None) -> dict[str, str]:
    """obstore's S3 settings from the standard variables, else the shared config files."""
    config: dict[str, str] = {}
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    files = _shared_config(environ, profile)
    key = environ.get("AWS_ACCESS_KEY_ID") or files.get("aws_access_key_id")
    secret = environ.get("AWS_SECRET_ACCESS_KEY") or files.get("aws_secret_access_key")
    if key and secret:
        config["access_key_id"] = key
        config["secret_access_key"] = secret
        token = environ.get("AWS_SESSION_TOKEN") or files.get("aws_session_token")
        if token:
            config["session_token"] = token
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or files.get("region")
    config["region"] = region or "us-east-1"
    endpoint = endpoint_url or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    endpoint = endpoint or files.get("endpoint_url")
    if endpoint:
        config["endpoint"] = endpoint
        # Self-hosted stores (MinIO, Ceph, SeaweedFS) serve buckets as paths, not host names.
        config["virtual_hosted_style_request"] = "false"
    return config


def _shared_config(environ: Mapping[str, str], profile: str) -> dict[str, str]:
    """The profile's settings from ~/.aws/credentials and ~/.aws/config (credentials win)."""
    home = Path(environ.get("HOME", "~")).expanduser()
    found: dict[str, str] = {}
    sources = [
        (Path(environ.get("AWS_CONFIG_FILE", home / ".aws" / "config")), f"profile {profile}"),
        (Path(environ.get("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials")), profile),
    ]
    for path, section in sources:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
        for name in (section, profile):  # config names [default] without "profile "
            if parser.has_section(name):
                found.update(parser.items(name))
                break
    return found


def _walk(root: Path) -> Iterator[Path]:
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            yield Path(entry.path)


def _xml_field(text: str, name: str) -> str | None:
    """A field of the S3 error document inside an obstore error's text, if any."""
    match = re.search(rf"<{name}>([^<]{{1,200}})</{name}>", text)
    return match.group(1) if match else None


def _is_temporary(key: str) -> bool:
    leaf = key.rsplit("/", 1)[-1]
    return leaf.startswith(".") and leaf.endswith(".tmp")
