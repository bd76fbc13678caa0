"""Media types and content negotiation, in one place for every server and client of ours."""

from __future__ import annotations

import pytest

from wheelhouse.simple.media import (
    ACCEPT,
    HTML_TYPE,
    JSON_TYPE,
    PIP_ACCEPT,
    TEXT_HTML,
    form_of,
    negotiate,
)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON_TYPE),
        ("*/*", JSON_TYPE),
        (ACCEPT, JSON_TYPE),
        (PIP_ACCEPT, JSON_TYPE),
        ("text/html", TEXT_HTML),
        (f"{HTML_TYPE}, {JSON_TYPE};q=0.5", HTML_TYPE),
        ("application/vnd.pypi.simple.latest+html", HTML_TYPE),
        ("text/*", TEXT_HTML),
        ("application/*;q=0.1, text/html;q=0.2", TEXT_HTML),
        (f"{JSON_TYPE};q=0, */*;q=0.1", HTML_TYPE),
        (f"{JSON_TYPE};q=oops", None),
        ("image/png", None),
    ],
)
def test_negotiate(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize(
    ("content_type", "form"),
    [
        (JSON_TYPE, "json"),
        ("Application/Vnd.PyPI.Simple.V1+JSON; charset=utf-8", "json"),
        ("application/json", "json"),
        (HTML_TYPE, "html"),
        ("text/html; charset=utf-8", "html"),
        ("text/plain", None),
        ("", None),
    ],
)
def test_form_of(content_type: str, form: str | None) -> None:
    assert form_of(content_type) == form


def test_the_accept_headers_we_send() -> None:
    assert f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01" == ACCEPT
    assert PIP_ACCEPT == (
        "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
        "text/html; q=0.01"
    )
