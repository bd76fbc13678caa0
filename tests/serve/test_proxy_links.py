"""`serve --upstream`: where pages point clients (absolute file links from the request's Host,
X-Forwarded-* only from trusted fronts), and what a burst of cold pages costs upstream."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.dists import DistFactory
from tests.support.process import ServeProcess
from tests.support.proxy import StartProxy
from tests.support.server import IndexServer

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"


def ask(
    proxy: ServeProcess, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` with exactly these headers (Host included), Content-Length checked."""
    parts = urlsplit(proxy.base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()  # raises IncompleteRead when Content-Length promised more
        sent = {k.lower(): v for k, v in response.getheaders()}
        if "content-length" in sent:
            assert int(sent["content-length"]) == len(body)
        return response.status, sent, body
    finally:
        conn.close()


def urls(
    proxy: ServeProcess, project: str, host: str, forwarded: dict[str, str] | None = None
) -> list[str]:
    """The file URLs of ``project``'s JSON page asked with ``Host: host`` (and X-Forwarded-*
    headers: {"proto": ...} sends X-Forwarded-Proto)."""
    headers = {"Host": host, "Accept": JSON}
    headers.update({f"X-Forwarded-{k.title()}": v for k, v in (forwarded or {}).items()})
    status, _, body = ask(proxy, f"/simple/{project}/", headers)
    assert status == 200, body
    return [f["url"] for f in json.loads(body)["files"]]


def hrefs(proxy: ServeProcess, project: str, host: str) -> list[str]:
    status, _, body = ask(proxy, f"/simple/{project}/", {"Host": host, "Accept": HTML})
    assert status == 200, body
    return [line.split('href="', 1)[1].split('"', 1)[0]
            for line in body.decode().splitlines() if "<a href=" in line]  # fmt: skip


@pytest.fixture
def beta(dists: DistFactory) -> DistFactory:
    dists.wheel("beta", "1.0")
    dists.wheel("beta", "2.0")
    dists.sdist("beta", "2.0")
    return dists


HOSTILE_HOSTS = [
    'evil.example"><script>alert(1)</script>',  # would end the attribute in HTML
    'evil.example","url":"https://evil.example/x',  # would add a key in JSON
    "user@evil.example",  # userinfo: links to another host
    "evil.example/steal?",  # a path of its own
    "[::1",  # an unclosed IPv6 literal
    "evil.example:80x",
    "",
]


def test_file_links_are_absolute_by_the_host_asked_and_a_hostile_host_leaves_them_relative(
    beta: DistFactory, upstream: IndexServer, start_proxy: StartProxy
) -> None:
    proxy = start_proxy("--upstream", upstream.url)
    first = urls(proxy, "beta", "pypi.internal.example:8080")  # cold: rendered now
    assert len(first) == 3
    assert all(u.startswith("http://pypi.internal.example:8080/files/beta/") for u in first)
    # Warm (sent from the rendering on disk), for other names the client may use.
    assert urls(proxy, "beta", "[::1]:3141")[0].startswith("http://[::1]:3141/files/beta/")
    assert urls(proxy, "beta", "10.1.2.3")[0].startswith("http://10.1.2.3/files/beta/")
    assert all(
        h.startswith("http://10.1.2.3/files/beta/") for h in hrefs(proxy, "beta", "10.1.2.3")
    )
    # The links lead to the files, through the proxy's own address.
    status, _, body = ask(proxy, urlsplit(first[0]).path, {"Host": "x"})
    wheel = (beta.root / "beta-1.0-py3-none-any.whl").read_bytes()
    assert (status, body) == (200, wheel)
    for host in HOSTILE_HOSTS:
        assert all(u.startswith("../../files/beta/") for u in urls(proxy, "beta", host)), host
        assert all(h.startswith("../../files/beta/") for h in hrefs(proxy, "beta", host)), host
    # A client's cached page is its own host's: the ETag differs by the base it links.
    etags = {
        ask(proxy, "/simple/beta/", {"Host": host, "Accept": JSON})[1]["etag"]
        for host in ("a.example", "b.example", "a.example", HOSTILE_HOSTS[0])
    }
    assert len(etags) == 3


def test_forwarded_headers_count_only_from_the_peers_allowed(
    beta: DistFactory, upstream: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    front = {"proto": "https", "host": "pypi.example.org", "prefix": "/mirror/"}
    trusting = start_proxy("--upstream", upstream.url)  # default: 127.0.0.1 is a front
    listed = urls(trusting, "beta", "127.0.0.1:9", front)
    assert all(u.startswith("https://pypi.example.org/mirror/files/beta/") for u in listed)
    # The nearest front's value is the first one; a hostile one makes the page relative.
    several = {"proto": "https, http", "host": "a.example, b.example"}
    assert urls(trusting, "beta", "x", several)[0].startswith("https://a.example/files/")
    for hostile in ({"prefix": '/a"b'}, {"prefix": "/../x"}, {"proto": "javascript"},
                    {"host": "evil.example/x"}):  # fmt: skip
        assert urls(trusting, "beta", "x", hostile)[0].startswith("../../files/"), hostile
    # A peer that is not named is no front: its X-Forwarded-* are ignored.
    other = start_proxy(
        "--upstream", upstream.url, "--store", tmp_path / "other", "--forwarded-allow-ips",
        "10.0.0.0/8, 192.0.2.7",
    )  # fmt: skip
    listed = urls(other, "beta", "127.0.0.1:9", front)
    assert all(u.startswith("http://127.0.0.1:9/files/beta/") for u in listed)
    everyone = start_proxy(
        "--upstream", upstream.url, "--store", tmp_path / "all", "--forwarded-allow-ips", "*"
    )
    assert urls(everyone, "beta", "x", front)[0].startswith("https://pypi.example.org/mirror/")


def test_forwarded_allow_ips_that_are_no_addresses_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "wheelhouse", "serve", "--upstream", "http://127.0.0.1:9/simple/",
         "--store", str(tmp_path / "s"), "--port", "0", "--forwarded-allow-ips", "10.0.0.1,nope"],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "error: --forwarded-allow-ips: 'nope' is not an IP address or network" in proc.stderr


def test_a_page_is_rendered_once_for_all_hosts_and_clients(
    beta: DistFactory, upstream: IndexServer, start_proxy: StartProxy
) -> None:
    upstream.delay("/simple/beta/", 1.0)  # every client arrives before upstream answers
    proxy = start_proxy("--upstream", upstream.url)
    hosts = [f"h{i % 4}.example" for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        pages = list(pool.map(lambda host: urls(proxy, "beta", host), hosts))
    for host, listed in zip(hosts, pages, strict=True):
        assert all(u.startswith(f"http://{host}/files/beta/") for u in listed)
    assert urls(proxy, "beta", "late.example")[0].startswith("http://late.example/files/")
    stats = proxy.stats()
    assert stats["pages_rendered"] == 1, stats
    assert upstream.count("/simple/beta/") == 1


# -- the upstream connection pool ----------------------------------------------------------


class _KeepAliveIndex(ThreadingHTTPServer):
    """An index speaking HTTP/1.1 keep-alive (as real ones do) that counts the connections it
    accepts; every page takes ``delay`` seconds, so concurrent requests overlap."""

    daemon_threads = True

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.connections = 0
        self.pages = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler)

    def get_request(self) -> Any:
        accepted = super().get_request()
        with self.lock:
            self.connections += 1
        return accepted


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _KeepAliveIndex

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[-1]
        time.sleep(self.server.delay)
        digest = hashlib.sha256(name.encode()).hexdigest()
        filename = f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        page = {"meta": {"api-version": "1.1"}, "name": name,
                "files": [{"filename": filename, "url": f"/files/{filename}",
                           "hashes": {"sha256": digest}}]}  # fmt: skip
        body = json.dumps(page).encode()
        with self.server.lock:
            self.server.pages += 1
        self.send_response(200)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def keepalive_index() -> Iterator[_KeepAliveIndex]:
    server = _KeepAliveIndex(delay=0.5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_64_concurrent_cold_pages_reuse_the_upstream_connections(
    keepalive_index: _KeepAliveIndex, start_proxy: StartProxy
) -> None:
    upstream = f"http://127.0.0.1:{keepalive_index.server_address[1]}/simple/"
    proxy = start_proxy("--upstream", upstream)
    names = [f"p{i}" for i in range(64)]
    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(lambda n: proxy.get(f"/simple/{n}/", JSON)[0], names))
    assert statuses == [200] * 64
    assert keepalive_index.pages == 64
    # At most one connection per upstream thread (32): every one goes back to the pool and is
    # used again. With a pool of 16, 16 were thrown away after the first 32 pages, and the
    # next 32 pages opened 16 new ones (48).
    assert keepalive_index.connections <= 32, keepalive_index.connections
    assert "Connection pool is full" not in proxy.log


def test_links_are_made_absolute_also_where_a_chunk_ends_inside_one() -> None:
    from wheelhouse.serve._links import Rebaser

    old, new = b'"url":"../../files/', b'"url":"http://h.example:8/files/'
    page = b'{"files":[' + b",".join(b'{"url":"../../files/p/%d","x":"../"}' % i for i in range(5))
    page += b'],"tail":"\\"url\\":\\"../../files/"}'  # inside a string: never a link
    for size in range(1, len(old) + 3):
        rebaser = Rebaser(old, new)
        parts = [rebaser.feed(page[i : i + size]) for i in range(0, len(page), size)]
        sent = b"".join(parts) + rebaser.end()
        assert sent == page.replace(old, new), size
        assert rebaser.found == 5


def test_a_restarted_proxy_finds_a_file_of_a_stored_page_without_asking_upstream(
    beta: DistFactory, upstream: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    store = tmp_path / "shared"
    first = start_proxy("--upstream", upstream.url, "--store", store)
    listed = urls(first, "beta", "x")
    assert first.stop() == 0
    second = start_proxy("--upstream", upstream.url, "--store", store)  # nothing parsed yet
    wheel = next(u for u in listed if u.endswith("beta-1.0-py3-none-any.whl"))
    path = urlsplit(wheel).path
    # The sha256 of one file under the name of another is no file of the page.
    other = path.replace("beta-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl")
    assert ask(second, other, {"Host": "x"})[0] == 404
    status, _, body = ask(second, path, {"Host": "x"})
    assert (status, body) == (200, (beta.root / "beta-1.0-py3-none-any.whl").read_bytes())
    status, _, body = ask(second, path + ".metadata", {"Host": "x"})
    assert status == 200 and body.startswith(b"Metadata-Version:")
    assert upstream.count("/simple/beta/") == 1
