"""pylock.toml: every field against PEP 751, and real installs from it with uv and pip, offline."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker, default_environment
from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from tests.support.capabilities import find_uv, missing
from tests.support.dists import DistFactory
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import Completed, run
from wheelhouse.errors import InvalidWheelhouseError, OutputDirError
from wheelhouse.house.manifest import (
    BuiltFrom,
    Downloaded,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    Origin,
    Sha256,
    TargetLock,
)
from wheelhouse.house.pylock import render_pylock, write_pylock

LINUX = {
    "implementation_name": "cpython",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "platform_release": "6.1.0-this-machine-only",
}
WINDOWS = {
    "implementation_name": "cpython",
    "sys_platform": "win32",
    "platform_machine": "AMD64",
    "python_version": "3.12",
    "python_full_version": "3.12.4",
}
SHA_A = Sha256("a" * 64)
SHA_B = Sha256("b" * 64)
SHA_C = Sha256("c" * 64)
SHA_S = Sha256("5" * 64)


def _record(
    filename: str,
    sha256: str,
    size: int,
    origin: Origin,
    *,
    requires_python: str | None = None,
) -> FileRecord:
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
        kind: Any = "wheel"
    else:
        name, version = parse_sdist_filename(filename)
        kind = "sdist"
    return FileRecord(
        name=name,
        version=str(version),
        filename=filename,
        sha256=Sha256(sha256),
        size=size,
        kind=kind,
        origin=origin,
        requires_python=requires_python,
    )


def _entry(record: FileRecord, *more: FileRecord, requested: bool = False) -> LockEntry:
    return LockEntry(
        name=record.name,
        version=record.version,
        filenames=tuple(r.filename for r in (record, *more)),
        requested=requested,
    )


def _manifest(files: list[FileRecord], *locks: TargetLock, fingerprint: str = "") -> Manifest:
    return Manifest(
        generator="wheelhouse 0.1.0",
        created="2026-11-02T10:00:00Z",
        inputs=Inputs(files=(), fingerprint=fingerprint),
        files=tuple(files),
        locks=locks,
    )


def _host(*entries: LockEntry, environment: dict[str, str] | None = None) -> TargetLock:
    return TargetLock(
        target="host",
        tags=("py3-none-any",),
        environment=LINUX if environment is None else environment,
        entries=entries,
    )


# Three projects: one downloaded wheel, one wheel built here from an sdist that is also kept,
# and one listed first in the manifest to show the output is sorted by name.
ZETA = _record("zeta-0.1-py3-none-any.whl", SHA_C, 30, Downloaded("https://files.example/zeta"))
ALPHA = _record(
    "alpha-1.0-py3-none-any.whl",
    SHA_A,
    1234,
    Downloaded("https://files.example/a/alpha-1.0-py3-none-any.whl"),
    requires_python=">=3.8",
)
BETA_SDIST = _record(
    "beta-2.1.tar.gz", SHA_S, 999, Downloaded("https://files.example/b/beta-2.1.tar.gz")
)
BETA = _record(
    "beta-2.1-py3-none-any.whl",
    SHA_B,
    567,
    BuiltFrom(
        sdist="beta-2.1.tar.gz",
        sdist_sha256=SHA_S,
        sdist_url="https://files.example/b/beta-2.1.tar.gz",
        backend="setuptools.build_meta",
    ),
)


def _three() -> Manifest:
    # beta's lock entry lists only its wheel: the kept sdist must still be in the lock file.
    return _manifest(
        [ZETA, ALPHA, BETA_SDIST, BETA],
        _host(_entry(ZETA), _entry(ALPHA, requested=True), _entry(BETA)),
        fingerprint="f" * 64,
    )


def test_every_field_of_a_single_target_lock() -> None:
    lock = tomllib.loads(render_pylock(_three()))

    assert lock == {
        "lock-version": "1.0",
        "requires-python": ">=3.11",
        "created-by": "wheelhouse",
        "packages": [
            {
                "name": "alpha",
                "version": "1.0",
                "requires-python": ">=3.8",
                "wheels": [
                    {
                        "name": "alpha-1.0-py3-none-any.whl",
                        "path": "./alpha-1.0-py3-none-any.whl",
                        "size": 1234,
                        "hashes": {"sha256": SHA_A},
                    }
                ],
                "tool": {
                    "wheelhouse": {
                        "targets": ["host"],
                        "origins": [
                            {
                                "file": "alpha-1.0-py3-none-any.whl",
                                "url": "https://files.example/a/alpha-1.0-py3-none-any.whl",
                            }
                        ],
                    }
                },
            },
            {
                "name": "beta",
                "version": "2.1",
                "sdist": {
                    "name": "beta-2.1.tar.gz",
                    "path": "./beta-2.1.tar.gz",
                    "size": 999,
                    "hashes": {"sha256": SHA_S},
                },
                "wheels": [
                    {
                        "name": "beta-2.1-py3-none-any.whl",
                        "path": "./beta-2.1-py3-none-any.whl",
                        "size": 567,
                        "hashes": {"sha256": SHA_B},
                    }
                ],
                "tool": {
                    "wheelhouse": {
                        "targets": ["host"],
                        "origins": [
                            {
                                "file": "beta-2.1-py3-none-any.whl",
                                "built-from": {
                                    "filename": "beta-2.1.tar.gz",
                                    "sha256": SHA_S,
                                    "url": "https://files.example/b/beta-2.1.tar.gz",
                                    "backend": "setuptools.build_meta",
                                },
                            },
                            {
                                "file": "beta-2.1.tar.gz",
                                "url": "https://files.example/b/beta-2.1.tar.gz",
                            },
                        ],
                    }
                },
            },
            {
                "name": "zeta",
                "version": "0.1",
                "wheels": [
                    {
                        "name": "zeta-0.1-py3-none-any.whl",
                        "path": "./zeta-0.1-py3-none-any.whl",
                        "size": 30,
                        "hashes": {"sha256": SHA_C},
                    }
                ],
                "tool": {
                    "wheelhouse": {
                        "targets": ["host"],
                        "origins": [
                            {
                                "file": "zeta-0.1-py3-none-any.whl",
                                "url": "https://files.example/zeta",
                            }
                        ],
                    }
                },
            },
        ],
        "tool": {
            "wheelhouse": {
                "manifest": "wheelhouse.json",
                "targets": ["host"],
                "inputs-fingerprint": "f" * 64,
            }
        },
    }


def test_top_level_keys_come_in_the_order_the_spec_lists_them() -> None:
    text = render_pylock(_three())
    positions = [text.index(key) for key in ("lock-version", "requires-python", "created-by")]
    assert positions == sorted(positions)
    assert text.index("created-by") < text.index("[[packages]]") < text.index("[tool.wheelhouse]")


def test_output_depends_on_the_content_not_the_order_of_the_manifest() -> None:
    manifest = _three()
    shuffled = dataclasses.replace(
        manifest,
        files=tuple(reversed(manifest.files)),
        locks=tuple(
            dataclasses.replace(lock, entries=tuple(reversed(lock.entries)))
            for lock in manifest.locks
        ),
    )
    assert render_pylock(shuffled) == render_pylock(manifest)


def test_wheels_are_sorted_by_filename_and_share_one_entry() -> None:
    linux = _record("ujson-5.0-cp311-cp311-manylinux_2_17_x86_64.whl", SHA_A, 10, Downloaded("u"))
    musl = _record("ujson-5.0-cp311-cp311-musllinux_1_1_x86_64.whl", SHA_B, 11, Downloaded("u"))
    lock = tomllib.loads(render_pylock(_manifest([musl, linux], _host(_entry(musl, linux)))))
    (package,) = lock["packages"]
    assert [w["name"] for w in package["wheels"]] == [linux.filename, musl.filename]


def test_versions_sort_as_versions_not_strings() -> None:
    old = _record("pkg-9.0-py3-none-any.whl", SHA_A, 1, Downloaded("u"))
    new = _record("pkg-10.0-py3-none-any.whl", SHA_B, 1, Downloaded("u"))
    windows = TargetLock("win", (), WINDOWS, (_entry(new),))
    lock = tomllib.loads(render_pylock(_manifest([new, old], _host(_entry(old)), windows)))
    assert [p["version"] for p in lock["packages"]] == ["9.0", "10.0"]


def test_requires_python_is_omitted_when_a_target_python_is_unknown() -> None:
    unknown = _host(_entry(ZETA), environment={"sys_platform": "linux"})
    lock = tomllib.loads(render_pylock(_manifest([ZETA], unknown)))
    assert "requires-python" not in lock


def test_requires_python_is_the_oldest_target_python() -> None:
    windows = TargetLock("win", (), WINDOWS, (_entry(ZETA),))
    lock = tomllib.loads(render_pylock(_manifest([ZETA], windows, _host(_entry(ZETA)))))
    assert lock["requires-python"] == ">=3.11"


def test_package_requires_python_is_left_out_when_its_files_disagree() -> None:
    wheel = _record("pkg-1.0-py3-none-any.whl", SHA_A, 1, Downloaded("u"), requires_python=">=3.9")
    sdist = _record("pkg-1.0.tar.gz", SHA_B, 1, Downloaded("u"), requires_python=">=3.7")
    lock = tomllib.loads(render_pylock(_manifest([wheel, sdist], _host(_entry(wheel, sdist)))))
    assert "requires-python" not in lock["packages"][0]


def test_a_package_in_only_some_targets_gets_a_marker_that_selects_those_targets() -> None:
    colorama = _record("colorama-0.4.6-py2.py3-none-any.whl", SHA_A, 1, Downloaded("u"))
    windows = TargetLock("win", (), WINDOWS, (_entry(ZETA), _entry(colorama)))
    lock = tomllib.loads(render_pylock(_manifest([ZETA, colorama], _host(_entry(ZETA)), windows)))

    by_name = {p["name"]: p for p in lock["packages"]}
    assert "marker" not in by_name["zeta"]
    assert by_name["zeta"]["tool"]["wheelhouse"]["targets"] == ["host", "win"]
    assert by_name["colorama"]["tool"]["wheelhouse"]["targets"] == ["win"]
    marker = Marker(by_name["colorama"]["marker"])
    assert marker.evaluate(WINDOWS)
    assert not marker.evaluate(LINUX)
    # The machine-specific variables never reach a marker: it must match other machines too.
    assert "platform_release" not in str(marker)
    assert lock["tool"]["wheelhouse"]["targets"] == ["host", "win"]


def test_one_project_at_two_versions_is_two_entries_with_exclusive_markers() -> None:
    old = _record("numpy-1.26.4-py3-none-any.whl", SHA_A, 1, Downloaded("u"))
    new = _record("numpy-2.2.3-py3-none-any.whl", SHA_B, 1, Downloaded("u"))
    mac = dict(LINUX, sys_platform="darwin", platform_machine="arm64")
    windows = TargetLock("win", (), WINDOWS, (_entry(new),))
    macos = TargetLock("mac", (), mac, (_entry(new),))
    manifest = _manifest([old, new], _host(_entry(old)), windows, macos)
    lock = tomllib.loads(render_pylock(manifest))

    old_entry, new_entry = lock["packages"]
    assert (old_entry["version"], new_entry["version"]) == ("1.26.4", "2.2.3")
    for environment, wanted in ((LINUX, "1.26.4"), (WINDOWS, "2.2.3"), (mac, "2.2.3")):
        chosen = [
            p["version"] for p in lock["packages"] if Marker(p["marker"]).evaluate(environment)
        ]
        assert chosen == [wanted]


def test_files_dir_changes_every_path() -> None:
    lock = tomllib.loads(render_pylock(_three(), files_dir="/srv/wheels/"))
    paths = [w["path"] for p in lock["packages"] for w in p["wheels"]]
    assert paths == [
        "/srv/wheels/alpha-1.0-py3-none-any.whl",
        "/srv/wheels/beta-2.1-py3-none-any.whl",
        "/srv/wheels/zeta-0.1-py3-none-any.whl",
    ]
    assert lock["packages"][1]["sdist"]["path"] == "/srv/wheels/beta-2.1.tar.gz"


def test_a_locked_file_missing_from_the_manifest_is_an_error() -> None:
    entry = LockEntry(canonicalize_name("zeta"), "0.1", ("zeta-0.1-py3-none-any.whl", "gone.whl"))
    with pytest.raises(InvalidWheelhouseError) as info:
        render_pylock(_manifest([ZETA], _host(entry)))
    assert info.value.message == (
        "the manifest locks zeta==0.1 to 'gone.whl', which it does not list among its files"
    )


def test_a_locked_version_without_files_is_an_error() -> None:
    entry = LockEntry(canonicalize_name("zeta"), "0.1", ())
    with pytest.raises(InvalidWheelhouseError) as info:
        render_pylock(_manifest([], _host(entry)))
    assert info.value.message == "the manifest locks zeta==0.1 but ships no file that installs it"


def test_a_target_without_an_environment_cannot_get_a_marker() -> None:
    other = TargetLock("other", (), {}, (_entry(ALPHA),))
    with pytest.raises(InvalidWheelhouseError) as info:
        render_pylock(_manifest([ZETA, ALPHA], _host(_entry(ZETA)), other))
    assert info.value.message.startswith("target 'other' records no environment")


def test_packaging_reads_the_lock_and_selects_per_target() -> None:
    """An independent reader (packaging.pylock, what pip vendors) accepts and selects."""
    version = Version(importlib.metadata.version("packaging"))
    if version < Version("26.1"):
        missing("packaging >= 26.1", f"packaging {version} has no packaging.pylock.Pylock.select")
    import packaging.pylock as pylock

    colorama = _record("colorama-0.4.6-py2.py3-none-any.whl", SHA_A, 1, Downloaded("u"))
    windows = TargetLock("win", (), WINDOWS, (_entry(ZETA), _entry(colorama)))
    manifest = _manifest(
        [ZETA, ALPHA, BETA_SDIST, BETA, colorama],
        _host(_entry(ZETA), _entry(ALPHA), _entry(BETA)),
        windows,
    )
    lock = pylock.Pylock.from_dict(tomllib.loads(render_pylock(manifest)))

    tags = [Tag("py3", "none", "any")]
    on_linux = {p.name: d.name for p, d in lock.select(environment=LINUX, tags=tags)}
    on_windows = {p.name: d.name for p, d in lock.select(environment=WINDOWS, tags=tags)}
    assert on_linux == {
        "alpha": "alpha-1.0-py3-none-any.whl",
        "beta": "beta-2.1-py3-none-any.whl",
        "zeta": "zeta-0.1-py3-none-any.whl",
    }
    # alpha and beta are locked for the host only, so their markers leave them out here.
    assert on_windows == {
        "colorama": "colorama-0.4.6-py2.py3-none-any.whl",
        "zeta": "zeta-0.1-py3-none-any.whl",
    }
    old = dict(LINUX, python_version="3.10", python_full_version="3.10.14")
    with pytest.raises(pylock.PylockSelectError, match=r"3\.10\.14"):
        list(lock.select(environment=old, tags=tags))


def test_write_pylock_writes_the_rendered_text_atomically(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text("stale", encoding="utf-8")
    (tmp_path / "keep.whl").write_bytes(b"not ours")
    manifest = _three()

    path = write_pylock(tmp_path, manifest)

    assert path == tmp_path / "pylock.toml"
    assert path.read_bytes() == render_pylock(manifest).encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.whl", "pylock.toml"]


def test_write_pylock_into_a_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(OutputDirError) as info:
        write_pylock(missing, _three())
    assert info.value.path == missing / "pylock.toml"
    assert info.value.message == (
        f"cannot write {str(missing / 'pylock.toml')!r}: No such file or directory"
    )


# ---------------------------------------------------------------------------------------------
# Real installers, offline, from a wheelhouse assembled by hand.


def _shipped(directory: Path, dist: Path, origin: Origin) -> FileRecord:
    target = directory / dist.name
    shutil.copyfile(dist, target)
    data = target.read_bytes()
    return _record(dist.name, hashlib.sha256(data).hexdigest(), len(data), origin)


def _wheelhouse(tmp_path: Path, dists: DistFactory) -> Path:
    """alpha needs beta; beta ships its sdist too; delta is only an sdist (installers build it);
    gamma belongs only to a Windows target."""
    directory = tmp_path / "wheelhouse"
    directory.mkdir()
    alpha = _shipped(
        directory, dists.wheel("alpha", "1.0", requires=["beta>=2"]), Downloaded("https://x/a")
    )
    beta_sdist = _shipped(directory, dists.sdist("beta", "2.1"), Downloaded("https://x/b"))
    beta = _shipped(
        directory,
        dists.wheel("beta", "2.1"),
        BuiltFrom(beta_sdist.filename, beta_sdist.sha256, "https://x/b", "in-tree"),
    )
    delta = _shipped(directory, dists.sdist("delta", "4.0"), Downloaded("https://x/d"))
    gamma = _shipped(directory, dists.wheel("gamma", "3.0"), Downloaded("https://x/g"))
    host = TargetLock(
        "host",
        (),
        {k: str(v) for k, v in default_environment().items()},
        (_entry(alpha, requested=True), _entry(beta, beta_sdist), _entry(delta)),
    )
    windows = TargetLock("win", (), WINDOWS, (_entry(alpha), _entry(beta), _entry(gamma)))
    write_pylock(directory, _manifest([alpha, beta_sdist, beta, delta, gamma], host, windows))
    return directory


def _uv() -> list[str]:
    return find_uv()


def _newest_pip() -> list[str]:
    version = Version(importlib.metadata.version("pip"))
    if version < Version("26.1"):
        missing("pip >= 26.1", f"pip {version} cannot install from pylock.toml")
    return [sys.executable, "-m", "pip"]


def _install(client: str, python: Path, lock: Path, offline: Any, tmp_path: Path) -> Completed:
    # No extra flag is needed: both read the lock's paths and hashes and never ask an index.
    if client == "uv":
        argv = [*_uv(), "pip", "install", "--python", str(python), "-r", str(lock), "--offline"]
        argv += ["--cache-dir", str(tmp_path / "uv-cache")]
    else:
        argv = [*_newest_pip(), "--python", str(python), "install", "-r", str(lock)]
    return run(offline(argv), env=offline_env(), timeout=120)


def _installed(python: Path, *names: str) -> dict[str, str | None]:
    """name -> the ``__version__`` that importing it in ``python`` gives, or None."""
    script = (
        "import importlib, json, sys\n"
        "def v(n):\n"
        "    try: return importlib.import_module(n).__version__\n"
        "    except ModuleNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    result = run([python, "-c", script, *names], env=offline_env())
    assert result.ok, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.slow
@pytest.mark.parametrize("client", ["uv", "pip"])
def test_install_from_pylock_offline(
    client: str, tmp_path: Path, dists: DistFactory, make_venv: Any, offline: Any
) -> None:
    directory = _wheelhouse(tmp_path, dists)
    python = make_venv(with_pip=False)

    result = _install(client, python, directory / "pylock.toml", offline, tmp_path)

    assert result.ok, result.stderr
    assert _installed(python, "alpha", "beta", "delta", "gamma") == {
        "alpha": "1.0",
        "beta": "2.1",
        "delta": "4.0",
        "gamma": None,  # its marker selects the Windows target only
    }
    if client == "pip":
        # pip says on stderr that pylock support is experimental, and installs from our paths.
        assert "pylock.toml as a requirements source is an experimental feature" in result.stderr
        assert "Successfully installed alpha-1.0 beta-2.1 delta-4.0" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("client", ["uv", "pip"])
def test_install_refuses_a_file_whose_hash_is_not_the_locked_one(
    client: str, tmp_path: Path, dists: DistFactory, make_venv: Any, offline: Any
) -> None:
    directory = _wheelhouse(tmp_path, dists)
    wheel = directory / "beta-2.1-py3-none-any.whl"
    real = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lock = directory / "pylock.toml"
    lock.write_text(lock.read_text(encoding="utf-8").replace(real, "0" * 64), encoding="utf-8")
    python = make_venv(with_pip=False)

    result = _install(client, python, lock, offline, tmp_path)

    assert not result.ok
    assert real in result.stderr
    assert "0" * 64 in result.stderr
    assert _installed(python, "alpha", "beta") == {"alpha": None, "beta": None}
