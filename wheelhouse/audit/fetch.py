"""Fetching the OSV export on the connected side, and where a wheelhouse keeps it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

from wheelhouse._base._http import HttpClient, failure_reason
from wheelhouse._base.files import write_atomic
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.urls import strip_credentials
from wheelhouse.audit.osv import MAX_SNAPSHOT_BYTES, load_snapshot
from wheelhouse.errors import FetchError, Hint, OsvSnapshotError

__all__ = [
    "DEFAULT_URL",
    "FETCH_DEADLINE",
    "OSV_DIR",
    "SNAPSHOT_NAME",
    "SnapshotInfo",
    "fetch_snapshot",
    "info_path",
    "read_info",
    "snapshot_in",
]

# The OSV project's export of every PyPI record (one JSON file each), refreshed daily.
DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
# Inside a wheelhouse, so the snapshot travels with it (`pack` carries the directory).
OSV_DIR = "osv"
SNAPSHOT_NAME = "PyPI.zip"
INFO_SCHEMA_VERSION = 1
# The whole download, however slowly the server drips it.
FETCH_DEADLINE = 900.0
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SnapshotInfo:
    """What was fetched: kept beside the snapshot as ``<snapshot>.json``."""

    source: str
    sha256: str
    size: int
    fetched: str
    records: int

    def to_json(self) -> str:
        data = {
            "schema-version": INFO_SCHEMA_VERSION,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "fetched": self.fetched,
            "records": self.records,
        }
        return json.dumps(data, indent=2) + "\n"


def snapshot_in(wheelhouse: Path) -> Path:
    """Where a wheelhouse keeps its snapshot."""
    return wheelhouse / OSV_DIR / SNAPSHOT_NAME


def info_path(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.name + ".json")


def fetch_snapshot(
    url: str,
    dest: Path,
    *,
    pip: PipSettings,
    max_bytes: int = MAX_SNAPSHOT_BYTES,
    deadline: float = FETCH_DEADLINE,
) -> SnapshotInfo:
    """Download the export at ``url`` to ``dest`` (and its info beside it), atomically.

    The download is bounded in size and time, and checked to be an OSV export (every record
    read) before it replaces anything: on any failure, nothing is written.
    """
    client = HttpClient(pip)
    shown = strip_credentials(url)
    made = not dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.tmp")
    try:
        sha256, size = _download(client, url, shown, partial, max_bytes, deadline)
        database = load_snapshot(partial, names=())
        info = SnapshotInfo(
            source=shown,
            sha256=sha256,
            size=size,
            fetched=datetime.now(UTC).isoformat(timespec="seconds"),
            records=database.records,
        )
        partial.chmod(0o644)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        if made:
            # Nothing written: not even the directory made for it.
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
        raise
    write_atomic(info_path(dest), info.to_json().encode("utf-8"), fsync=True)
    return info


def _download(
    client: HttpClient, url: str, shown: str, partial: Path, max_bytes: int, deadline: float
) -> tuple[str, int]:
    started = time.monotonic()
    digest = hashlib.sha256()
    size = 0
    try:
        response = client.get(url)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise FetchError(
            f"cannot download the OSV snapshot from {shown}: {failure_reason(exc)}",
            url=shown,
            hint="check the network, proxy and certificates (pip's configuration is used)",
        ) from exc
    try:
        if response.status != 200:
            raise FetchError(
                f"cannot download the OSV snapshot from {shown}: HTTP {response.status}",
                url=shown,
            )
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise _too_big(shown, max_bytes)
        with partial.open("wb") as out:
            for chunk in response.stream(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(shown, max_bytes)
                if time.monotonic() - started > deadline:
                    raise FetchError(
                        f"the OSV snapshot from {shown} took more than {deadline:g} s",
                        url=shown,
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise FetchError(
            f"the OSV snapshot from {shown} was cut short: {failure_reason(exc)}",
            url=shown,
            hint="try again",
        ) from exc
    finally:
        # One download a run: its connection is closed, not kept in a pool nobody asks again.
        response.close()
        response.release_conn()
    return digest.hexdigest(), size


def _too_big(shown: str, max_bytes: int) -> FetchError:
    return FetchError(
        f"the OSV snapshot from {shown} is larger than {max_bytes // 2**20} MiB; "
        "it is not the OSV export",
        url=shown,
    )


def read_info(snapshot: Path) -> SnapshotInfo | None:
    """The info fetched beside ``snapshot``, or None when there is none."""
    path = info_path(snapshot)
    try:
        # It is a few hundred bytes; anything past 64 KiB is not ours.
        with path.open("rb") as handle:
            text = handle.read(64 * 1024 + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OsvSnapshotError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    try:
        if len(text) > 64 * 1024:
            raise ValueError("it is larger than 64 KiB")
        data: Any = json.loads(text)
        info = SnapshotInfo(
            source=str(data["source"]),
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            fetched=str(data["fetched"]),
            records=int(data["records"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise OsvSnapshotError(
            f"the OSV snapshot's info {str(path)!r} cannot be read: {exc}",
            hint=Hint.REFETCH_OSV,
        ) from exc
    return info
