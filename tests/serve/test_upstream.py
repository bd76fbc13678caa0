"""Reading upstream pages (PEP 691 JSON, PEP 503 HTML) and wheel METADATA by range requests."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.dists import DistFactory
from tests.support.proxy import _big_wheel
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.wheels import RangeFile, read_wheel_metadata, read_wheel_metadata_from
from wheelhouse.errors import UpstreamError
from wheelhouse.serve._upstream import fetch_wheel_metadata
from wheelhouse.simple import PageFile, fetch_project_page, parse_html_page, parse_json_page

PAGE = "https://user:secret@example.org/simple/demo/"


def test_parse_json_page_reads_pep_691_700_592_658_fields() -> None:
    data = b"""{"meta": {"api-version": "1.1"}, "name": "Demo", "versions": ["1.0"],
      "files": [
        {"filename": "demo-1.0-py3-none-any.whl", "url": "../../f/demo-1.0-py3-none-any.whl",
         "hashes": {"sha256": "AB"}, "requires-python": ">=3.8", "yanked": "broken",
         "size": 12, "upload-time": "2026-01-01T00:00:00Z", "core-metadata": {"sha256": "cd"}},
        {"filename": "demo-1.0.tar.gz", "url": "https://files.example.org/demo-1.0.tar.gz",
         "hashes": {}, "yanked": false, "dist-info-metadata": true}
      ]}"""
    page = parse_json_page(data, PAGE, "demo")
    assert page.name == "demo" and page.api_version == "1.1" and page.versions == ("1.0",)
    wheel, sdist = page.files
    assert wheel == PageFile(
        filename="demo-1.0-py3-none-any.whl",
        url="https://user:secret@example.org/f/demo-1.0-py3-none-any.whl",
        hashes={"sha256": "AB"},
        requires_python=">=3.8",
        yanked="broken",
        size=12,
        upload_time="2026-01-01T00:00:00Z",
        core_metadata={"sha256": "cd"},
    )
    assert sdist.yanked is False and sdist.core_metadata is True and sdist.sha256 is None


def test_parse_html_page_reads_pep_503_592_658_attributes() -> None:
    data = b"""<!DOCTYPE html><html><head>
      <meta name="pypi:repository-version" content="1.0"></head><body>
      <a href="../../f/demo-1.0-py3-none-any.whl#sha256=ABCD" data-requires-python="&gt;=3.8"
         data-core-metadata="sha256=ef" data-yanked="">demo-1.0-py3-none-any.whl</a>
      <a href="demo-1.0.tar.gz#md5=00" data-dist-info-metadata="true"
         data-yanked="bad build">demo-1.0.tar.gz</a>
    </body></html>"""
    page = parse_html_page(data, PAGE, "Demo")
    wheel, sdist = page.files
    assert wheel.url == "https://user:secret@example.org/f/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": "abcd"}
    assert wheel.requires_python == ">=3.8"
    assert wheel.yanked is True and wheel.core_metadata == {"sha256": "ef"}
    assert sdist.url == "https://user:secret@example.org/simple/demo/demo-1.0.tar.gz"
    assert sdist.hashes == {"md5": "00"} and sdist.sha256 is None
    assert sdist.yanked == "bad build" and sdist.core_metadata is True


def test_malformed_json_page_is_an_upstream_error_without_credentials() -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_json_page(b'{"files": [{"url": "x"}]}', PAGE, "demo")
    assert "secret" not in caught.value.message
    assert caught.value.message.startswith("https://example.org/simple/demo/ sent a malformed")


def test_fetch_project_page_negotiates_json_and_revalidates(
    dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("demo", "1.0", requires_python=">=3.8")
    client = HttpClient(PipSettings())
    index_server.json_pages = True
    index_server.etags = True
    first = fetch_project_page(client, index_server.url, "Demo")
    assert first.status == "ok" and first.page is not None and first.etag
    assert first.page.api_version == "1.1"
    (file,) = first.page.files
    assert file.size == wheel.stat().st_size
    assert file.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert file.url == index_server.files_url + wheel.name
    again = fetch_project_page(client, index_server.url, "demo", etag=first.etag)
    assert again.status == "not-modified"
    index_server.json_pages = False  # a PEP 503-only index answers HTML to the same Accept
    html = fetch_project_page(client, index_server.url, "demo")
    assert html.page is not None and html.page.files[0].sha256 == file.sha256
    assert html.page.files[0].requires_python == ">=3.8"
    assert fetch_project_page(client, index_server.url, "absent").status == "not-found"


def test_fetch_project_page_fails_with_one_line_reason(index_server: IndexServer) -> None:
    client = HttpClient(PipSettings())
    index_server.fail("/simple/", 503)
    with pytest.raises(UpstreamError, match=r"answered HTTP 503$"):
        fetch_project_page(client, index_server.url, "demo")
    url = index_server.url
    index_server.stop()
    with pytest.raises(UpstreamError, match="cannot be reached"):
        fetch_project_page(client, url, "demo", timeout=2)


def test_range_file_reads_metadata_from_a_few_tens_of_kb(tmp_path: Path) -> None:
    wheel = _big_wheel(tmp_path)
    data = wheel.read_bytes()
    fetched: list[tuple[int, int]] = []

    def fetch(start: int, stop: int) -> bytes:
        fetched.append((start, stop))
        return data[start:stop]

    ranged = RangeFile(fetch, len(data))

    got = read_wheel_metadata_from(
        io.BufferedReader(ranged), canonicalize_name("big"), Version("1")
    )
    assert got == read_wheel_metadata(wheel, canonicalize_name("big"), Version("1"))
    assert sum(stop - start for start, stop in fetched) < 200 * 1024 < len(data)


def test_fetch_wheel_metadata_by_range_then_whole(
    tmp_path: Path, index_server: IndexServer
) -> None:
    wheel = _big_wheel(index_server.root)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    file = PageFile(wheel.name, index_server.files_url + wheel.name, {"sha256": sha})
    expected = b"Metadata-Version: 2.1\nName: big\n"
    client = HttpClient(PipSettings())
    index_server.ranges = True
    ranged = fetch_wheel_metadata(client, file)
    assert (ranged.data, ranged.source) == (expected, "range")
    assert ranged.sha256 == hashlib.sha256(expected).hexdigest()
    assert ranged.bytes_read < 200 * 1024
    index_server.ranges = False
    whole = fetch_wheel_metadata(client, file)
    assert (whole.data, whole.source, whole.bytes_read) == (expected, "whole", wheel.stat().st_size)
    index_server.corrupt(wheel.name)
    with pytest.raises(UpstreamError, match="does not match the sha256"):
        fetch_wheel_metadata(client, file)
