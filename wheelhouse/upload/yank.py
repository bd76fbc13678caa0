"""Yank and un-yank (PEP 592) a file of a private index: at its directory, or through a
server's ``/-/yank`` API with an account."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import urllib3

from wheelhouse._base._http import failure_reason
from wheelhouse.errors import NetworkError, UploadRefusedError
from wheelhouse.house.manifest import FileRecord
from wheelhouse.upload.checks import safe_filename
from wheelhouse.upload.store import PrivateIndex

__all__ = ["yank_at", "yank_local"]

_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
_MAX_ANSWER = 64 * 1024


def yank_local(directory: Path, filename: str, reason: str | None) -> FileRecord:
    """Yank (``reason``, maybe "") or un-yank (None) ``filename`` in the index at ``directory``."""
    return PrivateIndex(directory).set_yanked(safe_filename(filename), reason)


def yank_at(url: str, user: str, password: str, filename: str, reason: str | None) -> str:
    """Ask the server at ``url`` (its root) to yank or un-yank ``filename``; its answer line.

    Raises ``UploadRefusedError`` with the server's status and line when it refuses.
    """
    body = json.dumps(
        {"filename": filename, "yanked": reason is not None, "reason": reason or ""}
    ).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
    with urllib3.PoolManager(timeout=_TIMEOUT, retries=False) as pool:
        try:
            response = pool.request(
                "POST", url.rstrip("/") + "/-/yank", body=body, headers=headers,
                preload_content=False,
            )  # fmt: skip
            answer = response.read(_MAX_ANSWER).decode("utf-8", "replace").strip()
            response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise NetworkError(f"cannot reach {url!r}: {failure_reason(exc)}") from exc
    if response.status != 200:
        raise UploadRefusedError(response.status, f"{url} answered {response.status}: {answer}")
    return answer
