"""``wheelhouse build`` end to end against a loopback index: the files, hashes and manifest."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from tests.support import files
from tests.support.dists import DistFactory
from tests.support.files import entries as snapshot
from tests.support.files import sha256_of
from tests.support.fixtures import Cli
from tests.support.graph import (
    GRAPH_REQUIREMENTS,
    GRAPH_WHEELS,
    assert_manifest_matches_files,
    make_graph,
    pinned_hashes,
    shipped_dists,
    wheels_in,
)
from tests.support.server import IndexServer
from wheelhouse import __version__
from wheelhouse.house.manifest import SCHEMA_VERSION, BuiltFrom, Downloaded, read_manifest

# Every file and folder under a root with its bytes: what a reader can see.
contents = functools.partial(files.snapshot, dirs=True)


@dataclass(frozen=True)
class Project:
    """A working directory with requirements, and the index they are resolved against."""

    root: Path
    index: IndexServer
    dists: dict[str, Path]

    @property
    def out(self) -> Path:
        return self.root / "wh"

    def requirements(self, text: str, name: str = "requirements.in") -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def build(self, cli: Cli, *args: str | os.PathLike[str], out: Path | None = None) -> str:
        """Run ``wheelhouse build`` against the index; it must succeed. Returns its stderr."""
        result = cli(
            "build", "--index-url", self.index.url, "-o", out or self.out, "-j", "2", *args
        )
        assert result.exit_code == 0, result.stderr
        return result.stderr


@pytest.fixture
def project(tmp_path: Path, dists: DistFactory, index_server: IndexServer) -> Project:
    made = make_graph(dists)
    root = tmp_path / "project"
    root.mkdir()
    return Project(root, index_server, made)


def manifest_json(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "wheelhouse.json").read_text(encoding="utf-8"))
    return data


def test_build_ships_the_graph_with_hashes_and_a_full_manifest(project: Project, cli: Cli) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    out = project.out

    assert wheels_in(out) == GRAPH_WHEELS
    assert not any(out.glob("*.tar.gz"))
    assert (out / "requirements.txt").is_file()

    # requirements.txt: each pin with the hash of the file shipped, a built wheel's own hash.
    expected_pins = {
        f"{name}=={version}": {sha256_of(out / filename)}
        for filename in GRAPH_WHEELS
        for name, version, _, _ in [parse_wheel_filename(filename)]
    }
    assert pinned_hashes(out / "requirements.txt") == expected_pins
    sdist_sha = sha256_of(project.dists["srconly-1.0.tar.gz"])
    assert sdist_sha not in (out / "requirements.txt").read_text(encoding="utf-8")

    data = manifest_json(out)
    assert data["schema-version"] == SCHEMA_VERSION
    assert data["generator"] == f"wheelhouse {__version__}"
    assert data["inputs"]["files"] == [
        {"path": str(reqs), "sha256": sha256_of(reqs), "kind": "requirements"}
    ]
    [lock] = data["targets"]
    assert lock["target"] == "host"
    assert {
        (p["name"], p["version"], tuple(p["files"]), p["requested"]) for p in lock["packages"]
    } == {
        ("app", "1.0", ("app-1.0-py3-none-any.whl",), True),
        ("lib", "2.0", ("lib-2.0-py3-none-any.whl",), False),
        ("srconly", "1.0", ("srconly-1.0-py3-none-any.whl",), False),
        ("modern", "2.0", ("modern-2.0-py3-none-any.whl",), False),
        ("speedup", "1.0", ("speedup-1.0-py3-none-any.whl",), False),
    }

    records = {r["filename"]: r for r in data["files"]}
    assert set(records) == GRAPH_WHEELS
    for filename, record in records.items():
        name, version, _, _ = parse_wheel_filename(filename)
        assert record["name"] == name
        assert record["version"] == str(version)
        assert record["kind"] == "wheel"
        assert record["sha256"] == sha256_of(out / filename)
        assert record["size"] == (out / filename).stat().st_size
    assert records["modern-2.0-py3-none-any.whl"]["requires-python"] == ">=3.8"
    assert records["app-1.0-py3-none-any.whl"]["origin"] == {
        "url": f"{project.index.files_url}app-1.0-py3-none-any.whl"
    }
    # A downloaded wheel is the index's file byte for byte.
    assert records["lib-2.0-py3-none-any.whl"]["sha256"] == sha256_of(
        project.dists["lib-2.0-py3-none-any.whl"]
    )
    assert records["srconly-1.0-py3-none-any.whl"]["origin"] == {
        "built-from": {
            "filename": "srconly-1.0.tar.gz",
            "sha256": sdist_sha,
            "url": f"{project.index.files_url}srconly-1.0.tar.gz",
            "backend": "tiny_backend",
        }
    }
    # The model reads back what was written.
    manifest = read_manifest(out)
    assert manifest is not None
    origin = manifest.file("srconly-1.0-py3-none-any.whl").origin
    assert isinstance(origin, BuiltFrom)
    assert (origin.sdist, origin.sdist_sha256, origin.backend) == (
        "srconly-1.0.tar.gz",
        sdist_sha,
        "tiny_backend",
    )
    assert isinstance(manifest.file("app-1.0-py3-none-any.whl").origin, Downloaded)
    assert_manifest_matches_files(out)
    # No staging, lock or aside directory is left beside DIR, nor the lock file.
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".wh.")) == []


def test_keep_sdists_ships_the_sdist_and_pins_its_hash(project: Project, cli: Cli) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs, "--keep-sdists")
    out = project.out

    sdist = project.dists["srconly-1.0.tar.gz"]
    assert shipped_dists(out) == GRAPH_WHEELS | {"srconly-1.0.tar.gz"}
    assert (out / "srconly-1.0.tar.gz").read_bytes() == sdist.read_bytes()
    wheel_sha = sha256_of(out / "srconly-1.0-py3-none-any.whl")
    assert pinned_hashes(out / "requirements.txt")["srconly==1.0"] == {
        wheel_sha,
        sha256_of(sdist),
    }
    manifest = read_manifest(out)
    assert manifest is not None
    record = manifest.file("srconly-1.0.tar.gz")
    assert (record.kind, record.sha256, record.origin) == (
        "sdist",
        sha256_of(sdist),
        Downloaded(f"{project.index.files_url}srconly-1.0.tar.gz"),
    )
    [lock] = manifest.locks
    [entry] = [e for e in lock.entries if e.name == "srconly"]
    assert set(entry.filenames) == {"srconly-1.0-py3-none-any.whl", "srconly-1.0.tar.gz"}
    assert_manifest_matches_files(out)


def hash_pinned(project: Project, pins: dict[str, str]) -> str:
    """A fully pinned requirements file with the --hash of each index file."""
    lines = []
    for spec, filename in pins.items():
        lines.append(f"{spec} \\\n    --hash=sha256:{sha256_of(project.dists[filename])}")
    return "\n".join(lines) + "\n"


FULL_PINS = {
    "app[fast]==1.0": "app-1.0-py3-none-any.whl",
    "lib==2.0": "lib-2.0-py3-none-any.whl",
    "srconly==1.0": "srconly-1.0.tar.gz",
    "modern==2.0": "modern-2.0-py3-none-any.whl",
    "speedup==1.0": "speedup-1.0-py3-none-any.whl",
}


def test_fully_pinned_file_with_hashes_builds_the_same_wheelhouse(
    project: Project, cli: Cli
) -> None:
    reqs = project.requirements(hash_pinned(project, FULL_PINS), "requirements.txt")
    project.build(cli, "-r", reqs)
    out = project.out

    assert wheels_in(out) == GRAPH_WHEELS
    pins = pinned_hashes(out / "requirements.txt")
    # The shipped srconly is the built wheel, so its pin carries the wheel's hash.
    assert pins["srconly==1.0"] == {sha256_of(out / "srconly-1.0-py3-none-any.whl")}
    assert pins["lib==2.0"] == {sha256_of(project.dists["lib-2.0-py3-none-any.whl"])}
    assert_manifest_matches_files(out)


def test_a_pinned_hash_that_does_not_match_fails_and_leaves_dir_alone(
    project: Project, cli: Cli
) -> None:
    project.build(cli, "-r", project.requirements(GRAPH_REQUIREMENTS))
    before = snapshot(project.out)
    text = hash_pinned(project, FULL_PINS).replace(
        sha256_of(project.dists["lib-2.0-py3-none-any.whl"]), "0" * 64
    )
    reqs = project.requirements(text, "requirements.txt")

    result = cli("build", "--index-url", project.index.url, "-o", project.out, "-r", reqs)

    assert result.exit_code == 6, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "lib" in error and "0" * 64 in error, error
    assert "Traceback" not in result.stderr
    assert snapshot(project.out) == before


def test_constraints_are_honoured(project: Project, cli: Cli) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    constraints = project.requirements("lib==1.0\n", "constraints.txt")
    project.build(cli, "-r", reqs, "-c", constraints)
    out = project.out

    assert wheels_in(out) == GRAPH_WHEELS - {"lib-2.0-py3-none-any.whl"} | {
        "lib-1.0-py3-none-any.whl"
    }
    assert "lib==1.0 \\" in (out / "requirements.txt").read_text(encoding="utf-8")
    assert manifest_json(out)["inputs"]["files"] == [
        {"path": str(reqs), "sha256": sha256_of(reqs), "kind": "requirements"},
        {"path": str(constraints), "sha256": sha256_of(constraints), "kind": "constraints"},
    ]
    assert_manifest_matches_files(out)


def test_rebuild_adds_and_drops_only_its_own_files(project: Project, cli: Cli) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    out = project.out
    (out / "NOTES.txt").write_text("how we deploy\n", encoding="utf-8")
    (out / "notes").mkdir()
    (out / "notes" / "more.txt").write_text("and why\n", encoding="utf-8")
    assert (out / "speedup-1.0-py3-none-any.whl.metadata").is_file()

    # Without the extra, speedup goes; unrelated comes.
    reqs.write_text("app\nunrelated\n", encoding="utf-8")
    project.build(cli, "-r", reqs)

    expected = GRAPH_WHEELS - {"speedup-1.0-py3-none-any.whl"} | {"unrelated-1.0-py3-none-any.whl"}
    assert wheels_in(out) == expected
    assert not (out / "speedup-1.0-py3-none-any.whl.metadata").exists()
    assert "speedup" not in (out / "requirements.txt").read_text(encoding="utf-8")
    assert "unrelated==1.0 \\" in (out / "requirements.txt").read_text(encoding="utf-8")
    assert (out / "NOTES.txt").read_text(encoding="utf-8") == "how we deploy\n"
    assert (out / "notes" / "more.txt").read_text(encoding="utf-8") == "and why\n"
    assert_manifest_matches_files(out)

    # And back again: the user's files are still carried over.
    reqs.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    project.build(cli, "-r", reqs)
    assert wheels_in(out) == GRAPH_WHEELS
    assert (out / "NOTES.txt").read_text(encoding="utf-8") == "how we deploy\n"
    assert (out / "notes" / "more.txt").read_text(encoding="utf-8") == "and why\n"
    assert_manifest_matches_files(out)


def test_noop_rebuild_asks_the_index_nothing_and_touches_nothing(
    project: Project, cli: Cli
) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    (project.out / "NOTES.txt").write_text("mine\n", encoding="utf-8")
    requests = list(project.index.requests)
    before = snapshot(project.out)

    stderr = project.build(cli, "-r", reqs)

    assert project.index.requests == requests
    assert snapshot(project.out) == before
    assert f"{project.out}: up to date ({len(GRAPH_WHEELS)} files)" in stderr.splitlines()


def test_rebuild_after_an_input_changes_is_not_a_noop(project: Project, cli: Cli) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    reqs.write_text(GRAPH_REQUIREMENTS + "# a comment changes the file's hash\n", encoding="utf-8")
    requests = len(project.index.requests)

    stderr = project.build(cli, "-r", reqs)

    assert len(project.index.requests) > requests
    assert "up to date" not in stderr
    assert manifest_json(project.out)["inputs"]["files"][0]["sha256"] == sha256_of(reqs)


def test_refresh_resolves_again_and_picks_up_new_releases(
    project: Project, cli: Cli, dists: DistFactory
) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    dists.wheel("lib", "3.0")

    # Nothing the build depends on changed here, so without --refresh it is a no-op.
    project.build(cli, "-r", reqs)
    assert "lib-2.0-py3-none-any.whl" in wheels_in(project.out)

    requests = len(project.index.requests)
    stderr = project.build(cli, "-r", reqs, "--refresh")

    assert "/simple/lib/" in project.index.requests[requests:]
    assert "up to date" not in stderr
    assert wheels_in(project.out) == GRAPH_WHEELS - {"lib-2.0-py3-none-any.whl"} | {
        "lib-3.0-py3-none-any.whl"
    }
    assert_manifest_matches_files(project.out)


def file_requests(index: IndexServer, start: int = 0) -> list[str]:
    return sorted(p for p in index.requests[start:] if p.startswith("/files/"))


def test_cache_is_reused_by_a_build_into_another_dir(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    cache = tmp_path / "wh-cache"  # WHEELHOUSE_CACHE_DIR, set by the autouse fixture
    assert os.environ["WHEELHOUSE_CACHE_DIR"] == str(cache)
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    first = file_requests(project.index)
    index_files = {"srconly-1.0.tar.gz"} | (GRAPH_WHEELS - {"srconly-1.0-py3-none-any.whl"})
    for filename in index_files:
        digest = sha256_of(project.dists[filename])
        assert (cache / "files" / digest[:2] / digest / filename).is_file(), filename

    start = len(project.index.requests)
    stderr = project.build(cli, "-r", reqs, out=tmp_path / "second")

    # The first build reads each file once (pip's resolver reads the files the prefetcher
    # downloaded for it); the second, with no earlier wheelhouse in that directory, still
    # downloads nothing: the files pip asks for are given to it from the cache, by hash.
    assert first == sorted(f"/files/{f}" for f in index_files)
    assert file_requests(project.index, start) == []
    assert (f"{tmp_path / 'second'}: {len(GRAPH_WHEELS)} files") in stderr
    assert "(0 downloaded, 5 from cache, 0 built from sdists)" in stderr
    # srconly's wheel comes from the first build: nothing is said to be built.
    assert "from sdists\n" not in stderr.replace("built from sdists)", ""), stderr
    assert contents(tmp_path / "second").keys() == contents(project.out).keys()
    for filename in GRAPH_WHEELS:
        assert sha256_of(tmp_path / "second" / filename) == sha256_of(project.out / filename)


def test_default_output_is_dot_wheelhouse(
    project: Project, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    monkeypatch.chdir(project.root)

    result = cli("build", "--index-url", project.index.url, "-r", reqs)

    assert result.exit_code == 0, result.stderr
    assert wheels_in(project.root / "wheelhouse") == GRAPH_WHEELS
    assert not (project.root / "wheelhouse-out").exists()


def test_default_output_avoids_a_wheelhouse_dir_that_holds_other_files(
    project: Project, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    package = project.root / "wheelhouse"
    package.mkdir()
    (package / "__init__.py").write_text("# someone's package\n", encoding="utf-8")
    before = snapshot(package)
    monkeypatch.chdir(project.root)

    result = cli("build", "--index-url", project.index.url, "-r", reqs)

    assert result.exit_code == 0, result.stderr
    assert wheels_in(project.root / "wheelhouse-out") == GRAPH_WHEELS
    assert snapshot(package) == before


def test_the_users_pip_configuration_is_honoured_online(
    project: Project, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {project.index.url}\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    reqs = project.requirements(GRAPH_REQUIREMENTS)

    result = cli("build", "-o", project.out, "-r", reqs)

    assert result.exit_code == 0, result.stderr
    assert wheels_in(project.out) == GRAPH_WHEELS
    assert "/simple/app/" in project.index.requests
    manifest = read_manifest(project.out)
    assert manifest is not None
    assert manifest.file("lib-2.0-py3-none-any.whl").origin == Downloaded(
        f"{project.index.files_url}lib-2.0-py3-none-any.whl"
    )


def test_switching_keep_sdists_rebuilds(project: Project, cli: Cli) -> None:
    reqs = project.requirements(GRAPH_REQUIREMENTS)
    project.build(cli, "-r", reqs)
    project.build(cli, "-r", reqs, "--keep-sdists")
    assert shipped_dists(project.out) == GRAPH_WHEELS | {"srconly-1.0.tar.gz"}

    project.build(cli, "-r", reqs)

    assert shipped_dists(project.out) == GRAPH_WHEELS
    assert_manifest_matches_files(project.out)


def test_pinned_sdist_with_dynamic_metadata_is_built_once_without_a_resolver(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    # PKG-INFO 2.1 does not promise its Requires-Dist: only a build tells the dependencies.
    dists.sdist("oldstyle", "1.0", requires=["helper>=2"])
    dists.wheel("helper", "2.0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("oldstyle==1.0\nhelper==2.0\n", encoding="utf-8")
    out = tmp_path / "house"

    result = cli("build", "-r", requirements, "-o", out, "--index-url", index_server.url)

    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert not [line for line in lines if "resolving with" in line], result.stderr
    assert lines.count("wheelhouse: building oldstyle-1.0.tar.gz") == 1
    assert sorted(p.name for p in out.glob("*.whl")) == [
        "helper-2.0-py3-none-any.whl",
        "oldstyle-1.0-py3-none-any.whl",
    ]
    # Built while the pins were checked, then found in the cache: still this run's build.
    assert lines[-1].endswith("(2 downloaded, 0 from cache, 1 built from sdists)"), lines[-1]


def test_pinned_sdist_whose_built_dependencies_are_not_pinned_falls_back_to_pip(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    dists.sdist("oldstyle", "1.0", requires=["helper>=2"])
    dists.wheel("helper", "2.0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("oldstyle==1.0\n", encoding="utf-8")
    out = tmp_path / "house"

    result = cli("build", "-v", "-r", requirements, "-o", out, "--index-url", index_server.url)

    assert result.exit_code == 0, result.stderr
    assert "oldstyle 1.0 requires helper>=2, which is not pinned" in result.stderr
    pip = importlib.metadata.version("pip")
    assert f"wheelhouse: resolving with pip {pip}" in result.stderr.splitlines()
    assert (out / "helper-2.0-py3-none-any.whl").is_file()
