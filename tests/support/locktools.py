"""The lock tools the lock tests drive (pip, uv), found or failed on, in a home of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

LockTool = Callable[..., "subprocess.CompletedProcess[str]"]


def _tool_env(home: Path) -> dict[str, str]:
    """An environment for a lock tool with no configuration of the machine's: caches and
    config under ``home``, no PIP_/UV_/POETRY_/PDM_/PIPENV_ variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "POETRY_", "PDM_", "PIPENV_", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        PIP_CONFIG_FILE=os.devnull,
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(home / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        NO_COLOR="1",
    )
    return env


def newest_pip() -> list[str]:
    """The test environment's pip (``pip lock`` needs pip >= 25.1)."""
    return [sys.executable, "-m", "pip"]


def which_or_fail(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed")
    return found
