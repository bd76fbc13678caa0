"""Where the proxy's pages point clients: file links by sha256, made absolute for the host
and front a client came through (pip joins every relative link of a page: 0.6-0.8 s of its
CPU for 37 wheels), rewritten as a stored rendering is sent."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request

from wheelhouse.errors import UsageError

__all__ = [
    "CHUNK",
    "VIA",
    "Fronts",
    "LinkCounts",
    "Rebase",
    "Rebaser",
    "base_url",
    "file_links",
    "relay_links",
]

CHUNK = 256 * 1024
# File URLs are absolute, built from the request's Host (and from X-Forwarded-Proto, -Host
# and -Prefix when a trusted front sends them). A Host that is not a plain name, address or
# [IPv6] with an optional port makes the page relative again: it is never written into a
# page as given.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_PREFIX = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*")  # no "." or ".." segment
_RELATIVE = {"json": b'"url":"../../files/', "html": b'href="../../files/'}  # as file_links writes
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
_MARKER_COUNTS = 1024  # renderings whose number of file links this process remembers


@dataclass(frozen=True)
class Fronts:
    """The peers trusted to say how clients reach the proxy (a TLS front, a path prefix)."""

    everyone: bool
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, text: str) -> Fronts:
        """``text`` as ``--forwarded-allow-ips`` takes it: addresses or networks, or ``*``."""
        networks = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            if item == "*":
                return cls(True, ())
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise UsageError(
                    f"--forwarded-allow-ips: {item!r} is not an IP address or network",
                    hint="give addresses or networks separated by commas (127.0.0.1,10.0.0.0/8), "
                    "or * to trust every peer",
                ) from None
        return cls(False, tuple(networks))

    def trust(self, peer: str | None) -> bool:
        if self.everyone:
            return True
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # a Unix socket's peer, or no address at all
            return False
        return any(address in network for network in self.networks)


def base_url(request: Request, fronts: Fronts) -> str | None:
    """The URL clients reach the proxy's root by, without a trailing slash, from the request's
    Host (and a trusted front's X-Forwarded-Proto, -Host and -Prefix); None when what they
    say is not a plain scheme, host and path, so pages stay relative."""
    headers = request.headers
    scheme: str = request.scope.get("scheme", "http")
    host = headers.get("host")
    prefix = ""
    if fronts.trust(request.client.host if request.client else None):
        scheme = _first(headers.get("x-forwarded-proto")) or scheme
        host = _first(headers.get("x-forwarded-host")) or host
        prefix = (_first(headers.get("x-forwarded-prefix")) or "").rstrip("/")
    scheme = scheme.lower()
    if scheme not in ("http", "https") or not host or not _HOST.fullmatch(host):
        return None
    if not _PREFIX.fullmatch(prefix):
        return None
    return f"{scheme}://{host}{prefix}"


def _first(value: str | None) -> str | None:
    """The first of a header's comma-separated values (the front nearest the client)."""
    return value.split(",", 1)[0].strip() if value else None


def file_links(project: str) -> Callable[[str, str], str]:
    """How a page of the proxy links ``project``'s files (by sha256 and filename): by content,
    the filename last for clients' sake, relative to /simple/<project>/ (made absolute, by the
    host the client asked, as sent). The project's part is made once for 15,000 files."""
    prefix = f"../../files/{_quoted(project)}/"

    def link(sha256: str, filename: str) -> str:
        return f"{prefix}{sha256}/{_quoted(filename)}"

    return link


# A relayed page (``simple.relay``) links a file by its path on upstream's file host, under
# /files/<project>/via/ (no sha256 is 3 letters long): the proxy finds it on the stored page.
VIA = "via"


def relay_links(project: str) -> str:
    """What a relayed page of ``project`` links its files under (relative, as file_links)."""
    return f"../../files/{_quoted(project)}/{VIA}/"


def _quoted(name: str) -> str:
    # quote() leaves these characters alone; most names have no other (15,000 calls a page).
    return name if _UNRESERVED.fullmatch(name) else quote(name)


class LinkCounts:
    """How many relative file links each rendering on disk holds, by the rendering's identity
    (device, inode, size, mtime), so a page sent with absolute links has its Content-Length
    without reading it twice. A rendering this process writes is counted as it is written,
    in memory: a cold page is then never read whole before it is sent."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, int, int, int], int] = {}

    def get(self, info: os.stat_result) -> int | None:
        return self._counts.get(_identity(info))

    def remember(self, info: os.stat_result, count: int) -> None:
        if len(self._counts) >= _MARKER_COUNTS:
            self._counts.pop(next(iter(self._counts)))
        self._counts[_identity(info)] = count

    def written(self, path: Path, form: str, body: bytes) -> None:
        """``body`` was just written at ``path`` as a rendering in ``form``. (A rendering's
        name holds its sha256: whoever wrote what is there now wrote these bytes.)"""
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return  # replaced by a newer rendering meanwhile: counted when it is sent
        if info.st_size == len(body):
            self.remember(info, body.count(_RELATIVE[form]))


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class Rebase:
    """Makes a page's relative file links (``../../files/``) absolute as it is sent, so the
    rendering on disk (and the one in memory) serves every host name and front."""

    def __init__(self, form: str, base: str, counts: LinkCounts):
        self.old = _RELATIVE[form]
        self.new = self.old.replace(b"../..", base.encode("ascii"), 1)
        self.tag = hashlib.sha256(base.encode()).hexdigest()[:12]  # the ETag differs per base
        self._counts = counts

    def whole(self, body: bytes) -> bytes:
        return body.replace(self.old, self.new)

    def chunks(self) -> Rebaser:
        return Rebaser(self.old, self.new)

    def size(self, fd: int, size: int) -> int:
        """The size of the rendering open at ``fd`` once rebased (its links counted once per
        rendering and process, unless this process wrote it)."""
        info = os.fstat(fd)
        count = self._counts.get(info)
        if count is None:
            count = _count_in(fd, size, self.old)
            self._counts.remember(info, count)
        return size + count * (len(self.new) - len(self.old))


def _count_in(fd: int, size: int, old: bytes) -> int:
    """How often ``old`` (which overlaps no copy of itself) is in the first ``size`` bytes of
    the file open at ``fd``: counted chunk by chunk, and across each boundary in the bytes
    around it (one found there straddles it: neither side is long enough to hold one),
    without copying the chunks."""
    reach = len(old) - 1
    count = 0
    tail = b""  # the last ``reach`` bytes read
    for offset in range(0, size, CHUNK):
        chunk = os.pread(fd, min(CHUNK, size - offset), offset)
        count += chunk.count(old) + (tail + chunk[:reach]).count(old)
        tail = tail + chunk if len(chunk) < reach else chunk
        tail = tail[max(len(tail) - reach, 0) :]
    return count


class Rebaser:
    """Replaces ``old`` with ``new`` in a stream of chunks, also where ``old`` straddles two
    (``old`` overlaps no copy of itself, so what could begin one is all it holds back)."""

    def __init__(self, old: bytes, new: bytes) -> None:
        self.old, self.new = old, new
        self.found = 0
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        keep = 0
        for length in range(min(len(self.old) - 1, len(data)), 0, -1):
            if self.old.startswith(data[-length:]):
                keep = length
                break
        ready, self._held = data[: len(data) - keep], data[len(data) - keep :]
        sent = ready.replace(self.old, self.new)
        grown = len(self.new) - len(self.old)
        # Each replacement changed the length by ``grown``: counted without another pass.
        self.found += (len(sent) - len(ready)) // grown if grown else ready.count(self.old)
        return sent

    def end(self) -> bytes:
        held, self._held = self._held, b""
        return held  # shorter than ``old``: holds none
