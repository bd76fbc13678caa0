"""``wheelhouse build --target TAG ...``: one DIR, a lock per target that pip itself accepts.

The dists model a team that builds on this machine and deploys to Linux servers of another
architecture on another CPython (aarch64 on the next CPython, from an x86-64 host) and to
laptops of another operating system on the host's CPython (Windows, or macOS from Windows).
Every foreign target is derived from the host, so the tests hold on any host.
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker

from tests.support.capabilities import need_uv
from tests.support.dists import DistFactory
from tests.support.files import sha256_of
from tests.support.fixtures import Cli, MakeVenv, Offline
from tests.support.process import run_command as run
from tests.support.server import IndexServer
from tests.support.targets import (
    AARCH64,
    ARCH,
    COMPILED,
    CSRC,
    CSRC_TAG,
    EXPECTED,
    HOST_CP,
    HOST_MINOR,
    INCOMPATIBLE_LINES,
    LOOSE,
    NEWPY,
    OS_MARKER,
    OS_PLATFORM,
    OS_SYS_PLATFORM,
    OTHER_CP,
    OTHER_MINOR,
    OTHER_PY,
    OTHER_PY_MARKER,
    PURE,
    SRCPURE_WHEEL,
    TARGETS,
    WINDOWS,
    WINONLY,
    lock_files,
    make_project,
    rewrite_sdist,
)
from wheelhouse.house.manifest import BuiltFrom, Downloaded, Manifest, read_manifest

HOST_PY = f"3.{HOST_MINOR}"
if OTHER_MINOR < HOST_MINOR:
    OTHER_PY_MARKER = f'python_version < "{HOST_PY}"'


# What `uv pip compile --universal` or pip-compile per platform would write: every pin with ==,
# the dependencies behind markers carrying the markers they have in purepkg's metadata.
PINNED = (
    "purepkg==1.0\n"
    f"winonly==1.0 ; {OS_MARKER}\n"
    f"newpy==1.0 ; {OTHER_PY_MARKER}\n"
    "compiled==1.0\n"
    "srcpure==1.0\n"
)


# -- dists ---------------------------------------------------------------------------------------


# -- reading a wheelhouse ------------------------------------------------------------------------


def read_pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """``name -> (version, hashes)`` from a hash-checking requirements file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash=sha256:"):
            assert current is not None, raw
            pins[current][1].append(line.removeprefix("--hash=sha256:"))
            continue
        name, _, version = line.partition("==")
        current = name
        pins[name] = (version, [])
    return pins


def header_command(path: Path, starts: str) -> list[str]:
    """The command a requirements file's header tells users to run, as argv."""
    prefix = f"#   {starts}"
    found = [line for line in path.read_text().splitlines() if line.startswith(prefix)]
    assert len(found) == 1, path.read_text()
    return shlex.split(found[0].removeprefix("#   "))


@dataclass(frozen=True)
class Built:
    out: Path
    stderr: str
    manifest: Manifest


def build(
    cli: Cli,
    tmp_path: Path,
    index: IndexServer,
    text: str,
    *targets: str,
    extra: tuple[str, ...] = (),
) -> Built:
    requirements = tmp_path / "requirements.in"
    requirements.write_text(text)
    out = tmp_path / "house"
    args: list[str | Path] = ["build", "-r", requirements, "-o", out, "-i", index.url, *extra]
    for target in targets:
        args += ["--target", target]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    return Built(out, result.stderr, read_manifest(out))


