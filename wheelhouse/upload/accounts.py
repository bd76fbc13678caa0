"""Who may upload: users from an htpasswd file of bcrypt entries (pypiserver's format).

Passwords are checked with ``bcrypt``; the file is read again when it changes, so users can
be added while the server runs. Credentials are never logged, and a refusal never says
whether the user exists.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path

import bcrypt

from wheelhouse._base.files import write_atomic
from wheelhouse.errors import UploadRefusedError, UsageError

__all__ = [
    "REALM",
    "TOKEN_USER",
    "Accounts",
    "basic_credentials",
    "hash_password",
    "new_token",
    "remove_user",
    "set_user",
]

logger = logging.getLogger(__name__)

REALM = "wheelhouse"
_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_MAX_FILE = 4 * 1024 * 1024
_MAX_PASSWORD = 72  # bcrypt uses no more; longer ones are refused, not cut silently


# A hash to check against when the user does not exist, so that the answer takes as long.
@functools.cache
def _dummy() -> bytes:
    return bcrypt.hashpw(b"wheelhouse", bcrypt.gensalt(rounds=12))


def hash_password(password: str) -> str:
    """The bcrypt hash of ``password``, as an htpasswd line stores it."""
    raw = password.encode()
    if not raw or len(raw) > _MAX_PASSWORD:
        raise UsageError(f"a password must be 1 to {_MAX_PASSWORD} bytes long")
    return bcrypt.hashpw(raw, bcrypt.gensalt(rounds=12)).decode()


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The user and password of a ``Basic`` Authorization header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or len(value) > 4096:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


TOKEN_USER = "__token__"  # the user name twine and PyPI use for API tokens
_TOKEN_PREFIX = "wht_"
_REMEMBER = 1024  # verified credentials kept (a digest of them), so reads need no bcrypt
_REMEMBER_FOR = 60.0  # seconds


class Accounts:
    """The users of the htpasswd file at ``path``, and the API tokens of ``tokens``."""

    def __init__(self, path: Path, tokens: Path | None = None) -> None:
        self.path = path
        self.tokens_path = tokens
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, bytes] = {}
        self._token_stamp: tuple[int, int, int] | None = None
        self._tokens: dict[str, tuple[str, str]] = {}
        # sha256 of a verified Authorization header -> (user, index, until); the header
        # itself is never kept.
        self._verified: dict[bytes, tuple[str, str | None, float]] = {}
        self._load()

    def _load(self) -> dict[str, bytes]:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise UsageError(
                f"cannot read the users file {str(self.path)!r}: {exc.strerror}",
                hint="create it with 'wheelhouse users add NAME --users FILE'",
            ) from exc
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if stamp == self._stamp:
                return self._users
        if info.st_size > _MAX_FILE:
            raise UsageError(f"the users file {str(self.path)!r} is larger than 4 MiB")
        users: dict[str, bytes] = {}
        for number, line in enumerate(self.path.read_text("utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, colon, hashed = line.partition(":")
            if not colon or not user:
                logger.warning("%s line %d: not 'user:hash'; ignored", self.path, number)
            elif not hashed.startswith(_BCRYPT_PREFIXES):
                logger.warning(
                    "%s line %d: user %r has no bcrypt hash ($2y$, $2b$); ignored "
                    "(set the password again with 'wheelhouse users add')",
                    self.path,
                    number,
                    user,
                )
            else:
                users[user] = hashed.encode()
        with self._lock:
            self._stamp, self._users = stamp, users
            self._verified.clear()
        return users

    def _load_tokens(self) -> dict[str, tuple[str, str]]:
        """sha256 of each token -> (its user, its index)."""
        if self.tokens_path is None:
            return {}
        try:
            info = os.stat(self.tokens_path)
        except FileNotFoundError:
            return {}
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        with self._lock:
            if stamp == self._token_stamp:
                return self._tokens
        if info.st_size > _MAX_FILE:
            raise UsageError(f"the tokens file {str(self.tokens_path)!r} is larger than 4 MiB")
        tokens: dict[str, tuple[str, str]] = {}
        for line in self.tokens_path.read_text("utf-8").splitlines():
            fields = line.strip().split(":")
            if len(fields) == 3 and not line.startswith("#"):
                user, index, digest = fields
                tokens[digest] = (user, index)
        with self._lock:
            self._token_stamp, self._tokens = stamp, tokens
            self._verified.clear()
        return tokens

    def names(self) -> list[str]:
        return sorted(self._load())

    def authenticate(self, authorization: str | None, index: str | None = None) -> str:
        """The user that ``authorization`` proves to be; 401 otherwise, 403 for a token made
        for another index than ``index``. Slow the first time (bcrypt), then remembered for
        a minute by a digest of the header, until the users file changes."""
        credentials = basic_credentials(authorization)
        if credentials is None:
            raise UploadRefusedError(401, "authentication required: give a user and password")
        assert authorization is not None
        key = hashlib.sha256(authorization.encode()).digest()
        users = self._load()  # first: a changed file forgets what was verified
        tokens = self._load_tokens()
        now = time.monotonic()
        with self._lock:
            known = self._verified.get(key)
        if known is not None and known[2] > now:
            user, token_index = known[0], known[1]
        else:
            user, token_index = self._verify(*credentials, users, tokens)
            with self._lock:
                self._verified[key] = (user, token_index, now + _REMEMBER_FOR)
                while len(self._verified) > _REMEMBER:
                    del self._verified[next(iter(self._verified))]
        if token_index is not None and index is not None and token_index != index:
            raise UploadRefusedError(
                403, f"this token is for the index {token_index!r}, not {index!r}"
            )
        return user

    def _verify(
        self,
        user: str,
        password: str,
        users: dict[str, bytes],
        tokens: dict[str, tuple[str, str]],
    ) -> tuple[str, str | None]:
        if user == TOKEN_USER:
            if not password.startswith(_TOKEN_PREFIX):
                raise UploadRefusedError(401, "wrong user name or password")
            found = tokens.get(hashlib.sha256(password.encode()).hexdigest())
            if found is None or found[0] not in users:
                raise UploadRefusedError(401, "wrong user name or password")
            return found
        raw = password.encode()
        hashed = users.get(user)
        # bcrypt accepts $2y$ as $2b$ (the same algorithm); a missing user costs the same.
        ok = bcrypt.checkpw(raw[:_MAX_PASSWORD], (hashed or _dummy()).replace(b"$2y$", b"$2b$", 1))
        if hashed is None or not ok or len(raw) > _MAX_PASSWORD:
            raise UploadRefusedError(401, "wrong user name or password")
        return user, None


def new_token(tokens: Path, user: str, index: str) -> str:
    """A new API token of ``user`` for ``index``; only its sha256 is stored in ``tokens``.

    Tokens are 256 random bits, so a plain sha256 is enough to store them (no salt or slow
    hash: nothing can be guessed), and checking one costs no bcrypt.
    """
    if not _USER_NAME.fullmatch(user) or not _USER_NAME.fullmatch(index):
        raise UsageError(f"{user!r} or {index!r} is not a valid user or index name")
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    try:
        text = tokens.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    text = text + ("" if not text or text.endswith("\n") else "\n") + f"{user}:{index}:{digest}\n"
    write_atomic(tokens, text.encode(), fsync=True, mode=0o600)
    return token


_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


def set_user(path: Path, user: str, password: str) -> bool:
    """Add ``user`` to the htpasswd file at ``path`` or change their password (True: new).

    The file is rewritten atomically, readable by its owner only; other lines are kept.
    """
    if not _USER_NAME.fullmatch(user):
        raise UsageError(
            f"{user!r} is not a valid user name",
            hint="use letters, digits and . _ @ + - (up to 100), starting with a letter or digit",
        )
    line = f"{user}:{hash_password(password)}"
    lines, found = _other_lines(path, user)
    write_atomic(path, ("\n".join([*lines, line]) + "\n").encode(), fsync=True, mode=0o600)
    return not found


def remove_user(path: Path, user: str) -> None:
    """Remove ``user`` from the htpasswd file at ``path``."""
    lines, found = _other_lines(path, user)
    if not found:
        raise UsageError(f"no user {user!r} in {str(path)!r}")
    write_atomic(path, "".join(f"{line}\n" for line in lines).encode(), fsync=True, mode=0o600)


def _other_lines(path: Path, user: str) -> tuple[list[str], bool]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return [], False
    lines, found = [], False
    for line in text.splitlines():
        if line.partition(":")[0].strip() == user:
            found = True
        else:
            lines.append(line)
    return lines, found
