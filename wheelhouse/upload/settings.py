"""What a private index's server is told: where it is, who may read and upload, and limits.

Given on the command line (one index) or in a configuration file (``config.py``); JSON so
that the proxy's worker processes get it from their environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UploadSettings"]


@dataclass(frozen=True)
class UploadSettings:
    """One private index taking uploads."""

    directory: Path
    users: Path  # htpasswd file (bcrypt entries)
    tokens: Path | None = None  # API tokens file ('wheelhouse users token'), if any
    name: str = "private"  # the index's name: API tokens are made for one index
    uploaders: tuple[str, ...] | None = None  # who may upload; None: every user
    anonymous_read: bool = True  # False: reading the server needs an account too
    max_file: int | None = None  # bytes; None: FormLimits' default
    # Shared by several servers: the bucket holding the truth (``s3://bucket/prefix``), of
    # which ``directory`` is this server's copy (upload/bucket.py).
    bucket: str | None = None
    endpoint_url: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "directory": str(self.directory),
                "users": str(self.users),
                "tokens": None if self.tokens is None else str(self.tokens),
                "name": self.name,
                "uploaders": None if self.uploaders is None else list(self.uploaders),
                "anonymous_read": self.anonymous_read,
                "max_file": self.max_file,
                "bucket": self.bucket,
                "endpoint_url": self.endpoint_url,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> UploadSettings:
        data = json.loads(text)
        return cls(
            directory=Path(data["directory"]),
            users=Path(data["users"]),
            tokens=Path(data["tokens"]) if data.get("tokens") else None,
            name=str(data.get("name", "private")),
            uploaders=tuple(data["uploaders"]) if data.get("uploaders") is not None else None,
            anonymous_read=bool(data.get("anonymous_read", True)),
            max_file=data.get("max_file"),
            bucket=data.get("bucket"),
            endpoint_url=data.get("endpoint_url"),
        )
