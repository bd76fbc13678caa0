"""wheelhouse.house.verify: a wheelhouse checked against its manifest, byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support.files import flip_byte
from tests.support.wheelhouses import make_wheelhouse
from wheelhouse.errors import InvalidWheelhouseError
from wheelhouse.house.manifest import (
    MANIFEST_NAME,
    LockEntry,
    read_manifest,
)
from wheelhouse.house.verify import REPORT_SCHEMA_VERSION, verify


@pytest.fixture
def house(tmp_path: Path, dists) -> Path:  # type: ignore[no-untyped-def]
    wheels = [
        dists.wheel("alpha", "1.0", requires=["beta>=2"]),
        dists.wheel("beta", "2.0"),
    ]
    make_wheelhouse(tmp_path / "wh", wheels, requested=["alpha"])
    return tmp_path / "wh"


def test_clean_wheelhouse_is_ok(house: Path) -> None:
    report = verify(house)
    assert report.ok
    assert report.problems == ()
    assert [(c.filename, c.status) for c in report.files] == [
        ("alpha-1.0-py3-none-any.whl", "ok"),
        ("beta-2.0-py3-none-any.whl", "ok"),
    ]
    beta = house / "beta-2.0-py3-none-any.whl"
    assert report.files[1].actual_sha256 == hashlib.sha256(beta.read_bytes()).hexdigest()
    assert report.files[1].actual_size == beta.stat().st_size


def test_to_json_is_versioned_and_serializable(house: Path) -> None:
    flip_byte(house / "beta-2.0-py3-none-any.whl")
    data = verify(house).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["schema-version"] == REPORT_SCHEMA_VERSION == 1
    assert data["ok"] is False
    assert [f["status"] for f in data["files"]] == ["ok", "hash-mismatch"]
    assert [(p["kind"], p["filename"]) for p in data["problems"]] == [
        ("hash-mismatch", "beta-2.0-py3-none-any.whl")
    ]


def test_one_flipped_byte_is_a_hash_mismatch_naming_the_file(house: Path) -> None:
    wheel = house / "alpha-1.0-py3-none-any.whl"
    recorded = read_manifest(house).file(wheel.name).sha256  # type: ignore[union-attr]
    flip_byte(wheel)
    report = verify(house)
    assert not report.ok
    (problem,) = report.problems
    assert problem.kind == "hash-mismatch"
    assert problem.filename == wheel.name
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert problem.message == (
        f"'alpha-1.0-py3-none-any.whl' has sha256 {actual}, the manifest records {recorded}: "
        "the file was changed after the wheelhouse was built"
    )


def test_known_digests_are_compared_with_the_manifest_not_reread(house: Path) -> None:
    alpha, beta = "alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl"
    recorded = read_manifest(house).file(beta).sha256  # type: ignore[union-attr]
    # A digest the caller computed while writing the file is trusted for that file only...
    flip_byte(house / alpha)
    report = verify(house, known={alpha: "0" * 64, beta: recorded.upper()})
    assert [(c.filename, c.status, c.actual_sha256) for c in report.files] == [
        (alpha, "hash-mismatch", "0" * 64),
        (beta, "ok", recorded),
    ]
    # ...files it does not name are read and hashed as usual, and sizes are always checked.
    flipped = hashlib.sha256((house / alpha).read_bytes()).hexdigest()
    assert verify(house, known={beta: recorded}).files[0].actual_sha256 == flipped
    (house / beta).write_bytes((house / beta).read_bytes()[:-1])
    assert verify(house, known={beta: recorded}).files[1].status == "size-mismatch"


def test_truncated_file_is_a_size_mismatch(house: Path) -> None:
    wheel = house / "beta-2.0-py3-none-any.whl"
    size = wheel.stat().st_size
    wheel.write_bytes(wheel.read_bytes()[:-1])
    (problem,) = verify(house).problems
    assert (problem.kind, problem.filename) == ("size-mismatch", wheel.name)
    assert f"has {size - 1} bytes, the manifest records {size}" in problem.message


def test_deleted_file_is_missing(house: Path) -> None:
    (house / "beta-2.0-py3-none-any.whl").unlink()
    report = verify(house)
    assert [(c.filename, c.status) for c in report.files if not c.ok] == [
        ("beta-2.0-py3-none-any.whl", "missing")
    ]
    assert [p.kind for p in report.problems] == ["missing"]


def test_unrecorded_files_are_flagged_and_generated_ones_are_not(house: Path) -> None:
    for generated in [
        "simple/index.html",
        "simple/alpha/index.html",
        "alpha-1.0-py3-none-any.whl.metadata",
        "pylock.toml",
        "requirements.txt",
    ]:
        (house / generated).parent.mkdir(parents=True, exist_ok=True)
        (house / generated).write_text("generated\n")
    # requirements-dev.txt: a lock is known by its exact name, not by a pattern.
    strays = ["evil-9.0-py3-none-any.whl", "notes.txt", "gamma-1.0.whl.metadata", "sub/x.whl"]
    for stray in [*strays, "requirements-dev.txt"]:
        (house / stray).parent.mkdir(parents=True, exist_ok=True)
        (house / stray).write_text("stray\n")
    (house / "empty").mkdir()
    report = verify(house)
    assert report.unrecorded == (
        "empty/",
        "evil-9.0-py3-none-any.whl",
        "gamma-1.0.whl.metadata",
        "notes.txt",
        "requirements-dev.txt",
        "sub/x.whl",
    )
    # Generated files are not unrecorded; overwritten, they no longer match what they render.
    changed = {p.filename for p in report.problems if p.kind == "generated-file-mismatch"}
    assert changed == {
        "simple/index.html",
        "simple/alpha/index.html",
        "alpha-1.0-py3-none-any.whl.metadata",
        "pylock.toml",
        "requirements.txt",
    }
    assert {p.kind for p in report.problems} == {"unrecorded-file", "generated-file-mismatch"}
    assert not report.ok


def test_lock_entry_naming_an_unrecorded_file(house: Path) -> None:
    manifest = read_manifest(house)
    assert manifest is not None
    (lock,) = manifest.locks
    broken = replace(
        lock,
        entries=(
            *lock.entries,
            LockEntry(canonicalize_name("gamma"), "3.0", ("gamma-3.0-py3-none-any.whl",)),
            LockEntry(canonicalize_name("delta"), "4.0", ()),
        ),
    )
    (house / MANIFEST_NAME).write_text(replace(manifest, locks=(broken,)).to_json())
    problems = verify(house).problems
    assert [(p.kind, p.name, p.filename) for p in problems] == [
        ("lock-entry-without-file", "gamma", "gamma-3.0-py3-none-any.whl"),
        ("lock-entry-without-file", "delta", ""),
    ]
    assert problems[0].message == (
        "the lock entry gamma 3.0 (target 'host') names 'gamma-3.0-py3-none-any.whl', "
        "which the manifest does not record"
    )


@pytest.mark.parametrize(
    "generated",
    [
        "alpha-1.0-py3-none-any.whl.metadata",
        "simple/alpha/index.html",
        "simple/alpha/index.json",
        "simple/index.html",
        "requirements.txt",
        "pylock.toml",
    ],
)
def test_a_changed_or_missing_generated_file_is_a_problem(house: Path, generated: str) -> None:
    # Clients trust these for hashes and dependencies (PEP 658 metadata, index pages, locks).
    assert verify(house).ok
    path = house / generated
    original = path.read_bytes()
    path.write_bytes(original.replace(b"beta", b"bet4", 1) + b"\n")
    [problem] = verify(house).problems
    assert (problem.kind, problem.filename) == ("generated-file-mismatch", generated)
    assert problem.message.startswith(f"{generated!r} does not match what the manifest")
    path.unlink()
    [problem] = verify(house).problems
    assert problem.message.startswith(f"{generated!r} is missing")
    # An install from --find-links reads none of these but requirements.txt, and checks that.
    assert verify(house, generated=False).ok


def test_another_versions_pages_are_not_judged_but_its_metadata_is(house: Path) -> None:
    manifest = read_manifest(house)
    assert manifest is not None
    older = replace(manifest, generator="wheelhouse 0.0.1")
    (house / MANIFEST_NAME).write_text(older.to_json())
    (house / "simple" / "index.html").write_text("laid out otherwise\n")
    (house / "requirements.txt").write_text("# another header\n")
    assert verify(house).ok
    flip_byte(house / "alpha-1.0-py3-none-any.whl.metadata", 0)
    assert [p.filename for p in verify(house).problems] == ["alpha-1.0-py3-none-any.whl.metadata"]


def test_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(InvalidWheelhouseError) as info:
        verify(tmp_path)
    assert (
        info.value.message == f"{str(tmp_path)!r} is not a wheelhouse (it has no wheelhouse.json)"
    )
    assert info.value.hint is not None and "wheelhouse build" in info.value.hint


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidWheelhouseError, match="does not exist or is not a directory"):
        verify(tmp_path / "nope")


def test_unsafe_file_name_in_manifest(house: Path) -> None:
    manifest = read_manifest(house)
    assert manifest is not None
    evil = replace(manifest.files[0], filename="../outside.whl")
    (house / MANIFEST_NAME).write_text(replace(manifest, files=(evil,)).to_json())
    with pytest.raises(
        InvalidWheelhouseError, match=re.escape("unsafe file name '../outside.whl'")
    ):
        verify(house)
