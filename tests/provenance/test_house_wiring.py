"""Provenance and the OSV snapshot in a wheelhouse's life: `verify` (and `verify --provenance`),
`pack`/`unpack` (full and updates), carried across the gap and checked there with no network."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.support.dists import DistFactory
from tests.support.fixtures import Cli, Offline
from tests.support.osv import real_members, write_zip
from tests.support.process import run_command
from tests.support.process import wheelhouse_argv as wheelhouse
from tests.support.provenance import DATA, SDIST, TRUST_ROOT
from tests.support.wheelhouses import make_wheelhouse
from wheelhouse.audit.fetch import OSV_DIR, SNAPSHOT_NAME, SnapshotInfo
from wheelhouse.errors import ExitCode
from wheelhouse.house import manifest as layout
from wheelhouse.provenance import PROVENANCE_SUFFIX, TRUST_ROOT_PATH

REQUESTS = "requests-2.31.0-py3-none-any.whl"
CARRIED = [
    "osv/PyPI.zip",
    "osv/PyPI.zip.json",
    f"{SDIST}.provenance",
    "sigstore/trusted_root.json",
]


def place_snapshot(house: Path, members: dict[str, bytes] | None = None) -> bytes:
    """An OSV snapshot of the real records, and its info as `audit fetch` writes it."""
    snapshot = write_zip(house / "osv" / "PyPI.zip", members or real_members())
    data = snapshot.read_bytes()
    info = SnapshotInfo(
        source="https://osv.example.invalid/PyPI/all.zip",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        fetched="2026-12-07T00:00:00+00:00",
        records=len(members or real_members()),
    )
    (house / "osv" / "PyPI.zip.json").write_text(info.to_json(), encoding="utf-8")
    return data


def carrying_house(root: Path, dists: DistFactory, *, provenance: bool = True) -> Path:
    """requests 2.31.0 (real advisories) and an sdist with real provenance; its OSV snapshot,
    provenance and trust root."""
    house = root / "house"
    wheel = dists.wheel("requests", "2.31.0")
    make_wheelhouse(house, [DATA / SDIST, wheel])
    place_snapshot(house)
    if provenance:
        shutil.copyfile(DATA / f"{SDIST}.provenance", house / f"{SDIST}.provenance")
        (house / "sigstore").mkdir()
        shutil.copyfile(TRUST_ROOT, house / "sigstore" / "trusted_root.json")
    return house


def files_under(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def carried(directory: Path) -> dict[str, bytes]:
    return {k: v for k, v in files_under(directory).items() if k in CARRIED}


def run(argv: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return run_command(argv, env={**os.environ, "HOME": str(home)})


def members_of(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as tar:
        return tar.getnames()


def test_the_layout_names_are_those_of_audit_and_provenance() -> None:
    # One layout, written in the manifest module (which audit and provenance import).
    ours = (layout.OSV_SNAPSHOT, layout.OSV_SNAPSHOT_INFO, layout.TRUST_ROOT)
    theirs = (f"{OSV_DIR}/{SNAPSHOT_NAME}", f"{OSV_DIR}/{SNAPSHOT_NAME}.json")
    assert ours == (*theirs, TRUST_ROOT_PATH.as_posix())
    assert (PROVENANCE_SUFFIX, ours) == (layout.PROVENANCE_SUFFIX, layout.CARRIED_FILES)


def test_verify_counts_what_the_wheelhouse_carries_as_its_own(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists)
    # The provenance of a file the manifest does not record proves nothing: a note.
    (house / "other-1.0.tar.gz.provenance").write_bytes(b"{}")
    result = cli("verify", house)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stderr.splitlines() == [
        "note: 'other-1.0.tar.gz.provenance' is not in the manifest: kept as a file of your own "
        "(never packed nor published)",
        f"{house}: 2 files, ok",
    ]
    report = json.loads(cli("verify", house, "--json").stdout)
    assert report["ok"] is True
    assert report["user-files"] == ["other-1.0.tar.gz.provenance"]
    assert report["carried-files"] == sorted(CARRIED)


def test_verify_reports_a_snapshot_changed_after_it_was_fetched(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists, provenance=False)
    recorded = json.loads((house / "osv" / "PyPI.zip.json").read_text())["sha256"]
    members = real_members()
    del members["GHSA-9wx4-h78v-vm56.json"]  # an advisory quietly taken out
    replaced = write_zip(house / "osv" / "PyPI.zip", members).read_bytes()
    actual = hashlib.sha256(replaced).hexdigest()
    result = cli("verify", house)
    assert result.exit_code == ExitCode.INTEGRITY == 6
    assert result.stderr.splitlines() == [
        f"problem: 'osv/PyPI.zip' has sha256 {actual}, 'osv/PyPI.zip.json' records {recorded}: "
        "the snapshot was changed after it was fetched",
        f"{house}: 2 files, 1 problem",
    ]
    (house / "osv" / "PyPI.zip").unlink()
    result = cli("verify", house)
    assert result.exit_code == ExitCode.INTEGRITY
    assert result.stderr.splitlines()[0] == (
        f"problem: 'osv/PyPI.zip.json' records an OSV snapshot of sha256 {recorded}, but "
        "'osv/PyPI.zip' is missing"
    )
    # Nor does a tampered snapshot leave as a bundle.
    # (Written again: a zip's bytes carry the time it was written.)
    actual = hashlib.sha256(write_zip(house / "osv" / "PyPI.zip", members).read_bytes()).hexdigest()
    packed = cli("pack", house, "-o", tmp_path / "out.tar.gz")
    assert packed.exit_code == ExitCode.INTEGRITY
    assert packed.stderr.splitlines()[0] == (
        f"error: 'osv/PyPI.zip' has sha256 {actual}, 'osv/PyPI.zip.json' records {recorded}: "
        "the snapshot was changed after it was fetched; nothing was packed"
    )
    assert not (tmp_path / "out.tar.gz").exists()


def test_verify_provenance_checks_the_real_provenance_offline(
    tmp_path: Path, dists: DistFactory, offline: Offline
) -> None:
    house = carrying_house(tmp_path, dists)
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[projects.pypi-attestations]\nrepository = "trailofbits/pypi-attestations"\n',
        encoding="utf-8",
    )
    before = files_under(house)
    proc = run(offline(wheelhouse("verify", house, "--provenance", "--policy", policy)), tmp_path)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert (
        proc.stdout.split()
        == (
            "FILE PUBLISHER STATUS "
            f"{SDIST} github trailofbits/pypi-attestations, workflow release.yml verified "
            f"{REQUESTS} - no-provenance"
        ).split()
    )
    assert proc.stderr.splitlines() == [
        f"{house}: 2 files, ok",
        f"{house}: 1 file with verified provenance, 1 without, ok",
    ]
    assert files_under(house) == before  # verify writes nothing

    # Another publisher than the pinned one: exit 12, one line naming both.
    policy.write_text(
        '[projects.pypi-attestations]\nrepository = "evil/pypi-attestations"\n', encoding="utf-8"
    )
    proc = run(offline(wheelhouse("verify", house, "--provenance", "--policy", policy)), tmp_path)
    assert proc.returncode == ExitCode.PROVENANCE == 12, proc.stderr
    assert proc.stderr.splitlines() == [
        f"{house}: 2 files, ok",
        f"problem: {SDIST!r} was published by github trailofbits/pypi-attestations, workflow "
        "release.yml, but the policy pins github evil/pypi-attestations, any workflow for "
        "'pypi-attestations'",
        f"{house}: 0 files with verified provenance, 1 without, 1 problem",
    ]


def test_verify_provenance_json_holds_both_reports(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists)
    result = cli("verify", house, "--provenance", "--json")
    assert result.exit_code == ExitCode.OK, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["provenance"]["ok"] is True
    assert report["provenance"]["trust-root"] == str(house / "sigstore" / "trusted_root.json")
    assert report["provenance"]["without-provenance"] == [REQUESTS]


def test_verify_provenance_without_any_provenance_needs_no_trust_root(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists, provenance=False)
    result = cli("verify", house, "--provenance")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.stderr.splitlines() == [
        f"{house}: 2 files, ok",
        f"{house}: no file carries provenance",
    ]
    assert json.loads(cli("verify", house, "--provenance", "--json").stdout)["provenance"] is None
    # A policy that requires provenance has something to refuse: it needs the trust root.
    policy = tmp_path / "policy.toml"
    policy.write_text("require = true\n", encoding="utf-8")
    result = cli("verify", house, "--provenance", "--policy", policy)
    assert result.exit_code == ExitCode.TRUST_ROOT == 13
    assert result.stderr.splitlines()[-2] == (
        f"error: the trust root {str(house / 'sigstore' / 'trusted_root.json')!r} is missing: "
        "provenance cannot be verified without it"
    )


def test_verify_provenance_with_provenance_and_no_trust_root_is_exit_13(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists)
    shutil.rmtree(house / "sigstore")
    result = cli("verify", house, "--provenance")
    assert result.exit_code == ExitCode.TRUST_ROOT
    assert result.stderr.splitlines()[:2] == [
        f"{house}: 2 files, ok",
        f"error: the trust root {str(house / 'sigstore' / 'trusted_root.json')!r} is missing: "
        "provenance cannot be verified without it",
    ]


def test_verify_provenance_of_a_tampered_wheelhouse_stops_at_exit_6(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists)
    data = (house / SDIST).read_bytes()
    (house / SDIST).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    result = cli("verify", house, "--provenance")
    assert result.exit_code == ExitCode.INTEGRITY
    assert result.stdout == ""  # no provenance table: the files are not the recorded ones
    assert result.stderr.splitlines()[-1] == f"{house}: 2 files, 1 problem"


def test_provenance_options_need_provenance(tmp_path: Path, dists: DistFactory, cli: Cli) -> None:
    house = carrying_house(tmp_path, dists)
    result = cli("verify", house, "--trust-root", TRUST_ROOT)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.splitlines()[0] == "error: --policy and --trust-root go with --provenance"


def test_a_bundle_carries_the_snapshot_and_provenance_across_the_gap(
    tmp_path: Path, dists: DistFactory, cli: Cli, offline: Offline
) -> None:
    house = carrying_house(tmp_path, dists)
    bundle = tmp_path / "house.tar.gz"
    packed = cli("pack", house, "-o", bundle)
    assert packed.exit_code == ExitCode.OK, packed.stderr
    names = members_of(bundle)
    assert {f"wheelhouse/{path}" for path in CARRIED} <= set(names)
    with tarfile.open(bundle) as tar:
        sums = tar.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
    for path in CARRIED:
        digest = hashlib.sha256((house / path).read_bytes()).hexdigest()
        assert f"{digest}  wheelhouse/{path}\n" in sums

    inside = tmp_path / "inside"
    unpacked = run(offline(wheelhouse("unpack", bundle, "-o", inside)), tmp_path)
    assert unpacked.returncode == ExitCode.OK, unpacked.stderr
    assert carried(inside) == carried(house)
    audited = run(offline(wheelhouse("audit", inside)), tmp_path)
    assert audited.returncode == ExitCode.VULNERABLE, audited.stderr
    assert audited.stderr.splitlines() == [
        "audited 2 distributions against 5 OSV records, fetched 2026-12-07T00:00:00+00:00: "
        "1 known vulnerability"
    ]
    row = audited.stdout.splitlines()[1].split()
    assert row[:3] == ["requests", "2.31.0", "GHSA-9wx4-h78v-vm56"]
    verified = run(offline(wheelhouse("verify", inside, "--provenance")), tmp_path)
    assert verified.returncode == ExitCode.OK, verified.stderr
    assert verified.stderr.splitlines() == [
        f"{inside}: 2 files, ok",
        f"{inside}: 1 file with verified provenance, 1 without, ok",
    ]


def test_an_update_carries_what_changed_and_keeps_the_rest(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists)
    full = tmp_path / "full.tar.gz"
    assert cli("pack", house, "-o", full).exit_code == ExitCode.OK
    inside = tmp_path / "inside"
    assert cli("unpack", full, "-o", inside).exit_code == ExitCode.OK
    # A fresh snapshot on the connected side; the files, provenance and trust root unchanged.
    members = real_members()
    del members["GHSA-h75v-3vvj-5mfj.json"]
    place_snapshot(house, members)
    update = tmp_path / "update.tar.gz"
    for since in (full, inside):  # an older bundle, or the older wheelhouse itself
        result = cli("pack", house, "--since", since, "-o", update)
        assert result.exit_code == ExitCode.OK, result.stderr
        shipped = [n for n in members_of(update) if n.startswith("wheelhouse/")]
        assert [n for n in shipped if n.removeprefix("wheelhouse/") in CARRIED] == [
            "wheelhouse/osv/PyPI.zip",
            "wheelhouse/osv/PyPI.zip.json",
        ]
    # A bare manifest tells nothing of what the base carries: everything goes.
    result = cli("pack", house, "--since", inside / "wheelhouse.json", "-o", tmp_path / "u2.tar")
    assert result.exit_code == ExitCode.OK, result.stderr
    shipped = {n.removeprefix("wheelhouse/") for n in members_of(tmp_path / "u2.tar")}
    assert set(CARRIED) <= shipped

    applied = cli("unpack", update, "-o", inside)
    assert applied.exit_code == ExitCode.OK, applied.stderr
    assert carried(inside) == carried(house)
    assert cli("verify", inside, "--provenance").exit_code == ExitCode.OK

    # Only the snapshot's info changed (fetched again, same bytes): the update brings only it,
    # and the snapshot itself is taken from the wheelhouse it updates.
    info = json.loads((house / "osv" / "PyPI.zip.json").read_text(encoding="utf-8"))
    info["fetched"] = "2026-12-08T00:00:00+00:00"
    (house / "osv" / "PyPI.zip.json").write_text(json.dumps(info), encoding="utf-8")
    again = tmp_path / "again.tar.gz"
    assert cli("pack", house, "--since", inside, "-o", again).exit_code == ExitCode.OK
    assert [n for n in members_of(again) if n.removeprefix("wheelhouse/") in CARRIED] == [
        "wheelhouse/osv/PyPI.zip.json"
    ]
    applied = cli("unpack", again, "-o", inside)
    assert applied.exit_code == ExitCode.OK, applied.stderr
    assert carried(inside) == carried(house)
    assert cli("verify", inside).exit_code == ExitCode.OK


def rewritten(bundle: Path, out: Path, replace: dict[str, bytes]) -> Path:
    """``bundle`` with members replaced, and a SHA256SUMS that agrees: what an attacker who
    can write the bundle (but not the far side's wheelhouse) makes."""
    with tarfile.open(bundle) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    data = {m.name: replace.get(m.name, body) for m, body in members}
    data["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(body).hexdigest()}  {name}\n"
        for name, body in data.items()
        if name not in ("SHA256SUMS",)
    ).encode()
    with tarfile.open(out, "w:gz") as tar:
        for member, _ in members:
            body = data[member.name]
            member.size = len(body)
            tar.addfile(member, io.BytesIO(body))
    return out


def test_an_update_whose_snapshot_info_lies_is_refused_and_writes_nothing(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = carrying_house(tmp_path, dists)
    inside = tmp_path / "inside"
    full = tmp_path / "full.tar.gz"
    assert cli("pack", house, "-o", full).exit_code == ExitCode.OK
    assert cli("unpack", full, "-o", inside).exit_code == ExitCode.OK
    info = json.loads((house / "osv" / "PyPI.zip.json").read_text(encoding="utf-8"))
    info["fetched"] = "2026-12-08T00:00:00+00:00"
    (house / "osv" / "PyPI.zip.json").write_text(json.dumps(info), encoding="utf-8")
    update = tmp_path / "update.tar.gz"
    assert cli("pack", house, "--since", full, "-o", update).exit_code == ExitCode.OK
    # The info now vouches for another snapshot than the one the far side has.
    forged = dict(info, sha256="0" * 64)
    hostile = rewritten(
        update,
        tmp_path / "hostile.tar.gz",
        {"wheelhouse/osv/PyPI.zip.json": json.dumps(forged).encode()},
    )
    before = files_under(inside)
    result = cli("unpack", hostile, "-o", inside)
    assert result.exit_code == ExitCode.INTEGRITY, result.stderr
    actual = hashlib.sha256((inside / "osv" / "PyPI.zip").read_bytes()).hexdigest()
    assert result.stderr.splitlines()[0] == (
        f"error: the bundle {str(hostile)!r} with the wheelhouse it updates does not verify: "
        f"'osv/PyPI.zip' has sha256 {actual}, 'osv/PyPI.zip.json' records {'0' * 64}: the "
        "snapshot was changed after it was fetched; nothing was written"
    )
    assert files_under(inside) == before
