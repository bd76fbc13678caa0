"""Virtual environments a test or a benchmark makes, and what is installed in them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.support.capabilities import find_uv
from tests.support.process import run_command


def venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def make_venv(venv: Path, *, with_pip: bool = True, uv: bool = False) -> Path:
    """A new venv at ``venv`` for the running Python, and its python. ``python -m venv`` (with
    the pip it bundles, older than the newest, unless ``with_pip`` is false), or uv's (no pip,
    and much faster). Raises CalledProcessError, output included, when it cannot be made."""
    if uv:
        argv = [*find_uv(), "venv", "-q", "--python", sys.executable, str(venv)]
    else:
        argv = [sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(venv)]
    run_command(argv).check_returncode()
    return venv_python(venv)


def installed_versions(python: Path) -> dict[str, str]:
    """Every distribution in ``python``'s environment but the venv's own pip and setuptools,
    normalized name -> version, read by that interpreter (isolated, offline)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "json.dump({d.metadata['Name']: d.version for d in m.distributions()}, sys.stdout)"
    )
    proc = run_command([python, "-I", "-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr
    found: dict[str, str] = json.loads(proc.stdout)
    return {
        canonicalize_name(name): version
        for name, version in found.items()
        if canonicalize_name(name) not in {"pip", "setuptools"}
    }
