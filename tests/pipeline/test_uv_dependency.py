"""uv is a dependency: a multi-target build works with no uv on PATH (issue 10)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.dists import DistFactory
from tests.support.server import IndexServer
from tests.support.targets import (
    AARCH64,
    EXPECTED,
    LOOSE,
    TARGETS,
    WINDOWS,
    lock_files,
    make_project,
)
from wheelhouse.house.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]


def test_uv_is_a_regular_dependency_without_a_marker() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    (uv,) = [r for r in requirements if r.name == "uv"]
    assert uv.marker is None and not uv.extras
    # The old extra stays installable and adds nothing.
    assert project["optional-dependencies"]["uv"] == []


def _path_without_uv() -> str:
    kept = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "uv").exists()
    ]
    return os.pathsep.join(kept)


@pytest.mark.slow
def test_three_targets_build_with_no_uv_on_path(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    """Loose input: pip resolves the host, uv (found through its package) the two foreign
    targets, and the pure sdist is built in an environment uv makes."""
    make_project(dists)
    requirements = tmp_path / "requirements.in"
    requirements.write_text(LOOSE, encoding="utf-8")
    out = tmp_path / "house"
    env = {**os.environ, "PATH": _path_without_uv()}
    probe = subprocess.run(["sh", "-c", "command -v uv"], env=env, capture_output=True, check=False)
    assert probe.returncode != 0, probe.stdout  # no uv on this PATH
    argv = [sys.executable, "-m", "wheelhouse", "build", "-r", str(requirements), "-o", str(out)]
    argv += ["-i", index_server.url]
    for target in TARGETS:
        argv += ["--target", target]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for target in (AARCH64, WINDOWS):
        assert f"wheelhouse: resolving with uv for {target}" in proc.stderr.splitlines()
    manifest = read_manifest(out)
    for target, expected in EXPECTED.items():
        assert lock_files(manifest, target) == {name: (f,) for name, f in expected.items()}
