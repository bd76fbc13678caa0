"""`serve --upstream` attacked from outside: a hostile upstream planting METADATA for another
upstream's proxy, upstreams that hang or drip, flipped bytes, a proxy killed mid-download, and
names that are too long or unknown. Every test runs the real proxy in a subprocess against
loopback upstreams and looks only at what clients and upstreams see."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.dists import DistFactory, make_wheel
from tests.support.hostile import json_page
from tests.support.loopback import Script, ScriptedServer, serving, whole
from tests.support.process import ServeProcess, wait_until
from tests.support.proxy import (
    JSON,
    StartProxy,
    _big_wheel,
    page,
    pip_download,
    raw_get,
    stored_files,
)
from tests.support.server import IndexServer


@pytest.fixture
def scripted() -> Iterator[Callable[[dict[str, Script]], ScriptedServer]]:
    """``scripted(routes) -> server``: an upstream index on loopback whose answers are scripts."""
    made: list[ScriptedServer] = []

    def make(routes: dict[str, Script]) -> ScriptedServer:
        made.append(ScriptedServer(routes))
        return made[-1]

    yield make
    for upstream in made:
        upstream.stop()


def wheel_item(path: Path, **extra: Any) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "filename": path.name,
        "url": f"/files/{path.name}",
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "size": len(data),
        **extra,
    }


# -- clients ------------------------------------------------------------------------------------


def timed_get(
    proxy: ServeProcess, path: str, accept: str | None = None
) -> tuple[int, bytes, float]:
    started = time.monotonic()
    request = urllib.request.Request(proxy.base + path.lstrip("/"))
    if accept is not None:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, body, time.monotonic() - started


def file_path_of(listed: dict[str, Any], project: str) -> str:
    return urlsplit(urljoin(f"/simple/{project}/", listed["url"])).path


# -- row 4: METADATA is kept per upstream -------------------------------------------------------


EVIL = b"Metadata-Version: 2.1\nName: beta\nVersion: 2.0\nRequires-Dist: evil-dependency>=6.6.6\n"


@pytest.mark.parametrize("how", ["pep658", "ranges"])
def test_a_hostile_upstream_cannot_plant_metadata_for_a_proxy_of_another_upstream(
    how: str, dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Two proxies with different upstreams share one store (as both do without --store).
    The hostile upstream lists the trusted wheel's sha256 and gives other METADATA for it: as
    its PEP 658 file (with that file's true hash), or as the METADATA member of other bytes it
    serves to range requests. The trusted proxy must serve the wheel's own METADATA."""
    genuine = dists.wheel("beta", "2.0")
    sha256 = hashlib.sha256(genuine.read_bytes()).hexdigest()
    own = zipfile.ZipFile(genuine).read("beta-2.0.dist-info/METADATA")
    hostile_root = tmp_path / "hostile"
    hostile_root.mkdir()
    if how == "ranges":  # other bytes under the wheel's name; upstream answers ranges of them
        make_wheel(hostile_root, "beta", "2.0", requires=["evil-dependency>=6.6.6"])
    listed = {"filename": genuine.name, "url": f"../../files/{genuine.name}",
              "hashes": {"sha256": sha256}}  # fmt: skip
    if how == "pep658":
        listed["core-metadata"] = {"sha256": hashlib.sha256(EVIL).hexdigest()}
    hostile_page = json.dumps({"meta": {"api-version": "1.1"}, "name": "beta", "files": [listed]})

    def lie(path: str, headers: Any) -> tuple[int, dict[str, str], bytes] | None:
        if path.startswith("/simple/beta/"):
            return 200, {"Content-Type": JSON}, hostile_page.encode()
        if how == "pep658" and path == f"/files/{genuine.name}.metadata":
            return 200, {"Content-Type": "text/plain"}, EVIL
        return None

    with IndexServer(hostile_root) as hostile:
        hostile.ranges = True
        hostile.intercept(lie)
        evil_proxy = start_proxy("--upstream", hostile.url)
        (item,) = page(evil_proxy, "beta")["files"]
        status, _, got = evil_proxy.get(file_path_of(item, "beta") + ".metadata")
        assert (status, b"evil-dependency" in got) == (200, True)  # the attack is real
        trusted = start_proxy("--upstream", index_server.url)  # the same store
        (item,) = page(trusted, "beta")["files"]
        assert item["hashes"] == {"sha256": sha256}
        assert item["core-metadata"] is True  # no hash known yet: not the hostile one
        assert trusted.get(file_path_of(item, "beta") + ".metadata")[::2] == (200, own)
        (item,) = page(trusted, "beta")["files"]
        assert item["core-metadata"] == {"sha256": hashlib.sha256(own).hexdigest()}
        proc = pip_download(trusted, tmp_path / "got", "beta==2.0")
        assert proc.returncode == 0, proc.stderr
        assert "evil-dependency" not in proc.stdout + proc.stderr
        # And the hostile proxy keeps its own answer: the two never meet.
        (item,) = page(evil_proxy, "beta")["files"]
        assert evil_proxy.get(file_path_of(item, "beta") + ".metadata")[::2] == (200, got)


