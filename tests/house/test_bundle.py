"""house.bundle and `wheelhouse pack`/`unpack`: one-file bundles carried across an air gap."""

from __future__ import annotations

import ensurepip
import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import sys_tags

from tests.support.cli import error_lines
from tests.support.dists import DistFactory, make_wheel
from tests.support.files import snapshot
from tests.support.fixtures import Cli, MakeVenv, Offline
from tests.support.process import clean_env, run_command, wheelhouse_argv
from tests.support.server import IndexServer
from tests.support.wheelhouses import lock_of, make_wheelhouse
from wheelhouse.errors import ExitCode
from wheelhouse.house.bundle import (
    INFO_NAME,
    SUMS_NAME,
    base_of,
    manifest_id,
    pack,
    parse_size,
    unpack,
)
from wheelhouse.house.directory import scratch_beside
from wheelhouse.house.manifest import Manifest, read_manifest

HOST = "host"


# Every file and folder under a root (hidden ones too), relative path -> bytes.
tree = functools.partial(snapshot, dirs=True)


def members_of(bundle: Path) -> list[tarfile.TarInfo]:
    data = bundle.read_bytes()
    if bundle.name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def hashed_requirements(house: Path) -> list[str | Path]:
    """How INSTALL.txt tells pip to install: hash-checked, from the wheelhouse's lock."""
    return ["--require-hashes", "-r", house / "requirements.txt"]


@pytest.fixture
def house(tmp_path: Path, dists: DistFactory) -> Path:
    wheels = [
        dists.wheel("app", "1.0", requires=["common", "big"]),
        dists.wheel("common", "1.0"),
        dists.wheel("big", "1.0"),
    ]
    make_wheelhouse(tmp_path / "house", wheels, locks=[lock_of(HOST, wheels)])
    return tmp_path / "house"


# -- pack ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.zst"])
def test_pack_is_deterministic_and_sha256sum_accepts_it(
    tmp_path: Path, house: Path, cli: Cli, suffix: str
) -> None:
    first = cli("pack", house, "-o", tmp_path / f"one{suffix}")
    assert first.exit_code == 0, first.stderr
    os.utime(house / "app-1.0-py3-none-any.whl", (1, 1))  # times must not matter
    second = cli("pack", house, "-o", tmp_path / f"two{suffix}")
    assert second.exit_code == 0, second.stderr
    one, two = (tmp_path / f"one{suffix}").read_bytes(), (tmp_path / f"two{suffix}").read_bytes()
    assert one == two
    # stdout is `sha256sum`'s own format for the written file.
    assert first.stdout == f"{hashlib.sha256(one).hexdigest()}  {tmp_path / f'one{suffix}'}\n"
    if suffix == ".tar.gz":
        assert one[3] & 0x08 == 0  # no FNAME field in the gzip header
        assert one[4:8] == b"\0\0\0\0"  # MTIME 0

    extracted = tmp_path / "x"
    extracted.mkdir()
    flag = {".tar": [], ".tar.gz": ["-z"], ".tar.zst": ["--zstd"]}[suffix]
    subprocess.run(["tar", *flag, "-xf", tmp_path / f"one{suffix}", "-C", extracted], check=True)
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", SUMS_NAME],
        cwd=extracted,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert "wheelhouse/app-1.0-py3-none-any.whl: OK" in lines
    assert "wheelhouse/wheelhouse.json: OK" in lines
    assert (extracted / "INSTALL.txt").read_text().count("--require-hashes") == 1
    members = members_of(tmp_path / f"one{suffix}")
    assert [m.name for m in members[:2]] == [INFO_NAME, SUMS_NAME]
    assert [m.name for m in members[2:]] == sorted(m.name for m in members[2:])
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime, m.mode) for m in members} == {
        (0, 0, "", "", 315532800, 0o644)
    }
    assert {"sbom.cdx.json", "sbom.spdx.json", "INSTALL.txt"} <= {m.name for m in members}


def test_pack_json_and_unpack_json(tmp_path: Path, house: Path, cli: Cli) -> None:
    packed = cli("pack", house, "-o", tmp_path / "b.tar", "--json")
    assert packed.exit_code == 0, packed.stderr
    data = json.loads(packed.stdout)
    bundle = tmp_path / "b.tar"
    assert data == {
        "schema-version": 1,
        "kind": "full",
        "compression": "none",
        "base-manifest": None,
        "files": 3,
        "members": data["members"],
        "size": bundle.stat().st_size,
        "volumes": [
            {
                "path": str(bundle),
                "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(),
                "size": bundle.stat().st_size,
            }
        ],
    }
    unpacked = cli("unpack", bundle, "-o", tmp_path / "out", "--json")
    assert unpacked.exit_code == 0, unpacked.stderr
    assert json.loads(unpacked.stdout) == {
        "schema-version": 1,
        "directory": str((tmp_path / "out").absolute()),
        "kind": "full",
        "files": 3,
        "reused": 0,
        "removed": [],
        "targets": [HOST],
    }


