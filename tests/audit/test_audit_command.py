"""`wheelhouse audit`: a real wheelhouse audited offline; `wheelhouse audit fetch` on loopback."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.fixtures import Cli, Offline
from tests.support.osv import real_members, write_zip
from tests.support.process import run_command as run
from tests.support.process import wheelhouse_argv as wheelhouse_cli
from tests.support.server import IndexServer
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.audit.fetch import fetch_snapshot
from wheelhouse.errors import ExitCode, FetchError

# What `wheelhouse audit` prints for the wheelhouse of tests/audit/conftest.py: requests
# 2.31.0 (fixed in 2.32.2), urllib3 2.2.1 (2.2.2), Jinja2 3.1.3 (3.1.4); idna 3.7 is clean.
TABLE = [
    ["project", "version", "id", "aliases", "fixed in", "summary"],
    [
        "jinja2",
        "3.1.3",
        "GHSA-h75v-3vvj-5mfj",
        "CVE-2024-34064",
        "3.1.4",
        "Jinja vulnerable to HTML attribute injection when passing user input as keys to "
        "xmlattr filter",
    ],
    [
        "requests",
        "2.31.0",
        "GHSA-9wx4-h78v-vm56",
        "CVE-2024-35195",
        "2.32.2",
        "Requests `Session` object does not verify requests after making first request with "
        "verify=False",
    ],
    [
        "urllib3",
        "2.2.1",
        "GHSA-34jh-p97f-mpxf",
        "CVE-2024-37891",
        "2.2.2",
        "urllib3's Proxy-Authorization request header isn't stripped during cross-origin redirects",
    ],
]


def table_of(stdout: str) -> list[list[str]]:
    """The table's rows, split on the runs of two spaces between its columns."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        rows.append(cells)
    return rows


def place_snapshot(house: Path) -> Path:
    return write_zip(house / "osv" / "PyPI.zip", real_members())


def test_audit_finds_the_real_advisories_with_no_network(house: Path, offline: Offline) -> None:
    place_snapshot(house)
    result = run(offline(wheelhouse_cli("audit", house)))
    assert result.returncode == ExitCode.VULNERABLE == 11, result.stderr
    assert table_of(result.stdout) == TABLE
    assert result.stderr.splitlines() == [
        "audited 4 distributions against 5 OSV records: 3 known vulnerabilities"
    ]


def test_audit_json_has_the_documented_shape(house: Path, cli: Cli) -> None:
    snapshot = place_snapshot(house)
    result = cli("audit", house, "--json")
    assert result.exit_code == ExitCode.VULNERABLE
    data = json.loads(result.stdout)
    assert data["schema-version"] == 1
    assert data["snapshot"] == {
        "path": str(snapshot),
        "sha256": hashlib.sha256(snapshot.read_bytes()).hexdigest(),
        "records": 5,
        "fetched": None,
        "source": None,
    }
    assert data["distributions"] == 4
    assert data["ignored"] == []
    found = {v["name"]: v for v in data["vulnerabilities"]}
    assert sorted(found) == ["jinja2", "requests", "urllib3"]
    assert found["urllib3"] == {
        "name": "urllib3",
        "version": "2.2.1",
        "id": "GHSA-34jh-p97f-mpxf",
        "aliases": ["CVE-2024-37891"],
        "fixed-versions": ["2.2.2"],
        "summary": "urllib3's Proxy-Authorization request header isn't stripped during "
        "cross-origin redirects ",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N"}],
        "files": ["urllib3-2.2.1-py3-none-any.whl"],
    }


def test_ignore_takes_any_id_of_a_vulnerability(house: Path, cli: Cli) -> None:
    place_snapshot(house)
    some = cli("audit", house, "--ignore", "cve-2024-34064", "--ignore", "GHSA-34jh-p97f-mpxf")
    assert some.exit_code == ExitCode.VULNERABLE
    assert [row[0] for row in table_of(some.stdout)] == ["project", "requests"]
    assert some.stderr.splitlines() == [
        "audited 4 distributions against 5 OSV records: 1 known vulnerability (2 ignored)"
    ]
    every = cli(
        "audit",
        house,
        "--ignore=CVE-2024-34064",
        "--ignore=GHSA-34jh-p97f-mpxf",
        "--ignore=CVE-2024-35195",
    )
    assert every.exit_code == ExitCode.OK
    assert every.stdout == ""
    assert every.stderr.splitlines() == [
        "audited 4 distributions against 5 OSV records: no known vulnerabilities (3 ignored)"
    ]


