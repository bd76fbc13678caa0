"""METADATA and gzip bombs from a hostile upstream: refused, with memory bounded (the proxy's
and the mirror's, read from the kernel while they run as users run them)."""

from __future__ import annotations

import hashlib
import json
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path
from urllib.parse import urljoin

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.hostile import (
    EXTRA,
    MiB,
    bomb_wheel,
    gzip_bomb,
    json_page,
    peak_rss,
    run_measured,
    serve,
    within,
)
from tests.support.proxy import JSON, StartProxy
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.wheels import MAX_METADATA, MetadataTooLargeError, read_wheel_metadata
from wheelhouse.errors import UpstreamError
from wheelhouse.serve._upstream import fetch_wheel_metadata
from wheelhouse.simple import PageFile, fetch_project_page


def test_a_metadata_bomb_is_refused_after_inflating_a_bounded_amount(tmp_path: Path) -> None:
    wheel = bomb_wheel(tmp_path)
    assert wheel.stat().st_size < 2 * MiB
    tracemalloc.start()
    try:
        with pytest.raises(MetadataTooLargeError) as caught:
            read_wheel_metadata(wheel, canonicalize_name("bomb"), Version("1.0"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Refused by the size the zip declares, before inflating anything.
    assert peak < 4 * MiB, peak
    assert str(caught.value) == (
        f"its 'bomb-1.0.dist-info/METADATA' inflates to more than {MAX_METADATA} bytes,"
        " far beyond any real METADATA (a decompression bomb?)"
    )
    # Every caller already catches BadZipFile for a wheel it cannot read.
    assert isinstance(caught.value, zipfile.BadZipFile)


@pytest.mark.parametrize("ranges", [False, True], ids=["whole-wheel", "range-requests"])
def test_the_proxy_refuses_a_metadata_bomb_with_bounded_memory(
    tmp_path: Path, index_server: IndexServer, start_proxy: StartProxy, ranges: bool
) -> None:
    wheel = bomb_wheel(tmp_path)
    data = wheel.read_bytes()
    page = json_page("bomb", {wheel.name: f"/files/{wheel.name}"})
    listed = json.loads(page)
    listed["files"][0]["hashes"] = {"sha256": hashlib.sha256(data).hexdigest()}
    index_server.ranges = ranges
    serve(
        index_server,
        {"bomb": ({"Content-Type": JSON}, json.dumps(listed).encode())},
        {wheel.name: data},
    )
    proxy = start_proxy("--upstream", index_server.url)
    status, _, body = proxy.get("/simple/bomb/", JSON)
    assert status == 200, body
    url = json.loads(body)["files"][0]["url"]
    before = peak_rss(proxy.proc.pid)

    status, _, body = proxy.get(urljoin("/simple/bomb/", url) + ".metadata")

    grown = peak_rss(proxy.proc.pid) - before
    assert grown < EXTRA, f"the proxy grew by {grown} bytes"
    assert status == 502, body[:200]
    assert b"inflates to more than 8388608 bytes" in body
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert all(p.stat().st_size < 2 * MiB for p in stored), stored


def test_a_pep_658_file_past_the_metadata_limit_is_refused(index_server: IndexServer) -> None:
    served = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n" + b"x" * MAX_METADATA
    filename = "big-1.0-py3-none-any.whl"
    serve(index_server, {}, {f"{filename}.metadata": served})
    file = PageFile(filename, index_server.files_url + filename, core_metadata=True)
    with pytest.raises(UpstreamError) as caught:
        fetch_wheel_metadata(HttpClient(PipSettings()), file, allow_whole=False)
    assert caught.value.message == (
        f"{index_server.files_url}{filename}.metadata sent more than {MAX_METADATA} bytes"
    )


def test_a_gzip_bomb_page_is_refused_with_bounded_memory(index_server: IndexServer) -> None:
    bomb = gzip_bomb(512 * MiB)
    assert len(bomb) < MiB
    serve(index_server, {"gz": ({"Content-Type": JSON, "Content-Encoding": "gzip"}, bomb)})
    client = HttpClient(PipSettings())
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamError) as caught:
            fetch_project_page(client, index_server.url, "gz", timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 48 * MiB, peak  # the cap and a slice: not the 512 MiB, not two copies
    assert caught.value.message == f"{index_server.url}gz/ sent more than {32 * MiB} bytes"
    assert time.monotonic() - started < 30


def test_the_mirror_refuses_a_gzip_bomb_page_with_bounded_memory(
    tmp_path: Path, index_server: IndexServer
) -> None:
    serve(
        index_server,
        {"gz": ({"Content-Type": JSON, "Content-Encoding": "gzip"}, gzip_bomb(512 * MiB))},
    )
    out = tmp_path / "mirror"
    command = [sys.executable, "-m", "wheelhouse", "mirror", "gz", "-o", str(out)]
    baseline, base_rss = run_measured(tmp_path, sys.executable, "-m", "wheelhouse", "--help")
    assert baseline.returncode == 0, baseline.stderr

    done, rss = run_measured(tmp_path, *command, "-i", index_server.url)

    assert rss - base_rss < EXTRA, f"the mirror peaked at {rss} bytes ({base_rss} at rest)"
    assert done.returncode != 0, done.stderr
    assert f"{index_server.url}gz/ sent more than {32 * MiB} bytes" in done.stderr


def test_a_whole_wheel_past_the_size_its_page_gives_is_cut_off(
    tmp_path: Path, index_server: IndexServer
) -> None:
    # Upstream ignores ranges and sends more than the page promised (an endless answer
    # would fill the disk before any hash could fail): reading stops at the promised size.
    wheel = bomb_wheel(tmp_path, inflated=MiB)
    serve(index_server, {}, {wheel.name: wheel.read_bytes()})
    promised = wheel.stat().st_size // 2
    file = PageFile(wheel.name, index_server.files_url + wheel.name, size=promised)
    with pytest.raises(UpstreamError) as caught:
        fetch_wheel_metadata(HttpClient(PipSettings()), file)
    assert caught.value.message == (
        f"{index_server.files_url}{wheel.name} sent more than the {promised} bytes its page gives"
    )


def many_files_page(kind: str, count: int) -> tuple[dict[str, str], bytes]:
    """A page of ``count`` tiny file entries: a few MiB, under the byte cap."""
    if kind == "json":
        items = ",".join('{"filename":"a","url":"b"}' for _ in range(count))
        return {"Content-Type": JSON}, b'{"name":"x","files":[%s]}' % items.encode()
    return {"Content-Type": "text/html"}, b'<a href="b">a</a>' * count


@pytest.mark.parametrize("kind", ["json", "html"])
def test_a_page_of_a_million_tiny_entries_is_refused_with_bounded_memory(
    index_server: IndexServer, kind: str
) -> None:
    headers, page = many_files_page(kind, 1_200_000)
    assert len(page) < 32 * MiB
    serve(index_server, {"many": (headers, page)})
    client = HttpClient(PipSettings())
    peaks: list[int] = []

    def fetch() -> None:
        tracemalloc.start()
        try:
            fetch_project_page(client, index_server.url, "many", timeout=60)
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()

    raised, _ = within(180, fetch)
    # Parsing them all cost 550 MB and minutes of CPU; the page is refused instead.
    assert peaks[0] < EXTRA, peaks
    assert isinstance(raised, UpstreamError), raised
    assert raised.message == (
        f"{index_server.url}many/ sent a page of more than 100000 files,"
        " more than any real project has"
    )
