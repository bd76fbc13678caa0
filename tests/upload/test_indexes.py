"""Several private indexes on one server (`serve --config`), each under `/<name>/` with its own
rights: real twine uploads to each, refusals per index, pip installing from each."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import httpget
from tests.support.credentials import PASSWORD, USER
from tests.support.dists import make_wheel
from tests.support.httpget import Response
from tests.support.process import ServeProcess
from tests.support.server import IndexServer
from tests.support.upload import StartServe, make_token, twine_upload, users_cli
from tests.support.venvs import installed_versions
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run

BOB, BOB_PASSWORD = "bob", "bob's own password"
JSON = "application/vnd.pypi.simple.v1+json"


def two_indexes(tmp_path: Path, users_file: Path, upstream: str | None = None) -> Path:
    """A configuration of a team index (alice uploads, anyone reads) and a staging index
    (bob uploads, only accounts read), and maybe an upstream."""
    password = BOB_PASSWORD + "\n"
    result = users_cli("add", BOB, "--users", users_file, "--password-stdin", stdin=password)
    assert result.returncode == 0, result.stderr
    text = f"""users = "{users_file.name}"
anonymous-read = true

[[index]]
name = "team"
kind = "private"
path = "team-index"
upload = ["{USER}"]

[[index]]
name = "staging"
kind = "private"
path = "staging-index"
upload = ["{BOB}"]
anonymous-read = false
"""
    if upstream is not None:
        text += f'\n[[index]]\nname = "pypi"\nkind = "upstream"\nurl = "{upstream}"\n'
    config = tmp_path / "indexes.toml"
    config.write_text(text)
    return config


def twine(url: str, user: str, password: str, wheel: Path) -> subprocess.CompletedProcess[str]:
    return twine_upload(url, wheel, user=user, password=password)


def get(server: ServeProcess, path: str, headers: dict[str, str] | None = None) -> Response:
    """``path`` on ``server``, as it answers (no redirect followed)."""
    return httpget.get(server.base + path.lstrip("/"), redirects=False, **(headers or {}))


def files_on(server: ServeProcess, path: str, auth: str | None = None) -> list[str]:
    headers = {"Accept": JSON}
    if auth is not None:
        headers["Authorization"] = auth
    status, _, body = get(server, path, headers)
    assert status == 200, (status, body)
    return [f["filename"] for f in json.loads(body)["files"]]


def bob_auth() -> str:
    return "Basic " + base64.b64encode(f"{BOB}:{BOB_PASSWORD}".encode()).decode()


def pip_install(tmp_path: Path, make_venv: Any, index_url: str, project: str) -> dict[str, str]:
    python = make_venv(f"venv-{project}", with_pip=False)
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result = run([*argv, "--index-url", index_url, project], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    return installed_versions(python)


@pytest.mark.slow
def test_two_private_indexes_each_with_its_uploaders_readers_and_url(
    tmp_path: Path, users_file: Path, start_serve: StartServe, make_venv: Any
) -> None:
    server = start_serve("--config", two_indexes(tmp_path, users_file))
    base = server.base  # http://127.0.0.1:PORT/
    dists = tmp_path / "dists"
    team_wheel = make_wheel(dists, "team-pkg", "1.0")
    staging_wheel = make_wheel(dists, "staging-pkg", "2.0rc1")

    result = twine(f"{base}team/", USER, PASSWORD, team_wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    refused = twine(f"{base}staging/", USER, PASSWORD, staging_wheel)
    assert refused.returncode != 0
    assert "403 Forbidden" in refused.stdout + refused.stderr
    assert server.logged(
        f"\"POST /staging/\" 403 {USER}: user {USER!r} may not upload to the index 'staging'"
    ), server.log
    assert not (tmp_path / "staging-index" / staging_wheel.name).exists()
    # A token made for the team index is alice's there only.
    token = make_token(users_file, USER, "team")
    with_token = twine(f"{base}staging/", "__token__", token, staging_wheel)
    assert "403 Forbidden" in with_token.stdout + with_token.stderr
    result = twine(f"{base}staging/", BOB, BOB_PASSWORD, staging_wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    refused = twine(f"{base}team/", BOB, BOB_PASSWORD, make_wheel(dists, "bobs-pkg", "1.0"))
    assert "403 Forbidden" in refused.stdout + refused.stderr
    assert (tmp_path / "staging-index" / staging_wheel.name).read_bytes() == (
        staging_wheel.read_bytes()
    )
    assert not (tmp_path / "team-index" / staging_wheel.name).exists()
    assert not (tmp_path / "staging-index" / team_wheel.name).exists()

    # Each index reads alone under its name; the first is also the server's root.
    assert files_on(server, "/team/simple/team-pkg/") == [team_wheel.name]
    assert files_on(server, "/simple/team-pkg/") == [team_wheel.name]
    assert get(server, "/team/simple/staging-pkg/")[0] == 404
    assert get(server, "/simple/staging-pkg/")[0] == 404
    status, headers, _ = get(server, "/staging/simple/staging-pkg/")
    assert (status, headers["www-authenticate"]) == (401, 'Basic realm="wheelhouse"')
    assert files_on(server, "/staging/simple/staging-pkg/", bob_auth()) == [staging_wheel.name]
    status, headers, _ = get(server, "/team/simple/Team_Pkg/")
    assert (status, headers["location"]) == (301, "/team/simple/team-pkg/")

    installed = pip_install(tmp_path, make_venv, f"{base}team/simple/", "team-pkg")
    assert installed["team-pkg"] == "1.0"
    credentials = f"http://{BOB}:{quote(BOB_PASSWORD, safe='')}@"
    staging_url = base.replace("http://", credentials) + "staging/simple/"
    installed = pip_install(tmp_path, make_venv, staging_url, "staging-pkg==2.0rc1")
    assert installed["staging-pkg"] == "2.0rc1"
    assert BOB_PASSWORD not in server.log


def test_a_mounted_index_s_pages_for_people_link_under_its_name(
    tmp_path: Path, users_file: Path, start_serve: StartServe
) -> None:
    server = start_serve("--config", two_indexes(tmp_path, users_file))
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    result = twine(f"{server.base}team/", USER, PASSWORD, wheel)
    assert result.returncode == 0, result.stdout + result.stderr

    status, _, body = get(server, "/team/")
    page = body.decode()
    assert status == 200
    assert '<form method="get" action="/team/" role="search">' in page
    assert '<li><a href="/team/-/project/team-pkg/">team-pkg</a>' in page
    assert '<a href="/team/simple/">/team/simple/</a>' in page
    status, _, body = get(server, "/team/-/project/team-pkg/")
    page = body.decode()
    assert status == 200
    assert f"pip install --index-url {server.base}team/simple/ team-pkg" in page
    assert '<a id="simple-page" href="/team/simple/team-pkg/">' in page
    found = get(server, "/team/?q=team")[2].decode()
    assert '<a href="/team/-/project/team-pkg/">' in found
    # The staging index asks for an account before it shows anything.
    assert get(server, "/staging/")[0] == 401
    assert get(server, "/staging/", {"Authorization": bob_auth()})[0] == 200


@pytest.mark.slow
def test_two_private_indexes_in_front_of_an_upstream(
    tmp_path: Path, users_file: Path, start_serve: StartServe, make_venv: Any
) -> None:
    public = tmp_path / "public"
    make_wheel(public, "team-pkg", "9.0")  # the team's name, taken upstream
    make_wheel(public, "other-pkg", "1.0")
    with IndexServer(public) as upstream:
        upstream.json_pages = True
        config = two_indexes(tmp_path, users_file, upstream.url)
        proxy = start_serve("--config", config, "--store", tmp_path / "store")
        team_wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
        staging_wheel = make_wheel(tmp_path / "dists", "staging-pkg", "1.0")
        result = twine(proxy.base, USER, PASSWORD, team_wheel)  # the root: the first index
        assert result.returncode == 0, result.stdout + result.stderr
        result = twine(f"{proxy.base}staging/", BOB, BOB_PASSWORD, staging_wheel)
        assert result.returncode == 0, result.stdout + result.stderr
        refused = twine(f"{proxy.base}staging/", USER, PASSWORD, staging_wheel)
        assert "403 Forbidden" in refused.stdout + refused.stderr

        assert files_on(proxy, "/simple/team-pkg/") == [team_wheel.name]
        assert files_on(proxy, "/simple/other-pkg/") == ["other_pkg-1.0-py3-none-any.whl"]
        assert files_on(proxy, "/team/simple/team-pkg/") == [team_wheel.name]
        # One access line per request, as for the proxy's own routes (docs/proxy.md).
        line = '"GET /team/simple/team-pkg/ HTTP/1.1" 200'
        assert proxy.logged(line), proxy.log
        assert proxy.log.count(line) == 1, proxy.log
        assert files_on(proxy, "/staging/simple/staging-pkg/", bob_auth()) == [staging_wheel.name]
        assert upstream.count("/files/team_pkg-9.0-py3-none-any.whl") == 0
        installed = pip_install(tmp_path, make_venv, proxy.url, "team-pkg")
        assert installed["team-pkg"] == "1.0"
