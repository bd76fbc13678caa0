"""`wheelhouse mirror`: what is kept, that every byte is verified, reruns, kills, real clients."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.dists import DistFactory
from tests.support.files import snapshot
from tests.support.process import clean_env, run_command, wait_until, wheelhouse_argv
from tests.support.proxy import linked_files
from tests.support.server import IndexServer
from wheelhouse._base._pip import offline_env
from wheelhouse.errors import ExitCode
from wheelhouse.house.manifest import Inputs, Manifest, read_manifest

MANYLINUX = "beta-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
WINDOWS = "beta-1.0-cp312-cp312-win_amd64.whl"
MUSL = "beta-1.0-cp311-cp311-musllinux_1_2_x86_64.whl"
AARCH64 = "beta-1.0-cp312-cp312-manylinux_2_28_aarch64.whl"


@pytest.fixture
def project_set(dists: DistFactory) -> DistFactory:
    """alpha (3 releases, one a pre-release, an sdist, one wheel yanked), beta (platform
    wheels only), gamma (pure, needs Python >= 3.99 on one release)."""
    dists.wheel("alpha", "1.0")
    dists.wheel("alpha", "2.0", requires=["beta"])
    dists.sdist("alpha", "2.0", requires=["beta"])
    dists.wheel("alpha", "3.0rc1")
    for tag in (
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp312-cp312-win_amd64",
        "cp311-cp311-musllinux_1_2_x86_64",
        "cp312-cp312-manylinux_2_28_aarch64",
    ):
        dists.wheel("beta", "1.0", tag=tag)
    dists.wheel("gamma", "1.0")
    dists.wheel("gamma", "2.0", requires_python=">=3.99")
    return dists


def json_result(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def mirrored(root: Path) -> set[str]:
    """The distribution files in the mirror's top level."""
    return {p.name for p in root.iterdir() if p.is_file() and p.name.endswith((".whl", ".gz"))}


