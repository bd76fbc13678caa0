"""`serve --upstream`: the caching proxy, with real pip and uv clients against a loopback
upstream that counts requests and can be stopped, slowed or made to send wrong bytes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.dists import DistFactory
from tests.support.process import ServeProcess, wait_until
from tests.support.proxy import (
    HTML,
    JSON,
    StartProxy,
    page,
    pip_download,
    proxy_store,
    raw_get,
    stored_files,
)
from tests.support.server import IndexServer
from tests.support.wheelhouses import manifest_of, record_of
from wheelhouse.house.index import write_index


def fetch(proxy: ServeProcess, project: str, url: str) -> tuple[int, bytes]:
    # Pages link files absolutely (by the Host asked): the proxy's own URLs either way.
    status, _, body = proxy.get(urlsplit(urljoin(f"/simple/{project}/", url)).path)
    return status, body


@pytest.fixture
def upstream_dists(dists: DistFactory) -> DistFactory:
    """alpha 1.0 (needs beta>=1), beta 1.0 and 2.0 (+ sdist), gamma 1.0."""
    dists.wheel("alpha", "1.0", requires=["beta>=1"], requires_python=">=3.8")
    dists.wheel("beta", "1.0")
    dists.wheel("beta", "2.0")
    dists.sdist("beta", "2.0")
    dists.wheel("gamma", "1.0")
    return dists


def upstream_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_file())


# -- pages ------------------------------------------------------------------------------------


def test_pages_are_pep_691_and_503_with_metadata_whose_hash_matches(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    index_server.json_pages = True  # upstream gives size and upload-time: passed through
    url = index_server.url.replace("http://", "http://user:s3cret@")
    proxy = start_proxy("--upstream", url)
    data = page(proxy, "beta")
    assert data["meta"] == {"api-version": "1.1"}
    assert data["versions"] == ["1.0", "2.0"]
    by_name = {f["filename"]: f for f in data["files"]}
    assert sorted(by_name) == ["beta-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl",
                               "beta-2.0.tar.gz"]  # fmt: skip
    wheel = by_name["beta-2.0-py3-none-any.whl"]
    local = upstream_dists.root / wheel["filename"]
    assert wheel["hashes"] == {"sha256": hashlib.sha256(local.read_bytes()).hexdigest()}
    assert wheel["size"] == local.stat().st_size
    assert wheel["upload-time"] == "2026-01-01T00:00:00.000000Z"
    assert wheel["url"].startswith(f"{proxy.base}files/beta/")  # by the Host asked
    assert wheel["core-metadata"] is True  # served, hash not known before first read
    assert by_name["beta-2.0.tar.gz"]["core-metadata"] is False
    status, metadata = fetch(proxy, "beta", wheel["url"] + ".metadata")
    assert status == 200
    with zipfile.ZipFile(local) as archive:
        assert metadata == archive.read("beta-2.0.dist-info/METADATA")
    again = {f["filename"]: f for f in page(proxy, "beta")["files"]}
    assert again[wheel["filename"]]["core-metadata"] == {
        "sha256": hashlib.sha256(metadata).hexdigest()
    }
    status, body = fetch(proxy, "beta", wheel["url"])
    assert (status, body) == (200, local.read_bytes())
    # PEP 503 HTML for clients that ask for it; requires-python passed through, escaped.
    status, headers, html = proxy.get("/simple/alpha/", HTML)
    assert status == 200 and headers["content-type"] == HTML
    assert b'data-requires-python="&gt;=3.8"' in html and b'data-core-metadata="true"' in html
    assert b"s3cret" not in html and "s3cret" not in proxy.log
    assert b"s3cret" not in b"".join(p.read_bytes() for p in (proxy_store(proxy)).rglob("*.json"))


def test_negotiation_redirects_and_endpoints(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    proxy = start_proxy("--upstream", index_server.url)
    status, headers, body = proxy.get("/simple/beta/", "text/plain")
    assert status == 406 and body.startswith(b"acceptable types: ")
    assert proxy.get("/simple/beta/", "*/*")[1]["content-type"] == JSON  # PEP 691 allows it
    status, headers, _ = proxy.get("/simple/beta/", "text/html")
    assert headers["content-type"] == "text/html; charset=utf-8"
    status, _, body = proxy.get("/simple/Beta_/")  # urllib follows the 301
    assert status == 404  # "beta-" is not a valid project name
    status, _, body = proxy.get("/simple/BETA/")
    assert status == 200 and json.loads(body)["name"] == "beta"
    status, _, body = proxy.get("/simple/no-such-project/")
    assert (status, body) == (404, b"no-such-project is on none of the upstream indexes\n")
    assert json.loads(proxy.get("/-/health")[2])["status"] == "ok"
    stats = proxy.stats()
    assert stats["page_misses"] == 2 and stats["rss_bytes"] > 0
    etag = proxy.get("/simple/beta/", JSON)[1]["etag"]
    status, _, _ = proxy_get_with(proxy, "/simple/beta/", {"Accept": JSON, "If-None-Match": etag})
    assert status == 304


def proxy_get_with(proxy: ServeProcess, path: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
    return proxy.get(path, **headers)


# -- real clients -----------------------------------------------------------------------------


@pytest.mark.slow
def test_pip_and_uv_install_through_the_proxy(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    start_proxy: StartProxy,
    make_venv: Any,
    tmp_path: Path,
) -> None:
    proxy = start_proxy("--upstream", index_server.url)
    python = make_venv("pip-venv")  # the bundled pip (23.2)
    proc = subprocess.run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-i", proxy.url, "alpha"],
        capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    uv = shutil.which("uv")
    assert uv is not None, "uv is a test dependency"
    uv_python = make_venv("uv-venv", with_pip=False)
    proc = subprocess.run(
        [uv, "pip", "install", "--python", str(uv_python), "--index-url", proxy.url,
         "--no-cache", "alpha"],
        capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for venv_python in (python, uv_python):
        out = subprocess.run(
            [venv_python, "-c", "import alpha, beta; print(alpha.__version__, beta.__version__)"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        assert out.stdout.split() == ["1.0", "2.0"]
    # Each file came from upstream once, although two clients installed it.
    assert index_server.count("/files/alpha-1.0-py3-none-any.whl") == 1
    assert index_server.count("/files/beta-2.0-py3-none-any.whl") == 1
    assert index_server.count("/files/beta-1.0-py3-none-any.whl") == 0


def test_concurrent_cold_clients_fetch_each_file_once(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    index_server.delay("/files/", 0.5)  # every client asks while the first download runs
    index_server.delay("/simple/", 0.3)
    proxy = start_proxy("--upstream", index_server.url)
    with ThreadPoolExecutor(10) as pool:
        results = list(
            pool.map(lambda i: pip_download(proxy, tmp_path / f"c{i}", "alpha", "gamma"), range(10))
        )
    assert [r.returncode for r in results] == [0] * 10, results[0].stderr
    expected = sorted(["alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl",
                       "gamma-1.0-py3-none-any.whl"])  # fmt: skip
    for i in range(10):
        got = sorted(p.name for p in (tmp_path / f"c{i}").iterdir())
        assert got == expected
        for name in got:
            assert (tmp_path / f"c{i}" / name).read_bytes() == (
                upstream_dists.root / name
            ).read_bytes()
    for name in expected:
        assert index_server.count(f"/files/{name}") == 1, name
    assert index_server.count("/simple/alpha/") == 1
    assert index_server.count("/simple/beta/") == 1


def test_several_workers_share_one_store_and_fetch_each_file_once(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    index_server.delay("/files/", 0.5)
    proxy = start_proxy("--upstream", index_server.url, "--workers", "2")
    with ThreadPoolExecutor(6) as pool:
        results = list(
            pool.map(lambda i: pip_download(proxy, tmp_path / f"w{i}", "alpha"), range(6))
        )
    assert [r.returncode for r in results] == [0] * 6, results[0].stderr
    assert index_server.count("/files/alpha-1.0-py3-none-any.whl") == 1
    assert index_server.count("/files/beta-2.0-py3-none-any.whl") == 1
    assert proxy.stop(signal.SIGTERM) == 0


# -- outages, bad bytes, restarts ---------------------------------------------------------------


def test_upstream_down_serves_stale_pages_and_502_for_unseen_projects(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    url = index_server.url
    proxy = start_proxy("--upstream", url, "--ttl", "0", "--timeout", "2")
    assert pip_download(proxy, tmp_path / "warm", "alpha").returncode == 0
    index_server.stop()
    status, _, body = proxy.get("/simple/alpha/", JSON)
    assert status == 200 and json.loads(body)["name"] == "alpha"
    assert wait_until(lambda: "serving the stale page of alpha" in proxy.log)
    proc = pip_download(proxy, tmp_path / "stale", "alpha")
    assert proc.returncode == 0, proc.stderr
    status, _, body = proxy.get("/simple/gamma/", JSON)
    assert status == 502
    assert body.decode().count("\n") == 1
    assert body.startswith(f"upstream {url} failed: ".encode())
    # Back up: the page is revalidated (ETag -> 304) and a new project is found again.
    index_server.etags = True
    index_server.start(same_port=True)
    assert proxy.get("/simple/gamma/", JSON)[0] == 200
    proxy.get("/simple/gamma/", JSON)
    assert wait_until(lambda: proxy.stats()["page_revalidations"] >= 1)


def test_etag_revalidation_gets_304(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    index_server.etags = True
    proxy = start_proxy("--upstream", index_server.url, "--ttl", "0")
    assert proxy.get("/simple/beta/", JSON)[0] == 200
    assert proxy.get("/simple/beta/", JSON)[0] == 200  # stale: served, revalidated behind
    assert wait_until(lambda: proxy.stats()["page_not_modified"] == 1)
    upstream_dists.wheel("beta", "3.0")  # a new release appears after the next revalidation
    proxy.get("/simple/beta/", JSON)
    assert wait_until(lambda: "3.0" in page(proxy, "beta")["versions"])


def test_wrong_upstream_bytes_abort_the_response_and_cache_nothing(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    index_server.corrupt("gamma-1.0-py3-none-any.whl")
    index_server.delay("/files/", 0.5)  # the response has started when the bytes arrive
    proxy = start_proxy("--upstream", index_server.url)
    wheel = page(proxy, "gamma")["files"][0]
    status, body = fetch_raw(proxy, "gamma", wheel["url"])
    # Cut short once bytes were sent; a 502 before any header when the mismatch was known
    # before the first byte (this wheel is one read chunk).
    assert status in {"incomplete", "502"}
    assert len(body) < (upstream_dists.root / wheel["filename"]).stat().st_size
    proc = pip_download(proxy, tmp_path / "bad", "gamma")
    assert proc.returncode != 0
    assert stored_files(proxy_store(proxy)) == []
    assert "not the " in proxy.log and "nothing was stored" in proxy.log
    assert proxy.stats()["hash_mismatches"] >= 1
    index_server.clear_hooks()
    proc = pip_download(proxy, tmp_path / "good", "gamma")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in stored_files(proxy_store(proxy))] == [wheel["hashes"]["sha256"]]


def fetch_raw(proxy: ServeProcess, project: str, url: str) -> tuple[str, bytes]:
    return raw_get(proxy, urlsplit(urljoin(f"/simple/{project}/", url)).path, 30)


def test_restart_with_a_warm_store_and_offline(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    store = tmp_path / "shared-store"
    first = start_proxy("--upstream", index_server.url, "--store", store)
    assert pip_download(first, tmp_path / "one", "alpha").returncode == 0
    assert first.stop(signal.SIGINT) == 0
    assert "stopped on SIGINT" in first.log
    url = index_server.url
    index_server.stop()
    second = start_proxy("--upstream", url, "--store", store)
    proc = pip_download(second, tmp_path / "two", "alpha")
    assert proc.returncode == 0, proc.stderr
    offline = start_proxy("--upstream", url, "--store", store, "--offline")
    assert pip_download(offline, tmp_path / "three", "alpha").returncode == 0
    status, _, body = offline.get("/simple/gamma/", JSON)
    assert (status, body) == (503, b"offline: gamma is not in the store\n")


def test_private_project_in_a_local_wheelhouse_wins_over_a_higher_upstream_version(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    upstream_dists.wheel("private", "9.0")  # the dependency-confusion attack
    own = DistFactory(tmp_path / "own-dists")
    own.root.mkdir()
    house = tmp_path / "house"
    house.mkdir()
    made = own.wheel("private", "1.0", requires=["beta"])
    shutil.copy2(made, house / made.name)
    write_index(house, manifest_of([record_of(house / made.name)]))
    proxy = start_proxy(house, "--upstream", index_server.url)
    # One start line, naming what is served in the order it is looked in (issue 24: 25).
    assert proxy.lines[0] == (
        f"proxying {house}, then {index_server.url} (store {proxy_store(proxy)}) at "
        f"{proxy.url} (Ctrl-C to stop)\n"
    )
    data = page(proxy, "private")
    assert [f["filename"] for f in data["files"]] == ["private-1.0-py3-none-any.whl"]
    status, metadata = fetch(proxy, "private", data["files"][0]["url"] + ".metadata")
    assert status == 200
    assert data["files"][0]["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    proc = pip_download(proxy, tmp_path / "got", "private")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == [
        "beta-2.0-py3-none-any.whl",
        "private-1.0-py3-none-any.whl",
    ]
    assert index_server.count("/simple/private/") == 0
    assert index_server.count("/files/private-9.0-py3-none-any.whl") == 0


def test_metadata_by_range_requests_reads_a_fraction_of_the_wheel(
    index_server: IndexServer, start_proxy: StartProxy
) -> None:
    from tests.support.proxy import _big_wheel

    wheel = _big_wheel(index_server.root)
    index_server.ranges = True
    proxy = start_proxy("--upstream", index_server.url)
    listed = page(proxy, "big")["files"][0]
    status, metadata = fetch(proxy, "big", listed["url"] + ".metadata")
    assert (status, metadata) == (200, b"Metadata-Version: 2.1\nName: big\n")
    stats = proxy.stats()
    assert stats["upstream_bytes"] < wheel.stat().st_size // 4
    assert index_server.count(f"/files/{wheel.name}") <= 3
    assert stored_files(proxy_store(proxy)) == []  # the wheel itself was not needed


def test_cli_usage_errors(cli: Any, tmp_path: Path) -> None:
    result = cli("serve", "--offline", str(tmp_path))
    assert result.exit_code == 2
    # The proxy-only options given, and only those (issue 24: 13).
    assert result.stderr.splitlines()[0] == "error: --offline applies to the proxy only"
    result = cli("serve", "--upstream", "ftp://user:pw@example.org/simple/")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        "error: --upstream 'ftp://example.org/simple/' is not an http(s) URL"
    )
    result = cli("serve", str(tmp_path / "nothing"), "--upstream", "http://127.0.0.1:9/simple/")
    assert result.exit_code == 3
    assert "has no package index" in result.stderr


def test_default_upstream_is_pips_index(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", index_server.url)
    proxy = start_proxy("--upstream", "--timeout", "2")
    # The first index (nothing listens on port 9) is down: nobody else may answer.
    status, _, body = proxy.get("/simple/beta/", JSON)
    assert status == 502
    assert body.startswith(b"upstream http://127.0.0.1:9/simple/ failed: ")
    assert os.environ["PIP_EXTRA_INDEX_URL"] == index_server.url


# -- a warm store, memory -----------------------------------------------------------------------


def test_a_restarted_proxy_answers_from_its_store_without_asking_upstream(
    upstream_dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    store = tmp_path / "warm-store"
    first = start_proxy("--upstream", index_server.url, "--store", store)
    wheel = {f["filename"]: f for f in page(first, "beta")["files"]}["beta-2.0-py3-none-any.whl"]
    status, metadata = fetch(first, "beta", wheel["url"] + ".metadata")
    assert status == 200
    # The page gained the METADATA hash: rendered again in the background, not on demand.
    assert wait_until(lambda: any((store / "rendered").glob("*/beta/json.*")))
    assert fetch(first, "beta", wheel["url"])[0] == 200
    assert first.stop() == 0
    asked = len(index_server.requests)
    second = start_proxy("--upstream", index_server.url, "--store", store)
    again = {f["filename"]: f for f in page(second, "beta")["files"]}[wheel["filename"]]
    # Rendered after the METADATA was stored: the hash is on the page, and matches.
    assert again["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    status, headers, html = second.get("/simple/beta/", HTML)
    assert status == 200 and headers["content-type"] == HTML
    assert f'data-core-metadata="sha256={again["core-metadata"]["sha256"]}"'.encode() in html
    assert (
        proxy_get_with(second, "/simple/beta/", {"Accept": HTML, "If-None-Match": headers["etag"]})[
            0
        ]
        == 304
    )
    assert fetch(second, "beta", wheel["url"] + ".metadata") == (200, metadata)
    local = upstream_dists.root / wheel["filename"]
    assert fetch(second, "beta", wheel["url"]) == (200, local.read_bytes())
    assert len(index_server.requests) == asked  # nothing went upstream
    stats = second.stats()
    assert stats["upstream_requests"] == 0
    assert (stats["page_hits"], stats["metadata_hits"], stats["file_hits"]) == (3, 1, 1)


def test_clients_reading_a_big_page_slowly_do_not_hold_copies_of_it(
    index_server: IndexServer, start_proxy: StartProxy
) -> None:
    count = 8_000  # pydantic-core has 15,000 files and a 6.5 MB page; this one is 3 MB
    wheels = [f"huge-1.{i}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
              for i in range(count)]  # fmt: skip
    files = [
        {"filename": wheels[i], "url": f"/files/{wheels[i]}",
         "hashes": {"sha256": hashlib.sha256(b"%d" % i).hexdigest()}, "requires-python": ">=3.8",
         "size": 1000 + i, "upload-time": "2026-01-01T00:00:00.000000Z"}
        for i in range(count)
    ]  # fmt: skip
    huge = json.dumps({"meta": {"api-version": "1.1"}, "name": "huge", "files": files}).encode()
    index_server.intercept(
        lambda path, headers: (
            (200, {"Content-Type": JSON}, huge) if path.startswith("/simple/huge/") else None
        )
    )
    proxy = start_proxy("--upstream", index_server.url)
    status, _, body = proxy.get("/simple/huge/", JSON)
    assert status == 200 and len(json.loads(body)["files"]) == count
    before = proxy.stats()["rss_bytes"]
    host, port = proxy.base.removeprefix("http://").rstrip("/").rsplit(":", 1)
    clients = []
    for _ in range(20):  # 20 clients ask for the page and do not read it yet
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect((host, int(port)))
        # The Host urllib sent: the same page, links and all.
        request = f"GET /simple/huge/ HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {JSON}\r\n\r\n"
        client.sendall(request.encode())
        clients.append(client)
    try:
        assert wait_until(lambda: proxy.log.count('"GET /simple/huge/ HTTP/1.1" 200') == 21)
        during = proxy.stats()["rss_bytes"]
        for client in clients:
            assert read_response(client) == body
    finally:
        for client in clients:
            client.close()
    # Each response holds a chunk of the page, not the page: 20 copies would be 20 x body.
    assert during - before < 2 * len(body), (during - before, len(body))


def read_response(client: socket.socket) -> bytes:
    """The body of the HTTP/1.1 response ``client`` receives (Content-Length framed)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += client.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    while len(body) < length and (chunk := client.recv(1 << 20)):
        body += chunk
    return body


def test_the_listening_socket_gets_connections_without_nagles_delay() -> None:
    """asyncio turns Nagle's algorithm off only on sockets made as TCP; with it on, every
    small response waited 40 ms for the client's delayed ACK."""
    import asyncio

    from wheelhouse.serve._asgi import bind

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listening = bind("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
            value = await asyncio.wait_for(accepted, 10)
            writer.close()
        return value

    assert asyncio.run(accept_one()) != 0
