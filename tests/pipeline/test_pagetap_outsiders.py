"""The page tap against others: requests without its secret, other local users, and request
targets that try to reach another host or port with the index's credentials."""

from __future__ import annotations

import base64
import functools
import gzip
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.support import httpget
from tests.support.capabilities import missing
from tests.support.credentials import NOBODY, WAIT, guard
from tests.support.dists import DistFactory
from tests.support.fixtures import Cli
from tests.support.graph import GRAPH_REQUIREMENTS, GRAPH_WHEELS, make_graph
from tests.support.server import Answer, IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.resolve import _pagetap
from wheelhouse.resolve._pagetap import REFUSED, PageTap
from wheelhouse.simple.media import PIP_ACCEPT

WANTED = "Basic " + base64.b64encode(b"alice:s3cret").decode()


class Listener:
    """A TCP listener on loopback that records every connection made to it, and what came."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._socket.settimeout(0.05)  # accept() looks at _stop this often
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = connection.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                except OSError:
                    pass
                self.received.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Another port on the index's host, that no request may reach."""
    other = Listener()
    yield other
    other.close()


def raw_status(port: int, target: str) -> int:
    """The status the server on ``port`` answers a GET of ``target``, sent byte for byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode("latin-1"))
        data = b""
        while b"\r\n" not in data:
            chunk = connection.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def secret_of(tapped: str) -> str:
    return urlsplit(tapped).path.split("/")[1]


# What the tap answers, as it answers it (no redirect followed).
get = functools.partial(httpget.get, redirects=False)


@pytest.mark.parametrize("ahead", [False, True])
def test_a_request_without_the_secret_is_refused_and_the_index_asked_nothing(
    dists: DistFactory, index_server: IndexServer, ahead: bool
) -> None:
    wheel = dists.wheel("app", "1.0")
    url = guard(index_server)
    with PageTap([url], HttpClient(PipSettings()), ahead=ahead) as tap:
        [tapped] = tap.index_urls
        port = urlsplit(tapped).port
        assert port is not None
        secret = secret_of(tapped)
        targets = [
            "/simple/app/",
            f"/files/{wheel.name}",
            f"/~http/127.0.0.1:{index_server.port}/files/{wheel.name}",
            f"/{secrets.token_urlsafe(32)}/simple/app/",
            f"/{secret[:-1]}/simple/app/",
            f"/{secret}x/simple/app/",
            f"/{secret.upper()}/simple/app/",
            f"/{secret}",
            "/",
        ]
        statuses = {target: raw_status(port, target) for target in targets}
        asked = list(index_server.received)
        # The same page, asked under the secret: pip's own request is answered.
        page = get(tapped + "app/", Accept="text/html")

    assert statuses == dict.fromkeys(targets, 403)
    assert asked == []
    assert page.status == 200 and wheel.name.encode() in page.data
    assert tap.forwarded == 1
    # Each refusal counts as a failure: a build lets pip resolve again without the tap.
    assert tap.failures == [REFUSED] * len(targets)
    assert [h.get("Authorization") for _, h in index_server.received] == [WANTED]


def test_another_local_user_cannot_read_a_page_even_with_the_tap_url(
    dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    # pip puts its index URL on the command line of the pip that installs an sdist's build
    # requirements: the URL may be seen, and the tap must still serve pip's user alone.
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        missing("setpriv as root", "another local user is played by uid 65534")
    dists.wheel("app", "1.0")
    url = guard(index_server)
    read = [sys.executable, "-I", "-c", _READER]
    with PageTap([url], HttpClient(PipSettings())) as tap:
        page = tap.index_urls[0] + "app/"
        theirs = subprocess.run(
            [*NOBODY, *read, page], capture_output=True, text=True, timeout=WAIT, check=False
        )
        asked = list(index_server.received)
        ours = subprocess.run(
            [*read, page], capture_output=True, text=True, timeout=WAIT, check=False
        )

    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == "403\n"
    assert asked == []
    # Nor can another user make a build give up the tap: its refusal is no failure of ours.
    assert tap.failures == []
    # The same URL, from our own user: the page, read with alice's credentials.
    assert ours.stdout.startswith("200 ") and "app-1.0-py3-none-any.whl" in ours.stdout
    assert [h.get("Authorization") for _, h in index_server.received] == [WANTED]


_READER = """
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=60) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code)
"""


@pytest.mark.parametrize("ahead", [False, True])
def test_targets_that_name_another_host_or_climb_out_reach_nothing(
    dists: DistFactory, index_server: IndexServer, listener: Listener, ahead: bool
) -> None:
    dists.wheel("app", "1.0")
    index_server.absolute_links = True  # the page links the index's own host and port
    url = guard(index_server)
    other = f"127.0.0.1:{listener.port}"
    with PageTap([url], HttpClient(PipSettings()), ahead=ahead) as tap:
        [tapped] = tap.index_urls
        port = urlsplit(tapped).port
        assert port is not None
        secret = secret_of(tapped)
        # A page first, as pip reads it: the tap now knows the hosts the index links.
        page = get(tapped + "app/", Accept=PIP_ACCEPT)
        refused = [
            f"@{other}/x",  # glued to the index's origin, this was the other port's authority
            f"/{secret}@{other}/x",
            f"/{secret}/@{other}/x",
            f"//{other}/x",
            f"/{secret}//{other}/x",
            f"/{secret}/\\\\{other}/x",
            f"/{secret}/%2e%2e/x",
            f"/{secret}/simple/../../x",
            f"/{secret}/simple/%2E%2E%2f%2e%2e/x",
            f"/{secret}/simple/%5c%5c{other}/x",
            f"/{secret}/simple/%40{other}/x",
            f"http://{other}/x",
            f"http://{secret}@{other}/x",
        ]
        expected = dict.fromkeys(refused, 403)
        if ahead:
            # Not linked from any page (404), or not a host at all (403): no one is asked.
            expected |= {
                f"/{secret}/~http/{other}/x": 404,
                f"/{secret}/~http/{quote(other, safe='')}/x": 404,
                f"/{secret}/~https/127.0.0.1:{index_server.port}/x": 404,
                f"/{secret}/~http/127.0.0.1:{index_server.port}//{other}/x": 404,
                f"/{secret}/~http/alice:s3cret@{other}/x": 403,
            }
        statuses = {target: raw_status(port, target) for target in expected}

    assert page.status == 200
    assert statuses == expected
    assert listener.received == []
    # The index was asked for the page alone.
    assert [p for p, _ in index_server.received] == ["/simple/app/"]
    assert tap.forwarded == 1
    assert tap.failures == [REFUSED] * sum(status == 403 for status in expected.values())


def test_the_index_credentials_go_to_its_own_origin_only(
    dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    wheel = dists.wheel("app", "1.0")
    other_wheel = dists.wheel("lib", "1.0")
    url = guard(index_server)
    with IndexServer(dists.root) as elsewhere:
        # The page links one file on the index's own origin, one on another port of its host.
        links = {
            wheel.name: f"{index_server.files_url}{wheel.name}",
            other_wheel.name: f"{elsewhere.files_url}{other_wheel.name}",
        }
        body = "".join(f'<a href="{u}">{n}</a><br>' for n, u in links.items()).encode()

        def page(path: str, headers: Mapping[str, str]) -> Answer | None:
            if path == "/simple/app/" and headers.get("Authorization") == WANTED:
                return 200, {"Content-Type": "text/html"}, body
            return None

        index_server.intercept(page)  # after the guard: asked with the credentials only
        # As the build makes them: the index's credentials may be in pip's configuration.
        client = HttpClient(PipSettings.parse({"index-url": url}))
        bare = HttpClient(PipSettings())
        with PageTap([url], client, ahead=True, elsewhere=bare) as tap:
            [tapped] = tap.index_urls
            sent = get(tapped + "app/", Accept=PIP_ACCEPT).data.decode()
            tapped_links = dict(
                (n, u) for u, n in re.findall(r'<a href="([^"]+)">([^<]+)</a>', sent)
            )
            files = {n: get(u) for n, u in tapped_links.items()}

    assert set(tapped_links) == {wheel.name, other_wheel.name}
    assert all(
        u.startswith(tapped.removesuffix("simple/") + "~http/") for u in tapped_links.values()
    )
    assert files[wheel.name].status == 200 and files[wheel.name].data == wheel.read_bytes()
    assert files[other_wheel.name].data == other_wheel.read_bytes()
    assert [p for p, _ in elsewhere.received] == [f"/files/{other_wheel.name}"]
    assert [h.get("Authorization") for _, h in elsewhere.received] == [None]
    assert (f"/files/{wheel.name}", WANTED) in [
        (p, h.get("Authorization")) for p, h in index_server.received
    ]


_SAMPLER = """
import os, select, sys
seen = set()
print("ready", flush=True)
while not select.select([sys.stdin], [], [], 0.002)[0]:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as handle:
                    seen.add(name.encode() + b" " + handle.read())
            except OSError:
                pass
