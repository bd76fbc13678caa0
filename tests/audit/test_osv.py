"""wheelhouse.audit.osv: the OSV export read in memory, and the schema's range evaluation."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from tests.support.osv import real_members, real_record, write_zip
from wheelhouse.audit import osv
from wheelhouse.audit.osv import load_snapshot
from wheelhouse.errors import ExitCode, OsvSnapshotError, TamperedError


def record(ident: str, name: str, *, ranges=(), versions=(), **extra):  # type: ignore[no-untyped-def]
    affected = {
        "package": {"ecosystem": "PyPI", "name": name},
        "ranges": [{"type": t, "events": list(e)} for t, e in ranges],
    }
    if versions:
        affected["versions"] = list(versions)
    return {"id": ident, "modified": "2024-01-01T00:00:00Z", "affected": [affected], **extra}


def snapshot_of(tmp_path: Path, *records: dict[str, object]) -> Path:
    members = {f"{r['id']}.json": json.dumps(r).encode() for r in records}
    return write_zip(tmp_path / "all.zip", members)


def affected_ids(path: Path, name: str, version: str) -> list[str]:
    return [a.id for a in load_snapshot(path).query(name, version)]


# -- the real records ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("requests", "2.31.0", ["GHSA-9wx4-h78v-vm56"]),
        ("requests", "2.30.0", ["GHSA-9wx4-h78v-vm56", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]),
        ("requests", "2.32.2", []),
        ("requests", "2.2.1", ["GHSA-9wx4-h78v-vm56"]),
        ("urllib3", "2.2.1", ["GHSA-34jh-p97f-mpxf"]),
        ("urllib3", "1.26.18", ["GHSA-34jh-p97f-mpxf"]),
        ("urllib3", "1.26.19", []),
        ("urllib3", "2.2.2", []),
        ("jinja2", "3.1.3", ["GHSA-h75v-3vvj-5mfj"]),
        ("Jinja2", "3.1.4", []),
        ("idna", "3.7", []),
    ],
)
def test_real_records_match_the_releases_they_name(
    real_snapshot: Path, name: str, version: str, expected: list[str]
) -> None:
    assert affected_ids(real_snapshot, name, version) == expected


def test_fixed_versions_are_those_above_the_release(real_snapshot: Path) -> None:
    database = load_snapshot(real_snapshot)
    (urllib3,) = database.query("urllib3", "1.26.18")
    # Only the range 1.26.18 is in: the 2.x line's fix is no upgrade for it.
    assert urllib3.fixed_versions("urllib3", "1.26.18") == ("1.26.19",)
    (jinja,) = database.query("jinja2", "3.1.3")
    assert jinja.fixed_versions("jinja2", "3.1.3") == ("3.1.4",)
    assert database.records == 5


def test_names_keep_only_the_advisories_asked_for(real_snapshot: Path) -> None:
    database = load_snapshot(real_snapshot, names=["Jinja2"])
    assert sorted(database.by_name) == ["jinja2"]
    assert database.records == 5  # every record was still read and checked


def test_raw_gives_the_whole_record_back(real_snapshot: Path) -> None:
    database = load_snapshot(real_snapshot)
    (advisory,) = database.query("jinja2", "3.1.3")
    assert database.raw(advisory) == real_record("GHSA-h75v-3vvj-5mfj")


# -- the schema's evaluation -----------------------------------------------------------------


def test_ranges_follow_the_schema(tmp_path: Path) -> None:
    path = snapshot_of(
        tmp_path,
        # [1.0, 1.0.2) and [3.0, 3.2.5): two intervals in one range.
        record(
            "T-1",
            "p",
            ranges=[
                (
                    "ECOSYSTEM",
                    [
                        {"introduced": "1.0"},
                        {"fixed": "1.0.2"},
                        {"introduced": "3.0"},
                        {"fixed": "3.2.5"},
                    ],
                )
            ],
        ),
        # last_affected is inclusive.
        record("T-2", "p", ranges=[("ECOSYSTEM", [{"introduced": "0"}, {"last_affected": "2.1"}])]),
        # A limit bounds the range from above; the unsorted events are sorted first.
        record("T-3", "p", ranges=[("ECOSYSTEM", [{"limit": "5.0"}, {"introduced": "4.0"}])]),
        # A GIT range cannot be evaluated here; its versions list can.
        record(
            "T-4",
            "p",
            ranges=[("GIT", [{"introduced": "0"}, {"fixed": "74ea7cf7a6a27a4eeb2ae24e162bcc9"}])],
            versions=["6.0"],
        ),
        # An event PEP 440 cannot read makes its range unusable, not the record.
        record(
            "T-5",
            "p",
            ranges=[("ECOSYSTEM", [{"introduced": "0"}, {"fixed": "not a version"}])],
            versions=["7.0"],
        ),
    )
    expected = {
        "0.9": ["T-2"],
        "1.0": ["T-1", "T-2"],
        "1.0.1": ["T-1", "T-2"],
        "1.0.2": ["T-2"],
        "2.1": ["T-2"],
        "2.1.post1": [],
        "3.2.4": ["T-1"],
        "3.2.5": [],
        "4.0": ["T-3"],
        "4.9": ["T-3"],
        "5.0": [],
        "6.0": ["T-4"],
        "6.0.0": ["T-4"],  # PEP 440: the same release as 6.0
        "6.1": [],
        "7.0": ["T-5"],
        "7.1": [],
    }
    database = load_snapshot(path)
    assert {v: [a.id for a in database.query("P", v)] for v in expected} == expected


def test_withdrawn_records_and_other_ecosystems_are_skipped(tmp_path: Path) -> None:
    npm = record("T-NPM", "requests", ranges=[("SEMVER", [{"introduced": "0"}])])
    npm["affected"][0]["package"]["ecosystem"] = "npm"  # type: ignore[index]
    path = snapshot_of(
        tmp_path,
        record(
            "T-W",
            "requests",
            ranges=[("ECOSYSTEM", [{"introduced": "0"}])],
            withdrawn="2024-06-01T00:00:00Z",
        ),
        npm,
        record("T-KEPT", "requests", ranges=[("ECOSYSTEM", [{"introduced": "0"}])]),
    )
    assert affected_ids(path, "requests", "2.31.0") == ["T-KEPT"]


# -- hostile and broken snapshots ------------------------------------------------------------


def load_error(path: Path) -> str:
    with pytest.raises(OsvSnapshotError) as caught:
        load_snapshot(path)
    assert caught.value.exit_code == ExitCode.INPUT
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "all.zip"
    path.write_bytes(b"<html>captive portal</html>\n")
    assert load_error(path).startswith(f"the OSV snapshot {str(path)!r} is not a zip file")


def test_a_missing_snapshot_says_how_to_fetch_one(tmp_path: Path) -> None:
    with pytest.raises(OsvSnapshotError) as caught:
        load_snapshot(tmp_path / "none.zip")
    assert caught.value.message == f"there is no OSV snapshot at {str(tmp_path / 'none.zip')!r}"
    assert "wheelhouse audit fetch" in (caught.value.hint or "")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "all.zip"
    os.mkfifo(path)
    assert load_error(path) == f"the OSV snapshot {str(path)!r} is not a regular file"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"id": "BAD-1", "affected": [', "not JSON"),
        (b'["a list"]', "the record is list, not an object"),
        (b'{"id": 7}', "'id' is int, not a string"),
        (b'{"id": "BAD-1", "affected": {"package": {}}}', "'affected' is dict, not a list"),
        (
            b'{"id": "BAD-1", "affected": [{"package": {"ecosystem": "PyPI", "name": 3}}]}',
            "affected[0].package.name is int, not a string",
        ),
        (
            b'{"id": "BAD-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},'
            b' "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}]}]}',
            "affected[0].ranges[0].events[0] must have exactly one of introduced, fixed, "
            "last_affected, limit",
        ),
        (b'{"id": "BAD-1", "aliases": "CVE-1"}', "'aliases' is str, not a list"),
        (b"\xff\xfe not utf-8", "not JSON"),
    ],
)
def test_a_malformed_record_is_named(tmp_path: Path, data: bytes, why: str) -> None:
    members = {**real_members(), "BAD-1.json": data}
    path = write_zip(tmp_path / "all.zip", members)
    message = load_error(path)
    assert message.startswith(
        f"the OSV snapshot {str(path)!r} has a malformed record 'BAD-1.json': {why}"
    )


def test_a_duplicate_id_is_refused(tmp_path: Path) -> None:
    members = {**real_members(), "copy.json": real_members()["PYSEC-2023-74.json"]}
    path = write_zip(tmp_path / "all.zip", members)
    assert load_error(path).endswith(
        "malformed record 'copy.json': its id 'PYSEC-2023-74' is also 'PYSEC-2023-74.json''s"
    )


def test_a_bomb_member_is_stopped_at_the_member_limit(tmp_path: Path) -> None:
    # 17 MiB of spaces inside a JSON string deflate to about 17 KiB.
    bomb = b'{"id": "BOMB", "details": "' + b" " * (17 * 2**20) + b'"}'
    path = write_zip(tmp_path / "all.zip", {**real_members(), "BOMB.json": bomb})
    assert path.stat().st_size < 200_000
    assert load_error(path) == (
        f"the OSV snapshot {str(path)!r} has a malformed record 'BOMB.json': "
        "it unpacks to more than 16 MiB"
    )


def test_a_member_whose_header_lies_about_its_size_is_still_bounded(tmp_path: Path) -> None:
    bomb = b'{"id": "BOMB", "details": "' + b" " * (17 * 2**20) + b'"}'
    path = write_zip(tmp_path / "all.zip", {"BOMB.json": bomb})
    # Rewrite the central directory's and the local header's uncompressed size to 100 bytes.
    data = bytearray(path.read_bytes())
    real = len(bomb).to_bytes(4, "little")
    assert data.count(real) == 2
    path.write_bytes(bytes(data).replace(real, (100).to_bytes(4, "little")))
    message = load_error(path)
    assert message.startswith(
        f"the OSV snapshot {str(path)!r} has a malformed record 'BOMB.json': it cannot be unpacked"
    )


def test_the_whole_snapshot_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(osv, "MAX_TOTAL_BYTES", 2**20)
    filler = b'{"id": "F-%d", "details": "' + b" " * (400 * 1024) + b'"}'
    members = {f"F-{i}.json": filler.replace(b"%d", str(i).encode()) for i in range(3)}
    path = write_zip(tmp_path / "all.zip", members)
    assert load_error(path) == (
        f"the OSV snapshot {str(path)!r} unpacks to more than 1 MiB; it is not an OSV export"
    )


def test_member_names_are_labels_never_paths(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    members = {
        "../../escaped.json": real_members()["GHSA-h75v-3vvj-5mfj.json"],
        "/etc/absolute.json": real_members()["GHSA-34jh-p97f-mpxf.json"],
    }
    path = write_zip(work / "all.zip", members)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    database = load_snapshot(path)
    (jinja,) = database.query("jinja2", "3.1.3")
    assert jinja.member == "../../escaped.json"
    assert database.raw(jinja)["id"] == "GHSA-h75v-3vvj-5mfj"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    bad = write_zip(work / "bad.zip", {"../../../x.json": b"{"})
    assert "malformed record '../../../x.json': not JSON" in load_error(bad)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == sorted([*before, Path("work/bad.zip")])


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "all.zip", {"ENC.json": b"{}"}, compression=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    # Set the "encrypted" flag in the local header and the central directory entry.
    data[6] |= 1
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 1
    path.write_bytes(bytes(data))
    assert "malformed record 'ENC.json': it cannot be unpacked" in load_error(path)


def test_a_snapshot_that_differs_from_its_recorded_sha256_is_tampered(
    real_snapshot: Path,
) -> None:
    with pytest.raises(TamperedError) as caught:
        load_snapshot(real_snapshot, expected_sha256="0" * 64)
    assert caught.value.exit_code == ExitCode.INTEGRITY
    assert caught.value.message.endswith(f"but {'0' * 64} was recorded when it was fetched")
