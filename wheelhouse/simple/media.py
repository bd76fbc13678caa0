"""The Simple API's media types: what we ask an index for, and what we answer a client with."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ACCEPT",
    "API_VERSION",
    "HTML_ONLY",
    "HTML_TYPE",
    "JSON_TYPE",
    "NOT_ACCEPTABLE",
    "OFFERS",
    "PIP_ACCEPT",
    "STATUS_API_VERSION",
    "TEXT_HTML",
    "Form",
    "form_of",
    "negotiate",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
API_VERSION = "1.1"  # PEP 700: `versions` and `size` in the JSON form
STATUS_API_VERSION = "1.4"  # PEP 792: a page that carries a project status

# What the proxy and the mirror ask: JSON first (it carries size, upload-time and versions),
# then HTML (PEP 691 content negotiation); plain text/html last for PEP 503-only indexes.
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, {TEXT_HTML};q=0.01"
# pip's Accept header for index pages (pip 22.2 to 26.x): what the page tap recognises pip
# by, and what the pinned path asks an index that refuses HTML_ONLY.
PIP_ACCEPT = f"{JSON_TYPE}, {HTML_TYPE}; q=0.1, {TEXT_HTML}; q=0.01"
# Plain PEP 503 HTML: everything the pinned path reads without a cooldown, and the smallest
# answer of indexes that compress nothing (1.19 MB for boto3's page here, against 1.39 MB for
# the PEP 691 HTML form and 1.69 MB for JSON).
HTML_ONLY = TEXT_HTML

Form = Literal["json", "html"]

# What a /simple/ page can be served as, in the order we prefer them when the client does not
# say otherwise: JSON is the most expressive, text/html the legacy alias (PEP 691).
OFFERS = (JSON_TYPE, HTML_TYPE, TEXT_HTML)
# The body of a 406 answer (a line for people).
NOT_ACCEPTABLE = "acceptable types: " + ", ".join(OFFERS)
_LATEST = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
}


def form_of(content_type: str) -> Form | None:
    """Which parser reads an answer of ``content_type``: a PEP 691 JSON type (or any JSON),
    HTML (PEP 503's text/html or PEP 691's HTML type), else None."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == JSON_TYPE or kind.endswith("+json") or kind == "application/json":
        return "json"
    if kind in (TEXT_HTML, HTML_TYPE):
        return "html"
    return None


def negotiate(accept: str | None) -> str | None:
    """The content type to answer a /simple/ request with ``accept``, or None for a 406.

    Each offer takes the quality of the most specific range that matches it; the highest
    quality wins, then the more specific match, then our preference. No header means ``*/*``.
    """
    ranges: list[tuple[str, float]] = []
    for item in (accept or "*/*").split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        if not media:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a malformed range accepts nothing
        ranges.append((_LATEST.get(media, media), min(max(quality, 0.0), 1.0)))

    best: tuple[float, int, int] | None = None
    chosen = None
    for preference, offer in enumerate(OFFERS):
        quality, specificity = _quality(offer, ranges)
        if quality <= 0:
            continue
        rank = (quality, specificity, -preference)
        if best is None or rank > best:
            best, chosen = rank, offer
    return chosen


def _quality(offer: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    kind = offer.split("/", 1)[0]
    best_specificity = -1
    quality = 0.0
    for media, q in ranges:
        if media == offer:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, quality = specificity, q
        elif specificity == best_specificity:
            quality = max(quality, q)
    return quality, best_specificity