def test_pack_refuses_a_tampered_wheelhouse_and_writes_nothing(
    tmp_path: Path, house: Path, cli: Cli
) -> None:
    wheel = house / "big-1.0-py3-none-any.whl"
    manifest = read_manifest(house)
    assert manifest is not None
    recorded = manifest.file(wheel.name).sha256
    data = bytearray(wheel.read_bytes())
    data[10] ^= 0xFF
    wheel.write_bytes(bytes(data))
    result = cli("pack", house, "-o", tmp_path / "b.tar.gz")
    assert result.exit_code == ExitCode.INTEGRITY
    assert error_lines(result.stderr) == [
        f"error: {str(wheel)!r} has sha256 {hashlib.sha256(data).hexdigest()}, the manifest "
        f"records {recorded}; nothing was packed"
    ]
    assert not [p.name for p in tmp_path.iterdir() if "b.tar" in p.name]


def test_pack_usage_errors(tmp_path: Path, house: Path, cli: Cli) -> None:
    result = cli("pack", house, "-o", tmp_path / "b.zip")
    assert result.exit_code == ExitCode.USAGE
    assert error_lines(result.stderr) == [
        f"error: cannot tell the bundle format from {str(tmp_path / 'b.zip')!r}"
    ]
    result = cli("pack", house, "-o", tmp_path / "b.tar", "--split", "lots")
    assert result.exit_code == ExitCode.USAGE
    assert error_lines(result.stderr) == ["error: --split 'lots' is not a size"]
    result = cli("pack", tmp_path / "nothing", "-o", tmp_path / "b.tar")
    assert result.exit_code == ExitCode.INPUT
    assert not (tmp_path / "b.tar").exists()


def test_parse_size() -> None:
    assert parse_size("4G") == 4 * 1024**3
    assert parse_size("700M") == 700 * 1024**2
    assert parse_size("100k") == 100 * 1024
    assert parse_size("512") == 512


