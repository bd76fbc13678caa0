"""Uploads as people make them: real `twine upload` and `uv publish` against `wheelhouse serve
--upload`, then real pip and uv installing what was uploaded through the same server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.capabilities import find_uv
from tests.support.credentials import PASSWORD, USER
from tests.support.dists import make_sdist, make_wheel
from tests.support.process import ServeProcess, run_command
from tests.support.proxy import linked_files
from tests.support.proxy import page as json_page
from tests.support.server import IndexServer
from tests.support.upload import StartServe, twine_upload
from tests.support.venvs import installed_versions
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run


def uv_publish(server: ServeProcess, *files: Path) -> subprocess.CompletedProcess[str]:
    env = {**offline_env(), "UV_PUBLISH_USERNAME": USER, "UV_PUBLISH_PASSWORD": PASSWORD}
    return run_command([*find_uv(), "publish", "--publish-url", server.base, *files], env=env)


@pytest.mark.slow
def test_twine_uploads_then_pip_and_uv_install_through_the_server(
    tmp_path: Path, private: ServeProcess, make_venv: Any
) -> None:
    dists = tmp_path / "dists"
    wheel = make_wheel(dists, "team-pkg", "1.0", requires=["team-dep"])
    sdist = make_sdist(dists, "team-pkg", "1.0")
    dep = make_wheel(dists, "Team_Dep", "0.3")
    result = twine_upload(private, wheel, sdist, dep)
    assert result.returncode == 0, result.stdout + result.stderr
    root = tmp_path / "private"
    for path in (wheel, sdist, dep):
        assert (root / path.name).read_bytes() == path.read_bytes()
    promised = linked_files(root)  # pages, hashes and PEP 658 files agree with the bytes
    assert sorted(promised) == sorted(p.name for p in (wheel, sdist, dep))
    assert private.logged(f'POST /" 200 {USER}: OK'), private.log
    assert PASSWORD not in private.log

    python = make_venv("pip", with_pip=False)
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result_pip = run([*argv, "--index-url", private.url, "team-pkg"], env=offline_env())
    assert result_pip.ok, result_pip.stdout + result_pip.stderr
    installed = installed_versions(python)
    assert (installed["team-pkg"], installed["team-dep"]) == ("1.0", "0.3")
    assert private.logged('GET /team_pkg-1.0-py3-none-any.whl.metadata HTTP/1.1" 200'), private.log

    uv_python = make_venv("uv", with_pip=False)
    uv_argv = [*find_uv(), "pip", "install", "--no-config", "--cache-dir", tmp_path / "uvc"]
    result_uv = run(
        [*uv_argv, "--python", uv_python, "--index-url", private.url, "team-pkg"],
        env=offline_env(),
    )
    assert result_uv.ok, result_uv.stdout + result_uv.stderr
    installed = installed_versions(uv_python)
    assert (installed["team-pkg"], installed["team-dep"]) == ("1.0", "0.3")


@pytest.mark.slow
def test_uv_publish_uploads_and_a_second_publish_is_a_conflict(
    tmp_path: Path, private: ServeProcess
) -> None:
    wheel = make_wheel(tmp_path / "dists", "uv-made", "2.0")
    result = uv_publish(private, wheel)
    assert result.returncode == 0, result.stdout + result.stderr
    page = json_page(private, "uv-made")
    assert [f["filename"] for f in page["files"]] == [wheel.name]
    assert page["files"][0]["core-metadata"] is not False

    again = uv_publish(private, wheel)
    assert again.returncode != 0
    said = " ".join(again.stderr.split())  # uv wraps its lines to the terminal's width
    assert f"409 Conflict. Server says: file {wheel.name!r} already exists" in said
    result_twine = twine_upload(private, wheel)
    assert result_twine.returncode != 0
    assert "409 Conflict" in result_twine.stdout + result_twine.stderr


@pytest.mark.slow
def test_twine_with_a_wrong_password_is_refused_and_nothing_is_stored(
    tmp_path: Path, private: ServeProcess
) -> None:
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    result = twine_upload(private, wheel, password="not the password")
    assert result.returncode != 0
    assert "401 Unauthorized" in result.stdout + result.stderr
    assert not (tmp_path / "private" / wheel.name).exists()
    assert not (tmp_path / "private" / "simple" / "team-pkg").exists()
    assert private.logged('"POST /" 401 -: wrong user name or password'), private.log
    assert "not the password" not in private.log


@pytest.mark.slow
def test_a_private_name_is_never_served_from_upstream(
    tmp_path: Path, users_file: Path, start_serve: StartServe, make_venv: Any
) -> None:
    public = tmp_path / "public"
    make_wheel(public, "team-pkg", "9.0")  # someone took the name upstream, with a higher version
    make_wheel(public, "other-pkg", "1.0")
    with IndexServer(public) as upstream:
        upstream.json_pages = True
        proxy = start_serve(
            tmp_path / "private",
            "--upload",
            "--users",
            users_file,
            "--upstream",
            upstream.url,
            "--store",
            tmp_path / "store",
        )
        # Before the team uploads, the name is upstream's (as for any name).
        assert [f["filename"] for f in json_page(proxy, "team-pkg")["files"]] == [
            "team_pkg-9.0-py3-none-any.whl"
        ]
        wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
        result = twine_upload(proxy, wheel)
        assert result.returncode == 0, result.stdout + result.stderr

        page = json_page(proxy, "team-pkg")
        assert [f["filename"] for f in page["files"]] == [wheel.name]
        assert page["versions"] == ["1.0"]
        assert [f["filename"] for f in json_page(proxy, "other-pkg")["files"]] == [
            "other_pkg-1.0-py3-none-any.whl"
        ]
        python = make_venv("pip", with_pip=False)
        argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
        result_pip = run([*argv, "--index-url", proxy.url, "team-pkg"], env=offline_env())
        assert result_pip.ok, result_pip.stdout + result_pip.stderr
        assert installed_versions(python)["team-pkg"] == "1.0"
        assert upstream.count("/files/team_pkg-9.0-py3-none-any.whl") == 0
        assert upstream.count("/files/other_pkg-1.0-py3-none-any.whl") == 0  # not installed


def test_a_reserved_name_is_never_served_from_upstream_even_before_an_upload(
    tmp_path: Path, users_file: Path, start_serve: StartServe, cli: Any
) -> None:
    public = tmp_path / "public"
    make_wheel(public, "secret-pkg", "9.0")  # the name, taken upstream by someone else
    make_wheel(public, "other-pkg", "1.0")
    result = cli("reserve", "Secret_Pkg", "--dir", tmp_path / "private")
    assert (result.exit_code, result.stderr) == (
        0,
        f"reserved secret-pkg on {tmp_path / 'private'}\n",
    )
    with IndexServer(public) as upstream:
        upstream.json_pages = True
        proxy = start_serve(
            tmp_path / "private", "--upload", "--users", users_file,
            "--upstream", upstream.url, "--store", tmp_path / "store",
        )  # fmt: skip
        page = json_page(proxy, "secret-pkg")
        assert (page["files"], page["versions"]) == ([], [])
        assert (
            json_page(proxy, "other-pkg")["files"][0]["filename"]
            == "other_pkg-1.0-py3-none-any.whl"
        )
        wheel = make_wheel(tmp_path / "dists", "secret-pkg", "1.0")
        result_twine = twine_upload(proxy, wheel)
        assert result_twine.returncode == 0, result_twine.stdout + result_twine.stderr
        assert [f["filename"] for f in json_page(proxy, "secret-pkg")["files"]] == [wheel.name]
        assert upstream.count("/simple/secret-pkg/") == 0
        assert upstream.count("/simple/other-pkg/") >= 1  # the counter sees the proxy's asks
