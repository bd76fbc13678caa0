"""Reading PEP 792 project status and PEP 700 upload times from upstream pages, both forms."""

from __future__ import annotations

import json
import logging

import pytest

from tests.support.dists import DistFactory
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.errors import ExitCode, MalformedUploadTime, UpstreamError
from wheelhouse.simple import fetch_project_page, parse_html_page, parse_json_page

WHEEL = "demo-1.0-py3-none-any.whl"


@pytest.fixture
def demo(dists: DistFactory, index_server: IndexServer) -> IndexServer:
    dists.wheel("demo", "1.0")
    return index_server


@pytest.mark.parametrize("json_pages", [True, False], ids=["json", "html"])
def test_project_status_and_reason_are_read_from_either_form(
    demo: IndexServer, json_pages: bool
) -> None:
    demo.json_pages = json_pages
    demo.project_status["demo"] = ("quarantined", "malware <script>")

    result = fetch_project_page(HttpClient(PipSettings()), demo.url, "demo")

    assert result.page is not None
    assert result.page.status == "quarantined"
    assert result.page.status_reason == "malware <script>"
    assert result.page.files == ()


def test_a_page_without_status_is_active(demo: IndexServer) -> None:
    demo.json_pages = True
    result = fetch_project_page(HttpClient(PipSettings()), demo.url, "demo")
    assert result.page is not None
    assert (result.page.status, result.page.status_reason) == ("active", None)
    assert result.page.files[0].upload_time == "2026-01-01T00:00:00.000000Z"


def test_an_unknown_status_reads_as_active_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = json.dumps(
        {"meta": {"api-version": "1.4"}, "files": [], "project-status": {"status": "x" * 500}}
    )
    with caplog.at_level(logging.WARNING):
        page = parse_json_page(body.encode(), "https://example.org/simple/demo/", "demo")
    assert page.status == "active"
    [record] = caplog.records
    assert record.getMessage() == (
        f"https://example.org/simple/demo/ gives the unknown project status {'x' * 64!r}; "
        "read as 'active'"
    )


def test_a_status_that_is_not_an_object_makes_the_page_malformed() -> None:
    body = b'{"files": [], "project-status": "quarantined"}'
    with pytest.raises(UpstreamError, match="malformed PEP 691 page"):
        parse_json_page(body, "https://example.org/simple/demo/", "demo")


def test_html_status_meta_tags() -> None:
    body = (
        b'<html><head><meta name="pypi:project-status" content="archived">'
        b'<meta name="pypi:project-status-reason" content="moved to demo2"></head>'
        b'<body><a href="demo-1.0.tar.gz">demo-1.0.tar.gz</a></body></html>'
    )
    page = parse_html_page(body, "https://example.org/simple/demo/", "demo")
    assert (page.status, page.status_reason) == ("archived", "moved to demo2")
    assert [f.filename for f in page.files] == ["demo-1.0.tar.gz"]


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-02-30T00:00:00Z", 1735689600, "", ["2026-01-01"]]
)
def test_a_malformed_upload_time_is_one_line_naming_project_and_file(
    demo: IndexServer, value: object
) -> None:
    demo.json_pages = True
    demo.upload_times[WHEEL] = value

    with pytest.raises(MalformedUploadTime) as caught:
        fetch_project_page(HttpClient(PipSettings()), demo.url, "demo")

    assert caught.value.exit_code == ExitCode.NETWORK
    assert caught.value.message == (
        f"{demo.url}demo/ gives demo file {WHEEL!r} the upload-time {value!r}, which is not an "
        "ISO 8601 time; the page is not used"
    )
