"""--keep-sdists ships the sdists and what they need to be built again offline (pip#7863)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import Cli, Offline
from tests.support.server import IndexServer


def _build(cli: Cli, tmp_path: Path, index: IndexServer, *extra: str) -> Path:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==1.0\n", encoding="utf-8")
    out = tmp_path / "house"
    result = cli("build", "-r", requirements, "-o", out, "--index-url", index.url, *extra)
    assert result.exit_code == 0, result.stderr
    return out


def test_build_requirements_are_shipped_and_recorded(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    dists.sdist("alpha", "1.0", build_requires=["buildhelper>=2"])
    dists.wheel("buildhelper", "2.1")
    dists.wheel("buildhelper", "1.0")

    out = _build(cli, tmp_path, index_server, "--keep-sdists")

    names = sorted(p.name for p in out.iterdir() if p.suffix in (".whl", ".gz"))
    assert names == [
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.0.tar.gz",
        "buildhelper-2.1-py3-none-any.whl",
    ]
    manifest = json.loads((out / "wheelhouse.json").read_text(encoding="utf-8"))
    [build_lock] = manifest["build-requirements"]
    assert build_lock["target"] == "host"
    assert [(p["name"], p["version"]) for p in build_lock["packages"]] == [("buildhelper", "2.1")]
    # A build requirement is shipped, not installed: it stays out of the install lock.
    assert "buildhelper" not in (out / "requirements.txt").read_text(encoding="utf-8")


def test_without_keep_sdists_no_build_requirement_is_shipped(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    dists.sdist("alpha", "1.0", build_requires=["buildhelper>=2"])
    dists.wheel("buildhelper", "2.1")

    out = _build(cli, tmp_path, index_server)

    assert not list(out.glob("buildhelper-*"))
    assert not list(out.glob("*.tar.gz"))
    manifest = json.loads((out / "wheelhouse.json").read_text(encoding="utf-8"))
    assert manifest["build-requirements"] == []


@pytest.mark.slow
def test_shipped_sdist_builds_again_with_no_network(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path, offline: Offline
) -> None:
    dists.sdist("alpha", "1.0", build_requires=["buildhelper>=2"])
    dists.wheel("buildhelper", "2.1")
    out = _build(cli, tmp_path, index_server, "--keep-sdists")

    def pip_wheel(find_links: Path) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pip", "wheel", "--no-index", "--no-deps"]
        argv += ["--find-links", str(find_links), "-w", str(tmp_path / "rebuilt")]
        argv.append(str(find_links / "alpha-1.0.tar.gz"))
        return subprocess.run(offline(argv), capture_output=True, text=True, check=False)

    rebuilt = pip_wheel(out)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (tmp_path / "rebuilt" / "alpha-1.0-py3-none-any.whl").is_file()

    # Without the shipped build requirement the same offline build cannot work.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "alpha-1.0.tar.gz").write_bytes((out / "alpha-1.0.tar.gz").read_bytes())
    failed = pip_wheel(bare)
    assert failed.returncode == 1, failed.stderr
    assert "No matching distribution found for buildhelper>=2" in failed.stderr
