"""house.merge: wheelhouses from several machines joined into one, verified, locks kept."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.tags import sys_tags

from tests.support.dists import DistFactory, make_wheel
from tests.support.files import entries as snapshot
from tests.support.files import sha256_of
from tests.support.fixtures import MakeVenv, Offline
from tests.support.wheelhouses import (
    LINUX,
    LINUX_ENV,
    LINUX_TAG,
    OLD,
    WINDOWS,
    WINDOWS_ENV,
    WINDOWS_TAG,
    lock_of,
    make_wheelhouse,
    record_of,
)
from wheelhouse._base._pip import offline_env
from wheelhouse.errors import (
    ConflictError,
    HashMismatchError,
    InvalidWheelhouseError,
    OutputDirError,
    TamperedError,
    UsageError,
)
from wheelhouse.house.directory import put_in_place
from wheelhouse.house.export import write_requirements
from wheelhouse.house.manifest import (
    MANIFEST_NAME,
    BuiltFrom,
    Inputs,
    Manifest,
    Sha256,
    read_manifest,
)
from wheelhouse.house.merge import MERGED_FROM, merge
from wheelhouse.house.verify import verify


def requirement_pins(path: Path) -> dict[str, set[str]]:
    """``name==version`` -> the sha256 hashes a requirements file gives it."""
    pins: dict[str, set[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        text = line.strip().rstrip("\\").strip()
        if text.startswith("--hash=sha256:"):
            pins[current].add(text.removeprefix("--hash=sha256:"))
        else:
            current = text
            pins[current] = set()
    return pins


class Wheels:
    """The tiny dists of two platforms' wheelhouses."""

    def __init__(self, dists: DistFactory) -> None:
        self.common = dists.wheel("common", "1.0")
        self.app = dists.wheel(
            "app", "1.0", requires=["common", "fastlib", 'colorama; sys_platform == "win32"']
        )
        self.fastlib_linux = dists.wheel("fastlib", "2.0", tag=LINUX_TAG)
        self.fastlib_windows = dists.wheel("fastlib", "2.0", tag=WINDOWS_TAG)
        self.colorama = dists.wheel("colorama", "0.4.6")

    @property
    def linux(self) -> list[Path]:
        return [self.app, self.common, self.fastlib_linux]

    @property
    def windows(self) -> list[Path]:
        return [self.app, self.colorama, self.common, self.fastlib_windows]


@pytest.fixture
def wheels(dists: DistFactory) -> Wheels:
    return Wheels(dists)


@pytest.fixture
def linux(tmp_path: Path, wheels: Wheels) -> Path:
    make_wheelhouse(tmp_path / "linux", wheels.linux, locks=[lock_of(LINUX, wheels.linux)])
    return tmp_path / "linux"


@pytest.fixture
def windows(tmp_path: Path, wheels: Wheels) -> Path:
    make_wheelhouse(tmp_path / "windows", wheels.windows, locks=[lock_of(WINDOWS, wheels.windows)])
    return tmp_path / "windows"


# -- a clean merge ---------------------------------------------------------------------------


