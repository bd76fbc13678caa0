"""Several `wheelhouse serve --upstream` processes sharing one bucket (SeaweedFS on loopback):
each file comes from upstream once across all of them, and a proxy killed mid-download leaves
nothing that another would serve."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.capabilities import find_uv
from tests.support.dists import DistFactory
from tests.support.process import ServeProcess, run_command, wait_until
from tests.support.proxy import JSON, pip_download
from tests.support.s3 import S3Server
from tests.support.server import IndexServer
from wheelhouse._base.storage import S3Store

WHEELS = ["alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"]


@pytest.fixture
def upstream_dists(dists: DistFactory) -> DistFactory:
    """alpha 1.0 (needs beta>=1), beta 1.0 and 2.0, gamma 1.0."""
    dists.wheel("alpha", "1.0", requires=["beta>=1"])
    dists.wheel("beta", "1.0")
    dists.wheel("beta", "2.0")
    dists.wheel("gamma", "1.0")
    return dists


@contextlib.contextmanager
def running_proxies(
    count: int, bucket: str, s3_server: S3Server, upstream: str, tmp_path: Path, *extra: str
) -> Iterator[list[ServeProcess]]:
    """``count`` proxies over one bucket, each with a cache (its local copy) of its own, as
    on separate machines; each is killed when the block ends (a stopped one stays stopped)."""
    proxies: list[ServeProcess] = []
    try:
        for number in range(count):
            env = {**os.environ, "WHEELHOUSE_CACHE_DIR": str(tmp_path / f"cache{number}")}
            argv = ["--upstream", upstream, "--store", f"s3://{bucket}/proxy"]
            argv += ["--endpoint-url", s3_server.endpoint, *extra]
            proxies.append(ServeProcess(argv, env))
        yield proxies
    finally:
        for proxy in proxies:
            proxy.stop(signal.SIGKILL)


def gamma_wheel(dists: DistFactory) -> tuple[str, bytes, str]:
    """The wheel the single-file tests ask for: its name, bytes and sha256."""
    name = "gamma-1.0-py3-none-any.whl"
    data = (dists.root / name).read_bytes()
    return name, data, hashlib.sha256(data).hexdigest()


def bucket_object(s3_server: S3Server, bucket: str, key: str) -> tuple[int, bytes]:
    status, _, body = s3_server.get(f"{bucket}/proxy/{key}")
    return status, body


CLIENTS = 30  # the figure: 30 cold concurrent clients over three proxies
PIP_CLIENTS = 3  # one pip per proxy; the rest are uv, which starts in milliseconds


def uv_install(
    proxy: ServeProcess, target: Path, requirements: Path
) -> subprocess.CompletedProcess[str]:
    """uv installing hash-pinned ``requirements`` through the proxy into ``target``: uv
    checks every file it gets against the sha256 the file names."""
    argv = [*find_uv(), "pip", "install", "--no-config", "--no-cache", "--require-hashes"]
    argv += ["--python", sys.executable, "--target", str(target), "--index-url", proxy.url]
    argv += ["-r", str(requirements)]
    return run_command(argv)


def test_three_proxies_over_one_bucket_serve_30_cold_clients_fetching_each_file_once(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    index_server.json_pages = True
    index_server.delay("/files/", 1.0)  # every client asks while the first download runs
    index_server.delay("/simple/", 0.3)
    wanted = {name: (upstream_dists.root / name).read_bytes() for name in WHEELS}
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "".join(
            f"{name.split('-')[0]}=={name.split('-')[1]} "
            f"--hash=sha256:{hashlib.sha256(data).hexdigest()}\n"
            for name, data in wanted.items()
        )
    )
    with running_proxies(3, bucket, s3_server, index_server.url, tmp_path) as proxies:

        def client(i: int) -> subprocess.CompletedProcess[str]:
            proxy = proxies[i % 3]
            if i < PIP_CLIENTS:
                return pip_download(proxy, tmp_path / f"c{i}", "alpha", "gamma")
            return uv_install(proxy, tmp_path / f"c{i}", requirements)

        with ThreadPoolExecutor(CLIENTS) as pool:  # all at once, into three cold proxies
            results = list(pool.map(client, range(CLIENTS)))
        assert [r.returncode for r in results] == [0] * CLIENTS, [r.stderr for r in results]
        for i in range(PIP_CLIENTS):  # pip's downloads: the upstream's bytes
            got = {p.name: p.read_bytes() for p in (tmp_path / f"c{i}").iterdir()}
            assert got == wanted
        installed = {
            (
                tmp_path / f"c{i}" / f"{name.split('-')[0]}-{name.split('-')[1]}.dist-info/RECORD"
            ).read_text()
            for name in WHEELS
            for i in range(PIP_CLIENTS, CLIENTS)
        }
        assert len(installed) == len(WHEELS)  # every uv client installed the same files
        for name, data in wanted.items():
            assert index_server.count(f"/files/{name}") == 1, name
            sha256 = hashlib.sha256(data).hexdigest()
            # In the bucket under its content key, with the bytes that key promises.
            assert bucket_object(s3_server, bucket, f"files/{sha256[:2]}/{sha256}") == (200, data)
            assert bucket_object(s3_server, bucket, f"leases/files/{sha256}")[0] == 404
        for project in ("alpha", "beta", "gamma"):
            assert index_server.count(f"/simple/{project}/") == 1, project
        upstream_requests = [p.stats()["upstream_requests"] for p in proxies]
        assert sum(upstream_requests) == 3 + 3  # three pages and three files, once in all


def test_a_proxy_killed_mid_download_leaves_nothing_served_and_its_lease_is_taken_over(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    index_server.json_pages = True
    name, data, sha256 = gamma_wheel(upstream_dists)
    with running_proxies(
        2, bucket, s3_server, index_server.url, tmp_path, "--lease-timeout", "2"
    ) as (first, second):
        status, _, body = first.get("/simple/gamma/", JSON)
        assert status == 200
        (listed,) = json.loads(body)["files"]
        path = f"/files/gamma/{sha256}/{name}"
        assert listed["url"].endswith(path.removeprefix("/"))
        index_server.delay("/files/", 30)  # the first proxy's download hangs...
        outcome: list[object] = []

        def client() -> None:
            try:
                outcome.append(first.get(path))
            except (OSError, http.client.HTTPException) as exc:
                outcome.append(exc)

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        lease = f"leases/files/{sha256}"
        assert wait_until(lambda: bucket_object(s3_server, bucket, lease)[0] == 200)
        assert wait_until(lambda: index_server.count(f"/files/{name}") == 1)  # asked upstream
        first.stop(signal.SIGKILL)  # ...and it dies holding the lease
        thread.join(10)
        # Its client saw the connection end early, never a complete body.
        assert len(outcome) == 1 and isinstance(outcome[0], (OSError, http.client.HTTPException))
        assert bucket_object(s3_server, bucket, f"files/{sha256[:2]}/{sha256}")[0] == 404
        index_server.clear_hooks()
        status, _, body = second.get(path)
        assert (status, body) == (200, data)
        assert "taking over the stale lease leases/files/" in second.log
        assert index_server.count(f"/files/{name}") == 2  # the dead download, and this one
        # The client may have its bytes (from the verified local copy) before the upload ends.
        assert wait_until(lambda: bucket_object(s3_server, bucket, lease)[0] == 404)
        assert bucket_object(s3_server, bucket, f"files/{sha256[:2]}/{sha256}") == (200, data)


def test_a_download_longer_than_the_lease_keeps_it_renewed(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    index_server.json_pages = True
    name, data, sha256 = gamma_wheel(upstream_dists)
    with running_proxies(
        2, bucket, s3_server, index_server.url, tmp_path, "--lease-timeout", "2"
    ) as (first, second):
        for proxy in (first, second):
            assert proxy.get("/simple/gamma/", JSON)[0] == 200
        path = f"/files/gamma/{sha256}/{name}"
        index_server.delay("/files/", 6)  # three times the lease
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(first.get, path)
            lease = f"leases/files/{sha256}"
            assert wait_until(lambda: bucket_object(s3_server, bucket, lease)[0] == 200)
            time.sleep(2.5)  # the lease was taken longer ago than its timeout...
            two = pool.submit(second.get, path)  # ...but renewed: the second proxy waits
            assert one.result()[::2] == (200, data)
            assert two.result()[::2] == (200, data)
        assert index_server.count(f"/files/{name}") == 1
        assert "taking over the stale lease" not in first.log + second.log
        assert "read " + sha256 + " from the bucket" in second.log


def test_an_object_with_other_bytes_under_a_content_key_is_never_served(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    index_server.json_pages = True
    name, data, sha256 = gamma_wheel(upstream_dists)
    key = f"files/{sha256[:2]}/{sha256}"
    store = S3Store(bucket, "proxy", endpoint_url=s3_server.endpoint)
    store.put_bytes(key, b"not the wheel", "application/octet-stream")  # by something else
    with running_proxies(1, bucket, s3_server, index_server.url, tmp_path) as (proxy,):
        assert proxy.get("/simple/gamma/", JSON)[0] == 200
        status, _, body = proxy.get(f"/files/gamma/{sha256}/{name}")
        assert (status, body) == (200, data)  # fetched upstream, not the bucket's bytes
        assert f"the bucket's {key} has other bytes; not serving it" in proxy.log
        assert index_server.count(f"/files/{name}") == 1
        # Read twice (before taking the lease, and under it in case it arrived meanwhile).
        assert proxy.stats()["hash_mismatches"] == 2
        assert wait_until(lambda: bucket_object(s3_server, bucket, key) == (200, data))


def test_a_download_with_other_bytes_leaves_no_object_and_no_lease(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    index_server.json_pages = True
    name, _, sha256 = gamma_wheel(upstream_dists)
    index_server.corrupt(name)  # upstream sends other bytes than its page promises
    with running_proxies(1, bucket, s3_server, index_server.url, tmp_path) as (proxy,):
        assert proxy.get("/simple/gamma/", JSON)[0] == 200
        try:
            status, _, body = proxy.get(f"/files/gamma/{sha256}/{name}")
        except (OSError, http.client.HTTPException):
            status, body = 0, b""  # the connection ended early: never a complete body
        assert status in (0, 502) and hashlib.sha256(body).hexdigest() != sha256
        assert wait_until(lambda: "download of gamma-1.0-py3-none-any.whl failed" in proxy.log)
        # The upload that ran beside the download was aborted: nothing under the content key.
        assert bucket_object(s3_server, bucket, f"files/{sha256[:2]}/{sha256}")[0] == 404
        assert wait_until(
            lambda: bucket_object(s3_server, bucket, f"leases/files/{sha256}")[0] == 404
        )


def test_an_unreachable_bucket_is_one_error_line(
    index_server: IndexServer, bucket: str, cli: Any, tmp_path: Path
) -> None:
    result = cli(
        "serve", "--upstream", index_server.url, "--store", "s3://nowhere/proxy",
        "--endpoint-url", "http://127.0.0.1:9", "--port", "0",
    )  # fmt: skip
    assert result.exit_code == 5, result.stderr  # ExitCode.NETWORK
    assert result.stderr.startswith("error: cannot read 'pages/")
    assert "s3://nowhere/proxy" in result.stderr.splitlines()[0]


def test_a_stale_page_is_revalidated_by_one_proxy_for_all(
    upstream_dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    index_server.json_pages = True
    index_server.etags = True
    with running_proxies(3, bucket, s3_server, index_server.url, tmp_path, "--ttl", "2") as proxies:
        assert proxies[0].get("/simple/gamma/", JSON)[0] == 200
        assert proxies[1].get("/simple/gamma/", JSON)[0] == 200  # from the bucket
        assert index_server.count("/simple/gamma/") == 1
        time.sleep(2.2)  # the page is stale for all three now
        index_server.delay("/simple/", 0.5)  # the revalidation is still under way when...
        with ThreadPoolExecutor(3) as pool:  # ...all three serve the stale page at once
            statuses = list(pool.map(lambda p: p.get("/simple/gamma/", JSON)[0], proxies))
        assert statuses == [200, 200, 200]
        assert wait_until(lambda: index_server.count("/simple/gamma/") == 2)
        time.sleep(1.0)
        assert index_server.count("/simple/gamma/") == 2  # one revalidation, not three
        revalidations = [p.stats()["page_revalidations"] for p in proxies]
        assert sum(revalidations) == 1, revalidations