def test_fully_pinned_input_needs_no_resolver_for_any_target(
    cli: Cli, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    make_project(dists)
    built = build(cli, tmp_path, index_server, PINNED, *TARGETS)
    assert "resolving with" not in built.stderr, built.stderr


@pytest.fixture(params=["pinned", "loose"])
def house(
    request: pytest.FixtureRequest,
    cli: Cli,
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
) -> Built:
    """The project built for the host and the two foreign targets, by either path."""
    make_project(dists)
    if request.param == "loose":
        need_uv("the loose path resolves foreign targets with uv")
    built = build(
        cli, tmp_path, index_server, PINNED if request.param == "pinned" else LOOSE, *TARGETS
    )
    if request.param == "pinned":
        # The fast path answered for every target: no resolver ran.
        assert "resolving with" not in built.stderr, built.stderr
    else:
        pip = importlib.metadata.version("pip")
        assert f"wheelhouse: resolving with pip {pip} for host" in built.stderr.splitlines()
        for target in (AARCH64, WINDOWS):
            assert f"wheelhouse: resolving with uv for {target}" in built.stderr.splitlines()
    return built


# -- the locks -----------------------------------------------------------------------------------


def test_a_requirements_file_per_target_pins_the_right_files(house: Built) -> None:
    out = house.out
    assert not (out / "requirements.txt").exists()
    for target, expected in EXPECTED.items():
        path = out / f"requirements.{target}.txt"
        pins = read_pins(path)
        assert {name: version for name, (version, _) in pins.items()} == dict.fromkeys(
            expected, "1.0"
        ), target
        for name, filename in expected.items():
            # One hash per pin: that of the one file the target installs it from.
            assert pins[name][1] == [sha256_of(out / filename)], (target, name)
        assert lock_files(house.manifest, target) == {
            name: (filename,) for name, filename in expected.items()
        }


def test_marker_dependencies_land_only_in_their_targets_locks(house: Built) -> None:
    holding = {
        name: sorted(t for t in TARGETS if name in read_pins(house.out / f"requirements.{t}.txt"))
        for name in ("winonly", "newpy", "purepkg")
    }
    assert holding == {
        "winonly": [WINDOWS],
        "newpy": [AARCH64],
        "purepkg": sorted(TARGETS),
    }


def test_each_lock_names_its_own_compiled_wheel_and_the_dir_holds_all_three(house: Built) -> None:
    for target, filename in COMPILED.items():
        assert lock_files(house.manifest, target)["compiled"] == (filename,)
        record = house.manifest.file(filename)
        assert record.sha256 == sha256_of(house.out / filename)
        assert isinstance(record.origin, Downloaded)
    shipped = {p.name for p in house.out.iterdir() if p.name.endswith((".whl", ".tar.gz"))}
    assert shipped == {PURE, WINONLY, NEWPY, SRCPURE_WHEEL, *COMPILED.values()}


def test_the_pure_sdist_is_built_once_and_serves_every_target(house: Built) -> None:
    record = house.manifest.file(SRCPURE_WHEEL)
    assert isinstance(record.origin, BuiltFrom)
    assert record.origin.sdist == "srcpure-1.0.tar.gz"
    for target in TARGETS:
        assert lock_files(house.manifest, target)["srcpure"] == (SRCPURE_WHEEL,)
    assert not (house.out / "srcpure-1.0.tar.gz").exists()
    # Built once for three targets.
    lines = house.stderr.splitlines()
    assert [line for line in lines if line.startswith("wheelhouse: built")] == [
        "wheelhouse: built srcpure-1.0.tar.gz"
    ]
    assert "wheelhouse: building 1 wheel from sdists" in lines


def test_the_manifest_records_every_target(house: Built) -> None:
    manifest = house.manifest
    assert [lock.target for lock in manifest.locks] == list(TARGETS)
    assert manifest.inputs.options["targets"] == list(TARGETS)
    by_target = {lock.target: lock for lock in manifest.locks}
    assert by_target[WINDOWS].tags == (f"{HOST_CP}-{HOST_CP}-{OS_PLATFORM}",)
    assert by_target[AARCH64].tags == (f"{OTHER_CP}-{OTHER_CP}-manylinux_2_28_{ARCH}",)
    assert by_target[WINDOWS].environment["sys_platform"] == OS_SYS_PLATFORM
    assert by_target[AARCH64].environment["python_version"] == OTHER_PY
    assert by_target[AARCH64].environment["platform_machine"] == ARCH
    assert by_target["host"].environment["sys_platform"] == sys.platform


def test_pylock_covers_every_target_with_markers(house: Built) -> None:
    lock = tomllib.loads((house.out / "pylock.toml").read_text())
    assert lock["tool"]["wheelhouse"]["targets"] == list(TARGETS)
    environments = {t.target: t.environment for t in house.manifest.locks}
    packages = {package["name"]: package for package in lock["packages"]}
    assert set(packages) == {"compiled", "newpy", "purepkg", "srcpure", "winonly"}
    for name, package in packages.items():
        marker = package.get("marker")
        installs_on = [
            target
            for target in TARGETS
            if marker is None or Marker(marker).evaluate(environments[target])
        ]
        assert installs_on == [t for t in TARGETS if name in EXPECTED[t]], (name, marker)
    assert "marker" not in packages["compiled"]
    assert sorted(w["name"] for w in packages["compiled"]["wheels"]) == sorted(COMPILED.values())
    for wheel in packages["compiled"]["wheels"]:
        assert wheel["hashes"]["sha256"] == sha256_of(house.out / wheel["name"])


def test_rebuild_is_a_noop_for_the_same_targets_and_dropping_one_drops_its_files(
    cli: Cli,
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
) -> None:
    make_project(dists)
    first = build(cli, tmp_path, index_server, PINNED, *TARGETS)
    again = build(cli, tmp_path, index_server, PINNED, *TARGETS)
    files = len(first.manifest.files)
    assert again.stderr.splitlines() == [f"{first.out}: up to date ({files} files)"]
    assert again.manifest == first.manifest
    fewer = build(cli, tmp_path, index_server, PINNED, "host", AARCH64)
    assert [lock.target for lock in fewer.manifest.locks] == ["host", AARCH64]
    names = {p.name for p in fewer.out.iterdir()}
    assert f"requirements.{WINDOWS}.txt" not in names
    assert COMPILED[WINDOWS] not in names and WINONLY not in names
    assert {COMPILED["host"], COMPILED[AARCH64], NEWPY, PURE, SRCPURE_WHEEL} <= names


# -- pip itself accepts each lock, offline ---------------------------------------------------------


def as_pip(argv: list[str], scratch: Path) -> list[str]:
    """The header's ``pip ...`` run by the test environment's pip, checking into ``scratch``."""
    assert argv[0] == "pip"
    command = [sys.executable, "-m", "pip", *argv[1:]]
    if "--target" in command:
        command[command.index("--target") + 1] = str(scratch)
    return command


def would_install(stdout: str) -> list[str]:
    lines = [line for line in stdout.splitlines() if line.startswith("Would install ")]
    assert len(lines) == 1, stdout
    return sorted(lines[0].removeprefix("Would install ").split())


@pytest.mark.slow
def test_pips_offline_dry_run_accepts_every_targets_lock(
    house: Built, offline: Offline, tmp_path: Path
) -> None:
    for target in TARGETS:
        path = house.out / f"requirements.{target}.txt"
        if target == "host":
            install = header_command(path, "pip install --no-index")
            assert install == [
                "pip", "install", "--no-index", "--find-links", ".",
                "--require-hashes", "-r", "requirements.host.txt",
            ]  # fmt: skip
            argv = [*install, "--dry-run", "--only-binary=:all:", "--target", "unused"]
        else:
            argv = header_command(path, "pip install --dry-run")
            version = OTHER_PY if target == AARCH64 else HOST_PY
            assert argv[argv.index("--python-version") + 1] == version
        command = as_pip(argv, tmp_path / f"check-{target}")
        proc = run(offline(command), cwd=house.out)
        assert proc.returncode == 0, (target, proc.stdout, proc.stderr)
        assert would_install(proc.stdout) == sorted(f"{name}-1.0" for name in EXPECTED[target])
        assert not (tmp_path / f"check-{target}").exists()  # a dry run writes nothing


@pytest.mark.slow
def test_the_header_lists_every_platform_because_pip_does_not_expand_manylinux(
    house: Built, offline: Offline, tmp_path: Path
) -> None:
    """pip#10760: ``--platform manylinux_2_28_ARCH`` alone refuses manylinux_2_17 wheels."""
    path = house.out / f"requirements.{AARCH64}.txt"
    argv = header_command(path, "pip install --dry-run")
    platforms = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--platform"]
    assert platforms[0] == f"manylinux_2_28_{ARCH}"
    assert {f"manylinux_2_17_{ARCH}", f"manylinux2014_{ARCH}"} <= set(platforms)
    only_one: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--platform":
            skip = True
            if argv[i + 1] == f"manylinux_2_28_{ARCH}":
                only_one += [arg, argv[i + 1]]
            continue
        only_one.append(arg)
    assert only_one.count("--platform") == 1
    proc = run(offline(as_pip(only_one, tmp_path / "check")), cwd=house.out)
    assert proc.returncode == 1, proc.stdout
    assert "No matching distribution found for compiled==1.0" in proc.stderr, proc.stderr
    # The full header, with every platform the target accepts, succeeds (as above).
    full = run(offline(as_pip(argv, tmp_path / "check")), cwd=house.out)
    assert full.returncode == 0, full.stderr


@pytest.mark.slow
def test_pip_alone_evaluates_markers_for_the_host_under_platform(
    house: Built, index_server: IndexServer, tmp_path: Path
) -> None:
    """pip#4304/pip#11010: pip's own resolution for another OS drops that OS's dependency."""
    report = tmp_path / "pip-report.json"
    proc = run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--report", str(report),
            "--platform", OS_PLATFORM, "--python-version", HOST_PY, "--only-binary=:all:",
            "--target", str(tmp_path / "unused"), "--index-url", index_server.url, "purepkg",
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    chosen = sorted(item["metadata"]["name"] for item in json.loads(report.read_text())["install"])
    assert chosen == ["purepkg"]  # winonly is missing: markers were evaluated for this host
    assert "winonly" in read_pins(house.out / f"requirements.{WINDOWS}.txt")


# -- a compiled project that only ships an sdist -------------------------------------------------


@pytest.fixture
def csrc(dists: DistFactory) -> Path:
    """``csrc 1.0``: an sdist whose backend builds a wheel for this machine's platform only."""
    return rewrite_sdist(dists.sdist(CSRC, "1.0"), tag=CSRC_TAG)


@pytest.mark.parametrize("path", ["pinned", "loose"])
def test_a_compiled_sdist_for_a_foreign_target_is_one_clear_error(
    path: str, cli: Cli, tmp_path: Path, csrc: Path, index_server: IndexServer
) -> None:
    if path == "loose":
        need_uv("the loose path resolves foreign targets with uv")
    requirements = tmp_path / "requirements.in"
    requirements.write_text("csrc==1.0\n" if path == "pinned" else "csrc\n")
    out = tmp_path / "house"
    result = cli(
        "build", "-r", requirements, "-o", out, "-i", index_server.url, "--target", AARCH64
    )
    assert result.exit_code == 9, result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith(("error:", "hint:"))] == INCOMPATIBLE_LINES
    assert lines[-2:] == INCOMPATIBLE_LINES
    assert not out.exists()


