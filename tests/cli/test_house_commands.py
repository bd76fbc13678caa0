"""verify, index, export, list, merge and cache, run the way a user runs them, outcome exact."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import typer.main

from tests.support.cli import ALPHA, BETA, on_a_terminal
from tests.support.dists import DistFactory
from tests.support.files import flip_byte, sha256_of
from tests.support.files import snapshot as tree
from tests.support.fixtures import Cli
from tests.support.server import IndexServer
from tests.support.wheelhouses import make_wheelhouse
from wheelhouse.cli._app import app
from wheelhouse.house.manifest import read_manifest

NOT_A_WHEELHOUSE_HINT = (
    "pass the directory that 'wheelhouse build' wrote, or build one with "
    "'wheelhouse build -r requirements.txt -o DIR'"
)


# The console script that `pip install` put beside the interpreter running the tests.
WHEELHOUSE = Path(sys.executable).with_name("wheelhouse")


# -- verify ---------------------------------------------------------------------------------------


def test_verify_a_sound_wheelhouse(cli: Cli, house: Path) -> None:
    result = cli("verify", house)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"{house}: 2 files, ok\n")


def test_verify_json_has_every_documented_field(cli: Cli, house: Path) -> None:
    result = cli("verify", house, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    files = [
        {
            "filename": name,
            "status": "ok",
            "sha256": sha256_of(house / name),
            "size": (house / name).stat().st_size,
            "actual-sha256": sha256_of(house / name),
            "actual-size": (house / name).stat().st_size,
        }
        for name in (ALPHA, BETA)
    ]
    assert report == {
        "schema-version": 1,
        "directory": str(house),
        "ok": True,
        "files": files,
        "problems": [],
    }


def test_verify_a_tampered_wheelhouse_exits_6_and_names_the_file(cli: Cli, house: Path) -> None:
    recorded = sha256_of(house / BETA)
    flip_byte(house / BETA)

    human = cli("verify", house)
    assert human.exit_code == 6
    mismatch = (
        f"{BETA!r} has sha256 {sha256_of(house / BETA)}, the manifest records {recorded}: "
        "the file was changed after the wheelhouse was built"
    )
    assert human.stderr.splitlines() == [f"problem: {mismatch}", f"{house}: 2 files, 1 problem"]

    as_json = cli("verify", house, "--json")
    assert as_json.exit_code == 6
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    [beta] = [f for f in report["files"] if f["filename"] == BETA]
    assert beta == {
        "filename": BETA,
        "status": "hash-mismatch",
        "sha256": recorded,
        "size": (house / BETA).stat().st_size,
        "actual-sha256": sha256_of(house / BETA),
        "actual-size": (house / BETA).stat().st_size,
    }
    assert report["problems"] == [
        {
            "kind": "hash-mismatch",
            "filename": BETA,
            "message": mismatch,
            # target, name and version belong to a lock entry's problems, not a file's.
            "target": None,
            "name": None,
            "version": None,
        }
    ]


def test_verify_names_a_missing_and_an_unrecorded_file(cli: Cli, house: Path) -> None:
    (house / ALPHA).unlink()
    (house / "stray-1.0-py3-none-any.whl").write_bytes(b"not ours")
    result = cli("verify", house, "--json")
    assert result.exit_code == 6
    kinds = {(p["kind"], p["filename"]) for p in json.loads(result.stdout)["problems"]}
    assert kinds == {("missing", ALPHA), ("unrecorded-file", "stray-1.0-py3-none-any.whl")}


def test_a_users_notes_file_is_one_rule_for_verify_pack_and_publish(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    # build keeps a file the user added (the README says so): verify, pack and publish all
    # accept it, name it and leave it behind. Before, verify alone failed (exit 6).
    (house / "NOTES.txt").write_text("mirrored for the lab, ask Ann\n")
    checked = cli("verify", house)
    assert (checked.exit_code, checked.stdout) == (0, "")
    assert checked.stderr.splitlines() == [
        "note: 'NOTES.txt' is not in the manifest: kept as a file of your own "
        "(never packed nor published)",
        f"{house}: 2 files, ok",
    ]
    report = json.loads(cli("verify", house, "--json").stdout)
    assert (report["ok"], report["problems"], report["user-files"]) == (True, [], ["NOTES.txt"])
    packed = cli("pack", house, "-o", tmp_path / "b.tar")
    assert packed.exit_code == 0, packed.stderr
    with tarfile.open(tmp_path / "b.tar") as tar:
        assert not [n for n in tar.getnames() if "NOTES" in n]
    published = cli("publish", house, (tmp_path / "pub").as_uri())
    assert published.exit_code == 0, published.stderr
    assert not (tmp_path / "pub" / "NOTES.txt").exists()


def test_a_wheel_nobody_recorded_fails_verify_pack_and_publish(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    # pip could pick it up from --find-links: a problem for all three (before, pack and
    # publish went on without a word).
    (house / "stray-1.0-py3-none-any.whl").write_bytes(b"not ours")
    checked = cli("verify", house)
    assert checked.exit_code == 6
    assert checked.stderr.splitlines() == [
        "problem: 'stray-1.0-py3-none-any.whl' is in the wheelhouse but not in its manifest",
        f"{house}: 2 files, 1 problem",
    ]
    packed = cli("pack", house, "-o", tmp_path / "b.tar")
    assert packed.exit_code == 6
    assert packed.stderr.splitlines() == [
        f"error: {str(house)!r} holds 'stray-1.0-py3-none-any.whl', which its manifest does "
        "not record; nothing was packed",
        f"hint: remove it, or build it into the wheelhouse; see 'wheelhouse verify {house}'",
    ]
    assert not (tmp_path / "b.tar").exists()
    published = cli("publish", house, (tmp_path / "pub").as_uri())
    assert published.exit_code == 6
    assert published.stderr.splitlines()[0] == (
        f"error: {str(house)!r} does not verify, so it is not published: "
        "'stray-1.0-py3-none-any.whl' is in the wheelhouse but not in its manifest"
    )
    assert not (tmp_path / "pub").exists()


def test_verify_of_a_directory_that_is_not_a_wheelhouse_exits_3(cli: Cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli("verify", plain)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {str(plain)!r} is not a wheelhouse (it has no wheelhouse.json)",
        f"hint: {NOT_A_WHEELHOUSE_HINT}",
    ]


def test_verify_of_a_file_it_cannot_read_exits_1(cli: Cli, house: Path) -> None:
    (house / ALPHA).unlink()
    (house / ALPHA).symlink_to(ALPHA)  # a loop: open() fails with ELOOP, not "missing"
    result = cli("verify", house)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: cannot read {str(house / ALPHA)!r} to check it: Too many levels of symbolic links",
        "hint: make the file readable (or remove it and rebuild the wheelhouse)",
    ]


def test_wheelhouse_dir_names_the_wheelhouse_of_every_reading_command(
    cli: Cli, house: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./wheelhouse here
    monkeypatch.setenv("WHEELHOUSE_DIR", str(house))
    assert cli("verify").stderr == f"{house}: 2 files, ok\n"
    assert cli("list").stdout.splitlines()[0] == "host:"
    exported = cli("export")
    assert exported.stdout == (house / "requirements.txt").read_text(encoding="utf-8")
    indexed = cli("index")
    assert indexed.stderr == f"{house / 'simple'}: 2 projects indexed\n"


def test_counts_of_one_read_in_the_singular(cli: Cli, tmp_path: Path, dists: DistFactory) -> None:
    house = tmp_path / "one"
    make_wheelhouse(house, [dists.wheel("solo", "1.0")])
    verified = cli("verify", house)
    assert (verified.exit_code, verified.stderr) == (0, f"{house}: 1 file, ok\n")
    indexed = cli("index", house)
    assert (indexed.exit_code, indexed.stderr) == (0, f"{house / 'simple'}: 1 project indexed\n")
    merged = cli("merge", house, "-o", tmp_path / "merged")
    assert merged.exit_code == 0, merged.stderr
    assert merged.stderr.splitlines() == [
        "wheelhouse: verifying 1 wheelhouse",
        f"wheelhouse: writing {tmp_path / 'merged'}",
        f"{tmp_path / 'merged'}: 1 file, targets host",
    ]


# -- index ----------------------------------------------------------------------------------------


def test_index_rewrites_the_static_index_byte_for_byte(cli: Cli, house: Path) -> None:
    before = tree(house / "simple")
    metadata = (house / f"{ALPHA}.metadata").read_bytes()
    shutil.rmtree(house / "simple")
    (house / f"{ALPHA}.metadata").unlink()

    result = cli("index", house)

    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == f"{house / 'simple'}: 2 projects indexed\n"
    assert tree(house / "simple") == before
    assert (house / f"{ALPHA}.metadata").read_bytes() == metadata
    assert cli("verify", house).exit_code == 0


def test_index_of_a_directory_that_is_not_a_wheelhouse_exits_3(cli: Cli, tmp_path: Path) -> None:
    result = cli("index", tmp_path)
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0].startswith(f"error: {str(tmp_path)!r} is not a wheelhouse")
    assert not (tmp_path / "simple").exists()


# -- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "written"),
    [
        ((), "requirements.txt"),
        (("--format", "requirements"), "requirements.txt"),
        (("--target", "host"), "requirements.txt"),
        (("--format", "pylock"), "pylock.toml"),
    ],
    ids=["default", "requirements", "target", "pylock"],
)
def test_export_prints_the_lock_the_wheelhouse_holds(
    cli: Cli, house: Path, args: tuple[str, ...], written: str
) -> None:
    result = cli("export", house, *args)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (house / written).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--target", "nope"), "the wheelhouse has no target 'nope' (it has: host)"),
        (("--format", "toml"), "--format must be 'requirements' or 'pylock', not 'toml'"),
    ],
    ids=["target", "format"],
)
def test_export_refuses_what_it_cannot_do_with_exit_2(
    cli: Cli, house: Path, args: tuple[str, ...], error: str
) -> None:
    result = cli("export", house, *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {error}"]


# -- list -----------------------------------------------------------------------------------------


def test_list_prints_each_target_and_its_pins(cli: Cli, house: Path) -> None:
    result = cli("list", house)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "host:",
        f"  alpha==1.0  {ALPHA}",
        f"  beta==2.0  {BETA}",
    ]


def test_list_json_has_every_documented_field(cli: Cli, house: Path) -> None:
    result = cli("list", house, "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "schema-version": 1,
        "targets": [
            {
                "target": "host",
                "packages": [
                    {"name": "alpha", "version": "1.0", "files": [ALPHA]},
                    {"name": "beta", "version": "2.0", "files": [BETA]},
                ],
            }
        ],
    }


def test_list_of_a_directory_that_is_not_a_wheelhouse_exits_3(cli: Cli, tmp_path: Path) -> None:
    result = cli("list", tmp_path)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {str(tmp_path)!r} is not a wheelhouse (it has no wheelhouse.json)",
        f"hint: {NOT_A_WHEELHOUSE_HINT}",
    ]


# -- merge ----------------------------------------------------------------------------------------

WINDOWS = f"cp3{sys.version_info.minor}-win_amd64"


def test_merge_joins_wheelhouses_of_two_targets(
    cli: Cli, house: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("alpha", "1.0", requires=["beta>=2"])
    dists.wheel("beta", "2.0")
    dists.wheel("gamma", "3.0")
    pins = tmp_path / "pins.txt"
    pins.write_text("gamma==3.0\n", encoding="utf-8")
    other = tmp_path / "other"
    built = cli("build", "-r", pins, "-o", other, "-i", index_server.url, "--target", WINDOWS)
    assert built.exit_code == 0, built.stderr
    out = tmp_path / "merged"

    result = cli("merge", house, other, "-o", out)

    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"{out}: 3 files, targets {WINDOWS}, host"
    listed = json.loads(cli("list", out, "--json").stdout)
    assert {t["target"]: [p["name"] for p in t["packages"]] for t in listed["targets"]} == {
        "host": ["alpha", "beta"],
        WINDOWS: ["gamma"],
    }
    assert cli("verify", out).exit_code == 0
    for name in (ALPHA, BETA):
        assert (out / name).read_bytes() == (house / name).read_bytes()


def test_merge_refuses_a_tampered_source_with_exit_6(cli: Cli, house: Path, tmp_path: Path) -> None:
    recorded = sha256_of(house / ALPHA)
    flip_byte(house / ALPHA)
    out = tmp_path / "merged"
    result = cli("merge", house, "-o", out)
    assert result.exit_code == 6
    assert result.stderr.splitlines() == [
        "wheelhouse: verifying 1 wheelhouse",
        f"error: the wheelhouse {str(house)!r} does not match its manifest: {ALPHA!r} has sha256 "
        f"{sha256_of(house / ALPHA)}, the manifest records {recorded}: the file was changed "
        "after the wheelhouse was built",
        f"hint: run 'wheelhouse verify {house}' for every problem, and rebuild that wheelhouse",
    ]
    assert not out.exists()


# -- cache ----------------------------------------------------------------------------------------


def test_cache_dir_follows_the_option_then_the_environment(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "given"
    assert cli("cache", "dir", "--cache-dir", given).stdout == f"{given}\n"
    monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / "env"))
    result = cli("cache", "dir")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{tmp_path / 'env'}\n", "")


def test_cache_info_and_purge_after_a_build_with_cache_dir(
    cli: Cli, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    alpha = dists.wheel("alpha", "1.0")
    sdist = dists.sdist("srconly", "1.0")
    reqs = tmp_path / "requirements.in"
    reqs.write_text("alpha\nsrconly\n", encoding="utf-8")
    cache = tmp_path / "my-cache"
    built = cli(
        "build", "-r", reqs, "-o", tmp_path / "out", "-i", index_server.url, "--cache-dir", cache
    )
    assert built.exit_code == 0, built.stderr
    assert not (tmp_path / "wh-cache").exists()  # WHEELHOUSE_CACHE_DIR was not used

    info = cli("cache", "info", "--cache-dir", cache, "--json")
    assert info.exit_code == 0, info.stderr
    summary = json.loads(info.stdout)
    built_wheel = tmp_path / "out" / "srconly-1.0-py3-none-any.whl"
    assert summary == {
        "schema-version": 1,
        "path": str(cache),
        "files": 2,
        "files-bytes": alpha.stat().st_size + sdist.stat().st_size,
        "built": 1,
        "built-bytes": built_wheel.stat().st_size,
    }
    human = cli("cache", "info", "--cache-dir", cache)
    assert human.stdout.splitlines() == [
        str(cache),
        f"  downloaded files: 2 ({summary['files-bytes'] / 1e6:.1f} MB)",
        f"  built wheels:     1 ({summary['built-bytes'] / 1e6:.1f} MB)",
    ]

    built_files = [p.stat().st_size for p in (cache / "built").rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    purged = cli("cache", "purge", "--cache-dir", cache, "--yes")
    assert (purged.exit_code, purged.stdout) == (0, "")
    # What a purge counts and frees is every file of each part (a built wheel has its record).
    lines = purged.stderr.splitlines()
    assert lines[:3] == [
        f"this removes from {cache}:",
        f"  downloaded files  2 files, {summary['files-bytes'] / 1e6:.1f} MB",
        f"  built wheels      {len(built_files)} files, {sum(built_files) / 1e6:.1f} MB",
    ]
    assert lines[-1] == f"removed {total / 1e6:.1f} MB from the cache"
    after = json.loads(cli("cache", "info", "--cache-dir", cache, "--json").stdout)
    assert (after["files"], after["files-bytes"], after["built"], after["built-bytes"]) == (
        0,
        0,
        0,
        0,
    )


def test_cache_purge_removes_only_what_wheelhouse_cached(cli: Cli, tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    (cache / "NOTES.txt").write_text("mine\n", encoding="utf-8")
    result = cli("cache", "purge", "--cache-dir", cache, "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"nothing to remove in {cache}\n"
    assert (cache / "NOTES.txt").read_text(encoding="utf-8") == "mine\n"
    assert sorted(os.listdir(cache)) == ["NOTES.txt"]
    assert read_manifest(cache) is None


# -- --json and -q everywhere (issue 24 item 19) --------------------------------------------------


def test_index_and_merge_take_json_and_q(cli: Cli, house: Path, tmp_path: Path) -> None:
    indexed = cli("index", house, "--json")
    assert (indexed.exit_code, indexed.stderr) == (0, f"{house / 'simple'}: 2 projects indexed\n")
    assert json.loads(indexed.stdout) == {
        "schema-version": 1,
        "directory": str(house),
        "index": str(house / "simple"),
        "projects": 2,
        "files": 2,
    }
    assert (cli("index", house, "-q").exit_code, cli("index", house, "-q").stderr) == (0, "")
    out = tmp_path / "merged"
    merged = cli("merge", house, "-o", out, "--json")
    assert merged.exit_code == 0, merged.stderr
    assert json.loads(merged.stdout) == {
        "schema-version": 1,
        "output": str(out),
        "sources": [str(house)],
        "files": 2,
        "targets": ["host"],
    }
    quiet = cli("merge", house, "-o", tmp_path / "merged-2", "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_q_leaves_only_what_matters(cli: Cli, house: Path, tmp_path: Path) -> None:
    verified = cli("verify", house, "-q")
    assert (verified.exit_code, verified.stdout, verified.stderr) == (0, "", "")
    flip_byte(house / BETA)
    failed = cli("verify", house, "-q")
    assert failed.exit_code == 6
    assert [line.split(" ")[0] for line in failed.stderr.splitlines()] == ["problem:"]
    flip_byte(house / BETA)
    bundle = tmp_path / "b.tar"
    packed = cli("pack", house, "-o", bundle, "-q")
    assert (packed.exit_code, packed.stderr) == (0, "")
    assert packed.stdout == f"{sha256_of(bundle)}  {bundle}\n"
    unpacked = cli("unpack", bundle, "-o", tmp_path / "out", "-q")
    assert (unpacked.exit_code, unpacked.stdout, unpacked.stderr) == (0, "", "")
    published = cli("publish", house, (tmp_path / "pub").as_uri(), "-q")
    assert (published.exit_code, published.stdout, published.stderr) == (0, "", "")


def test_publish_dry_run_lists_every_key_it_would_upload_and_delete(
    cli: Cli, house: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    target = (tmp_path / "pub").as_uri()
    keys = sorted(p.relative_to(house).as_posix() for p in house.rglob("*") if p.is_file())
    first = cli("publish", house, target, "--dry-run")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines() == [f"upload {key}" for key in keys]
    assert first.stderr.startswith(f"{target}: would upload {len(keys)} objects (")
    assert not (tmp_path / "pub").exists()
    assert cli("publish", house, target, "-q").exit_code == 0
    # The next wheelhouse has beta alone: alpha's wheel, metadata and pages would go.
    dists.wheel("beta", "2.0")
    pins = tmp_path / "pins.txt"
    pins.write_text("beta==2.0\n", encoding="utf-8")
    other = tmp_path / "other"
    built = cli("build", "-q", "-r", pins, "-o", other, "-i", index_server.url)
    assert built.exit_code == 0, built.stderr
    second = cli("publish", other, target, "--dry-run")
    assert second.exit_code == 0, second.stderr
    lines = second.stdout.splitlines()
    assert [line for line in lines if line.startswith("delete ")] == [
        f"delete {ALPHA}",
        f"delete {ALPHA}.metadata",
        "delete simple/alpha/index.html",
        "delete simple/alpha/index.json",
    ]
    assert all(line.startswith(("upload ", "delete ")) for line in lines)
    assert "upload simple/index.html" in lines and f"upload {BETA}" not in lines


def test_the_readme_names_every_command_that_takes_json() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    sentence = readme.split("### JSON output", 1)[1].split("take `--json`", 1)[0]
    listed = set(re.findall(r"`([a-z ]+)`", sentence))
    found = set()
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        for sub_name, sub in getattr(command, "commands", {name: command}).items():
            full = name if sub is command else f"{name} {sub_name}"
            if any("--json" in param.opts for param in sub.params):
                found.add(full)
    assert listed == found


def cache_with_a_proxy_store(root: Path) -> Path:
    """A cache holding one downloaded file (3 bytes) and a proxy store (2,000,000 bytes)."""
    (root / "files" / "aa").mkdir(parents=True)
    (root / "files" / "aa" / "x.whl").write_bytes(b"abc")
    (root / "proxy" / "files").mkdir(parents=True)
    (root / "proxy" / "files" / "y.whl").write_bytes(b"p" * 2_000_000)
    return root


def test_cache_purge_without_a_terminal_or_yes_removes_nothing_and_exits_2(
    cli: Cli, tmp_path: Path
) -> None:
    cache = cache_with_a_proxy_store(tmp_path / "cache")
    before = tree(cache)
    result = cli("cache", "purge", "--cache-dir", cache)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"this removes from {cache}:",
        "  downloaded files  1 file, 0.0 MB",
        "kept: the proxy's store (serve --upstream), 2.0 MB (add --proxy-store to remove it too)",
        "error: cache purge asks before it removes anything, and there is no terminal to ask",
        "hint: pass --yes to remove them",
    ]
    assert tree(cache) == before


def test_cache_purge_keeps_the_proxy_store_unless_asked(cli: Cli, tmp_path: Path) -> None:
    cache = cache_with_a_proxy_store(tmp_path / "cache")
    result = cli("cache", "purge", "--cache-dir", cache, "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "removed 0.0 MB from the cache"
    assert sorted(tree(cache)) == ["proxy/files/y.whl"]

    result = cli("cache", "purge", "--cache-dir", cache, "--yes", "--proxy-store")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"this removes from {cache}:",
        "  the proxy's store (serve --upstream)  1 file, 2.0 MB",
        "removed 2.0 MB from the cache",
    ]
    assert tree(cache) == {}


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("y", 0)])
def test_cache_purge_on_a_terminal_asks_first(tmp_path: Path, answer: str, code: int) -> None:
    cache = cache_with_a_proxy_store(tmp_path / "cache")
    exit_code, shown = on_a_terminal(
        [WHEELHOUSE, "cache", "purge", "--cache-dir", cache], answer=answer
    )
    assert exit_code == code, shown
    assert shown.splitlines() == [
        f"this removes from {cache}:",
        "  downloaded files  1 file, 0.0 MB",
        "kept: the proxy's store (serve --upstream), 2.0 MB (add --proxy-store to remove it too)",
        f"remove them? [y/N]: {answer}",
        "nothing removed" if answer == "n" else "removed 0.0 MB from the cache",
    ]
    left = sorted(tree(cache))
    assert left == (
        ["files/aa/x.whl", "proxy/files/y.whl"] if answer == "n" else ["proxy/files/y.whl"]
    )