@pytest.mark.parametrize("command", ["pack", "unpack", "sbom"])
def test_help(cli: Cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout


# -- unpack --------------------------------------------------------------------------------


@pytest.mark.slow
def test_round_trip_offline_then_plain_pip_and_uv_install(
    tmp_path: Path, house: Path, cli: Cli, offline: Offline, make_venv: MakeVenv
) -> None:
    bundle = tmp_path / "carry" / "house.tar.zst"
    assert cli("pack", house, "-o", bundle).exit_code == 0
    out = tmp_path / "far" / "wheelhouse"
    proc = subprocess.run(
        offline([sys.executable, "-m", "wheelhouse", "unpack", str(bundle), "-o", str(out)]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert cli("verify", out).exit_code == 0
    assert tree(out) == {k: v for k, v in tree(house).items()}

    python = make_venv()  # the pip that `python -m venv` bundles
    pip = subprocess.run(
        offline(
            [
                python,
                "-m",
                "pip",
                "install",
                "--no-index",
                "--find-links",
                out,
                *hashed_requirements(out),
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    from uv import find_uv_bin  # a test dependency: missing, the test fails

    uv = find_uv_bin()
    python_uv = make_venv("uv-venv", with_pip=False)
    installed = subprocess.run(
        offline(
            [
                uv,
                "pip",
                "install",
                "--python",
                python_uv,
                "--no-index",
                "--find-links",
                out,
                *hashed_requirements(out),
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    for interpreter in (python, python_uv):
        imported = subprocess.run(
            [interpreter, "-c", "import app, big, common; print(app.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert imported.stdout == "1.0\n", imported.stderr


def test_unpack_replaces_an_older_wheelhouse_and_keeps_foreign_files(
    tmp_path: Path, house: Path, dists: DistFactory
) -> None:
    bundle = tmp_path / "b.tar.gz"
    pack(house, bundle)
    other = tmp_path / "other"
    zzz = [dists.wheel("zzz", "1.0")]
    make_wheelhouse(other, zzz, locks=[lock_of(HOST, zzz)])
    (other / "NOTES.txt").write_text("mine\n")
    result = unpack(bundle, other)
    assert result.kind == "full"
    assert (other / "NOTES.txt").read_text() == "mine\n"
    assert not (other / "zzz-1.0-py3-none-any.whl").exists()
    assert read_manifest(other) == read_manifest(house)


_KILLED_UNPACK = """
import os, signal, sys
from pathlib import Path
from wheelhouse.house.directory import scratch_beside
with scratch_beside(Path(sys.argv[1]), "unpack") as scratch:
    (scratch / "half.whl").write_bytes(b"half a wheel")
    print(scratch, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_scratch_of_a_killed_unpack_is_removed_by_the_next_run(
    tmp_path: Path, house: Path
) -> None:
    bundle = tmp_path / "b.tar.gz"
    pack(house, bundle)
    out = tmp_path / "target"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_UNPACK, str(out)], capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr
    left = Path(killed.stdout.strip())
    assert left.parent == tmp_path and left.name.startswith(".target.unpack-")
    assert (left / "half.whl").read_bytes() == b"half a wheel"
    # A scratch directory another run is still working in is left alone.
    with scratch_beside(out, "unpack") as busy:
        unpack(bundle, out)
        assert busy.is_dir()
    assert not left.exists()
    assert read_manifest(out) == read_manifest(house)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".target")) == []


def _heavy_house(tmp_path: Path, dists: DistFactory) -> Path:
    """A wheelhouse of wheels holding 8 MiB of incompressible bytes each: slow to pack."""
    wheels = []
    for number in range(4):
        wheel = dists.wheel(f"heavy{number}", "1.0")
        with zipfile.ZipFile(wheel, "a", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(f"heavy{number}/blob.bin", os.urandom(8 << 20))
        wheels.append(wheel)
    make_wheelhouse(tmp_path / "heavy", wheels, locks=[lock_of(HOST, wheels)])
    return tmp_path / "heavy"


def _pack_temps(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(".out.tar.gz."))


def test_a_killed_pack_leaves_a_temp_file_the_next_pack_removes(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    """Issue 22 row 13: a killed pack left its temporary file beside the bundle for good."""
    house = _heavy_house(tmp_path, dists)
    where = tmp_path / "bundles"
    where.mkdir()
    output = where / "out.tar.gz"
    argv = [sys.executable, "-m", "wheelhouse", "pack", str(house), "-o", str(output)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            temps = _pack_temps(where)
            if temps and temps[0].stat().st_size > 0:
                break  # it is writing the bundle
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait()
    (leftover,) = _pack_temps(where)
    assert not output.exists()
    # What is not a killed pack's leftover stays: a file of another name, and the temporary
    # file of a pack that is still running (its lock held; here by this test).
    foreign = where / ".out.tar.gz.notes.tmp"
    foreign.write_bytes(b"mine")
    running = where / ".out.tar.gz.0123456789ab.tmp"
    running.write_bytes(b"a running pack's")
    holder = os.open(running, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    old = time.time() - 60  # both old enough to be taken for leftovers by their age
    for path in (leftover, foreign, running):
        os.utime(path, (old, old))
    try:
        result = cli("pack", house, "-o", output)
    finally:
        os.close(holder)

    assert result.exit_code == 0, result.stderr
    assert not leftover.exists()
    assert foreign.read_bytes() == b"mine"
    assert running.read_bytes() == b"a running pack's"
    assert _pack_temps(where) == sorted([foreign, running])
    assert cli("unpack", output, "-o", tmp_path / "again").exit_code == 0


# -- hostile bundles -----------------------------------------------------------------------


def _info(kind: str = "full") -> bytes:
    return json.dumps(
        {"format": "wheelhouse-bundle", "format-version": 1, "kind": kind, "manifest": "0" * 64}
    ).encode()


def craft(path: Path, members: Sequence[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A bundle whose bundle.json and SHA256SUMS are right, with ``members`` after them."""
    info = _info()
    regular = {m.name: data for m, data in members if m.isfile()}
    sums = f"{hashlib.sha256(info).hexdigest()}  {INFO_NAME}\n" + "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in regular.items()
    )
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((INFO_NAME, info), (SUMS_NAME, sums.encode())):
            item = tarfile.TarInfo(name)
            item.size = len(data)
            tar.addfile(item, io.BytesIO(data))
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info, b""


HOSTILE = {
    "dotdot": (
        [_file("wheelhouse/../../evil.txt")],
        "'wheelhouse/../../evil.txt', a path outside the bundle's directory",
    ),
    "absolute": (
        [_file("/tmp/evil.txt")],
        "'/tmp/evil.txt', a path outside the bundle's directory",
    ),
    "symlink": (
        [_special("wheelhouse/link", tarfile.SYMTYPE, "/etc/passwd")],
        "'wheelhouse/link', a link to '/etc/passwd'",
    ),
    "hardlink": (
        [
            _file("wheelhouse/a.txt"),
            _special("wheelhouse/hard", tarfile.LNKTYPE, "wheelhouse/a.txt"),
        ],
        "'wheelhouse/hard', a link to 'wheelhouse/a.txt'",
    ),
    "device": (
        [_special("wheelhouse/null", tarfile.CHRTYPE)],
        "'wheelhouse/null', a device or pipe",
    ),
    "fifo": (
        [_special("wheelhouse/pipe", tarfile.FIFOTYPE)],
        "'wheelhouse/pipe', a device or pipe",
    ),
    "duplicate": (
        [_file("wheelhouse/a.txt"), _file("wheelhouse/a.txt")],
        "'wheelhouse/a.txt', a second member of the same name",
    ),
    "unlisted": (
        [_file("wheelhouse/a.txt")],
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundles_are_refused_with_one_line_and_nothing_written(
    tmp_path: Path, cli: Cli, case: str
) -> None:
    members, why = HOSTILE[case]
    bundle = tmp_path / "in" / "evil.tar"
    bundle.parent.mkdir()
    craft(bundle, members)
    if case == "unlisted":  # a member SHA256SUMS does not name
        with tarfile.open(bundle, "a") as tar:
            info, data = _file("wheelhouse/extra.txt")
            tar.addfile(info, io.BytesIO(data))
        why = "'wheelhouse/extra.txt', which SHA256SUMS does not list"
    before = tree(tmp_path)
    result = cli("unpack", bundle, "-o", tmp_path / "far" / "out")
    assert result.exit_code == ExitCode.INTEGRITY, result.stderr
    assert error_lines(result.stderr) == [
        f"error: the bundle {str(bundle)!r} holds {why}; nothing was written"
    ]
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before
    assert not Path("/tmp/evil.txt").exists() or case != "absolute"


def test_a_flipped_byte_is_refused(tmp_path: Path, house: Path, cli: Cli) -> None:
    bundle = tmp_path / "b.tar"
    pack(house, bundle)
    data = bytearray(bundle.read_bytes())
    offset = data.index(b"big/__init__.py") + 40  # inside the wheel's bytes
    data[offset] ^= 0x01
    bundle.write_bytes(bytes(data))
    before = tree(tmp_path)
    result = cli("unpack", bundle, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INTEGRITY
    [line] = error_lines(result.stderr)
    assert line.startswith("error: 'wheelhouse/big-1.0-py3-none-any.whl' in the bundle ")
    assert line.endswith("; nothing was written")
    assert "SHA256SUMS records" in line
    assert tree(tmp_path) == before


def test_a_damaged_compressed_bundle_is_refused(tmp_path: Path, house: Path, cli: Cli) -> None:
    bundle = tmp_path / "b.tar.gz"
    pack(house, bundle)
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    before = tree(tmp_path)
    result = cli("unpack", bundle, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INTEGRITY, result.stderr
    [line] = error_lines(result.stderr)
    assert line.endswith("nothing was written") or "is damaged" in line, line
    assert tree(tmp_path) == before


def test_not_a_bundle(tmp_path: Path, cli: Cli) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        info, data = _file("hello.txt")
        tar.addfile(info, io.BytesIO(data))
    result = cli("unpack", plain, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT
    assert error_lines(result.stderr) == [
        f"error: {str(plain)!r} is not a wheelhouse bundle: it starts with 'hello.txt', "
        "not bundle.json and SHA256SUMS"
    ]
    missing = cli("unpack", tmp_path / "nope.tar", "-o", tmp_path / "out")
    assert missing.exit_code == ExitCode.INPUT
    assert not (tmp_path / "out").exists()


# -- volumes -------------------------------------------------------------------------------


def test_split_volumes_round_trip_and_a_missing_volume(
    tmp_path: Path, house: Path, cli: Cli
) -> None:
    bundle = tmp_path / "media" / "house.tar"
    result = cli("pack", house, "-o", bundle, "--split", "4K")
    assert result.exit_code == 0, result.stderr
    volumes = sorted(bundle.parent.iterdir())
    assert [v.name for v in volumes] == [f"house.tar.{n:03d}" for n in range(1, len(volumes) + 1)]
    assert len(volumes) >= 3
    assert all(v.stat().st_size == 4096 for v in volumes[:-1])
    assert result.stdout.splitlines() == [
        f"{hashlib.sha256(v.read_bytes()).hexdigest()}  {v}" for v in volumes
    ]
    # `cat` of the volumes is the bundle itself.
    joined = tmp_path / "joined.tar"
    joined.write_bytes(b"".join(v.read_bytes() for v in volumes))
    assert cli("unpack", joined, "-o", tmp_path / "a").exit_code == 0
    assert cli("unpack", volumes[0], "-o", tmp_path / "b").exit_code == 0
    assert cli("verify", tmp_path / "b").exit_code == 0

    volumes[1].rename(tmp_path / "elsewhere")
    before = tree(tmp_path)
    result = cli("unpack", volumes[0], "-o", tmp_path / "c")
    assert result.exit_code == ExitCode.INPUT
    assert error_lines(result.stderr) == [
        f"error: volume {str(volumes[1])!r} of the bundle is missing "
        f"(found {len(volumes) - 1} volumes up to {volumes[-1].name})"
    ]
    assert tree(tmp_path) == before

    (tmp_path / "elsewhere").rename(volumes[1])
    volumes[-1].unlink()
    result = cli("unpack", volumes[0], "-o", tmp_path / "c")
    assert result.exit_code == ExitCode.INPUT, result.stderr
    assert error_lines(result.stderr) == [
        f"error: the bundle {str(volumes[0])!r} ends early after {volumes[-2].name}: its next "
        f"volume ({volumes[-1].name}) is missing or a volume is cut short"
    ]
    assert not (tmp_path / "c").exists()


def test_a_shorter_split_removes_the_stale_volumes_of_its_name(tmp_path: Path, house: Path) -> None:
    bundle = tmp_path / "house.tar"
    first = pack(house, bundle, split=2048)
    second = pack(house, bundle, split=8192)
    assert len(first.volumes) > len(second.volumes)
    assert sorted(p.name for p in tmp_path.glob("house.tar.*")) == [
        v.path.name for v in second.volumes
    ]


# -- updates -------------------------------------------------------------------------------


@pytest.fixture
def newer(tmp_path: Path, dists: DistFactory) -> Path:
    """The house with two pins bumped (app, common); big stays."""
    wheels = [
        dists.wheel("app", "1.1", requires=["common", "big"]),
        dists.wheel("common", "1.1"),
        dists.root / "big-1.0-py3-none-any.whl",
    ]
    make_wheelhouse(tmp_path / "newer", wheels, locks=[lock_of(HOST, wheels)])
    return tmp_path / "newer"


@pytest.mark.parametrize("since", ["bundle", "manifest", "directory"])
def test_update_holds_only_new_files_and_applies_onto_its_base(
    tmp_path: Path, house: Path, newer: Path, cli: Cli, since: str
) -> None:
    full = tmp_path / "full.tar"
    pack(house, full)
    old = {"bundle": full, "manifest": house / "wheelhouse.json", "directory": house}[since]
    update = tmp_path / "update.tar"
    result = cli("pack", newer, "-o", update, "--since", old, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "update"
    assert data["files"] == 2
    assert data["base-manifest"] == manifest_id(base_of(house))
    with tarfile.open(update) as tar:
        wheels = sorted(n for n in tar.getnames() if n.endswith(".whl"))
    assert wheels == [
        "wheelhouse/app-1.1-py3-none-any.whl",
        "wheelhouse/common-1.1-py3-none-any.whl",
    ]

    far = tmp_path / "far"
    assert cli("unpack", full, "-o", far).exit_code == 0
    applied = cli("unpack", update, "-o", far, "--json")
    assert applied.exit_code == 0, applied.stderr
    assert json.loads(applied.stdout)["removed"] == [
        "app-1.0-py3-none-any.whl",
        "common-1.0-py3-none-any.whl",
    ]
    assert cli("verify", far).exit_code == 0
    assert tree(far) == tree(newer)


def test_update_onto_another_wheelhouse_is_refused(
    tmp_path: Path, house: Path, newer: Path, dists: DistFactory, cli: Cli
) -> None:
    update = tmp_path / "update.tar.gz"
    pack(newer, update, since=house)
    other = tmp_path / "other"
    zzz = [dists.wheel("zzz", "1.0")]
    make_wheelhouse(other, zzz, locks=[lock_of(HOST, zzz)])
    before = tree(tmp_path)
    result = cli("unpack", update, "-o", other)
    assert result.exit_code == ExitCode.INPUT
    assert error_lines(result.stderr) == [
        f"error: the bundle {str(update)!r} is an update of the wheelhouse "
        f"{manifest_id(base_of(house))[:12]}, but {str(other.absolute())!r} holds the wheelhouse "
        f"{manifest_id(base_of(other))[:12]}; nothing was written"
    ]
    assert tree(tmp_path) == before
    empty = cli("unpack", update, "-o", tmp_path / "empty")
    assert empty.exit_code == ExitCode.INPUT
    assert "holds no wheelhouse; nothing was written" in error_lines(empty.stderr)[0]
    assert not (tmp_path / "empty").exists()


def test_the_same_update_unpacked_twice_says_it_was_applied(
    tmp_path: Path, house: Path, newer: Path
) -> None:
    # docs/airgap.md's weekly update, typed a second time: it said the directory "holds the
    # wheelhouse <id>" and to "unpack it onto the wheelhouse it was made from".
    full, update, far = tmp_path / "full.tar", tmp_path / "update.tar", tmp_path / "far"
    pack(house, full)
    pack(newer, update, since=house)
    env = clean_env(tmp_path / "home")
    for bundle in (full, update):
        done = run_command(wheelhouse_argv("unpack", bundle, "-o", far), env=env)
        assert done.returncode == 0, done.stderr
    before = tree(tmp_path)
    again = run_command(wheelhouse_argv("unpack", update, "-o", far), env=env)
    assert again.returncode == ExitCode.INPUT, again.stderr
    assert again.stderr.splitlines() == [
        f"error: {str(far)!r} already holds the wheelhouse the update {str(update)!r} makes "
        f"({manifest_id(base_of(newer))[:12]}): it was applied before; nothing was written",
        "hint: nothing to do: the wheelhouse is up to date with this update",
    ]
    assert tree(tmp_path) == before


def test_update_onto_a_base_with_a_damaged_kept_file_is_refused(
    tmp_path: Path, house: Path, newer: Path
) -> None:
    update = tmp_path / "update.tar"
    pack(newer, update, since=house)
    (house / "big-1.0-py3-none-any.whl").write_bytes(b"not the wheel")
    before = tree(house)
    from wheelhouse.errors import TamperedError

    with pytest.raises(TamperedError, match="with the wheelhouse it updates does not verify"):
        unpack(update, house)
    assert tree(house) == before


def reforged(bundle: Path, output: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """``bundle`` with its manifest edited by ``edit``, and bundle.json and SHA256SUMS made
    to match: a hostile bundle that every checksum vouches for."""
    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    manifest = json.loads(members["wheelhouse/wheelhouse.json"])
    edit(manifest)
    data = Manifest.from_json(json.dumps(manifest)).to_json().encode("utf-8")
    members["wheelhouse/wheelhouse.json"] = data
    info = json.loads(members[INFO_NAME])
    info["manifest"] = hashlib.sha256(data).hexdigest()
    members[INFO_NAME] = json.dumps(info).encode()
    rest = sorted(n for n in members if n not in (INFO_NAME, SUMS_NAME))
    members[SUMS_NAME] = "".join(
        f"{hashlib.sha256(members[n]).hexdigest()}  {n}\n" for n in [INFO_NAME, *rest]
    ).encode()
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in [INFO_NAME, SUMS_NAME, *rest]:
            item = tarfile.TarInfo(name)
            item.size = len(members[name])
            tar.addfile(item, io.BytesIO(members[name]))
    return output


@pytest.mark.parametrize("kind", ["update", "full"])
@pytest.mark.parametrize("name", ["../../x", "/etc/hostname", "sub/big-1.0-py3-none-any.whl"])
def test_a_manifest_naming_a_path_is_refused_before_anything_is_linked(
    tmp_path: Path, house: Path, newer: Path, cli: Cli, kind: str, name: str
) -> None:
    """Issue 22 row 11: an update whose manifest names ``../../x`` hard-linked the file
    beside the target's parent into the scratch's parent, then failed and left the link."""
    genuine = tmp_path / "genuine.tar"
    pack(newer, genuine, since=house if kind == "update" else None)

    def rename_big(manifest: dict[str, Any]) -> None:
        for record in manifest["files"]:
            if record["filename"] == "big-1.0-py3-none-any.whl":
                record["filename"] = name

    hostile = reforged(genuine, tmp_path / "hostile.tar", rename_big)
    target = tmp_path / "site" / "wh"
    pack(house, tmp_path / "full.tar")
    assert cli("unpack", tmp_path / "full.tar", "-o", target).exit_code == 0
    (tmp_path / "x").write_bytes(b"the grandparent's own file")
    before = tree(tmp_path)

    result = cli("unpack", hostile, "-o", target)

    assert not (tmp_path / "site" / "x").exists()
    assert tree(tmp_path) == before
    assert result.exit_code == ExitCode.INTEGRITY, result.stderr
    assert error_lines(result.stderr) == [
        f"error: the manifest in the bundle {str(hostile)!r} names the file {name!r}, which is "
        "not a wheel or sdist file name; nothing was written"
    ]


def test_pack_refuses_a_manifest_naming_a_path(tmp_path: Path, house: Path, cli: Cli) -> None:
    (tmp_path / "x").write_bytes(b"not the wheelhouse's")
    manifest = json.loads((house / "wheelhouse.json").read_text(encoding="utf-8"))
    manifest["files"][0]["filename"] = "../x"
    (house / "wheelhouse.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = cli("pack", house, "-o", tmp_path / "b.tar")
    assert result.exit_code != 0
    assert error_lines(result.stderr) == [
        f"error: the manifest of {str(house)!r} names the file '../x', which is not a wheel "
        "or sdist file name"
    ]
    assert not (tmp_path / "b.tar").exists()


# -- installers ----------------------------------------------------------------------------


def _bundled_pip() -> Path:
    """pip's own wheel, as CPython's ensurepip ships it (no network needed)."""
    package = ensurepip._get_packages()["pip"]  # type: ignore[attr-defined]
    if package.wheel_path is not None:
        return Path(package.wheel_path)
    return Path(ensurepip.__file__).parent / "_bundled" / package.wheel_name


@pytest.mark.slow
def test_with_installer_bundles_pip_that_installs_on_a_machine_with_only_python(
    tmp_path: Path,
    house: Path,
    dists: DistFactory,
    index_server: IndexServer,
    cli: Cli,
    offline: Offline,
    make_venv: MakeVenv,
) -> None:
    pip_wheel = _bundled_pip()
    shutil.copyfile(pip_wheel, dists.root / pip_wheel.name)
    make_wheel(dists.root, "uv", "0.9.0")  # a stand-in: uv's real wheels are per platform
    bundle = tmp_path / "b.tar.gz"
    result = cli(
        "pack",
        house,
        "-o",
        bundle,
        "--with-installer",
        "--installer",
        "pip",
        "--installer",
        "uv",
        "-i",
        index_server.url,
    )
    assert result.exit_code == 0, result.stderr
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        info = json.load(tar.extractfile(INFO_NAME))  # type: ignore[arg-type]
    assert f"installers/{pip_wheel.name}" in names
    assert "installers/uv-0.9.0-py3-none-any.whl" in names
    assert info["installers"] == [pip_wheel.name, "uv-0.9.0-py3-none-any.whl"]

    # The far side: no network, no wheelhouse, only tar, sha256sum and a Python without pip.
    far = tmp_path / "far"
    far.mkdir()
    for argv in (["tar", "-xzf", bundle], ["sha256sum", "--quiet", "-c", SUMS_NAME]):
        done = subprocess.run(offline(argv), cwd=far, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    python = make_venv("bare", with_pip=False)  # a Python with no pip at all
    site = tmp_path / "site"
    proc = subprocess.run(
        offline(
            [
                python,
                f"installers/{pip_wheel.name}/pip",
                "install",
                "--no-index",
                "--find-links",
                "wheelhouse",
                *hashed_requirements(Path("wheelhouse")),
                "--target",
                site,
            ]
        ),
        cwd=far,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith("-info")) == [
        "app",
        "big",
        "common",
    ]


def _uv_wheel(dists_root: Path) -> str:
    """A uv wheel laid out as uv's own (its program in uv-VERSION.data/scripts/uv), holding
    the real uv of the test environment."""
    import uv

    wheel = make_wheel(dists_root, "uv", "0.9.0")
    with zipfile.ZipFile(wheel, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.write(uv.find_uv_bin(), "uv-0.9.0.data/scripts/uv")
    return wheel.name


def _commands_for(install_text: str, target: str) -> list[str]:
    lines = install_text.splitlines()
    start = lines.index(f"  target {target}:") + 1
    commands = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        commands.append(line.strip())
    return commands


@pytest.mark.slow
def test_a_uv_only_bundle_says_how_to_run_its_uv_and_the_commands_work_offline(
    tmp_path: Path,
    house: Path,
    dists: DistFactory,
    index_server: IndexServer,
    cli: Cli,
    offline: Offline,
    make_venv: MakeVenv,
) -> None:
    """Issue 24 item 16: a bundle that ships only uv said 'python -m pip install' and never
    named uv."""
    uv_wheel = _uv_wheel(dists.root)
    bundle = tmp_path / "b.tar.gz"
    result = cli(
        "pack", house, "-o", bundle, "--with-installer", "--installer", "uv", "-i", index_server.url
    )
    assert result.exit_code == 0, result.stderr
    with tarfile.open(bundle) as tar:
        install = tar.extractfile("INSTALL.txt").read().decode()  # type: ignore[union-attr]
    assert "pip install --no-index" not in install.replace("uv pip install", "")
    where = f"installers/{uv_wheel.removesuffix('.whl')}"
    program = f"{where}/uv-0.9.0.data/scripts/uv"
    assert _commands_for(install, HOST) == [
        f"python -m zipfile -e installers/{uv_wheel} {where}",
        f"chmod +x {program}",
        f"{program} pip install --python python --offline --no-index --find-links wheelhouse "
        "--require-hashes -r wheelhouse/requirements.txt",
    ]

    # The far side: no network, no wheelhouse, no pip; a venv made active as a user does.
    far = tmp_path / "far"
    far.mkdir()
    python = make_venv("bare", with_pip=False)
    env = {
        **os.environ,
        "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(python.parent.parent),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
    }
    commands = ["tar -xzf ../b.tar.gz", "sha256sum --quiet -c SHA256SUMS"]
    for command in [*commands, *_commands_for(install, HOST)]:
        done = subprocess.run(
            offline(["sh", "-c", command]),
            cwd=far,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, (command, done.stdout + done.stderr)
    imported = subprocess.run(
        [python, "-c", "import app, big, common; print(app.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (imported.returncode, imported.stdout) == (0, "1.0\n"), imported.stderr


def test_install_txt_names_the_uv_wheel_of_each_target(tmp_path: Path, dists: DistFactory) -> None:
    windows = f"cp3{sys.version_info.minor}-win_amd64"
    app = dists.wheel("app", "1.0")
    house = tmp_path / "house"
    make_wheelhouse(house, [app], locks=[lock_of(HOST, [app]), lock_of(windows, [app])])
    extra = []
    for platform, program in [("manylinux_2_17_x86_64", "uv"), ("win_amd64", "uv.exe")]:
        wheel = make_wheel(tmp_path / "uv", "uv", "0.9.0", tag=f"py3-none-{platform}")
        with zipfile.ZipFile(wheel, "a") as archive:
            archive.writestr(f"uv-0.9.0.data/scripts/{program}", b"a program")
        extra.append((wheel.name, wheel))
    bundle = tmp_path / "b.tar"
    pack(house, bundle, extra=extra)
    with tarfile.open(bundle) as tar:
        install = tar.extractfile("INSTALL.txt").read().decode()  # type: ignore[union-attr]
    linux = "installers/uv-0.9.0-py3-none-manylinux_2_17_x86_64"
    win = "installers/uv-0.9.0-py3-none-win_amd64"
    if platform_tag_accepted("manylinux_2_17_x86_64"):
        assert _commands_for(install, HOST) == [
            f"python -m zipfile -e {linux}.whl {linux}",
            f"chmod +x {linux}/uv-0.9.0.data/scripts/uv",
            f"{linux}/uv-0.9.0.data/scripts/uv pip install --python python --offline --no-index "
            "--find-links wheelhouse --require-hashes -r wheelhouse/requirements.host.txt",
        ]
    assert _commands_for(install, windows) == [
        f"python -m zipfile -e {win}.whl {win}",
        f"{win}/uv-0.9.0.data/scripts/uv.exe pip install --python python --offline --no-index "
        f"--find-links wheelhouse --require-hashes -r wheelhouse/requirements.{windows}.txt",
    ]
    assert "python -m pip" not in install


def platform_tag_accepted(platform: str) -> bool:
    return any(tag.platform == platform for tag in sys_tags())


def test_installer_needs_with_installer(tmp_path: Path, house: Path, cli: Cli) -> None:
    result = cli("pack", house, "-o", tmp_path / "b.tar", "--installer", "uv")
    assert result.exit_code == ExitCode.USAGE
    assert error_lines(result.stderr) == ["error: --installer needs --with-installer"]


def test_gzip_bundle_is_plain_gzip(tmp_path: Path, house: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    pack(house, bundle)
    with gzip.open(bundle) as stream, tarfile.open(fileobj=stream) as tar:
        assert tar.getnames()[0] == INFO_NAME


def test_unpack_finds_the_volumes_from_the_bundle_name(tmp_path: Path, house: Path) -> None:
    bundle = tmp_path / "house.tar.gz"
    result = pack(house, bundle, split=2048)
    assert not bundle.exists()
    assert result.volumes[0].path == tmp_path / "house.tar.gz.001"
    unpacked = unpack(bundle, tmp_path / "out")
    assert unpacked.manifest == read_manifest(house)


def test_pack_refuses_to_write_into_its_own_wheelhouse(house: Path, cli: Cli) -> None:
    result = cli("pack", house, "-o", house / "b.tar")
    assert result.exit_code == ExitCode.USAGE
    assert error_lines(result.stderr) == [
        f"error: the bundle {str(house / 'b.tar')!r} would be written into the wheelhouse it packs"
    ]
    assert not (house / "b.tar").exists()


NOT_A_BUNDLE_HINT = (
    "hint: pass the file 'wheelhouse pack' wrote (FILE.tar, FILE.tar.gz or FILE.tar.zst)"
)


def test_a_file_that_is_not_a_tar_is_refused(tmp_path: Path, cli: Cli) -> None:
    # Issue 24 item 7: it was exit 6, "damaged", "copy the bundle again"; the README says a
    # file that is not a bundle is exit 3.
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 40)
    result = cli("unpack", junk, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines() == [
        f"error: {str(junk)!r} is not a wheelhouse bundle: it is not a tar, gzip or zstd archive",
        NOT_A_BUNDLE_HINT,
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        (
            "requirements.txt",
            b"django==5.1\nrequests>=2\n",
            "it is not a tar, gzip or zstd archive",
        ),
        ("empty.tar", b"", "it is empty"),
        (
            "notes.tar.gz",
            gzip.compress(b"some text, gzipped\n" * 40, mtime=0),
            "it is gzip data that holds no tar archive of a bundle",
        ),
    ],
)
def test_a_file_that_is_no_bundle_is_exit_3_not_damaged(
    tmp_path: Path, cli: Cli, name: str, content: bytes, why: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = tree(tmp_path)
    result = cli("unpack", path, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines() == [
        f"error: {str(path)!r} is not a wheelhouse bundle: {why}",
        NOT_A_BUNDLE_HINT,
    ]
    assert tree(tmp_path) == before


def test_a_tarball_of_a_directory_is_not_a_bundle(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "project" / "src").mkdir(parents=True)
    (tmp_path / "project" / "src" / "app.py").write_text("print('hi')\n")
    tarball = tmp_path / "project.tar.gz"
    # As `tar czf project.tar.gz project` writes it: the directory first.
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "project", arcname="project")
    result = cli("unpack", tarball, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines() == [
        f"error: {str(tarball)!r} is not a wheelhouse bundle: it starts with 'project', "
        "not bundle.json and SHA256SUMS",
        "hint: make bundles with 'wheelhouse pack'",
    ]
    assert not (tmp_path / "out").exists()


def test_a_directory_is_not_a_bundle_file(tmp_path: Path, house: Path, cli: Cli) -> None:
    result = cli("unpack", house, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines() == [
        f"error: {str(house)!r} is a directory, not a bundle file",
        "hint: pass the file 'wheelhouse pack' wrote (or its first volume, FILE.001)",
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.zst"])
@pytest.mark.parametrize("keep", [5, 300, 0.5])
def test_a_real_bundle_cut_short_is_still_damaged_exit_6(
    tmp_path: Path, house: Path, cli: Cli, suffix: str, keep: float
) -> None:
    bundle = tmp_path / f"b{suffix}"
    pack(house, bundle)
    data = bundle.read_bytes()
    bundle.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    result = cli("unpack", bundle, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INTEGRITY, result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: the bundle {str(bundle)!r} "), line
    assert line.endswith("nothing was written"), line
    assert "copy the bundle again" in result.stderr
    assert not (tmp_path / "out").exists()