def test_records_of_one_vulnerability_are_one_finding(house: Path, cli: Cli) -> None:
    # requests 2.30.0 would be in both the PyPI and the GitHub record of CVE-2023-32681;
    # 2.31.0 is in neither, so a snapshot of those two alone finds nothing.
    members = {k: v for k, v in real_members().items() if "j8r2" in k or "PYSEC" in k}
    write_zip(house / "osv" / "PyPI.zip", members)
    clean = cli("audit", house)
    assert (clean.exit_code, clean.stdout) == (ExitCode.OK, "")
    manifest = json.loads((house / "wheelhouse.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        if entry["name"] == "requests":
            entry["version"] = "2.30.0"
    (house / "wheelhouse.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = cli("audit", house, "--json")
    assert result.exit_code == ExitCode.VULNERABLE
    (finding,) = json.loads(result.stdout)["vulnerabilities"]
    assert (finding["id"], finding["aliases"], finding["fixed-versions"]) == (
        "PYSEC-2023-74",
        ["GHSA-j8r2-6x86-q33q", "CVE-2023-32681"],
        ["2.31.0"],
    )
    assert finding["summary"] == "Unintended leak of Proxy-Authorization header in requests"


def test_osv_option_names_another_snapshot(house: Path, cli: Cli, tmp_path: Path) -> None:
    snapshot = write_zip(tmp_path / "elsewhere.zip", real_members())
    result = cli("audit", "check", house, "--osv", snapshot)
    assert result.exit_code == ExitCode.VULNERABLE
    assert len(table_of(result.stdout)) == 4


# -- bad snapshots: one line, exit 3, nothing written ----------------------------------------


def snapshot_error(cli: Cli, house: Path) -> list[str]:
    before = sorted(p.relative_to(house) for p in house.rglob("*"))
    result = cli("audit", house)
    assert result.exit_code == ExitCode.INPUT
    assert result.stdout == ""
    assert sorted(p.relative_to(house) for p in house.rglob("*")) == before
    return result.stderr.splitlines()


def test_a_missing_snapshot_is_one_line(house: Path, cli: Cli) -> None:
    lines = snapshot_error(cli, house)
    assert lines == [
        f"error: there is no OSV snapshot at {str(house / 'osv' / 'PyPI.zip')!r}",
        "hint: fetch one on the connected side with 'wheelhouse audit fetch DIR' "
        "(or name one with --osv FILE)",
    ]


def test_a_snapshot_that_is_not_a_zip_is_one_line(house: Path, cli: Cli) -> None:
    (house / "osv").mkdir()
    (house / "osv" / "PyPI.zip").write_bytes(b"<html>proxy login</html>")
    (first, hint) = snapshot_error(cli, house)
    assert first.startswith(
        f"error: the OSV snapshot {str(house / 'osv' / 'PyPI.zip')!r} is not a zip file"
    )
    assert hint == "hint: fetch it again with 'wheelhouse audit fetch'"


def test_a_malformed_record_is_one_line_naming_it(house: Path, cli: Cli) -> None:
    members = {**real_members(), "PYSEC-9999-1.json": b'{"id": "PYSEC-9999-1", "affected": 1}'}
    write_zip(house / "osv" / "PyPI.zip", members)
    (first, _) = snapshot_error(cli, house)
    assert first == (
        f"error: the OSV snapshot {str(house / 'osv' / 'PyPI.zip')!r} has a malformed record "
        "'PYSEC-9999-1.json': 'affected' is int, not a list"
    )


# -- fetching on the connected side ----------------------------------------------------------


def serve(server: IndexServer, path: str, body: bytes, status: int = 200) -> str:
    def answer(asked: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        if asked == path:
            return status, {"Content-Type": "application/zip"}, body
        return None

    server.intercept(answer)
    return server.base_url.rstrip("/") + path


def test_fetch_stores_the_snapshot_in_the_wheelhouse_and_audit_checks_it(
    house: Path, cli: Cli, index_server: IndexServer, offline: Offline, tmp_path: Path
) -> None:
    body = write_zip(tmp_path / "served.zip", real_members()).read_bytes()
    url = serve(index_server, "/osv/PyPI/all.zip", body)
    fetched = cli("audit", "fetch", house, "--url", url, "--json")
    assert fetched.exit_code == ExitCode.OK, fetched.stderr
    snapshot = house / "osv" / "PyPI.zip"
    assert snapshot.read_bytes() == body
    sha256 = hashlib.sha256(body).hexdigest()
    info = json.loads((house / "osv" / "PyPI.zip.json").read_text(encoding="utf-8"))
    assert {k: info[k] for k in ("schema-version", "source", "sha256", "size", "records")} == {
        "schema-version": 1,
        "source": url,
        "sha256": sha256,
        "size": len(body),
        "records": 5,
    }
    assert json.loads(fetched.stdout)["sha256"] == sha256
    assert sorted(p.name for p in (house / "osv").iterdir()) == ["PyPI.zip", "PyPI.zip.json"]
    # Carried across the gap: audited where there is no network, against the recorded sha256.
    carried = tmp_path / "carried"
    shutil.copytree(house, carried)
    audited = run(offline(wheelhouse_cli("audit", carried, "--json")))
    assert audited.returncode == ExitCode.VULNERABLE, audited.stderr
    assert json.loads(audited.stdout)["snapshot"]["fetched"] == info["fetched"]
    # A snapshot replaced by another valid one no longer matches what was fetched.
    members = real_members()
    del members["GHSA-9wx4-h78v-vm56.json"]
    write_zip(carried / "osv" / "PyPI.zip", members)
    tampered = run(offline(wheelhouse_cli("audit", carried)))
    assert tampered.returncode == ExitCode.INTEGRITY
    assert tampered.stdout == ""
    assert tampered.stderr.splitlines()[0].startswith(
        f"error: the OSV snapshot {str(carried / 'osv' / 'PyPI.zip')!r} has sha256 "
    )


def test_fetch_of_something_that_is_not_a_zip_writes_nothing(
    house: Path, cli: Cli, index_server: IndexServer
) -> None:
    url = serve(index_server, "/osv/PyPI/all.zip", b"<html>please log in</html>")
    before = sorted(p.relative_to(house) for p in house.rglob("*"))
    result = cli("audit", "fetch", house, "--url", url)
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines()[0].startswith("error: the OSV snapshot ")
    assert "is not a zip file" in result.stderr.splitlines()[0]
    assert sorted(p.relative_to(house) for p in house.rglob("*")) == before


def test_fetch_keeps_the_old_snapshot_when_the_new_one_is_malformed(
    house: Path, cli: Cli, index_server: IndexServer, tmp_path: Path
) -> None:
    good = write_zip(tmp_path / "good.zip", real_members()).read_bytes()
    bad = write_zip(tmp_path / "bad.zip", {"X-1.json": b'{"id": "X-1", "aliases": 1}'})
    url = serve(index_server, "/good.zip", good)
    assert cli("audit", "fetch", house, "--url", url).exit_code == ExitCode.OK
    before = {p: p.read_bytes() for p in (house / "osv").iterdir()}
    url = serve(index_server, "/bad.zip", bad.read_bytes())
    result = cli("audit", "fetch", house, "--url", url)
    assert result.exit_code == ExitCode.INPUT
    assert "has a malformed record 'X-1.json': 'aliases' is int, not a list" in result.stderr
    assert {p: p.read_bytes() for p in (house / "osv").iterdir()} == before


def test_fetch_failure_is_a_network_error(house: Path, cli: Cli, index_server: IndexServer) -> None:
    url = serve(index_server, "/gone.zip", b"not found", status=404)
    result = cli("audit", "fetch", house, "--url", url)
    assert result.exit_code == ExitCode.NETWORK
    assert result.stderr.splitlines()[0] == (
        f"error: cannot download the OSV snapshot from {url}: HTTP 404"
    )
    assert not (house / "osv").exists()


def test_fetch_stops_at_the_size_limit(index_server: IndexServer, tmp_path: Path) -> None:
    url = serve(index_server, "/big.zip", b"\0" * (2 * 2**20))
    dest = tmp_path / "out" / "PyPI.zip"
    with pytest.raises(FetchError) as caught:
        fetch_snapshot(url, dest, pip=PipSettings(), max_bytes=2**20)
    assert caught.value.message == (
        f"the OSV snapshot from {url} is larger than 1 MiB; it is not the OSV export"
    )
    assert not dest.parent.exists()


def test_fetch_into_a_directory_that_is_not_a_wheelhouse_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    result = cli("audit", "fetch", tmp_path, "--url", "http://127.0.0.1:9/x.zip")
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines()[0] == (
        f"error: {str(tmp_path)!r} is not a wheelhouse (it has no wheelhouse.json)"
    )


def test_audit_alone_audits_the_default_wheelhouse(
    house: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    place_snapshot(house)
    monkeypatch.setenv("WHEELHOUSE_DIR", str(house))
    alone = cli("audit")
    assert alone.exit_code == ExitCode.VULNERABLE
    assert table_of(alone.stdout) == TABLE
    options_first = cli("audit", "--ignore", "CVE-2024-35195", "--json")
    assert options_first.exit_code == ExitCode.VULNERABLE
    assert [v["name"] for v in json.loads(options_first.stdout)["vulnerabilities"]] == [
        "jinja2",
        "urllib3",
    ]
