"""Yank and un-yank (PEP 592) of one's own upload, through the API and the command line; the
pages say it, and pip honours it."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.credentials import PASSWORD, USER, basic
from tests.support.dists import make_wheel
from tests.support.process import ServeProcess
from tests.support.upload import encode_form, post, snapshot, upload_fields, users_cli
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run


def yank_cli(
    *args: str | os.PathLike[str], password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wheelhouse", "yank", *map(str, args)],
        env={**os.environ, "WHEELHOUSE_PASSWORD": password},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pages(root: Path, project: str) -> tuple[dict[str, Any], str]:
    page = root / "simple" / project
    return json.loads((page / "index.json").read_text()), (page / "index.html").read_text()


@pytest.fixture
def uploaded(tmp_path: Path, private: ServeProcess) -> Path:
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    assert post(private, encode_form(upload_fields(wheel)), auth=basic())[::2] == (200, "OK\n")
    return wheel


@pytest.mark.slow
def test_yank_from_the_command_line_then_pip_skips_it_unless_pinned(
    tmp_path: Path, private: ServeProcess, uploaded: Path, make_venv: Any
) -> None:
    result = yank_cli(
        uploaded.name, "--url", private.base, "--user", USER, "--reason", "broken <build>"
    )
    assert (result.returncode, result.stderr) == (0, f"yanked {uploaded.name}\n")
    data, html_page = _pages(tmp_path / "private", "team-pkg")
    assert data["files"][0]["yanked"] == "broken <build>"
    assert 'data-yanked="broken &lt;build&gt;"' in html_page
    assert PASSWORD not in private.log

    python = make_venv("pip", with_pip=False)
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    unpinned = run([*argv, "--index-url", private.url, "team-pkg"], env=offline_env())
    assert not unpinned.ok
    pinned = run([*argv, "--index-url", private.url, "team-pkg==1.0"], env=offline_env())
    assert pinned.ok, pinned.stdout + pinned.stderr
    assert "broken <build>" in pinned.stdout + pinned.stderr  # pip warns with the reason

    undone = yank_cli(uploaded.name, "--url", private.base, "--user", USER, "--undo")
    assert (undone.returncode, undone.stderr) == (0, f"un-yanked {uploaded.name}\n")
    data, html_page = _pages(tmp_path / "private", "team-pkg")
    assert "yanked" not in data["files"][0]
    assert "data-yanked" not in html_page


def test_another_user_cannot_yank_my_upload(
    tmp_path: Path, private: ServeProcess, uploaded: Path, users_file: Path
) -> None:
    added = users_cli("add", "bob", "--users", users_file, "--password-stdin", stdin="bobpw\n")
    assert added.returncode == 0, added.stderr
    before = snapshot(tmp_path / "private")
    result = yank_cli(uploaded.name, "--url", private.base, "--user", "bob", password="bobpw")
    assert result.returncode == 1
    line = f"{uploaded.name!r} was not uploaded by 'bob': only its uploader yanks it"
    assert f"error: {private.base} answered 403: {line}" in result.stderr
    assert snapshot(tmp_path / "private") == before


@pytest.mark.parametrize(
    ("body", "status", "line"),
    [
        (
            b'{"filename": "nope-1.0.tar.gz", "yanked": true}',
            404,
            "no file 'nope-1.0.tar.gz' on this index",
        ),
        (
            b'{"filename": "../x.whl", "yanked": true}',
            400,
            "the file name '../x.whl' is not a plain file name",
        ),
        (
            b"not json",
            400,
            'the body must be JSON {"filename": ..., "yanked": true|false, "reason": ...}',
        ),
    ],
)
def test_a_bad_yank_request_changes_nothing(
    tmp_path: Path, private: ServeProcess, uploaded: Path, body: bytes, status: int, line: str
) -> None:
    before = snapshot(tmp_path / "private")
    conn = http.client.HTTPConnection("127.0.0.1", private.port, timeout=30)
    try:
        conn.request("POST", "/-/yank", body=body, headers={"Authorization": basic()})
        response = conn.getresponse()
        assert (response.status, response.read().decode()) == (status, line + "\n")
    finally:
        conn.close()
    assert snapshot(tmp_path / "private") == before


def test_yank_at_the_directory_needs_no_server(tmp_path: Path, cli: Any, dists: Any) -> None:
    from wheelhouse.upload.checks import CheckedUpload
    from wheelhouse.upload.store import PrivateIndex

    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    index = PrivateIndex(tmp_path / "private")
    index.add(
        CheckedUpload(
            "team-pkg", "1.0", wheel.name, "wheel",  # type: ignore[arg-type]
            hashlib.sha256(wheel.read_bytes()).hexdigest(), wheel.stat().st_size, None, None,
        ),
        wheel,
    )  # fmt: skip
    result = cli("yank", wheel.name, "--dir", tmp_path / "private", "--reason", "")
    assert (result.exit_code, result.stderr) == (0, f"yanked {wheel.name}\n")
    data, html_page = _pages(tmp_path / "private", "team-pkg")
    assert data["files"][0]["yanked"] is True  # PEP 691: true when no reason is given
    assert 'data-yanked=""' in html_page
