"""URLs as wheelhouse shows and opens them: without credentials, and ``file:`` URLs as paths."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["Origin", "file_url_path", "origin_of", "strip_credentials"]

# urllib.request's own choice, made without importing it: urllib.request brings http.client,
# email and ssl (0.03 s), which a build that reads no index over HTTP never needs.
if os.name == "nt":
    from nturl2path import url2pathname
else:

    def url2pathname(url: str) -> str:
        return unquote(url)


def strip_credentials(url: str) -> str:
    """``url`` without the ``user:password@`` part, for logs, messages and manifests."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def file_url_path(url: str) -> Path:
    """The local path a ``file:`` URL names (as ``urllib.request.url2pathname`` reads it)."""
    return Path(url2pathname(urlsplit(url).path))


_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int | None]


def origin_of(url: str) -> Origin:
    """The scheme, host and port of ``url`` (the default port spelled out): where the index's
    credentials may go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number matches nothing
        return (scheme, "", -1)
    return (scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))