for found in seen:
    print(found.hex())
"""


def test_a_loose_build_shows_neither_secret_nor_password_to_another_user(
    cli: Cli,
    dists: DistFactory,
    index_server: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        missing("setpriv as root", "another local user is played by uid 65534")
    make_graph(dists)
    requirements = tmp_path / "requirements.in"
    requirements.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    # Only this build knows it: any other process on the machine may say "s3cret".
    password = secrets.token_hex(16)
    url = guard(index_server, password)
    made: list[str] = []
    token_urlsafe = secrets.token_urlsafe

    def remembered(size: int | None = None) -> str:
        made.append(token_urlsafe(size))
        return made[-1]

    monkeypatch.setattr(_pagetap.secrets, "token_urlsafe", remembered)
    sampler = subprocess.Popen(
        [*NOBODY, sys.executable, "-I", "-c", _SAMPLER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert sampler.stdout is not None and sampler.stdout.readline() == "ready\n"
        result = cli("build", "-r", requirements, "-o", tmp_path / "wh", "--index-url", url, "-v")
    finally:
        out, _ = sampler.communicate("stop\n", timeout=WAIT)
    seen = [bytes.fromhex(line) for line in out.split()]

    assert result.exit_code == 0, result.stderr
    assert made  # the tap's secret (and any other token made meanwhile)
    # pip ran through the tap while the other user looked.
    assert "page tap" not in result.stderr
    wanted = "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()
    assert all(h.get("Authorization") == wanted for _, h in index_server.received)
    commands = [s.removeprefix(b"cmdline ").split(b"\0") for s in seen if s.startswith(b"cmdline")]
    assert any(b"download" in c and b"--dest" in c for c in commands), commands
    for found in seen:
        assert password.encode() not in found
        assert not [s for s in made if s.encode() in found]
    # Nothing shown or written holds the secret either.
    assert not [s for s in made if s in result.stderr + result.stdout]
    for path in (tmp_path / "wh").rglob("*"):
        if path.is_file():
            assert not [s for s in made if s.encode() in path.read_bytes()], path
    for filename in GRAPH_WHEELS:
        assert (tmp_path / "wh" / filename).is_file()
    assert json.loads((tmp_path / "wh" / "wheelhouse.json").read_text(encoding="utf-8"))


def root_relative(index: IndexServer) -> None:
    """Let ``index`` link its files from the root (``/files/...``), as some indexes do."""

    def answer(path: str, headers: Mapping[str, str]) -> Answer | None:
        if not path.startswith("/simple/"):
            return None
        status, out, body = index._route_request(path, headers)
        body = body.replace(b"../../files/", b"/files/").replace(
            index.files_url.encode(), b"/files/"
        )
        return status, out, body

    index.intercept(answer)


@pytest.mark.parametrize("ahead", [False, True])
@pytest.mark.parametrize("json_pages", [False, True])
def test_root_relative_links_are_followed_under_the_secret(
    dists: DistFactory, index_server: IndexServer, ahead: bool, json_pages: bool
) -> None:
    wheel = dists.wheel("app", "1.0")
    index_server.json_pages = json_pages
    root_relative(index_server)
    with PageTap([index_server.url], HttpClient(PipSettings()), ahead=ahead) as tap:
        [tapped] = tap.index_urls
        page = get(tapped + "app/", Accept=PIP_ACCEPT)
        links = re.findall(rb'(?:href="|"url": ")([^"#]+)', page.data)
        loopback = urlsplit(tapped)._replace(path="").geturl()
        file = get(loopback + links[-1].decode())

    assert links[-1] == f"/{secret_of(tapped)}/files/{wheel.name}".encode()
    assert file.status == 200 and file.data == wheel.read_bytes()
    # The page kept is the index's own.
    assert f"/files/{wheel.name}".encode() in tap.pages[index_server.url + "app/"].body
    assert tap.failures == []


def test_a_loose_build_follows_root_relative_links_through_the_tap(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    make_graph(dists)
    requirements = tmp_path / "requirements.in"
    requirements.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    root_relative(index_server)

    result = cli(
        "build", "-r", requirements, "-o", tmp_path / "wh", "--index-url", index_server.url, "-v"
    )

    assert result.exit_code == 0, result.stderr
    # pip read every page and file through the tap: nothing was refused, nothing resolved twice.
    assert "page tap" not in result.stderr
    files = Counter(p for p in index_server.requests if p.startswith("/files/"))
    assert files and set(files.values()) == {1}
    for filename in GRAPH_WHEELS:
        assert (tmp_path / "wh" / filename).is_file()


@pytest.mark.parametrize("ahead", [False, True])
def test_a_page_larger_than_the_tap_reads_is_a_failure_not_a_page(
    dists: DistFactory,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
    ahead: bool,
) -> None:
    # A gzip bomb, scaled down: 4 KiB on the wire, 4 MiB inflated, the tap reading 1 MiB.
    monkeypatch.setattr(_pagetap, "_MAX_PAGE", 1 << 20)
    bomb = gzip.compress(b"<a>" + b" " * (4 << 20), compresslevel=9)
    assert len(bomb) < 8192

    def answer(path: str, headers: Mapping[str, str]) -> Answer | None:
        if path == "/simple/app/":
            return 200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb
        return None

    index_server.intercept(answer)
    with PageTap(
        [index_server.url], HttpClient(PipSettings.parse({"retries": "0"})), ahead=ahead
    ) as tap:
        [tapped] = tap.index_urls
        try:
            status: int | None = get(tapped + "app/", Accept=PIP_ACCEPT).status
        except (OSError, http.client.HTTPException):
            status = None  # the connection was closed: pip sees a failure too

    assert status in (None, 502)
    assert tap.pages == {}
    assert tap.failures == [
        f"{index_server.url}app/: a page larger than {1 << 20} bytes, the most the tap reads"
    ]


_SILENT = """
import socket, sys, time
connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
start = time.monotonic()
print(repr(connection.recv(100)), round(time.monotonic() - start))
"""


def test_another_users_silent_connection_is_dropped(
    dists: DistFactory, index_server: IndexServer
) -> None:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        missing("setpriv as root", "another local user is played by uid 65534")
    with PageTap([index_server.url], HttpClient(PipSettings())) as tap:
        port = urlsplit(tap.index_urls[0]).port
        silent = subprocess.run(
            [*NOBODY, sys.executable, "-I", "-c", _SILENT, str(port)],
            capture_output=True,
            text=True,
            timeout=WAIT * 2,
            check=False,
        )

    # Closed by the tap after its 10 s, without a word: the connection no longer waits.
    said, seconds = silent.stdout.split()
    assert said == "b''", silent.stderr
    assert 5 <= int(seconds) < 100
    assert index_server.received == [] and tap.failures == []