def test_metadata_in_the_old_store_layout_is_never_served(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    """A store written by an older proxy kept METADATA by wheel hash alone, whichever upstream
    it came from: none of it may be served (or advertised) by the new one."""
    genuine = dists.wheel("beta", "2.0")
    sha256 = hashlib.sha256(genuine.read_bytes()).hexdigest()
    old = tmp_path / "store" / "metadata" / sha256[:2] / sha256
    old.parent.mkdir(parents=True)
    old.write_bytes(EVIL)
    old.with_suffix(".sha256").write_text(hashlib.sha256(EVIL).hexdigest())
    proxy = start_proxy("--upstream", index_server.url)
    (item,) = page(proxy, "beta")["files"]
    assert item["core-metadata"] is True
    status, _, got = proxy.get(file_path_of(item, "beta") + ".metadata")
    assert (status, got) == (200, zipfile.ZipFile(genuine).read("beta-2.0.dist-info/METADATA"))


def test_metadata_read_by_ranges_gives_way_to_the_wheels_own_once_the_wheel_is_stored(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    """Range reads cannot be checked against the wheel's sha256: an upstream answers them
    from other bytes (METADATA asking for evil-dependency) and the whole file with the true
    ones. Once the wheel is stored, verified, its own METADATA is served and advertised.
    (Wheels past 512 KiB are read by ranges; a smaller one is fetched whole: below.)"""
    genuine = _big_wheel(dists.root, "beta", "2.0")
    own = zipfile.ZipFile(genuine).read("beta-2.0.dist-info/METADATA")
    other = tmp_path / "other"
    other.mkdir()
    evil = _big_wheel(other, "beta", "2.0", ("evil-dependency>=6.6.6",)).read_bytes()

    def ranges_of_other_bytes(path: str, headers: Any) -> tuple[int, dict[str, str], bytes] | None:
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", headers.get("Range") or "")
        if path != f"/files/{genuine.name}" or wanted is None:
            return None
        start, stop = wanted.groups()
        first = len(evil) - int(stop) if not start else int(start)
        last = len(evil) - 1 if not start or not stop else min(int(stop), len(evil) - 1)
        content_range = f"bytes {max(first, 0)}-{last}/{len(evil)}"
        return 206, {"Content-Range": content_range}, evil[max(first, 0) : last + 1]

    index_server.json_pages = True
    index_server.intercept(ranges_of_other_bytes)
    proxy = start_proxy("--upstream", index_server.url)
    (item,) = page(proxy, "beta")["files"]
    path = file_path_of(item, "beta")
    status, _, read = proxy.get(path + ".metadata")
    assert (status, b"evil-dependency" in read) == (200, True)  # what ranges gave
    assert proxy.get(path)[::2] == (200, genuine.read_bytes())  # stored, verified
    assert wait_until(lambda: proxy.get(path + ".metadata")[::2] == (200, own))
    assert "is not the wheel's own; serving the wheel's" in proxy.log
    (item,) = page(proxy, "beta")["files"]
    assert item["core-metadata"] == {"sha256": hashlib.sha256(own).hexdigest()}


def test_a_filename_forging_another_files_entry_cannot_take_its_place_in_the_store(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    """Upstream names a file with the text of the genuine wheel's entry in the stored page
    (its sha256 and a filename of its choice). A restarted proxy, which finds files in the
    stored page without parsing it, still gives the genuine wheel under its own name only."""
    genuine = dists.wheel("beta", "2.0")
    sha256 = hashlib.sha256(genuine.read_bytes()).hexdigest()
    forged = f'x","hashes":{{"sha256":"{sha256}"}}}},{{"filename":"evil-2.0-py3-none-any.whl'
    listed = [
        {"filename": forged, "url": "../../files/forged.whl", "hashes": {"sha256": "b" * 64}},
        {"filename": genuine.name, "url": f"../../files/{genuine.name}",
         "hashes": {"sha256": sha256}},
    ]  # fmt: skip
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "beta", "files": listed})

    def hostile_page(path: str, headers: Any) -> tuple[int, dict[str, str], bytes] | None:
        return (200, {"Content-Type": JSON}, body.encode()) if path == "/simple/beta/" else None

    index_server.intercept(hostile_page)
    store = tmp_path / "shared"
    first = start_proxy("--upstream", index_server.url, "--store", str(store))
    items = {f["filename"]: f for f in page(first, "beta")["files"]}
    path = file_path_of(items[genuine.name], "beta")
    assert first.stop() == 0
    second = start_proxy("--upstream", index_server.url, "--store", str(store))  # unparsed
    evil = path.replace(genuine.name, "evil-2.0-py3-none-any.whl")
    assert second.get(evil)[0] == 404
    assert second.get(evil + ".metadata")[0] == 404
    assert second.get(path)[::2] == (200, genuine.read_bytes())
    assert index_server.count("/simple/beta/") == 1


def test_a_small_wheels_metadata_comes_from_the_wheel_checked_not_from_ranges(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    """A wheel up to 512 KiB without a PEP 658 file is fetched whole for its METADATA (one
    round trip instead of two): no range is asked, the METADATA is the verified wheel's own,
    and the wheel is stored for the client's next request. A wheel whose bytes upstream are
    not the listed ones gives a 502 and leaves nothing stored."""
    genuine = dists.wheel("beta", "2.0")
    liar = dists.wheel("beta", "3.0")  # listed with its true hash; upstream sends other bytes
    own = zipfile.ZipFile(genuine).read("beta-2.0.dist-info/METADATA")
    other = tmp_path / "other"
    other.mkdir()
    evil = make_wheel(other, "beta", "3.0", requires=["evil-dependency>=6.6.6"]).read_bytes()
    ranged: list[str] = []

    def other_bytes(path: str, headers: Any) -> tuple[int, dict[str, str], bytes] | None:
        if path.startswith("/files/") and headers.get("Range"):
            ranged.append(path)
            return 206, {"Content-Range": f"bytes 0-{len(evil) - 1}/{len(evil)}"}, evil
        return (200, {}, evil) if path == f"/files/{liar.name}" else None

    index_server.json_pages = True
    index_server.intercept(other_bytes)
    proxy = start_proxy("--upstream", index_server.url)
    items = {f["filename"]: f for f in page(proxy, "beta")["files"]}
    path = file_path_of(items[genuine.name], "beta")
    assert proxy.get(path + ".metadata")[::2] == (200, own)
    status, _, body = proxy.get(file_path_of(items[liar.name], "beta") + ".metadata")
    assert (status, body.startswith(f"cannot store {liar.name}".encode())) == (502, True)
    assert ranged == []
    store = Path(proxy.args[proxy.args.index("--store") + 1])
    sha256 = hashlib.sha256(genuine.read_bytes()).hexdigest()
    assert stored_files(store) == [store / "files" / sha256[:2] / sha256]
    assert proxy.stats()["file_misses"] == 0
    assert proxy.get(path)[::2] == (200, genuine.read_bytes())  # from the store
    assert proxy.stats()["file_hits"] == 1


def test_a_small_wheel_fetched_for_its_metadata_is_one_download_for_every_client(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    """The thread that reads a small wheel's METADATA downloads the wheel itself. While a slow
    upstream sends it, clients asking for its METADATA and for the wheel at once share that
    one upstream request and get the true bytes; a download that failed its sha256 is a 502
    that the next request does not inherit once upstream mends."""
    wheel = dists.wheel("delta", "1.0")
    other = dists.wheel("delta", "2.0")
    own = zipfile.ZipFile(wheel).read("delta-1.0.dist-info/METADATA")
    index_server.json_pages = True
    proxy = start_proxy("--upstream", index_server.url)
    items = {f["filename"]: f for f in page(proxy, "delta")["files"]}
    path = file_path_of(items[wheel.name], "delta")
    index_server.delay(f"/files/{wheel.name}", 1.0)
    asks = [path + ".metadata", path] * 8
    with ThreadPoolExecutor(len(asks)) as pool:
        answers = list(pool.map(lambda p: proxy.get(p)[::2], asks))
    assert answers == [(200, own), (200, wheel.read_bytes())] * 8
    assert index_server.count(f"/files/{wheel.name}") == 1
    store = Path(proxy.args[proxy.args.index("--store") + 1])
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert stored_files(store) == [store / "files" / sha256[:2] / sha256]

    index_server.clear_hooks()
    index_server.corrupt(other.name)
    other_path = file_path_of(items[other.name], "delta")
    status, _, body = proxy.get(other_path + ".metadata")
    assert (status, body.startswith(f"cannot store {other.name}".encode())) == (502, True)
    assert len(stored_files(store)) == 1
    asked = index_server.count(f"/files/{other.name}")
    index_server.clear_hooks()
    assert proxy.get(other_path + ".metadata")[::2] == (
        200,
        zipfile.ZipFile(other).read("delta-2.0.dist-info/METADATA"),
    )
    assert proxy.get(other_path)[::2] == (200, other.read_bytes())
    assert index_server.count(f"/files/{other.name}") == asked + 1  # the wheel: from the store


# -- row 10: upstream work never delays local answers; --timeout is a deadline ------------------


def test_a_stored_file_is_served_at_once_while_50_upstream_pages_hang(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    wheel = dists.wheel("gamma", "1.0")
    release = threading.Event()

    def hang(path: str, headers: Any) -> tuple[int, dict[str, str], bytes] | None:
        if path.startswith("/simple/hang-"):
            release.wait(120)
            return 404, {}, b""
        return None

    index_server.intercept(hang)
    proxy = start_proxy("--upstream", index_server.url, "--timeout", "60")
    (item,) = page(proxy, "gamma")["files"]
    path = file_path_of(item, "gamma")
    assert proxy.get(path)[::2] == (200, wheel.read_bytes())  # stored now
    assert proxy.get(path + ".metadata")[0] == 200
    pool = ThreadPoolExecutor(50)
    try:
        hanging = [pool.submit(timed_get, proxy, f"/simple/hang-{i}/", JSON) for i in range(50)]
        # Every one of them occupies upstream work (as many as the proxy lets run at once).
        assert wait_until(lambda: index_server.count("/simple/hang-", prefix=True) >= 30, 60)
        time.sleep(0.5)
        timings: dict[str, list[float]] = {}
        for _ in range(5):
            for what in (path, path + ".metadata", "/simple/gamma/"):
                status, body, elapsed = timed_get(proxy, what, JSON)
                assert status == 200, body
                timings.setdefault(what.rsplit("/", 1)[-1] or "page", []).append(elapsed)
        assert timed_get(proxy, path)[1] == wheel.read_bytes()
        shown = {k: sorted(round(t * 1000, 1) for t in v) for k, v in timings.items()}
        print(f"while 50 upstream pages hang, each of 5 requests in ms: {shown}")
        slowest = max(max(v) for v in timings.values())
        assert slowest < 2.0, shown  # about 5 ms here; generous for a loaded machine
        assert not any(f.done() for f in hanging)  # they were still hanging meanwhile
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_timeout_is_a_deadline_for_a_page_that_drips(
    scripted: Callable[[dict[str, Script]], ScriptedServer], start_proxy: StartProxy
) -> None:
    """Upstream sends a byte a second: no single read times out, but --timeout 2 is a deadline
    for the whole answer."""

    def drip(handler: BaseHTTPRequestHandler, number: int, asked: str | None) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", JSON)
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        handler.wfile.write(b'{"meta": {"api-version": "1.1"}, "files": [')
        while not upstream.released.wait(0.5):
            handler.wfile.write(b" ")
            handler.wfile.flush()

    upstream = scripted({"/simple/drip/": drip})
    proxy = start_proxy("--upstream", upstream.url, "--timeout", "2")
    with ThreadPoolExecutor(3) as pool:  # three clients at once: one upstream request
        results = list(pool.map(lambda _: timed_get(proxy, "/simple/drip/", JSON), range(3)))
    for status, body, elapsed in results:
        assert status == 504, body
        assert body == b"upstream did not answer for drip within --timeout 2 s\n"
        print(f"504 after {elapsed:.2f} s with --timeout 2")
        assert elapsed < 8.0  # 2 s and some; the old proxy never answered
    assert upstream.count("/simple/drip/") == 1
    assert proxy.get("/-/health")[0] == 200


# -- row 12: never a complete 200 with wrong bytes ----------------------------------------------


def test_flipped_bytes_never_make_a_complete_200(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    """Upstream flips bytes of a wheel, again and again, and its PEP 503 page gives no size;
    HTTP/1.1 and HTTP/1.0 clients ask for it one after another and many at once. Each sees an
    error or a cut-off body, never a complete 200 (an HTTP/1.0 client without a Content-Length
    took the closed connection for the end of the body); then upstream mends and the next
    client gets the true bytes."""
    wheel = dists.wheel("gamma", "1.0")
    index_server.corrupt(wheel.name)
    proxy = start_proxy("--upstream", index_server.url)
    (item,) = page(proxy, "gamma")["files"]
    path = file_path_of(item, "gamma")
    outcomes = [raw_get(proxy, path, http10=n % 2 == 0) for n in range(16)]
    with ThreadPoolExecutor(10) as pool:
        outcomes += list(pool.map(lambda n: raw_get(proxy, path, http10=n % 2 == 0), range(30)))
    complete = [(status, len(body)) for status, body in outcomes if status == "200"]
    assert complete == [], complete
    assert {status for status, _ in outcomes} <= {"incomplete", "502", "broken"}
    assert stored_files(Path(proxy.args[proxy.args.index("--store") + 1])) == []
    index_server.clear_hooks()
    assert raw_get(proxy, path) == ("200", wheel.read_bytes())
    assert raw_get(proxy, path, http10=True) == ("200", wheel.read_bytes())


@pytest.mark.parametrize("json_pages", [True, False], ids=["sized", "unsized"])
def test_a_dead_proxys_partial_file_is_never_served(
    json_pages: bool,
    dists: DistFactory,
    scripted: Callable[[dict[str, Script]], ScriptedServer],
    start_proxy: StartProxy,
) -> None:
    """A proxy is killed while it downloads a wheel (half of it in the store's partial file).
    A new proxy on the same store must not send that half: while upstream fails, its clients
    get a 502 before any header of a 200; once upstream answers, it downloads the file anew
    and they get the true bytes. Unsized: an HTTP/1.0 client with no Content-Length, which
    took the end of the connection for the end of the body."""
    wheel = _big_wheel(dists.root, "gamma")  # 1 MiB: half of it is several read chunks
    data = wheel.read_bytes()
    item = wheel_item(wheel)
    if not json_pages:
        del item["size"]  # as a PEP 503 page says it: clients get no Content-Length
    mended = threading.Event()

    def file(handler: BaseHTTPRequestHandler, number: int, asked: str | None) -> None:
        if number == 0:  # the first download stops half-way and never ends
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            upstream.released.wait(120)
        elif not mended.is_set():
            whole(handler, b"gone\n", 404, "text/plain")
        else:
            whole(handler, data, 200, "application/octet-stream")

    upstream = scripted(
        {"/simple/gamma/": serving(json_page("gamma", [item]), JSON), f"/files/{wheel.name}": file}
    )
    first = start_proxy("--upstream", upstream.url)
    (listed,) = page(first, "gamma")["files"]
    path = file_path_of(listed, "gamma")
    store = Path(first.args[first.args.index("--store") + 1])
    with ThreadPoolExecutor(1) as pool:
        cut = pool.submit(raw_get, first, path)
        partial = store / "partial"
        assert wait_until(
            lambda: any(p.stat().st_size >= 256 * 1024 for p in partial.glob("*")), 30
        )
        first.stop(signal.SIGKILL)
        assert cut.result(30)[0] in {"incomplete", "broken"}
    second = start_proxy("--upstream", upstream.url)  # the same store

    def clients() -> list[tuple[str, bytes]]:
        with ThreadPoolExecutor(4) as pool:  # at once: each may find the dead one's file
            return list(pool.map(lambda _: raw_get(second, path, http10=not json_pages), range(4)))

    for status, body in clients():
        assert status == "502" and body.count(b"\n") == 1, (status, body[:200])
    mended.set()
    assert [(status, body == data) for status, body in clients()] == [("200", True)] * 4
    sha256 = item["hashes"]["sha256"]
    assert stored_files(store) == [store / "files" / sha256[:2] / sha256]


# -- row 13: names, unknown projects -----------------------------------------------------------


def test_names_too_long_are_404_without_asking_upstream(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    dists.wheel("gamma", "1.0")
    proxy = start_proxy("--upstream", index_server.url)
    long = "a" * 300
    sha = "0" * 64
    for path in (f"/simple/{long}/", f"/simple/{long}", f"/files/{long}/{sha}/{long}-1.0.tar.gz",
                 f"/files/gamma/{sha}/gamma-1.0-{long}.whl",
                 f"/files/gamma/{sha}/gamma-1.0-{long}.whl.metadata"):  # fmt: skip
        status, _, body = proxy.get(path, JSON)
        assert status == 404, (path, body)
        assert b"Traceback" not in body
    assert index_server.requests == []
    assert "Traceback" not in proxy.log and "Errno 36" not in proxy.log
    status, _, body = proxy.get(f"/simple/{'a' * 200}/", JSON)  # long, but within the limit
    assert (status, body) == (404, f"{'a' * 200} is on none of the upstream indexes\n".encode())


def test_an_unknown_project_is_asked_upstream_once_for_many_clients(
    dists: DistFactory, index_server: IndexServer, start_proxy: StartProxy
) -> None:
    dists.wheel("gamma", "1.0")
    index_server.delay("/simple/", 0.5)  # the clients arrive while upstream is asked
    proxy = start_proxy("--upstream", index_server.url, "--ttl", "10")
    with ThreadPoolExecutor(25) as pool:
        statuses = list(pool.map(lambda _: proxy.get("/simple/no-such/", JSON)[0], range(25)))
    statuses += [proxy.get("/simple/no-such/", JSON)[0] for _ in range(25)]
    assert statuses == [404] * 50
    assert index_server.count("/simple/no-such/") == 1
    # Remembered for a while (here the page TTL), then asked again: it may have appeared.
    dists.wheel("no-such", "1.0")
    assert wait_until(lambda: proxy.get("/simple/no-such/", JSON)[0] == 200, 30)
    assert index_server.count("/simple/no-such/") == 2
