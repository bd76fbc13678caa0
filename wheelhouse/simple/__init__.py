"""The Simple API once: the page model, its parser and renderer (HTML and JSON), the media
types and content negotiation, and the page client.

    model   PageFile, ProjectPage: what a page says, as frozen values
    parse   bytes -> model, bounded (PEP 503 HTML, PEP 691 JSON, the root listing)
    render  model -> bytes (the static index and the proxy)
    media   media types, the Accept headers we send, negotiation for our servers
    client  GET a page: redirects, one credential policy, validators, size and time limits
    relay   an upstream's JSON page a proxy can pass on by one byte replacement, unparsed

A new page field goes in ``model.PageFile``, then ``parse`` and ``render`` (both forms), and
the round trip test in tests/simple/.
"""

from typing import TYPE_CHECKING, Any

from wheelhouse.simple.media import (
    ACCEPT,
    HTML_TYPE,
    JSON_TYPE,
    NOT_ACCEPTABLE,
    PIP_ACCEPT,
    form_of,
    negotiate,
)
from wheelhouse.simple.model import PageFile, ProjectPage, ProjectStatus
from wheelhouse.simple.parse import parse_html_page, parse_json_page, parse_page, parse_root
from wheelhouse.simple.render import render_html, render_json, root_html, root_json

if TYPE_CHECKING:
    from wheelhouse.simple.client import (
        PageAnswer,
        PageResult,
        fetch_page,
        fetch_project_page,
        project_page_url,
        read_page,
    )

# The page client brings urllib3 and ssl (about 50 ms): loaded when first asked for, so
# what only reads or writes pages (an install, the static index, verify) does without it.
_CLIENT = frozenset(
    {
        "PageAnswer",
        "PageResult",
        "fetch_page",
        "fetch_project_page",
        "project_page_url",
        "read_page",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT:
        from wheelhouse.simple import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCEPT",
    "HTML_TYPE",
    "JSON_TYPE",
    "NOT_ACCEPTABLE",
    "PIP_ACCEPT",
    "PageAnswer",
    "PageFile",
    "PageResult",
    "ProjectPage",
    "ProjectStatus",
    "fetch_page",
    "fetch_project_page",
    "form_of",
    "negotiate",
    "parse_html_page",
    "parse_json_page",
    "parse_page",
    "parse_root",
    "project_page_url",
    "read_page",
    "render_html",
    "render_json",
    "root_html",
    "root_json",
]
