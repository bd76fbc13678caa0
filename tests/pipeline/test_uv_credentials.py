"""Credentials kept in pip's configuration never reach uv's command line, nor the -v log.

Every local user reads a process's arguments (``ps``, ``/proc/PID/cmdline``). The index below
needs Basic authentication; its password is in ``PIP_INDEX_URL`` or pip.conf only. uv is
wrapped by a shim (a ``uv`` package first on ``PYTHONPATH``, whose ``find_uv_bin`` names a
script) that records each command line it is started with, then runs the real uv.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.capabilities import need_uv
from tests.support.credentials import basic
from tests.support.dists import DistFactory
from tests.support.graph import GRAPH_REQUIREMENTS, make_graph
from tests.support.server import Answer, IndexServer
from tests.support.targets import AARCH64, make_project
from wheelhouse._base._uv import find_uv

USER, PASSWORD = "alice-q7", "s3cret-Pa55-xyzzy"


def _require_auth(path: str, headers: Mapping[str, str]) -> Answer | None:
    if headers.get("Authorization") == basic(USER, PASSWORD):
        return None
    return 401, {"WWW-Authenticate": 'Basic realm="private"'}, b"credentials needed\n"


def _uv_shim(tmp_path: Path) -> tuple[Path, Path]:
    """A PYTHONPATH entry whose ``uv`` package finds a recording uv; and the record."""
    real = find_uv()
    record = tmp_path / "uv-argv.log"
    script = tmp_path / "shim-bin" / "uv"
    script.parent.mkdir()
    # One line per run: its arguments, NUL-separated, as /proc/PID/cmdline shows them.
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\0" "$0" "$@" >> "{record}"\necho >> "{record}"\n'
        f'exec "{real}" "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    package = tmp_path / "shim-path" / "uv"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f"def find_uv_bin():\n    return {str(script)!r}\n", encoding="utf-8"
    )
    return package.parent, record


def _build(
    tmp_path: Path, index: IndexServer, requirements: Path, *args: str, conf: bool
) -> tuple[subprocess.CompletedProcess[str], Path]:
    shim_path, record = _uv_shim(tmp_path)
    url = index.url.replace("://", f"://{USER}:{PASSWORD}@", 1)
    env = {**os.environ, "PYTHONPATH": str(shim_path)}
    if conf:
        pip_conf = tmp_path / "pip.conf"
        pip_conf.write_text(f"[global]\nindex-url = {url}\n", encoding="utf-8")
        env["PIP_CONFIG_FILE"] = str(pip_conf)
    else:
        env["PIP_INDEX_URL"] = url
    argv = [sys.executable, "-m", "wheelhouse", "build", "-v", "-r", str(requirements)]
    argv += ["-o", str(tmp_path / "house"), *args]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=300)
    return proc, record


def _runs(record: Path) -> list[list[str]]:
    lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
    return [line.rstrip("\0").split("\0") for line in lines if line]


def test_resolver_uv_gets_the_index_password_from_its_environment_not_argv(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    need_uv()
    make_graph(dists)
    index_server.intercept(_require_auth)
    requirements = tmp_path / "requirements.in"
    requirements.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")

    proc, record = _build(tmp_path, index_server, requirements, "--resolver", "uv", conf=False)

    assert proc.returncode == 0, proc.stderr
    runs = _runs(record)
    # uv resolved (and, through the shim, nothing else ran uv unseen), with the index it was
    # given: its requests carried the password.
    assert any(run[1:3] == ["pip", "compile"] for run in runs), runs
    assert any(h.get("Authorization") == basic(USER, PASSWORD) for _, h in index_server.received)
    for run in runs:
        assert not any(PASSWORD in arg for arg in run), run
    # -v logs each command line, with any URL's credentials masked, and never the environment.
    assert "running: " in proc.stderr
    assert PASSWORD not in proc.stderr
    assert USER not in proc.stderr


@pytest.mark.slow
def test_a_foreign_target_gets_the_password_from_pip_conf_through_the_environment(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    need_uv()
    make_project(dists)
    index_server.intercept(_require_auth)
    requirements = tmp_path / "requirements.in"
    requirements.write_text("purepkg\nsrcpure\n", encoding="utf-8")

    proc, record = _build(tmp_path, index_server, requirements, "--target", AARCH64, conf=True)

    assert proc.returncode == 0, proc.stderr
    runs = _runs(record)
    assert any(run[1:3] == ["pip", "compile"] for run in runs), runs
    for run in runs:
        assert not any(PASSWORD in arg for arg in run), run
    assert PASSWORD not in proc.stderr
