"""What a test needs from the machine: skip where it is missing, fail under ``CI=true``.

A test that needs a capability the machine lacks (network namespaces, uv, an old Python, a
server binary) cannot prove anything there; a laptop may skip it, CI may not: a run that
skipped the offline proof must not pass as if it had made it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from typing import NoReturn

__all__ = ["find_uv", "in_ci", "missing", "need_uv", "require"]


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as GitHub Actions, GitLab and most others set)."""
    return os.environ.get("CI", "").lower() == "true"


def missing(capability: str, reason: str) -> NoReturn:
    """The test cannot run here: skip it, or fail it under ``CI=true``."""
    import pytest  # here: the benchmarks import this package without pytest installed

    message = f"needs {capability}: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing capability fails the run)", pytrace=False)
    pytest.skip(message)


def require(capability: str, reason: str | None) -> None:
    """``missing(capability, reason)`` unless ``reason`` is None (the capability is there)."""
    if reason is not None:
        missing(capability, reason)


def need_uv(why: str = "--resolver uv needs uv") -> None:
    """``missing("uv", ...)`` where wheelhouse itself finds no uv; ``why`` says who needs it."""
    from wheelhouse._base._uv import find_uv
    from wheelhouse.errors import WheelhouseError

    try:
        find_uv()
    except WheelhouseError as exc:
        missing("uv", f"{why}: {exc.message}")


def find_uv() -> list[str]:
    """The argv that runs uv (the ``uv`` package of the test environment first, else PATH)."""
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    found = shutil.which("uv")
    if found is None:
        missing("uv", "uv is neither installed in the test environment nor on PATH")
    return [found]
