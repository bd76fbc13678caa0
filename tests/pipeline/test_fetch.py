"""fetch.fetch_all: parallel, hash-verified downloads into the content-addressed cache."""

from __future__ import annotations

import base64
import contextlib
import gc
import threading
import urllib.request
import warnings
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

import wheelhouse.download.fetch as fetch_module
from tests.support.dists import DistFactory
from tests.support.files import sha256_of as _sha256
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import fetch_all
from wheelhouse.download.pins import Pin
from wheelhouse.errors import ExitCode, FetchError, HashMismatchError
from wheelhouse.house.manifest import Sha256


def _pin(path: Path, url: str, *, sha256: str | None = "from-file") -> Pin:
    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        kind = "wheel"
    else:
        name, version = parse_sdist_filename(path.name)
        kind = "sdist"
    return Pin(
        name=canonicalize_name(name),
        version=str(version),
        url=url,
        filename=path.name,
        kind=kind,  # type: ignore[arg-type]
        sha256=_sha256(path) if sha256 == "from-file" else Sha256(sha256) if sha256 else None,
        requires_python=None,
        requested=True,
    )


def _cached_files(cache: Cache) -> list[Path]:
    return sorted(p for p in cache.root.rglob("*") if p.is_file())


def _file_requests(server: IndexServer) -> list[str]:
    return [r for r in server.requests if r.startswith("/files/")]


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def test_fetches_every_pin_in_parallel_into_the_cache(
    dists: DistFactory,
    index_server: IndexServer,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = [
        dists.wheel("alpha", "1.0"),
        dists.wheel("beta", "2.0"),
        dists.sdist("gamma", "3.0"),
    ]
    pins = [_pin(p, index_server.files_url + p.name) for p in paths]
    # Each download waits until all three are under way: a serial fetch breaks the barrier.
    barrier = threading.Barrier(len(pins), timeout=2)

    class GatedClient(HttpClient):
        def get(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
            barrier.wait()
            return super().get(url, **kwargs)

    monkeypatch.setattr(fetch_module, "HttpClient", GatedClient)
    progress: Counter[str] = Counter()

    fetched = fetch_all(
        pins,
        cache,
        pip=PipSettings(),
        allowed={},
        jobs=4,
        progress=lambda pin, n: progress.update({pin.filename: n}),
    )

    assert [f.pin for f in fetched] == pins
    for item, source in zip(fetched, paths, strict=True):
        assert item.path == cache.file_path(item.sha256, source.name)
        assert item.path.read_bytes() == source.read_bytes()
        assert item.sha256 == _sha256(source)
        assert item.size == source.stat().st_size == progress[source.name]
    assert sorted(_file_requests(index_server)) == sorted(f"/files/{p.name}" for p in paths)
    assert _cached_files(cache) == sorted(f.path for f in fetched)


def test_cache_hit_makes_no_request(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    pins = [_pin(wheel, index_server.files_url + wheel.name)]
    (first,) = fetch_all(pins, cache, pip=PipSettings(), allowed={}, jobs=2)
    index_server.requests.clear()

    (again,) = fetch_all(pins, cache, pip=PipSettings(), allowed={}, jobs=2)

    assert index_server.requests == []
    assert (again.pin, again.path, again.sha256, again.size) == (
        first.pin,
        first.path,
        first.sha256,
        first.size,
    )
    assert (first.downloaded, again.downloaded) == (True, False)


def test_file_without_a_promised_hash_is_hashed_on_the_way_in(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    (item,) = fetch_all(
        [_pin(wheel, index_server.files_url + wheel.name, sha256=None)],
        cache,
        pip=PipSettings(),
        allowed={},
        jobs=1,
    )
    assert item.sha256 == _sha256(wheel)
    assert item.path == cache.file_path(_sha256(wheel), wheel.name)


def test_wrong_promised_hash_raises_and_caches_nothing(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    good = dists.wheel("alpha", "1.0")
    bad = dists.wheel("beta", "1.0")
    url = index_server.files_url + bad.name
    pins = [_pin(good, index_server.files_url + good.name), _pin(bad, url, sha256="0" * 64)]

    with pytest.raises(HashMismatchError) as info:
        fetch_all(pins, cache, pip=PipSettings(), allowed={}, jobs=1)

    err = info.value
    assert err.exit_code == ExitCode.INTEGRITY
    assert (err.filename, err.expected, err.actual) == (bad.name, "0" * 64, _sha256(bad))
    assert err.message == (
        f"{bad.name} from {url} has sha256 {_sha256(bad)}, but the index promised {'0' * 64}"
    )
    assert cache.lookup(Sha256("0" * 64), bad.name) is None
    assert cache.lookup(_sha256(bad), bad.name) is None
    assert [p.name for p in _cached_files(cache)] == [good.name]  # no partial file either


def test_corrupted_download_is_caught(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.corrupt(wheel.name)

    with pytest.raises(HashMismatchError) as info:
        fetch_all(
            [_pin(wheel, index_server.files_url + wheel.name)],
            cache,
            pip=PipSettings(),
            allowed={},
            jobs=1,
        )

    assert info.value.expected == _sha256(wheel)
    assert info.value.actual != _sha256(wheel)
    assert _cached_files(cache) == []


def test_file_outside_the_hashes_the_requirements_pin_is_refused(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("Alpha", "1.0")
    pin = _pin(wheel, index_server.files_url + wheel.name)
    allowed = {canonicalize_name("alpha"): frozenset({Sha256("1" * 64), Sha256("2" * 64)})}

    with pytest.raises(HashMismatchError) as info:
        fetch_all([pin], cache, pip=PipSettings(), allowed=allowed, jobs=1)

    assert info.value.message == (
        f"{wheel.name} (alpha==1.0) has sha256 {_sha256(wheel)}, which is not among the hashes "
        f"the requirements pin: {'1' * 64}, {'2' * 64}"
    )
    assert _cached_files(cache) == []


def test_cached_file_is_still_checked_against_the_pinned_hashes(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    pin = _pin(wheel, index_server.files_url + wheel.name)
    fetch_all([pin], cache, pip=PipSettings(), allowed={}, jobs=1)
    index_server.requests.clear()

    with pytest.raises(HashMismatchError):
        fetch_all(
            [pin],
            cache,
            pip=PipSettings(),
            allowed={pin.name: frozenset({Sha256("1" * 64)})},
            jobs=1,
        )
    assert index_server.requests == []


def test_file_urls_are_copied(dists: DistFactory, cache: Cache) -> None:
    wheel = dists.wheel("alpha", "1.0")
    sdist = dists.sdist("with space", "1.0")
    pins = [_pin(wheel, wheel.as_uri()), _pin(sdist, sdist.as_uri())]

    fetched = fetch_all(pins, cache, pip=PipSettings(), allowed={}, jobs=2)

    assert [f.path.read_bytes() for f in fetched] == [wheel.read_bytes(), sdist.read_bytes()]
    assert [f.sha256 for f in fetched] == [_sha256(wheel), _sha256(sdist)]


def test_missing_local_file_is_a_fetch_error(tmp_path: Path, cache: Cache) -> None:
    ghost = tmp_path / "alpha-1.0-py3-none-any.whl"
    pin = Pin(
        name=canonicalize_name("alpha"),
        version="1.0",
        url=ghost.as_uri(),
        filename=ghost.name,
        kind="wheel",
        sha256=Sha256("0" * 64),
        requires_python=None,
        requested=True,
    )
    with pytest.raises(FetchError) as info:
        fetch_all([pin], cache, pip=PipSettings(), allowed={}, jobs=1)
    assert info.value.exit_code == ExitCode.NETWORK
    assert info.value.message == f"cannot read {str(ghost)!r}: No such file or directory"
    assert _cached_files(cache) == []


def test_server_error_is_retried(
    dists: DistFactory,
    index_server: IndexServer,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    served = index_server._route
    failed: list[str] = []

    def first_answer_is_500(path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/files/") and not failed:
            failed.append(path)
            return 500, {"Content-Type": "text/plain"}, b"try again\n"
        return served(path)

    monkeypatch.setattr(index_server, "_route", first_answer_is_500)

    (item,) = fetch_all(
        [_pin(wheel, index_server.files_url + wheel.name)],
        cache,
        pip=PipSettings(),
        allowed={},
        jobs=1,
    )

    assert _file_requests(index_server) == [f"/files/{wheel.name}"] * 2
    assert item.path.read_bytes() == wheel.read_bytes()


def test_server_error_that_persists_is_a_fetch_error(
    dists: DistFactory, index_server: IndexServer, cache: Cache, sleeps: list[float]
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    url = index_server.files_url + wheel.name
    index_server.fail("/files/", 503)

    with pytest.raises(FetchError) as info:
        fetch_all([_pin(wheel, url)], cache, pip=PipSettings(), allowed={}, jobs=1)

    assert info.value.message == f"cannot download {url}: HTTP 503"
    assert info.value.url == url
    assert _file_requests(index_server) == [f"/files/{wheel.name}"] * 3
    assert _cached_files(cache) == []


def test_no_back_off_after_the_last_attempt(
    dists: DistFactory, index_server: IndexServer, cache: Cache, sleeps: list[float]
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.fail("/files/", 503)
    with pytest.raises(FetchError):
        fetch_all(
            [_pin(wheel, index_server.files_url + wheel.name)],
            cache,
            pip=PipSettings(),
            allowed={},
            jobs=1,
        )
    # urllib3's Retry: no wait before the first retry, 0.25 * 2 s before the second, none after
    # the last attempt.
    assert sleeps == [0.5]


def test_not_found_is_not_retried(
    dists: DistFactory, index_server: IndexServer, cache: Cache, sleeps: list[float]
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    url = index_server.files_url + "alpha-9.9-py3-none-any.whl"
    pin = _pin(wheel, url)

    with pytest.raises(FetchError) as info:
        fetch_all([pin], cache, pip=PipSettings(), allowed={}, jobs=1)

    assert info.value.message == f"cannot download {url}: HTTP 404"
    assert _file_requests(index_server) == ["/files/alpha-9.9-py3-none-any.whl"]
    assert sleeps == []


def test_error_response_does_not_leak_its_socket(
    dists: DistFactory, index_server: IndexServer, cache: Cache, sleeps: list[float]
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    pin = _pin(wheel, index_server.files_url + "alpha-9.9-py3-none-any.whl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.suppress(FetchError):
            fetch_all([pin], cache, pip=PipSettings(), allowed={}, jobs=1)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


class _AuthProxy(BaseHTTPRequestHandler):
    """A forward proxy on loopback that wants Basic credentials, as corporate proxies do."""

    seen: ClassVar[list[tuple[str, str | None]]] = []
    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()

    def do_GET(self) -> None:
        auth = self.headers.get("Proxy-Authorization")
        self.seen.append((self.path, auth))
        if auth != self.expected:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(self.path) as upstream:  # the absolute URL a proxy is sent
            body = upstream.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_proxy_credentials_in_the_proxy_url_are_sent(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    pin = _pin(wheel, index_server.files_url + wheel.name)
    _AuthProxy.seen = []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _AuthProxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        port = proxy.server_address[1]
        # pip's form: credentials percent-encoded in the URL given to --proxy.
        config = {"proxy": f"http://user:p%40ss@127.0.0.1:{port}"}
        [fetched] = fetch_all([pin], cache, pip=PipSettings.parse(config), allowed={}, jobs=1)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert _AuthProxy.seen == [(index_server.files_url + wheel.name, _AuthProxy.expected)]
    assert _file_requests(index_server) == [f"/files/{wheel.name}"]
