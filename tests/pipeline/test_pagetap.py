"""The page tap: what it forwards, rewrites and keeps (pip's own use is in test_loose.py)."""

from __future__ import annotations

import functools
import json
from concurrent.futures import Future
from pathlib import Path

from tests.support import httpget
from tests.support.dists import DistFactory
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.resolve._pagetap import PageTap
from wheelhouse.simple.media import PIP_ACCEPT

# What the tap answers, as it answers it (no redirect followed).
get = functools.partial(httpget.get, redirects=False)


def test_keeps_pages_rewrites_redirects_and_passes_files_on(
    dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("app", "1.0")
    url = index_server.url.replace("http://", "http://alice:s3cret@")
    with PageTap([url, "file:///somewhere/simple/"], HttpClient(PipSettings())) as tap:
        tapped, local = tap.index_urls
        assert local == "file:///somewhere/simple/"
        assert tapped.startswith("http://127.0.0.1:") and tapped.endswith("/simple/")
        assert tapped != index_server.url

        moved = get(tapped + "App/")
        page = get(tapped + "app/", Accept="text/html")
        missing = get(tapped + "nothing/")
        file = get(tapped.removesuffix("simple/") + "files/" + wheel.name)

    # A redirect to the index's own host points back at the tap; pip follows it there.
    assert moved.status == 301
    assert moved.headers["Location"] == tapped + "app/"
    assert page.status == 200 and b"app-1.0-py3-none-any.whl" in page.data
    assert missing.status == 404
    assert file.status == 200 and file.data == wheel.read_bytes()
    # Index pages are kept by the index's own URL, without credentials; files are not, nor is
    # this index's plain-text 404 (only an answer that is an index page is kept).
    assert set(tap.pages) == {index_server.url + "app/"}
    kept = tap.pages[index_server.url + "app/"]
    assert (kept.status, kept.url, kept.body) == (200, index_server.url + "app/", page.data)
    assert tap.forwarded == 4 and tap.failures == []
    # The request headers that decide the answer reach the index.
    assert ("/simple/app/", "text/html") in [(p, h.get("Accept")) for p, h in index_server.received]
    assert tap.untap(f"ERROR: from {tapped}app/") == f"ERROR: from {index_server.url}app/"
    # pip is given no credentials; the tap sends the index's own with every request.
    assert "s3cret" not in tapped
    auth = {h.get("Authorization") for _, h in index_server.received}
    assert auth == {"Basic YWxpY2U6czNjcmV0"}


def test_refusals_and_unreachable_indexes_are_failures(
    dists: DistFactory, index_server: IndexServer
) -> None:
    index_server.fail("/simple/locked/", 403)
    with PageTap(
        [index_server.url, "http://127.0.0.1:9/simple/"],
        HttpClient(PipSettings.parse({"retries": "0"})),
    ) as tap:
        refused = get(tap.index_urls[0] + "locked/")
        dead = get(tap.index_urls[1] + "anything/")

    assert refused.status == 403
    assert dead.status == 502
    assert tap.forwarded == 2
    assert tap.failures[0] == f"{index_server.url}locked/: HTTP 403"
    assert tap.failures[1].startswith("http://127.0.0.1:9/simple/anything/: ")
    assert tap.pages == {}


def test_ahead_the_tap_answers_for_linked_hosts_only_and_reads_a_page_once(
    dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("app", "1.0")
    index_server.absolute_links = True
    index_server.json_pages = True
    with PageTap([index_server.url], HttpClient(PipSettings()), ahead=True) as tap:
        [tapped] = tap.index_urls
        loopback = tapped.removesuffix("simple/")
        # Nothing was linked from any host yet: the tap forwards to none.
        early = get(loopback + f"~http/127.0.0.1:{index_server.port}/files/{wheel.name}")
        # Read for the prefetcher first, then asked by pip: one request to the index.
        kept = tap.page(index_server.url + "app/")
        page = get(tapped + "app/", Accept=PIP_ACCEPT)
        link = json.loads(page.data)["files"][0]["url"]
        file = get(link)
        elsewhere = get(loopback + "~http/example.org/files/" + wheel.name)

    assert early.status == 404
    assert kept is not None and kept.status == 200
    assert index_server.count("/simple/app/") == 1
    # The page pip gets links the file at the tap; the page kept is the index's own.
    assert link == loopback + f"~http/127.0.0.1:{index_server.port}/files/{wheel.name}"
    assert json.loads(kept.body)["files"][0]["url"] == index_server.files_url + wheel.name
    assert file.status == 200 and file.data == wheel.read_bytes()
    assert elsewhere.status == 404
    assert tap.untap(f"from {link}") == f"from {index_server.files_url}{wheel.name}"


def test_ahead_pip_is_answered_with_the_download_offered_for_a_file(
    dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    wheel = dists.wheel("app", "1.0")
    index_server.absolute_links = True
    made_here = tmp_path / "downloaded.whl"
    made_here.write_bytes(b"the prefetcher's copy")
    with PageTap([index_server.url], HttpClient(PipSettings()), ahead=True) as tap:
        [tapped] = tap.index_urls
        get(tapped + "app/", Accept=PIP_ACCEPT)
        offered: Future[Path] = Future()
        assert tap.offer(index_server.files_url + wheel.name, offered)
        offered.set_result(made_here)
        file = get(
            tapped.removesuffix("simple/")
            + f"~http/127.0.0.1:{index_server.port}/files/{wheel.name}"
        )
        # Once pip has asked for a file, it is not offered again: pip has it.
        late = tap.offer(index_server.files_url + wheel.name, Future())

    assert file.status == 200 and file.data == b"the prefetcher's copy"
    assert index_server.count("/files/" + wheel.name) == 0
    assert late is False


def test_ahead_pip_is_not_shown_the_files_hide_names(
    dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("app", "1.0")
    dists.wheel("app", "1.0", tag="cp311-cp311-win_amd64")

    def hide(filename: str) -> bool:
        return "win_amd64" in filename

    with PageTap([index_server.url], HttpClient(PipSettings()), ahead=True, hide=hide) as tap:
        [tapped] = tap.index_urls
        index_server.json_pages = True
        as_json = get(tapped + "app/", Accept=PIP_ACCEPT)
        kept_json = tap.pages[index_server.url + "app/"]
    index_server.json_pages = False
    with PageTap([index_server.url], HttpClient(PipSettings()), ahead=True, hide=hide) as tap:
        [tapped] = tap.index_urls
        as_html = get(tapped + "app/", Accept=PIP_ACCEPT)
        kept_html = tap.pages[index_server.url + "app/"]

    # The index lists both files; pip's page (JSON or HTML) and the page kept list one.
    assert [f["filename"] for f in json.loads(as_json.data)["files"]] == [
        "app-1.0-py3-none-any.whl"
    ]
    assert [f["filename"] for f in json.loads(kept_json.body)["files"]] == [
        "app-1.0-py3-none-any.whl"
    ]
    for body in (as_html.data, kept_html.body):
        assert b">app-1.0-py3-none-any.whl</a>" in body
        assert b"win_amd64" not in body