def test_mirror_writes_a_verified_static_index(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    upstream.metadata_files = True
    upstream.yank("alpha-1.0-py3-none-any.whl", "broken import")
    out = tmp_path / "mirror"
    result = cli("mirror", "alpha", "beta", "gamma", "-o", out, "-i", upstream.url, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json_result(result)
    assert summary["failed"] == 0
    assert summary["fetched"] == summary["files"] == 10
    assert summary["bytes"] == sum((project_set.root / f).stat().st_size for f in mirrored(out))
    # Every linked file is there with the promised bytes and a PEP 658 file (checked
    # without the code under test), and nothing is left out.
    assert set(linked_files(out)) == mirrored(out) == {p.name for p in project_set.root.iterdir()}
    page = json.loads((out / "simple/alpha/index.json").read_text())
    files = {f["filename"]: f for f in page["files"]}
    assert files["alpha-1.0-py3-none-any.whl"]["yanked"] == "broken import"
    assert "yanked" not in files["alpha-2.0-py3-none-any.whl"]
    assert page["versions"] == ["1.0", "2.0", "3.0rc1"]
    html = (out / "simple/alpha/index.html").read_text()
    assert 'data-yanked="broken import"' in html
    gamma = json.loads((out / "simple/gamma/index.json").read_text())
    assert {f["filename"]: f.get("requires-python") for f in gamma["files"]} == {
        "gamma-1.0-py3-none-any.whl": None,
        "gamma-2.0-py3-none-any.whl": ">=3.99",
    }
    # The .metadata files are the wheels' own METADATA, byte for byte.
    wheel = out / "alpha-2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert (
            archive.read("alpha-2.0.dist-info/METADATA") == Path(f"{wheel}.metadata").read_bytes()
        )
    root = json.loads((out / "simple/index.json").read_text())
    assert [p["name"] for p in root["projects"]] == ["alpha", "beta", "gamma"]
    manifest = read_manifest(out)
    assert manifest is not None and manifest.kind == "mirror"
    assert manifest.file("alpha-1.0-py3-none-any.whl").yanked == "broken import"
    verified = cli("verify", out)
    assert verified.exit_code == 0, verified.stderr


def test_an_html_only_index_without_658_gets_extracted_metadata(
    cli: Any, index_server: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    result = cli("mirror", "alpha", "-o", out, "-i", index_server.url)
    assert result.exit_code == 0, result.stderr
    assert set(linked_files(out)) == {
        "alpha-1.0-py3-none-any.whl",
        "alpha-2.0-py3-none-any.whl",
        "alpha-2.0.tar.gz",
        "alpha-3.0rc1-py3-none-any.whl",
    }
    assert cli("verify", out).exit_code == 0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--target", "cp311-manylinux_2_28_x86_64", "--no-sdists"],
            {MANYLINUX, "alpha-1.0-py3-none-any.whl", "alpha-2.0-py3-none-any.whl"}
            | {"alpha-3.0rc1-py3-none-any.whl", "gamma-1.0-py3-none-any.whl"},
        ),
        (
            ["--target", "cp312-manylinux_2_28_aarch64", "--target", "cp312-win_amd64"],
            {AARCH64, WINDOWS, "alpha-2.0.tar.gz", "alpha-1.0-py3-none-any.whl"}
            | {"alpha-2.0-py3-none-any.whl", "alpha-3.0rc1-py3-none-any.whl"}
            | {"gamma-1.0-py3-none-any.whl"},
        ),
        (
            ["--target", "cp311-musllinux_1_2_x86_64", "--latest", "1", "--no-prereleases"],
            {MUSL, "alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"}
            | {"gamma-1.0-py3-none-any.whl"},
        ),
        (
            ["--no-yanked", "--no-sdists", "--latest", "1"],
            {MANYLINUX, WINDOWS, MUSL, AARCH64, "alpha-3.0rc1-py3-none-any.whl"}
            | {"gamma-2.0-py3-none-any.whl"},
        ),
    ],
)
def test_dry_run_selects_from_the_pages_alone(
    cli: Any,
    upstream: IndexServer,
    project_set: DistFactory,
    tmp_path: Path,
    options: list[str],
    expected: set[str],
) -> None:
    upstream.yank("alpha-1.0-py3-none-any.whl")
    out = tmp_path / "mirror"
    result = cli(
        "mirror", "alpha", "beta", "gamma", "-o", out, "-i", upstream.url, "--dry-run",
        "--json", *options,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json_result(result)
    planned = {f["filename"] for f in summary["planned"]}
    assert planned == expected
    sizes = {p.name: p.stat().st_size for p in project_set.root.iterdir()}
    assert summary["fetched-bytes"] == sum(sizes[f] for f in expected)
    assert not out.exists()
    assert upstream.count("/files/", prefix=True) == 0


def test_max_file_size_and_a_dry_run_that_matches_the_run(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    limit = min(p.stat().st_size for p in project_set.root.glob("beta-*"))
    out = tmp_path / "mirror"
    args = ["mirror", "alpha", "beta", "-o", out, "-i", upstream.url, "--json"]
    args += ["--max-file-size", str(limit)]
    dry = json_result(cli(*args, "--dry-run"))
    run = json_result(cli(*args))
    assert dry["fetched-bytes"] == run["fetched-bytes"] == run["bytes"]
    assert all((project_set.root / f).stat().st_size <= limit for f in mirrored(out))
    assert not any(f.endswith(".tar.gz") for f in mirrored(out))  # sdists are larger


def test_wrong_bytes_are_never_linked_and_other_projects_go_on(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    upstream.corrupt("alpha-2.0-py3-none-any.whl")
    out = tmp_path / "mirror"
    result = cli("mirror", "alpha", "gamma", "-o", out, "-i", upstream.url, "--json")
    assert result.exit_code == ExitCode.PARTIAL == 10
    assert (
        "error: alpha: alpha-2.0-py3-none-any.whl from "
        f"{upstream.files_url}alpha-2.0-py3-none-any.whl has sha256 "
    ) in result.stderr
    statuses = {p["name"]: p["status"] for p in json_result(result)["project-results"]}
    assert statuses == {"alpha": "failed", "gamma": "new"}
    assert "alpha-2.0-py3-none-any.whl" not in linked_files(out)
    assert "alpha-2.0-py3-none-any.whl" not in mirrored(out)
    assert "alpha-1.0-py3-none-any.whl" in linked_files(out)
    assert not list((out / ".mirror" / "tmp").glob("*")) if (out / ".mirror/tmp").exists() else True
    # The index mends its bytes: the rerun fetches that one file and nothing else.
    upstream.clear_hooks()
    before = len(upstream.requests)
    again = cli("mirror", "alpha", "gamma", "-o", out, "-i", upstream.url)
    assert again.exit_code == 0, again.stderr
    fetched = [p for p in upstream.requests[before:] if p.startswith("/files/")]
    assert fetched == ["/files/alpha-2.0-py3-none-any.whl"]
    assert "alpha-2.0-py3-none-any.whl" in linked_files(out)


def test_a_rerun_without_changes_asks_once_per_project_and_writes_nothing(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    args = ["mirror", "alpha", "beta", "gamma", "-o", out, "-i", upstream.url, "--json"]
    assert cli(*args).exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    upstream.conditional.clear()
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    summary = json_result(result)
    assert summary["requests"] == 3
    assert {p["status"] for p in summary["project-results"]} == {"unchanged"}
    # One request per project, each conditional (answered 304), and no file.
    assert sorted(path for path, _ in upstream.conditional) == [
        "/simple/alpha/",
        "/simple/beta/",
        "/simple/gamma/",
    ]
    assert all(tag for _, tag in upstream.conditional)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_filter_changes_and_removals_upstream_converge(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    base = ["mirror", "alpha", "beta", "gamma", "-o", out, "-i", upstream.url, "--json"]
    assert cli(*base).exit_code == 0
    (out / "NOTES.txt").write_text("the operator's own file\n")
    # A filter replaced later cleans up, although the index answers 304 for every page.
    narrowed = json_result(
        cli(*base, "--no-sdists", "--target", "cp312-win_amd64", "--replace-filters")
    )
    assert narrowed["fetched"] == 0 and narrowed["requests"] == 3
    assert (
        mirrored(out)
        == set(linked_files(out))
        == {
            WINDOWS,
            "alpha-1.0-py3-none-any.whl",
            "alpha-2.0-py3-none-any.whl",
            "alpha-3.0rc1-py3-none-any.whl",
            "gamma-1.0-py3-none-any.whl",
        }
    )
    assert not (out / "alpha-2.0.tar.gz.metadata").exists()
    # Widened again: the files come back.
    widened = json_result(cli(*base, "--replace-filters"))
    assert widened["fetched"] == 5
    # A project deleted upstream (say, malware) leaves the mirror in the same run.
    for path in project_set.root.glob("gamma-*"):
        path.unlink()
    gone = json_result(cli(*base))
    assert {p["name"]: p["status"] for p in gone["project-results"]}["gamma"] == "removed"
    assert not any(name.startswith("gamma") for name in os.listdir(out))
    assert not (out / "simple/gamma").exists()
    assert remembered(out)["projects"] == {"alpha": "", "beta": ""}  # and forgotten
    root = json.loads((out / "simple/index.json").read_text())
    assert [p["name"] for p in root["projects"]] == ["alpha", "beta"]
    # A project removed goes too; what the mirror did not write stays.
    assert cli("mirror", "--remove", "beta", "-o", out, "-i", upstream.url).exit_code == 0
    assert not any(name.startswith("beta") for name in os.listdir(out))
    assert (out / "NOTES.txt").read_text() == "the operator's own file\n"
    assert cli("verify", out).exit_code == 0  # NOTES.txt is the operator's own: named, no problem
    (out / "NOTES.txt").unlink()
    assert cli("verify", out).exit_code == 0


def test_all_reads_the_root_and_drops_what_it_no_longer_lists(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    args = ["mirror", "--all", "-o", out, "-i", upstream.url, "--no-sdists", "--latest", "1"]
    assert cli(*args).exit_code == 0
    assert [p.name for p in sorted((out / "simple").iterdir()) if p.is_dir()] == [
        "alpha",
        "beta",
        "gamma",
    ]
    for path in project_set.root.glob("beta-*"):
        path.unlink()
    assert cli(*args).exit_code == 0
    assert not (out / "simple/beta").exists()
    assert not any(name.startswith("beta") for name in os.listdir(out))


def test_requirements_closure_per_target_is_installable_with_install_w(
    cli: Any,
    upstream: IndexServer,
    project_set: DistFactory,
    tmp_path: Path,
    make_venv: Any,
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==2.0\n")
    out = tmp_path / "mirror"
    args = [
        "mirror", "-r", requirements, "-o", out, "-i", upstream.url, "--target", "host",
        "--target", "cp312-win_amd64", "--json",
    ]  # fmt: skip
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    # alpha 2.0 and the beta it needs; not gamma, nor alpha's other releases.
    host_beta = {MANYLINUX, MUSL} if sys.version_info[:2] == (3, 11) else set()
    assert mirrored(out) - host_beta == {
        "alpha-2.0-py3-none-any.whl",
        "alpha-2.0.tar.gz",
        WINDOWS,
    }
    manifest = read_manifest(out)
    assert manifest is not None
    assert [lock.target for lock in manifest.locks] == ["host", "cp312-win_amd64"]
    windows = manifest.locks[1]
    assert {e.name: e.filenames for e in windows.entries} == {
        "alpha": ("alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"),
        "beta": (WINDOWS,),
    }
    assert cli("verify", out).exit_code == 0
    # Unchanged requirements are not resolved again (as build): one request per project.
    before = len(upstream.requests)
    rerun = cli(*args)
    assert rerun.exit_code == 0, rerun.stderr
    assert sorted(upstream.requests[before:]) == ["/simple/alpha/", "/simple/beta/"]
    refreshed = cli(*args, "--refresh")
    assert refreshed.exit_code == 0, refreshed.stderr
    assert len(upstream.requests) > before + 4  # pip and uv read the index again
    if sys.version_info[:2] != (3, 11):
        return  # beta has a wheel for CPython 3.11 only
    python = make_venv(with_pip=False)
    installed = cli("install", "-w", out, "--python", python, "--json")
    assert installed.exit_code == 0, installed.stderr
    assert json_result(installed)["installed"] == [
        {"name": "alpha", "version": "2.0"},
        {"name": "beta", "version": "1.0"},
    ]


def test_install_w_on_a_mirror_of_named_projects_says_how_to_install_from_it(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    # docs/mirror.md: "wheelhouse install -w /srv/mirror ... # mirrors made with -r". On a
    # mirror of names the hint said "rebuild it with 'wheelhouse build'".
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "-o", out, "-i", upstream.url).exit_code == 0
    argv = wheelhouse_argv("install", "-w", out, "alpha")
    result = run_command(argv, env=clean_env(tmp_path / "home"))
    assert result.returncode == ExitCode.INPUT, result.stderr
    assert result.stderr.splitlines() == [
        f"error: the mirror {str(out)!r} has no lock to install from",
        f"hint: install from it by name: pip install --index-url {(out / 'simple').as_uri()} "
        "NAME; a mirror made with '-r FILE' has a lock for 'wheelhouse install -w'",
    ]


def test_pip_and_uv_install_from_the_mirror_offline(
    cli: Any,
    upstream: IndexServer,
    dists: DistFactory,
    tmp_path: Path,
    make_venv: Any,
    offline: Any,
) -> None:
    dists.wheel("alpha", "2.0", requires=["delta"])
    dists.wheel("delta", "1.0")
    dists.wheel("delta", "1.1")
    upstream.yank("delta-1.1-py3-none-any.whl", "bad")
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "delta", "-o", out, "-i", upstream.url).exit_code == 0
    index = (out / "simple").as_uri()
    env = offline_env()
    python = make_venv("pip-venv")
    pip = offline([str(python), "-m", "pip", "install", "--index-url", index, "alpha"])
    done = subprocess.run(pip, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"], env=env, capture_output=True, text=True
    )
    versions = {p["name"]: p["version"] for p in json.loads(listed.stdout)}
    assert versions["alpha"] == "2.0" and versions["delta"] == "1.0"  # the yanked 1.1 is not
    uv = pytest.importorskip("uv").find_uv_bin()
    target = make_venv("uv-venv", with_pip=False)
    env = {**env, "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    argv = [uv, "pip", "install", "--offline", "--no-config", "--index-url", index]
    argv += ["--python", str(target), "alpha"]
    done = subprocess.run(offline(argv), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "delta==1.0" in done.stderr


@pytest.mark.parametrize("files_before_kill", [1, 4, 9])
def test_sigkill_mid_run_leaves_only_good_links_and_the_rerun_resumes(
    upstream: IndexServer, dists: DistFactory, tmp_path: Path, files_before_kill: int
) -> None:
    for version in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
        dists.wheel("slow", version)
        dists.wheel("quick", version)
    out = tmp_path / "mirror"
    argv = [sys.executable, "-m", "wheelhouse", "mirror", "slow", "quick", "-o", str(out)]
    argv += ["-i", upstream.url, "-j", "2"]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    first = "/files/"
    upstream.delay("/files/slow", 0.4)
    upstream.delay("/files/quick", 0.4)
    # Killed once some files are in place, at a moment the run does not choose.
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(list(out.glob("*.whl"))) >= files_before_kill, 60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    on_disk = {p.name for p in out.glob("*.whl")}
    assert files_before_kill <= len(on_disk) < 12
    # Whatever a page links is there and verified (linked_files checks the bytes).
    assert set(linked_files(out)) <= on_disk
    upstream.clear_hooks()
    before = len(upstream.requests)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    refetched = {p.removeprefix(first) for p in upstream.requests[before:] if p.startswith(first)}
    assert not refetched & on_disk
    assert len(linked_files(out)) == 12
    assert not list((out / ".mirror").glob("tmp/*"))


def test_an_unreadable_page_keeps_what_the_mirror_had(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    args = ["mirror", "beta", "gamma", "-o", out, "-i", upstream.url, "--json"]
    assert cli(*args).exit_code == 0
    before = linked_files(out)
    upstream.fail("/simple/beta/", 503)
    for path in project_set.root.glob("gamma-2*"):
        path.unlink()
    result = cli(*args)
    assert result.exit_code == ExitCode.PARTIAL
    assert f"error: beta: {upstream.url}beta/ answered HTTP 503" in result.stderr
    statuses = {p["name"]: p["status"] for p in json_result(result)["project-results"]}
    assert statuses == {"beta": "failed", "gamma": "updated"}
    after = linked_files(out)
    assert {f: d for f, d in before.items() if f.startswith("beta")} == {
        f: d for f, d in after.items() if f.startswith("beta")
    }
    assert "gamma-2.0-py3-none-any.whl" not in after
    assert cli("verify", out).exit_code == 0


def test_dry_run_of_an_html_index_counts_unknown_sizes(
    cli: Any, index_server: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    result = cli("mirror", "gamma", "-o", tmp_path / "m", "-i", index_server.url, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "gamma: new, 2 files (0 bytes), would fetch 2 (0 bytes)" in result.stdout
    assert "2 files of unknown size (the index gives none)" in result.stderr


def test_usage_errors_are_one_line(cli: Any, upstream: IndexServer, tmp_path: Path) -> None:
    nothing = cli("mirror", "-o", tmp_path / "m", "-i", upstream.url)
    assert nothing.exit_code == ExitCode.USAGE
    assert nothing.stderr.splitlines()[0] == "error: nothing to mirror"
    bad = cli("mirror", "not a name!", "-o", tmp_path / "m", "-i", upstream.url)
    assert bad.exit_code == ExitCode.USAGE
    assert bad.stderr.startswith("error: 'not a name!' is not a project name")
    size = cli("mirror", "x", "--max-file-size", "lots", "-o", tmp_path / "m")
    assert size.exit_code == ExitCode.USAGE
    assert size.stderr.splitlines()[0] == "error: --max-file-size 'lots' is not a size"
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("mine")
    refused = cli("mirror", "alpha", "-o", busy, "-i", upstream.url)
    assert refused.exit_code == ExitCode.OUTPUT
    assert "is not empty and is not a wheelhouse" in refused.stderr
    assert (busy / "thesis.tex").read_text() == "mine"
    built = tmp_path / "built"
    built.mkdir()
    manifest = Manifest("wheelhouse 0", "2026-01-01T00:00:00+00:00", Inputs(()), (), ())
    (built / "wheelhouse.json").write_text(manifest.to_json())
    wheelhouse = cli("mirror", "alpha", "-o", built, "-i", upstream.url)
    assert wheelhouse.exit_code == ExitCode.OUTPUT
    assert wheelhouse.stderr.splitlines()[0] == (
        f"error: {str(built)!r} is a wheelhouse built by 'wheelhouse build', not a mirror"
    )


def test_unknown_project_fails_alone(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    result = cli("mirror", "gamma", "nosuch", "-o", out, "-i", upstream.url)
    assert result.exit_code == ExitCode.PARTIAL
    assert "error: nosuch: nosuch is not on the index" in result.stderr
    assert "gamma-1.0-py3-none-any.whl" in linked_files(out)


def test_parse_size() -> None:
    from wheelhouse.cli.mirror import parse_size

    assert parse_size("500") == 500
    assert parse_size("20MB") == 20_000_000
    assert parse_size("1.5G") == 1_500_000_000
    assert parse_size("64KiB") == 65536


def test_serve_reads_a_mirror(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    from wheelhouse.serve.static import make_server

    out = tmp_path / "mirror"
    assert cli("mirror", "gamma", "-o", out, "-i", upstream.url).exit_code == 0
    server = make_server(out, "127.0.0.1", 0)
    import threading
    import urllib.request

    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        url = f"{server.url}gamma/"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    digest = hashlib.sha256((out / "gamma-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    assert digest.encode() in body


def test_a_file_index_is_mirrored_too(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    # pip's configuration may name file:// indexes (this machine's does); a mirror is one.
    first = tmp_path / "first"
    assert cli("mirror", "alpha", "gamma", "-o", first, "-i", upstream.url).exit_code == 0
    second = tmp_path / "second"
    args = ["mirror", "--all", "-o", second, "-i", (first / "simple").as_uri(), "--json"]
    result = cli(*args, "--no-sdists")
    assert result.exit_code == 0, result.stderr
    assert set(linked_files(second)) == set(linked_files(first)) - {"alpha-2.0.tar.gz"}
    again = json_result(cli(*args, "--no-sdists"))
    assert again["fetched"] == 0
    assert {p["status"] for p in again["project-results"]} == {"unchanged"}


def test_an_extra_index_adds_files_and_a_change_there_keeps_the_others(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    extra = DistFactory(tmp_path / "extra")
    extra.root.mkdir()
    extra.wheel("gamma", "3.0")
    with IndexServer(extra.root) as second:
        second.etags = True
        args = ["mirror", "gamma", "-o", tmp_path / "m", "-i", upstream.url, "--json"]
        args += ["--extra-index-url", second.url]
        first = json_result(cli(*args))
        assert first["files"] == 3
        extra.wheel("gamma", "3.1")
        # The first index answers 304, the extra one a new page: the first's files stay.
        again = json_result(cli(*args))
        assert again["fetched"] == 1 and again["removed"] == 0
        assert set(linked_files(tmp_path / "m")) == {
            "gamma-1.0-py3-none-any.whl",
            "gamma-2.0-py3-none-any.whl",
            "gamma-3.0-py3-none-any.whl",
            "gamma-3.1-py3-none-any.whl",
        }


def test_an_index_without_validators_is_compared_by_page_hash(
    cli: Any, index_server: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    # This machine's index sends neither ETag nor Last-Modified: the same page bytes mean
    # that nothing changed, and nothing is parsed or written again.
    out = tmp_path / "mirror"
    args = ["mirror", "alpha", "beta", "-o", out, "-i", index_server.url, "--json"]
    assert cli(*args).exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    summary = json_result(cli(*args))
    assert summary["requests"] == 2
    assert {p["status"] for p in summary["project-results"]} == {"unchanged"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    project_set.wheel("beta", "2.0")
    changed = json_result(cli(*args))
    assert {p["name"]: p["status"] for p in changed["project-results"]} == {
        "alpha": "unchanged",
        "beta": "updated",
    }


# -- what a mirror remembers (issue 24, item 1) ----------------------------------------------


def remembered(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / ".mirror/selection.json").read_text())
    return data


# Every file of a mirror outside its state and lock, with its bytes.
tree = functools.partial(snapshot, leave_out=[".mirror"])


def test_naming_a_project_adds_it_and_keeps_the_others(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha<3", "-o", out, "-i", upstream.url).exit_code == 0
    alpha = {f: d for f, d in linked_files(out).items() if f.startswith("alpha")}
    result = cli("mirror", "beta", "-o", out, "-i", upstream.url, "--json")
    assert result.exit_code == 0, result.stderr
    # alpha (before: deleted by a run that did not name it) is still mirrored, as it was.
    linked = linked_files(out)
    assert {f: d for f, d in linked.items() if f.startswith("alpha")} == alpha
    summary = json_result(result)
    assert summary["projects-added"] == ["beta"] and summary["projects-removed"] == []
    assert summary["removed"] == 0
    assert {f for f in linked if f.startswith("beta")} == {MANYLINUX, WINDOWS, MUSL, AARCH64}
    assert remembered(out)["projects"] == {"alpha": "<3", "beta": ""}
    assert remembered(out)["version"] == 1
    assert f"{out}: added beta" in result.stderr
    assert cli("verify", out).exit_code == 0


def test_a_typo_fails_removes_nothing_and_is_not_remembered(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "gamma", "-o", out, "-i", upstream.url).exit_code == 0
    before = tree(out)
    result = cli("mirror", "alpah", "-o", out, "-i", upstream.url, "--json")
    assert result.exit_code == ExitCode.PARTIAL == 10
    assert "error: alpah: alpah is not on the index" in result.stderr.splitlines()
    assert tree(out) == before  # every file and page, byte for byte
    summary = json_result(result)
    assert {p["name"]: p["status"] for p in summary["project-results"]} == {
        "alpah": "failed",
        "alpha": "unchanged",
        "gamma": "unchanged",
    }
    assert summary["projects-added"] == [] and summary["removed"] == 0
    assert summary["projects-not-added"] == ["alpah"]
    assert f"{out}: not added alpah" in result.stderr.splitlines()
    assert remembered(out)["projects"] == {"alpha": "", "gamma": ""}


def test_a_plain_rerun_refreshes_everything_the_mirror_remembers(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("gamma==1.0\n")
    assert cli("mirror", "alpha", "-o", out, "-i", upstream.url).exit_code == 0
    added = cli("mirror", "-r", requirements, "-o", out, "-i", upstream.url, "--no-sdists")
    assert added.exit_code == ExitCode.USAGE  # a filter, not a project: see below
    assert cli("mirror", "-r", requirements, "-o", out, "-i", upstream.url).exit_code == 0
    assert remembered(out)["requirements"] == [str(requirements)]
    project_set.wheel("alpha", "4.0")
    project_set.wheel("gamma", "1.1")
    result = cli("mirror", "-o", out, "--json", "-i", upstream.url)
    assert result.exit_code == 0, result.stderr
    summary = json_result(result)
    assert summary["fetched"] == 1
    assert {p["name"]: p["status"] for p in summary["project-results"]} == {
        "alpha": "updated",
        "gamma": "unchanged",  # pinned by the remembered requirements file
    }
    linked = set(linked_files(out))
    assert "alpha-4.0-py3-none-any.whl" in linked and "gamma-1.0-py3-none-any.whl" in linked
    assert "gamma-1.1-py3-none-any.whl" not in linked
    # Without -i too: the index is remembered (without credentials).
    project_set.wheel("alpha", "5.0")
    plain = cli("mirror", "-o", out)
    assert plain.exit_code == 0, plain.stderr
    assert "alpha-5.0-py3-none-any.whl" in linked_files(out)
    # A requirements file is removed as a project is: what only it needed goes.
    dropped = cli("mirror", "--remove", "-r", requirements, "-o", out, "--json")
    assert dropped.exit_code == 0, dropped.stderr
    assert json_result(dropped)["requirements-removed"] == [str(requirements)]
    assert not any(f.startswith("gamma") for f in os.listdir(out))
    assert "alpha-5.0-py3-none-any.whl" in linked_files(out)
    assert remembered(out)["requirements"] == []


def test_remove_deletes_only_that_projects_files_and_pages(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "beta", "-o", out, "-i", upstream.url).exit_code == 0
    # The operator's own file, named like one of alpha's: the mirror did not write it.
    (out / "alpha-0.1-py3-none-any.whl").write_bytes(b"mine")
    beta = {f: (out / f).read_bytes() for f in mirrored(out) if f.startswith("beta")}
    unknown = cli("mirror", "--remove", "alpah", "-o", out, "-i", upstream.url)
    assert unknown.exit_code == ExitCode.USAGE
    assert unknown.stderr.splitlines()[0] == (
        f"error: 'alpah' is not one of the projects the mirror in {str(out)!r} keeps; "
        "nothing was removed"
    )
    elsewhere = cli("mirror", "--remove", "alpha", "-o", tmp_path / "none", "-i", upstream.url)
    assert elsewhere.exit_code == ExitCode.USAGE
    assert elsewhere.stderr.splitlines()[0] == (
        f"error: there is no mirror in {str(tmp_path / 'none')!r}: nothing to remove"
    )
    assert not (tmp_path / "none").exists()
    dry = cli("mirror", "--remove", "alpha", "-o", out, "-i", upstream.url, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    plan = json_result(dry)
    assert plan["projects-removed"] == ["alpha"] and plan["projects-added"] == []
    assert {p["name"]: p["status"] for p in plan["project-results"]} == {
        "alpha": "removed",
        "beta": "unchanged",
    }
    assert "alpha-1.0-py3-none-any.whl" in mirrored(out)  # a dry run changes nothing
    result = cli("mirror", "--remove", "alpha", "-o", out, "-i", upstream.url, "--json")
    assert result.exit_code == 0, result.stderr
    assert json_result(result)["projects-removed"] == ["alpha"]
    assert {f for f in os.listdir(out) if f.startswith("alpha")} == {"alpha-0.1-py3-none-any.whl"}
    assert (out / "alpha-0.1-py3-none-any.whl").read_bytes() == b"mine"
    assert not (out / "simple/alpha").exists()
    assert {f: (out / f).read_bytes() for f in mirrored(out) if f.startswith("beta")} == beta
    assert set(linked_files(out)) == set(beta)
    root = json.loads((out / "simple/index.json").read_text())
    assert [p["name"] for p in root["projects"]] == ["beta"]
    assert remembered(out)["projects"] == {"beta": ""}
    # A plain rerun does not bring it back.
    assert cli("mirror", "-o", out, "-i", upstream.url).exit_code == 0
    assert not (out / "simple/alpha").exists()
    # The summary counts what the mirror holds now (it said "1 project": the one it removed).
    argv = wheelhouse_argv("mirror", "--remove", "beta", "-o", out, "-i", upstream.url)
    again = run_command(argv, env=clean_env(tmp_path / "home"))
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1].startswith(f"{out}: 0 projects, 0 files, 0.0 MB (0 ")


def test_a_changed_filter_is_refused_unless_replaced(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "beta", "-o", out, "-i", upstream.url).exit_code == 0
    before = tree(out)
    refused = cli("mirror", "gamma", "--target", "cp312-win_amd64", "-o", out, "-i", upstream.url)
    assert refused.exit_code == ExitCode.USAGE
    assert refused.stderr.splitlines()[0] == (
        f"error: the mirror in {str(out)!r} keeps no --target (every wheel); "
        "this run asks for --target cp312-win_amd64"
    )
    assert tree(out) == before and remembered(out)["projects"] == {"alpha": "", "beta": ""}
    other = cli("mirror", "-o", out, "-i", upstream.url.replace("127.0.0.1", "localhost"))
    assert other.exit_code == ExitCode.USAGE
    assert other.stderr.splitlines()[0].startswith(
        f"error: the mirror in {str(out)!r} keeps --index-url {upstream.url}; this run asks for"
    )
    # The same value as remembered is not a change.
    same = cli("mirror", "--sdists", "--yanked", "-o", out, "-i", upstream.url)
    assert same.exit_code == 0, same.stderr
    dry = cli(
        "mirror", "--target", "cp312-win_amd64", "--no-sdists", "--replace-filters",
        "-o", out, "--json", "--dry-run",
    )  # fmt: skip
    assert dry.exit_code == 0, dry.stderr
    plan = json_result(dry)
    assert {p["name"]: p["removed"] for p in plan["project-results"]} == {"alpha": 1, "beta": 3}
    assert plan["filters-replaced"] is True and tree(out) == before
    # The indexes stay the remembered ones unless given (-i was left out above).
    assert plan["remembered"]["filters"]["index-url"] == upstream.url
    replaced = cli(
        "mirror", "--target", "cp312-win_amd64", "--no-sdists", "--replace-filters",
        "-o", out, "-i", upstream.url, "--json",
    )  # fmt: skip
    assert replaced.exit_code == 0, replaced.stderr
    assert json_result(replaced)["filters-replaced"] is True
    assert {f for f in mirrored(out) if f.startswith("beta")} == {WINDOWS}
    assert "alpha-2.0.tar.gz" not in mirrored(out)
    filters = remembered(out)["filters"]
    assert filters["targets"] == ["cp312-win_amd64"] and filters["sdists"] is False
    # The new filters apply to every project, those added later too (gamma 2.0 needs 3.99).
    assert cli("mirror", "gamma", "-o", out, "-i", upstream.url).exit_code == 0
    assert {f for f in mirrored(out) if f.startswith("gamma")} == {"gamma-1.0-py3-none-any.whl"}
    assert {f for f in mirrored(out) if f.startswith("beta")} == {WINDOWS}


def test_a_project_that_fails_keeps_its_files(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "gamma", "-o", out, "-i", upstream.url).exit_code == 0
    dropped = "gamma-2.0-py3-none-any.whl"
    digest = hashlib.sha256((out / dropped).read_bytes()).hexdigest()
    (project_set.root / dropped).unlink()
    project_set.wheel("gamma", "3.0")
    upstream.corrupt("gamma-3.0-py3-none-any.whl")
    failed = cli("mirror", "gamma", "-o", out, "-i", upstream.url, "--json")
    assert failed.exit_code == ExitCode.PARTIAL
    assert json_result(failed)["removed"] == 0
    # Upstream dropped 2.0, but the run failed: it keeps the file and its link.
    assert linked_files(out)[dropped] == digest
    assert "gamma-3.0-py3-none-any.whl" not in linked_files(out)
    upstream.clear_hooks()
    mended = cli("mirror", "-o", out, "-i", upstream.url, "--json")
    assert mended.exit_code == 0, mended.stderr
    assert json_result(mended)["removed"] == 1
    assert set(linked_files(out)) == {"gamma-1.0-py3-none-any.whl", "gamma-3.0-py3-none-any.whl"}
    assert not (out / dropped).exists()


def test_an_older_mirror_is_adopted_without_deleting(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    args = ["-o", out, "-i", upstream.url, "--no-sdists"]
    assert cli("mirror", "alpha<3", "beta", *args).exit_code == 0
    # What an older version left: the same tree, per-project state, no selection file.
    (out / ".mirror/selection.json").unlink(missing_ok=True)
    before = tree(out)
    result = cli("mirror", "gamma", *args, "--json")
    assert result.exit_code == 0, result.stderr
    after = tree(out)
    assert {k: v for k, v in after.items() if not k.startswith(("simple/", "wheelhouse.json"))} == {
        **{k: v for k, v in before.items() if not k.startswith(("simple/", "wheelhouse.json"))},
        "gamma-1.0-py3-none-any.whl": (
            project_set.root / "gamma-1.0-py3-none-any.whl"
        ).read_bytes(),
        "gamma-1.0-py3-none-any.whl.metadata": after["gamma-1.0-py3-none-any.whl.metadata"],
        "gamma-2.0-py3-none-any.whl": (
            project_set.root / "gamma-2.0-py3-none-any.whl"
        ).read_bytes(),
        "gamma-2.0-py3-none-any.whl.metadata": after["gamma-2.0-py3-none-any.whl.metadata"],
    }
    summary = json_result(result)
    assert summary["adopted"] == ["alpha", "beta"] and summary["removed"] == 0
    assert summary["projects-added"] == ["gamma"]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {out} has no selection.json (an older mirror): it now remembers the 2 "
        "projects mirrored there; nothing is removed"
    ]
    # The specifier and the filters came from the old manifest.
    assert remembered(out)["projects"] == {"alpha": "<3", "beta": "", "gamma": ""}
    assert remembered(out)["filters"]["sdists"] is False
    again = cli("mirror", *args)
    assert again.exit_code == 0, again.stderr
    assert "note:" not in again.stderr  # said once


def test_dry_run_says_what_would_be_added(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "-o", out, "-i", upstream.url).exit_code == 0
    before = tree(out)
    result = cli("mirror", "beta", "-o", out, "-i", upstream.url, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    plan = json_result(result)
    assert {p["name"]: p["status"] for p in plan["project-results"]} == {
        "alpha": "unchanged",  # before: "removed", since this run did not name it
        "beta": "new",
    }
    assert plan["projects-added"] == ["beta"] and plan["projects-removed"] == []
    assert plan["remembered"]["projects"] == {"alpha": "", "beta": ""}
    human = cli("mirror", "beta", "-o", out, "-i", upstream.url, "--dry-run")
    assert f"{out}: would add beta" in human.stderr.splitlines()
    assert tree(out) == before
    assert remembered(out)["projects"] == {"alpha": ""}


def test_a_project_no_longer_needed_leaves_only_in_a_run_where_nothing_fails(
    cli: Any, upstream: IndexServer, project_set: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("gamma==1.0\n")
    args = ["alpha", "-r", requirements, "-o", out, "-i", upstream.url, "--json"]
    assert cli("mirror", *args).exit_code == 0
    gamma = (out / "gamma-1.0-py3-none-any.whl").read_bytes()
    # The file no longer needs gamma, and the same run fails on alpha.
    requirements.write_text("alpha==1.0\n")
    project_set.wheel("alpha", "4.0")
    upstream.corrupt("alpha-4.0-py3-none-any.whl")
    failed = cli("mirror", *args)
    assert failed.exit_code == ExitCode.PARTIAL
    assert (out / "gamma-1.0-py3-none-any.whl").read_bytes() == gamma
    assert "gamma-1.0-py3-none-any.whl" in linked_files(out)
    assert json_result(failed)["removed"] == 0
    upstream.clear_hooks()
    clean = cli("mirror", *args)
    assert clean.exit_code == 0, clean.stderr
    assert not (out / "gamma-1.0-py3-none-any.whl").exists()
    assert not (out / "simple/gamma").exists()
    assert "alpha-4.0-py3-none-any.whl" in linked_files(out)