def test_merge_ships_every_file_once_and_keeps_each_targets_lock(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"

    manifest = merge([linux, windows], out)

    assert manifest == read_manifest(out)
    shipped = {w.name: w for w in [*wheels.linux, *wheels.windows]}
    assert [r.filename for r in manifest.files] == [
        wheels.app.name,
        wheels.colorama.name,
        wheels.common.name,
        wheels.fastlib_linux.name,
        wheels.fastlib_windows.name,
    ]
    for record in manifest.files:
        assert (
            sha256_of(out / record.filename) == record.sha256 == sha256_of(shipped[record.filename])
        )
    assert sorted(p.name for p in out.glob("*.whl")) == sorted(shipped)
    assert manifest.locks == (lock_of(LINUX, wheels.linux), lock_of(WINDOWS, wheels.windows))
    assert verify(out).ok, verify(out).problems


def test_merge_writes_a_requirements_file_per_target_with_its_own_hashes(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"
    merge([linux, windows], out)

    assert not (out / "requirements.txt").exists()
    assert requirement_pins(out / f"requirements.{LINUX}.txt") == {
        "app==1.0": {sha256_of(wheels.app)},
        "common==1.0": {sha256_of(wheels.common)},
        "fastlib==2.0": {sha256_of(wheels.fastlib_linux)},
    }
    assert requirement_pins(out / f"requirements.{WINDOWS}.txt") == {
        "app==1.0": {sha256_of(wheels.app)},
        "colorama==0.4.6": {sha256_of(wheels.colorama)},
        "common==1.0": {sha256_of(wheels.common)},
        "fastlib==2.0": {sha256_of(wheels.fastlib_windows)},
    }


def test_merge_writes_a_pylock_covering_both_targets(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"
    merge([linux, windows], out)

    lock = tomllib.loads((out / "pylock.toml").read_text())
    packages = {p["name"]: p for p in lock["packages"]}
    assert sorted(packages) == ["app", "colorama", "common", "fastlib"]
    assert lock["tool"]["wheelhouse"]["targets"] == [LINUX, WINDOWS]
    assert "inputs-fingerprint" not in lock["tool"]["wheelhouse"]
    # colorama is in the Windows lock only; the others are in both.
    colorama_marker = Marker(packages["colorama"]["marker"])
    host = {key: str(value) for key, value in default_environment().items()}
    assert colorama_marker.evaluate({**host, **WINDOWS_ENV})
    assert not colorama_marker.evaluate({**host, **LINUX_ENV})
    assert all("marker" not in packages[n] for n in ("app", "common", "fastlib"))
    assert {w["name"]: w["hashes"]["sha256"] for w in packages["fastlib"]["wheels"]} == {
        wheels.fastlib_linux.name: sha256_of(wheels.fastlib_linux),
        wheels.fastlib_windows.name: sha256_of(wheels.fastlib_windows),
    }
    assert all(w["path"] == f"./{w['name']}" for p in packages.values() for w in p["wheels"])


def test_merge_writes_the_index_of_every_file(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"
    merge([linux, windows], out)

    root = json.loads((out / "simple" / "index.json").read_text())
    assert [p["name"] for p in root["projects"]] == ["app", "colorama", "common", "fastlib"]
    fastlib = json.loads((out / "simple" / "fastlib" / "index.json").read_text())
    assert {f["filename"]: f["hashes"]["sha256"] for f in fastlib["files"]} == {
        wheels.fastlib_linux.name: sha256_of(wheels.fastlib_linux),
        wheels.fastlib_windows.name: sha256_of(wheels.fastlib_windows),
    }
    for wheel in [*wheels.linux, *wheels.windows]:
        assert (out / f"{wheel.name}.metadata").read_bytes().startswith(b"Metadata-Version: ")


def test_merge_records_its_sources_and_no_fingerprint(
    tmp_path: Path, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"
    manifest = merge([linux, windows], out)

    assert manifest.inputs.fingerprint == ""
    assert manifest.inputs.files == ()
    merged_from = manifest.inputs.options[MERGED_FROM]
    assert [m["path"] for m in merged_from] == [str(linux), str(windows)]
    assert [m["targets"] for m in merged_from] == [[LINUX], [WINDOWS]]
    assert [m["created"] for m in merged_from] == [OLD, OLD]
    assert merged_from[0]["inputs"]["fingerprint"] == "f" * 64
    assert merged_from[0]["inputs"]["options"] == {"targets": [LINUX]}
    assert manifest.generator.startswith("wheelhouse ")
    assert manifest.created != OLD


def test_merge_of_a_merged_wheelhouse_and_one_more_target(
    tmp_path: Path, dists: DistFactory, wheels: Wheels, linux: Path, windows: Path
) -> None:
    both = tmp_path / "both"
    merge([linux, windows], both)
    mac_wheels = [wheels.app, wheels.common, dists.wheel("fastlib", "2.0", tag="cp311-abi3-any")]
    mac = tmp_path / "mac"
    mac_lock = lock_of(
        "cp311-macosx_11_0_arm64",
        mac_wheels,
        tags=("cp311-cp311-macosx_11_0_arm64",),
        environment={**LINUX_ENV, "sys_platform": "darwin", "platform_machine": "arm64"},
    )
    make_wheelhouse(mac, mac_wheels, locks=[mac_lock])

    manifest = merge([both, mac, linux], tmp_path / "out")

    assert [lock.target for lock in manifest.locks] == ["cp311-macosx_11_0_arm64", LINUX, WINDOWS]
    assert len(manifest.files) == 6
    assert verify(tmp_path / "out").ok


def test_the_same_target_locked_the_same_way_in_two_sources_is_kept_once(
    tmp_path: Path, wheels: Wheels, linux: Path
) -> None:
    again = tmp_path / "linux-again"
    # Another runner, another kernel: the environment differs only in what describes the machine.
    lock = lock_of(LINUX, wheels.linux, environment={**LINUX_ENV, "platform_release": "6.8"})
    make_wheelhouse(again, wheels.linux, locks=[lock])

    manifest = merge([linux, again], tmp_path / "out")

    assert manifest.locks == (lock_of(LINUX, wheels.linux),)
    assert (tmp_path / "out" / "requirements.txt").is_file()
    assert not (tmp_path / "out" / f"requirements.{LINUX}.txt").exists()


def test_a_single_source_is_copied_verified(tmp_path: Path, wheels: Wheels, linux: Path) -> None:
    manifest = merge([linux], tmp_path / "out")

    assert manifest.locks == read_manifest(linux).locks  # type: ignore[union-attr]
    assert requirement_pins(tmp_path / "out" / "requirements.txt") == requirement_pins(
        linux / "requirements.txt"
    )


def test_files_the_source_manifest_does_not_record_are_not_merged(
    tmp_path: Path, linux: Path, windows: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (linux / "NOTES.md").write_text("hand-written\n")
    shutil.copy(windows / next(windows.glob("colorama-*.whl")).name, linux / "stray-1.0.whl")
    out = tmp_path / "out"

    with caplog.at_level(logging.WARNING, logger="wheelhouse.house.merge"):
        merge([linux, windows], out)

    assert not (out / "NOTES.md").exists()
    assert not (out / "stray-1.0.whl").exists()
    assert f"{linux}: not merging 2 files its manifest does not record" in caplog.text
    assert verify(out).ok


# -- conflicts -------------------------------------------------------------------------------


def test_one_filename_with_two_hashes_is_an_error_naming_both(
    tmp_path: Path, wheels: Wheels, linux: Path
) -> None:
    other = make_wheel(tmp_path / "elsewhere", "common", "1.0", requires=["six"])
    assert other.name == wheels.common.name
    assert sha256_of(other) != sha256_of(wheels.common)
    second = tmp_path / "second"
    make_wheelhouse(second, [wheels.app, other], locks=[lock_of(WINDOWS, [wheels.app, other])])
    out = tmp_path / "out"

    with pytest.raises(HashMismatchError) as caught:
        merge([linux, second], out)

    error = caught.value
    assert error.filename == wheels.common.name
    assert (error.expected, error.actual) == (sha256_of(wheels.common), sha256_of(other))
    assert error.message == (
        f"{wheels.common.name!r} differs between the wheelhouses {str(linux)!r} "
        f"(sha256 {sha256_of(wheels.common)}, {wheels.common.stat().st_size} bytes) and "
        f"{str(second)!r} (sha256 {sha256_of(other)}, {other.stat().st_size} bytes); "
        "one wheelhouse can hold only one file of that name"
    )
    assert error.hint is not None and "merge only one of them" in error.hint
    assert not out.exists()


def test_wheels_built_twice_from_one_sdist_get_a_hint_saying_so(
    tmp_path: Path, wheels: Wheels
) -> None:
    other = make_wheel(tmp_path / "elsewhere", "common", "1.0", requires=["six"])
    built = BuiltFrom("common-1.0.tar.gz", Sha256("5" * 64), "https://x.invalid/c.tar.gz", "b")
    first, second = tmp_path / "first", tmp_path / "second"
    make_wheelhouse(
        first, [wheels.common], locks=[lock_of(LINUX, [wheels.common])], origins={other.name: built}
    )
    make_wheelhouse(second, [other], locks=[lock_of(WINDOWS, [other])], origins={other.name: built})

    with pytest.raises(HashMismatchError) as caught:
        merge([first, second], tmp_path / "out")

    assert caught.value.hint is not None
    assert caught.value.hint.startswith(
        "both wheels were built from 'common-1.0.tar.gz', and the builds are not byte-identical"
    )


def test_one_target_locked_differently_is_an_error_naming_target_and_sources(
    tmp_path: Path, dists: DistFactory, wheels: Wheels, linux: Path
) -> None:
    newer = dists.wheel("common", "1.1")
    files = [wheels.app, newer, wheels.fastlib_linux]
    second = tmp_path / "second"
    make_wheelhouse(second, files, locks=[lock_of(LINUX, files)])
    out = tmp_path / "out"

    with pytest.raises(ConflictError) as caught:
        merge([linux, second], out)

    assert caught.value.message == (
        f"the target {LINUX!r} is locked differently in the wheelhouses {str(linux)!r} and "
        f"{str(second)!r}: only the first pins common==1.0; only the second pins common==1.1"
    )
    assert caught.value.hint == (
        "rebuild one of them from the same requirements, or merge only one of them"
    )
    assert not out.exists()


def test_one_target_with_other_files_for_the_same_pins_is_an_error(
    tmp_path: Path, dists: DistFactory, wheels: Wheels, linux: Path
) -> None:
    older_glibc = dists.wheel("fastlib", "2.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    files = [wheels.app, wheels.common, older_glibc]
    second = tmp_path / "second"
    make_wheelhouse(second, files, locks=[lock_of(LINUX, files)])

    with pytest.raises(ConflictError) as caught:
        merge([linux, second], tmp_path / "out")

    assert caught.value.message.endswith(
        f"fastlib==2.0 is installed from {wheels.fastlib_linux.name} in the first "
        f"and from {older_glibc.name} in the second"
    )


def test_host_locks_of_different_platforms_are_kept_apart_by_platform(
    tmp_path: Path, wheels: Wheels
) -> None:
    # A CI matrix: each runner builds its own platform natively ('host'), because a compiled
    # sdist builds only there; the merge names each host lock after its platform.
    first, second, third = tmp_path / "x86", tmp_path / "arm", tmp_path / "x86-again"
    common = [wheels.common]
    x86 = ("cp312-cp312-manylinux_2_35_x86_64",)
    arm = ("cp312-cp312-manylinux_2_35_aarch64",)
    make_wheelhouse(first, common, locks=[lock_of("host", common, tags=x86)])
    make_wheelhouse(second, common, locks=[lock_of("host", common, tags=arm)])

    merged = merge([first, second], tmp_path / "out")

    names = ["host-cp312-manylinux_2_35_aarch64", "host-cp312-manylinux_2_35_x86_64"]
    assert [(lock.target, lock.tags) for lock in merged.locks] == [(names[0], arm), (names[1], x86)]
    for name in names:
        text = (tmp_path / "out" / f"requirements.{name}.txt").read_text(encoding="utf-8")
        assert f"for target {name!r}" in text
        assert "--dry-run" not in text  # a native lock is checked by installing on its machine
    assert not (tmp_path / "out" / "requirements.host.txt").exists()

    # Merging the result with another native build of one of those platforms joins its lock.
    make_wheelhouse(third, common, locks=[lock_of("host", common, tags=x86)])
    again = merge([tmp_path / "out", third], tmp_path / "out2")
    assert [lock.target for lock in again.locks] == names


def test_a_named_target_with_other_tags_is_an_error(tmp_path: Path, wheels: Wheels) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    common = [wheels.common]
    make_wheelhouse(first, common, locks=[lock_of(LINUX, common)])
    make_wheelhouse(
        second, common, locks=[lock_of(LINUX, common, tags=("cp311-abi3-manylinux_2_28_x86_64",))]
    )

    with pytest.raises(ConflictError, match=f"the target {LINUX!r} has different tags"):
        merge([first, second], tmp_path / "out")


# -- sources that cannot be merged -----------------------------------------------------------


def test_a_tampered_source_is_refused_naming_source_and_file(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    target = windows / wheels.colorama.name
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    out = tmp_path / "out"

    with pytest.raises(TamperedError) as caught:
        merge([linux, windows], out)

    assert caught.value.message == (
        f"the wheelhouse {str(windows)!r} does not match its manifest: "
        f"{wheels.colorama.name!r} has sha256 {sha256_of(target)}, the manifest records "
        f"{sha256_of(wheels.colorama)}: the file was changed after the wheelhouse was built"
    )
    assert caught.value.hint == (
        f"run 'wheelhouse verify {windows}' for every problem, and rebuild that wheelhouse"
    )
    assert not out.exists()


def test_a_source_missing_files_is_refused_and_counts_them(
    tmp_path: Path, wheels: Wheels, linux: Path
) -> None:
    (linux / wheels.common.name).unlink()
    (linux / wheels.app.name).write_bytes(b"short")

    with pytest.raises(TamperedError) as caught:
        merge([linux], tmp_path / "out")

    assert caught.value.message.startswith(f"the wheelhouse {str(linux)!r} does not match")
    assert caught.value.message.endswith(" (and 1 more problems)")


def test_a_directory_that_is_no_wheelhouse_is_refused_by_name(tmp_path: Path, linux: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.whl").write_bytes(b"x")

    with pytest.raises(InvalidWheelhouseError, match=f"{str(plain)!r} is not a wheelhouse"):
        merge([linux, plain], tmp_path / "out")
    with pytest.raises(InvalidWheelhouseError, match=f"{str(tmp_path / 'nope')!r} does not exist"):
        merge([linux, tmp_path / "nope"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_source_whose_manifest_names_files_it_does_not_ship_is_refused(
    tmp_path: Path, wheels: Wheels, linux: Path
) -> None:
    manifest = read_manifest(linux)
    assert manifest is not None
    broken = Manifest(
        generator=manifest.generator,
        created=manifest.created,
        inputs=manifest.inputs,
        files=tuple(r for r in manifest.files if r.filename != wheels.common.name),
        locks=manifest.locks,
    )
    (linux / MANIFEST_NAME).write_text(broken.to_json())

    with pytest.raises(InvalidWheelhouseError, match=f"the manifest of {str(linux)!r} is incons"):
        merge([linux], tmp_path / "out")


def test_no_source_or_a_source_named_twice_is_a_usage_error(tmp_path: Path, linux: Path) -> None:
    with pytest.raises(UsageError, match="nothing to merge"):
        merge([], tmp_path / "out")
    with pytest.raises(UsageError, match="is named twice"):
        merge([linux, tmp_path / "." / "linux"], tmp_path / "out")


@pytest.mark.parametrize("where", ["inside-source", "around-source"])
def test_an_output_nested_with_a_source_is_refused(
    tmp_path: Path, linux: Path, windows: Path, where: str
) -> None:
    before = snapshot(linux)
    out = linux / "merged" if where == "inside-source" else tmp_path
    sources = [linux, windows]

    with pytest.raises(OutputDirError, match="are inside one another"):
        merge(sources, out)
    assert snapshot(linux) == before


def test_an_output_that_is_not_a_wheelhouse_is_refused(tmp_path: Path, linux: Path) -> None:
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("mine\n")

    with pytest.raises(OutputDirError, match="is not empty and is not a wheelhouse"):
        merge([linux], out)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


# -- the output replaces a previous one atomically -------------------------------------------


def test_a_previous_output_is_replaced_whole_keeping_foreign_files(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"
    merge([windows], out)
    (out / "README.txt").write_text("ours\n")
    assert (out / wheels.colorama.name).exists()

    manifest = merge([linux], out)

    assert sorted(p.name for p in out.glob("*.whl")) == sorted(w.name for w in wheels.linux)
    assert not (out / f"{wheels.colorama.name}.metadata").exists()
    assert not (out / "simple" / "colorama").exists()
    assert (out / "README.txt").read_text() == "ours\n"
    assert read_manifest(out) == manifest
    assert verify(out).user_files == ("README.txt",)  # the user's own: named, no problem
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_a_failed_merge_leaves_the_previous_output_untouched(
    tmp_path: Path, dists: DistFactory, wheels: Wheels, linux: Path, windows: Path
) -> None:
    out = tmp_path / "out"
    merge([linux, windows], out)
    before = snapshot(out)
    files = [wheels.app, dists.wheel("common", "1.1"), wheels.fastlib_linux]
    conflicting = tmp_path / "conflicting"
    make_wheelhouse(conflicting, files, locks=[lock_of(LINUX, files)])

    with pytest.raises(ConflictError):
        merge([linux, windows, conflicting], out)

    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_the_output_may_be_one_of_the_sources(
    tmp_path: Path, wheels: Wheels, linux: Path, windows: Path
) -> None:
    (linux / "README.txt").write_text("ours\n")

    manifest = merge([linux, windows], linux)

    assert [lock.target for lock in manifest.locks] == [LINUX, WINDOWS]
    assert read_manifest(linux) == manifest
    assert (verify(linux).problems, verify(linux).user_files) == ((), ("README.txt",))
    assert (linux / "README.txt").read_text() == "ours\n"
    assert (linux / f"requirements.{WINDOWS}.txt").is_file()
    assert not (linux / "requirements.txt").exists()
    assert manifest.inputs.options[MERGED_FROM][0]["path"] == str(linux)


# -- plain pip installs a merged wheelhouse offline ------------------------------------------


@pytest.mark.slow
def test_plain_pip_installs_the_host_target_of_a_merge_offline(
    tmp_path: Path,
    dists: DistFactory,
    wheels: Wheels,
    windows: Path,
    make_venv: MakeVenv,
    offline: Offline,
) -> None:
    host_tag = str(next(iter(sys_tags())))
    fastlib_host = dists.wheel("fastlib", "2.0", tag=host_tag)
    host_wheels = [wheels.app, wheels.common, fastlib_host]
    environment = {k: str(v) for k, v in default_environment().items()}
    here = tmp_path / "here"
    make_wheelhouse(
        here,
        host_wheels,
        locks=[lock_of("host", host_wheels, tags=(host_tag,), environment=environment)],
    )
    out = tmp_path / "out"
    merge([here, windows], out)
    python = make_venv()

    argv = [
        str(python),
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(out),
        "--require-hashes",
        "-r",
        str(out / "requirements.host.txt"),
    ]
    installed = subprocess.run(
        offline(argv), capture_output=True, text=True, env=offline_env(), timeout=300, check=False
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    code = "import app, common, fastlib\nfor m in (app, common, fastlib): print(m.__version__)"
    ran = subprocess.run(
        offline([str(python), "-c", code]), capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.stdout.split() == ["1.0", "1.0", "2.0"], ran.stderr
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=60,
        check=False,
    )
    names = {p["name"] for p in json.loads(listed.stdout)}
    assert "colorama" not in names


def test_build_requirements_of_each_source_are_joined_per_target(
    tmp_path: Path, dists: DistFactory
) -> None:
    app = dists.wheel("app", "1.0")
    setuptools = dists.wheel("setuptools", "80.0")
    cython = dists.wheel("cython", "3.1")
    sources = []
    for name, helper in (("one", setuptools), ("two", cython)):
        directory = tmp_path / name
        lock = lock_of(LINUX, [app])
        build_lock = lock_of(LINUX, [helper])
        manifest = Manifest(
            generator="wheelhouse-tests",
            created=OLD,
            inputs=Inputs(files=()),
            files=(record_of(app), record_of(helper)),
            locks=(lock,),
            build_locks=(build_lock,),
        )
        put_in_place(
            directory, manifest, {app.name: app, helper.name: helper}, [write_requirements]
        )
        sources.append(directory)

    merged = merge(sources, tmp_path / "out")

    [joined] = merged.build_locks
    assert joined.target == LINUX
    assert [(e.name, e.version) for e in joined.entries] == [
        ("cython", "3.1"),
        ("setuptools", "80.0"),
    ]
    assert {r.filename for r in merged.files} == {app.name, setuptools.name, cython.name}
    # Build requirements are shipped, never part of what installs.
    assert "cython" not in (tmp_path / "out" / "requirements.txt").read_text(encoding="utf-8")
