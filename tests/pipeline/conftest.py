"""Fixtures for the build tests: the real lock tools, run against the loopback index."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.graph import GRAPH_REQUIREMENTS, make_graph
from tests.support.locktools import LockTool
from tests.support.process import clean_env, run_command


@pytest.fixture
def lock_tool(tmp_path: Path) -> LockTool:
    """``lock_tool(argv, cwd=...)``: run a lock tool (uv, pip) isolated from the machine."""
    home = tmp_path / "tool-home"
    home.mkdir(exist_ok=True)

    def run(
        argv: Sequence[str | os.PathLike[str]], *, cwd: Path
    ) -> subprocess.CompletedProcess[str]:
        return run_command(argv, cwd=cwd, env=clean_env(home))

    return run


# The loopback graph of tests.support.graph as requirements (test_loose, test_speedups).
@pytest.fixture
def graph(dists: DistFactory, tmp_path: Path) -> Path:
    make_graph(dists)
    requirements = tmp_path / "requirements.in"
    requirements.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    return requirements


@pytest.fixture
def uv_graph(dists: DistFactory, tmp_path: Path) -> Path:
    """The graph without ``modern``, whose 3.0 wants Python < 3: uv ignores upper bounds of
    Requires-Python, picks it, and the metadata check then sends the build to pip."""
    dists.wheel("app", "1.0", requires=["lib>=1", "srconly"], extras={"fast": ["speedup"]})
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "2.0")
    dists.sdist("srconly", "1.0")
    dists.wheel("speedup", "1.0")
    requirements = tmp_path / "requirements.in"
    requirements.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    return requirements
