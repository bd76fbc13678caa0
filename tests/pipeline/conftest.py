"""Fixtures for the build tests: the real lock tools, run against the loopback index."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.support.locktools import LockTool, _tool_env


@pytest.fixture
def lock_tool(tmp_path: Path) -> LockTool:
    """``lock_tool(argv, cwd=...)``: run a lock tool (uv, pip) isolated from the machine."""
    home = tmp_path / "tool-home"
    home.mkdir(exist_ok=True)

    def run(
        argv: Sequence[str | os.PathLike[str]], *, cwd: Path
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv],
            cwd=cwd,
            env=_tool_env(home),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )

    return run
