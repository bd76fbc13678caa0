"""``wheelhouse build -r`` with a pyproject.toml, local projects, direct URLs and VCS URLs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.cli import error_line
from tests.support.dists import DistFactory, make_sdist
from tests.support.fixtures import Cli, MakeVenv, Offline
from tests.support.server import IndexServer
from wheelhouse.house.manifest import BuiltFrom, Downloaded, Manifest, read_manifest

PYPROJECT = """\
[project]
name = "app"
version = "0.1.0"
dependencies = ["purepkg==1.0"]

[project.optional-dependencies]
fast = ["extrapkg"]

[dependency-groups]
test = ["devtool"]
dev = [{include-group = "test"}, "lintpkg"]
"""


@pytest.fixture
def index(dists: DistFactory, index_server: IndexServer) -> IndexServer:
    dists.wheel("purepkg", "1.0", requires=["helper>=1"])
    for name in ("helper", "extrapkg", "devtool", "lintpkg"):
        dists.wheel(name, "1.0")
    return index_server


def names(manifest: Manifest | None) -> set[str]:
    assert manifest is not None
    (lock,) = manifest.locks
    return {entry.name for entry in lock.entries}


# -- pyproject.toml ------------------------------------------------------------------------------


def test_a_pyproject_gives_its_dependencies_extras_and_groups(
    cli: Cli, tmp_path: Path, index: IndexServer
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    out = tmp_path / "house"
    plain = cli("build", "-r", pyproject, "-o", out, "-i", index.url)
    assert plain.exit_code == 0, plain.stderr
    assert names(read_manifest(out)) == {"purepkg", "helper"}
    full = cli("build", "-r", pyproject, "-o", out, "-i", index.url, "--extra", "fast",
               "--group", "dev", "--json")  # fmt: skip
    assert full.exit_code == 0, full.stderr
    assert json.loads(full.stdout)["noop"] is False  # the selection is part of the inputs
    assert names(read_manifest(out)) == {"purepkg", "helper", "extrapkg", "devtool", "lintpkg"}
    manifest = read_manifest(out)
    assert manifest is not None
    assert [f.path for f in manifest.inputs.files] == [str(pyproject)]


def test_an_unknown_extra_or_group_is_exit_3(cli: Cli, tmp_path: Path, index: IndexServer) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    result = cli("build", "-r", pyproject, "-o", tmp_path / "h", "--extra", "slow")
    assert result.exit_code == 3, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(pyproject)!r} has no extra 'slow' (it has: fast)"
    )
    result = cli("build", "-r", pyproject, "-o", tmp_path / "h", "--group", "docs")
    assert result.exit_code == 3, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(pyproject)!r} has no dependency group 'docs' (it has: dev, test)"
    )


def test_extra_without_a_pyproject_or_lock_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("purepkg\n")
    result = cli("build", "-r", requirements, "-o", tmp_path / "h", "--extra", "fast")
    assert result.exit_code == 2, result.stderr
    assert error_line(result.stderr) == (
        "error: --extra and --group select from a pyproject.toml or a lock file, and none was given"
    )


# -- local projects ------------------------------------------------------------------------------


def make_local_project(root: Path, requires: list[str]) -> Path:
    """A project directory (pyproject.toml and an in-tree PEP 517 backend), as in a checkout."""
    sdist = make_sdist(root / "sdist", "myapp", "2.0", requires=requires)
    with tarfile.open(sdist) as archive:
        archive.extractall(root, filter="data")
    return root / "myapp-2.0"


def test_a_local_project_is_built_and_its_dependencies_resolved(
    cli: Cli, tmp_path: Path, index: IndexServer, make_venv: MakeVenv, offline: Offline
) -> None:
    project = make_local_project(tmp_path / "src", ["purepkg==1.0"])
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{project}\n")
    out = tmp_path / "house"
    result = cli("build", "-r", requirements, "-o", out, "-i", index.url)
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert names(manifest) == {"myapp", "purepkg", "helper"}
    assert manifest is not None
    record = manifest.file("myapp-2.0-py3-none-any.whl")
    assert isinstance(record.origin, BuiltFrom)
    assert (record.origin.sdist_url, record.origin.source) == (project.as_uri(), "local-project")
    assert manifest.file("helper-1.0-py3-none-any.whl").origin == Downloaded(
        index.files_url + "helper-1.0-py3-none-any.whl"
    )
    # A directory has no digest: the next build is never taken as up to date.
    again = cli("build", "-r", requirements, "-o", out, "-i", index.url, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["noop"] is False
    python = make_venv(with_pip=False)
    proc = subprocess.run(
        offline([sys.executable, "-m", "pip", "--python", python, "install", "--no-index",
                 "--find-links", out, "--require-hashes", "-r", out / "requirements.txt"]),
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


# -- direct URLs and VCS -------------------------------------------------------------------------


def test_a_direct_url_is_checked_against_its_hash(
    cli: Cli, tmp_path: Path, index: IndexServer, dists: DistFactory
) -> None:
    wheel = "helper-1.0-py3-none-any.whl"
    digest = hashlib.sha256((dists.root / wheel).read_bytes()).hexdigest()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"helper @ {index.files_url}{wheel}#sha256={digest}\n")
    out = tmp_path / "house"
    result = cli("build", "-r", requirements, "-o", out, "-i", index.url)
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest is not None
    assert manifest.file(wheel).origin == Downloaded(index.files_url + wheel, "direct-url")

    wrong = "0" * 64
    requirements.write_text(f"helper @ {index.files_url}{wheel}#sha256={wrong}\n")
    result = cli("build", "-r", requirements, "-o", tmp_path / "other", "-i", index.url)
    assert result.exit_code == 6, result.stderr
    assert f"expected sha256 {wrong}, got {digest}" in error_line(result.stderr)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    "line",
    ["purepkg @ git+https://example.invalid/purepkg.git@v1", "git+https://example.invalid/p.git"],
)
def test_a_vcs_requirement_is_exit_3_naming_it(cli: Cli, tmp_path: Path, line: str) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"helper\n{line}\n")
    result = cli("build", "-r", requirements, "-o", tmp_path / "house")
    assert result.exit_code == 3, result.stderr
    url = line.split(" @ ")[-1]
    assert error_line(result.stderr) == (
        f"error: {requirements}:2: {line!r} comes from version control ({url}), which a "
        "wheelhouse cannot pin by hash"
    )
    assert "hint: build a wheel or sdist of it (or publish a release) and require that" in (
        result.stderr
    )


def test_a_vcs_package_in_a_lock_is_exit_3_naming_it(cli: Cli, tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n'
        '[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { virtual = "." }\n'
        'dependencies = [{ name = "tool" }]\n\n'
        '[[package]]\nname = "tool"\nversion = "1.0"\n'
        'source = { git = "https://example.invalid/tool.git?rev=v1#abc123" }\n'
    )
    result = cli("build", "-r", lock, "-o", tmp_path / "house")
    assert result.exit_code == 3, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(lock)!r} locks tool (git+https://example.invalid/tool.git?rev=v1#abc123) "
        "from version control, which a wheelhouse cannot pin by hash"
    )