def test_keep_sdists_ships_the_compiled_sdist_in_the_foreign_lock(
    cli: Cli, tmp_path: Path, csrc: Path, index_server: IndexServer
) -> None:
    requirements = tmp_path / "requirements.in"
    requirements.write_text("csrc==1.0\n")
    out = tmp_path / "house"
    result = cli(
        "build", "-r", requirements, "-o", out, "-i", index_server.url,
        "--target", AARCH64, "--keep-sdists",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert lock_files(manifest, AARCH64) == {CSRC: ("csrc-1.0.tar.gz",)}
    assert sha256_of(out / "csrc-1.0.tar.gz") == sha256_of(csrc)
    # The wheel built here is for this machine only: the foreign wheelhouse does not ship it.
    assert not (out / f"csrc-1.0-{CSRC_TAG}.whl").exists()
    # A single-target wheelhouse: requirements.txt, pinned to the sdist's hash.
    assert read_pins(out / "requirements.txt") == {CSRC: ("1.0", [sha256_of(csrc)])}
    assert manifest.file("csrc-1.0.tar.gz").kind == "sdist"


# -- install picks the host's lock ---------------------------------------------------------------


@pytest.mark.slow
def test_install_from_a_multi_target_wheelhouse_uses_the_host_lock(
    cli: Cli,
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
    make_venv: MakeVenv,
    offline: Offline,
) -> None:
    make_project(dists)
    built = build(cli, tmp_path, index_server, PINNED, AARCH64, WINDOWS, "host")
    python = make_venv()
    proc = run(
        offline(
            [sys.executable, "-m", "wheelhouse", "install", "-w", built.out, "--python", python,
             "--json"]
        )
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["target"] == "host"
    assert sorted(item["name"] for item in summary["installed"]) == sorted(EXPECTED["host"])
    check = run(
        [
            str(python),
            "-c",
            "import importlib.util as u, compiled, purepkg, srcpure; "
            "print(compiled.__version__, [u.find_spec(m) is None for m in ('winonly', 'newpy')])",
        ]
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "1.0 [True, True]"
