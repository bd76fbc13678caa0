"""The lock tools the lock tests drive (pip, uv), found or failed on, in a home of their own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest

LockTool = Callable[..., "subprocess.CompletedProcess[str]"]


def newest_pip() -> list[str]:
    """The test environment's pip (``pip lock`` needs pip >= 25.1)."""
    return [sys.executable, "-m", "pip"]


def which_or_fail(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed")
    return found
