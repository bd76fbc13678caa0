"""The configuration file of a server with a private index (``wheelhouse serve --config``).

A small TOML file; paths in it are relative to the file::

    users = "team.htpasswd"        # htpasswd file of bcrypt entries ('wheelhouse users add')
    anonymous-read = true          # false: reading needs an account too

    [[index]]
    name = "team"
    kind = "private"               # takes uploads; its projects are never served from upstream
    path = "team-index"
    upload = ["alice", "ci"]       # who may upload (default: every user)
    max-upload-size = 104857600    # bytes (default 1 GiB)

    [[index]]
    name = "staging"               # a second private index, served under /staging/
    kind = "private"
    path = "staging-index"
    upload = ["ci"]
    anonymous-read = false         # this index's own read rule (default: the file's)

    [[index]]
    name = "pypi"
    kind = "upstream"              # proxied and cached, after the first private index
    url = "https://pypi.org/simple/"

Every private index is served under ``/<name>/`` (``/<name>/simple/`` for pip, uploads at
``/<name>/``); the first is also the server's root (``/simple/``, uploads at ``/``), the one
in front of the upstreams.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelhouse.errors import UsageError
from wheelhouse.upload.settings import UploadSettings

__all__ = ["ServeConfig", "read_config", "tokens_path"]

_MAX_CONFIG = 1024 * 1024
_INDEX_KEYS = {
    "private": {"name", "kind", "path", "upload", "max-upload-size", "anonymous-read"},
    "upstream": {"name", "kind", "url"},
}
# A private index's name is the first segment of its URLs: one plain segment, never one of
# the paths the server answers at its root.
_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_RESERVED_NAMES = frozenset({"simple", "files", "legacy", "v1"})


@dataclass(frozen=True)
class ServeConfig:
    """What the file configures: the private indexes (the first is the server's root) and
    the upstreams, in order."""

    privates: tuple[UploadSettings, ...]
    upstreams: tuple[str, ...]

    @property
    def private(self) -> UploadSettings | None:
        """The first private index: the one at the server's root, in front of upstreams."""
        return self.privates[0] if self.privates else None


def tokens_path(users: Path) -> Path:
    """Where the API tokens of the users in ``users`` are kept: next to it."""
    return users.with_name(users.name + ".tokens")


def read_config(path: Path) -> ServeConfig:
    """Read and check the configuration file at ``path``; ``UsageError`` for what is wrong."""
    try:
        raw = path.read_bytes()[: _MAX_CONFIG + 1]
        if len(raw) > _MAX_CONFIG:
            raise UsageError(f"the configuration {str(path)!r} is larger than 1 MiB")
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the configuration {str(path)!r}: {exc.strerror}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"the configuration {str(path)!r} is not valid TOML: {exc}") from exc
    where = path.parent
    unknown = set(data) - {"users", "anonymous-read", "index"}
    if unknown:
        raise _bad(path, f"unknown keys {sorted(unknown)!r}")
    indexes = data.get("index", [])
    if not isinstance(indexes, list) or not indexes:
        raise _bad(path, "it names no index ([[index]] tables)")
    privates: list[UploadSettings] = []
    upstreams: list[str] = []
    names: set[str] = set()
    for number, index in enumerate(indexes, 1):
        name, kind = _index_fields(path, number, index)
        if name in names:
            raise _bad(path, f"two indexes are named {name!r}")
        names.add(name)
        if kind == "upstream":
            url = _string(path, index, "url")
            if not url.startswith(("http://", "https://")):
                raise _bad(path, f"the upstream {name!r} has no http(s) url")
            upstreams.append(url)
            continue
        if not _INDEX_NAME.fullmatch(name) or name in _RESERVED_NAMES:
            raise _bad(
                path,
                f"the private index's name {name!r} is not a plain URL segment (lower-case "
                f"letters, digits, '.', '_', '-'), or is one of {sorted(_RESERVED_NAMES)!r}",
            )
        users = _string(path, data, "users")
        upload = index.get("upload")
        if upload is not None and (
            not isinstance(upload, list) or not all(isinstance(u, str) for u in upload)
        ):
            raise _bad(path, f"the index {name!r}: 'upload' must be a list of user names")
        max_size = index.get("max-upload-size")
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise _bad(path, f"the index {name!r}: 'max-upload-size' must be a positive integer")
        anonymous = index.get("anonymous-read", data.get("anonymous-read", True))
        if not isinstance(anonymous, bool):
            raise _bad(path, "'anonymous-read' must be true or false")
        users_path = (where / users).absolute()
        directory = (where / _string(path, index, "path")).absolute()
        if any(p.directory == directory for p in privates):
            raise _bad(path, f"the index {name!r} has the path of another private index")
        private = UploadSettings(
            directory=directory,
            users=users_path,
            tokens=tokens_path(users_path),
            name=name,
            uploaders=None if upload is None else tuple(upload),
            anonymous_read=anonymous,
            max_file=max_size,
        )
        privates.append(private)
    return ServeConfig(tuple(privates), tuple(upstreams))


def _index_fields(path: Path, number: int, index: Any) -> tuple[str, str]:
    if not isinstance(index, dict):
        raise _bad(path, f"index {number} is not a table")
    name = _string(path, index, "name")
    kind = _string(path, index, "kind")
    allowed = _INDEX_KEYS.get(kind)
    if allowed is None:
        raise _bad(path, f"the index {name!r} has kind {kind!r} (not 'private' or 'upstream')")
    unknown = set(index) - allowed
    if unknown:
        raise _bad(path, f"the index {name!r} has unknown keys {sorted(unknown)!r}")
    return name, kind


def _string(path: Path, table: dict[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(path, f"{key!r} must be a non-empty string")
    return value


def _bad(path: Path, why: str) -> UsageError:
    return UsageError(
        f"the configuration {str(path)!r} is wrong: {why}",
        hint="see docs/team-index.md for its format",
    )
