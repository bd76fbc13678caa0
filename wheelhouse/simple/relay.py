"""An upstream's PEP 691 page passed on by a proxy with one byte replacement, not parsed.

A cold uv run through the proxy asks for 41 pages at once, 43,000 files and 19 MB of JSON:
parsed into the page model, stored and rendered again, they held the GIL for 1.2 s while
uv waited (it resolves the same set straight from the index in 0.27 s). Most pages link
every file on one host, written one way (``"url": "https://files.pythonhosted.org/``); such
a page is passed on with that one prefix replaced by the proxy's (``relink``), and parsed
only if something needs its files as objects (``parse.parse_json_page``).

Only a page whose every ``"url"`` key is certainly rewritten is relayed: one without a
backslash (so no escaped key or quote: each ``"`` in it delimits a string), all ASCII, where every
``"url"`` is followed by the same prefix, which carries no credentials. Links whose path
could be read two ways (``%``, ``?``, ``#``, a ``/.`` segment) and the fields the proxy must
rewrite or act on (a provenance URL, a project status, the old metadata key that crashes
pip 22.3-23.1) make a page take the parsed path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from wheelhouse.simple.media import form_of

__all__ = ["Relay", "find_relayed", "relay_of", "relink"]

# The first file link: its key, separator and origin, as the page writes them.
_FIRST_URL = re.compile(rb'"url": ?"(https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)')
# Bytes that, anywhere in a page, send it down the parsed path (see the module's docstring).
_REFUSED = (b"\\", b"\n", b"%", b"?", b"#", b'"project-status"', b'"dist-info-metadata"')
# A dot segment: "/./" or "/../", or one ending a link (a regex: searching for "/." took 6 ms
# of pydantic-core's 6.9 MB page, a slash and a dot being in every link; this takes 2 ms).
_DOT_SEGMENT = re.compile(rb'/\.\.?[/"]')
# A wheel's name on a page that gives no METADATA of its own (PEP 658): the proxy offers its
# own for every wheel (it reads it from the wheel), as its parsed pages do. Marked where the
# name is followed by its hashes, as PyPI's sorted keys write every file; a wheel written
# otherwise is not marked, and clients read it as if no METADATA were offered (a regex over
# every "filename" took 20 ms of pydantic-core's page; these replacements take 1 ms).
_WHEEL_HASHES = ((b'.whl", "hashes": ', b'.whl", "core-metadata": true, "hashes": '),
                 (b'.whl","hashes":', b'.whl","core-metadata":true,"hashes":'))  # fmt: skip
_NO_METADATA = (b'"core-metadata"', b'"data-dist-info-metadata"')
# How far past a link the rest of its file's object may reach (a few short fields).
_OBJECT = 16 * 1024
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Relay:
    """How a relayed page writes its file links: ``needle`` (key, separator and origin as
    written) is replaced; ``origin`` is what a link's path is appended to upstream."""

    needle: bytes
    origin: str
    files: int  # links on the page (a stand-in for its files, which are not parsed)
    offer_metadata: bool = False  # the page gives no METADATA: the proxy offers its own


def relay_of(body: bytes, content_type: str) -> Relay | None:
    """How ``body`` can be relayed, or None when it must be parsed (see the docstring)."""
    if form_of(content_type) != "json" or any(marker in body for marker in _REFUSED):
        return None
    if not body.isascii():  # a link a client would percent-encode, which is never compared
        return None
    if _DOT_SEGMENT.search(body):
        return None
    first = _FIRST_URL.search(body)
    if first is None:
        return None
    needle = first.group(0)
    links = body.count(b'"url"')
    if body.count(needle) != links:
        return None
    provenance = body.count(b'"provenance"')
    if provenance and provenance != body.count(b'"provenance": null') + body.count(
        b'"provenance":null'
    ):
        return None
    offer = not any(key in body for key in _NO_METADATA)
    return Relay(needle, first.group(1).decode("ascii"), links, offer)


def relink(body: bytes, relay: Relay, link: str) -> bytes:
    """``body`` with every file link ``link`` + the path it had after the origin, and each
    wheel marked as having METADATA when the proxy offers its own."""
    body = body.replace(relay.needle, b'"url":"' + link.encode("ascii"))
    if relay.offer_metadata:
        for written, marked in _WHEEL_HASHES:
            body = body.replace(written, marked)
    return body


def find_relayed(body: bytes, relay: Relay, path: str) -> dict[str, object] | None:
    """The JSON object of the file linked as ``relay.origin + path`` in ``body``, decoded
    alone (pydantic-core's page lists 15,000), or None when no file has that link."""
    target = relay.needle + path.encode("utf-8") + b'"'
    at = body.find(target)
    if at < 0:
        return None
    # The object holding the link opens at one of the "{" before it (the nearer ones open
    # the small objects of its hashes or metadata); no "{" inside a string can mislead this,
    # since a decoded object is only taken when its own "url" is the link.
    start = at
    for _ in range(8):
        start = body.rfind(b"{", 0, start)
        if start < 0:
            return None
        try:
            item, _ = _DECODER.raw_decode(body[start : at + _OBJECT].decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("url") == relay.origin + path:
            return item
    return None
