"""`wheelhouse serve DIR` answers the OSV API's `POST /v1/query` from the wheelhouse's OSV
snapshot, so `pip-audit -s osv --osv-url` works inside the gap."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.capabilities import missing
from tests.support.osv import real_members, real_record, write_zip

QUERY = {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.30.0"}


def make_house(root: Path, *, snapshot: bool = True) -> Path:
    """The smallest directory `serve` takes, with the real records zipped as the export is."""
    (root / "simple").mkdir(parents=True)
    (root / "simple" / "index.html").write_text("<!DOCTYPE html>\n<html></html>\n")
    if snapshot:
        write_zip(root / "osv" / "PyPI.zip", real_members())
    return root


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(the wheelhouse, host:port) of `serve` running in this process."""
    from wheelhouse.serve.static import make_server

    house = make_house(tmp_path / "house")
    server = make_server(house, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield house, server.url.split("/")[2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def post(
    where: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    host, port = where.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(
            "POST", "/v1/query", body, {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        data = response.read()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(data)
    finally:
        connection.close()


def test_a_query_for_a_vulnerable_release_returns_its_records(
    served: tuple[Path, str],
) -> None:
    _, where = served
    status, answer = post(where, json.dumps(QUERY).encode())
    assert status == 200
    ids = sorted(v["id"] for v in answer["vulns"])
    assert ids == ["GHSA-9wx4-h78v-vm56", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]
    # The whole record, as the OSV API gives it.
    by_id = {v["id"]: v for v in answer["vulns"]}
    assert by_id["GHSA-j8r2-6x86-q33q"] == real_record("GHSA-j8r2-6x86-q33q")
    # A fixed release: no vulns at all (the OSV API's empty answer is {}).
    fixed = {**QUERY, "version": "2.32.3"}
    assert post(where, json.dumps(fixed).encode()) == (200, {})
    purl = {"package": {"purl": "pkg:pypi/urllib3@2.2.1"}}
    status, answer = post(where, json.dumps(purl).encode())
    assert status == 200
    assert [v["id"] for v in answer["vulns"]] == ["GHSA-34jh-p97f-mpxf"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the query is not JSON"),
        (b"[]", "the query is not a JSON object"),
        (
            json.dumps({"package": {"name": "requests", "ecosystem": "npm"}, "version": "1"}),
            "this server answers for the 'PyPI' ecosystem only",
        ),
    ],
)
def test_a_malformed_query_is_400(
    served: tuple[Path, str], body: bytes | str, message: str
) -> None:
    _, where = served
    raw = body.encode() if isinstance(body, str) else body
    assert post(where, raw) == (400, {"code": 3, "message": message})


def test_a_query_too_big_is_413_before_it_is_read(served: tuple[Path, str]) -> None:
    _, where = served
    big = json.dumps({**QUERY, "pad": "x" * (64 * 1024)}).encode()
    assert post(where, big) == (
        413,
        {"code": 3, "message": "the query is larger than 65536 bytes"},
    )
    # Sent in chunks without a length: counted as it comes, cut at the bound.
    host, port = where.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(
            "POST", "/v1/query", iter([big[:40000], big[40000:]]), encode_chunked=True
        )
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()


def test_no_snapshot_is_404_and_a_replaced_one_is_refused(tmp_path: Path) -> None:
    from wheelhouse.serve.static import make_server

    house = make_house(tmp_path / "house", snapshot=False)
    server = make_server(house, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        where = server.url.split("/")[2]
        assert post(where, json.dumps(QUERY).encode()) == (
            404,
            {"code": 5, "message": "this wheelhouse carries no OSV snapshot"},
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    # A snapshot whose bytes differ from the sha256 recorded when it was fetched: never used.
    other = make_house(tmp_path / "other")
    info = {"source": "x", "sha256": "0" * 64, "size": 1, "fetched": "2026-01-01", "records": 5}
    (other / "osv" / "PyPI.zip.json").write_text(json.dumps({"schema-version": 1, **info}))
    server = make_server(other, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, answer = post(server.url.split("/")[2], json.dumps(QUERY).encode())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert status == 503
    assert "was recorded when it was fetched" in answer["message"]


def test_pip_audit_reads_the_osv_api_of_serve(served: tuple[Path, str], tmp_path: Path) -> None:
    pip_audit = os.environ.get("WHEELHOUSE_TEST_PIP_AUDIT") or shutil.which(
        "pip-audit", path=os.path.dirname(sys.executable)
    )
    if pip_audit is None:
        missing("pip-audit", "a test dependency (noxfile.py); WHEELHOUSE_TEST_PIP_AUDIT names one")
    _, where = served
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.30.0\n")
    proc = subprocess.run(
        [
            pip_audit,
            "-s",
            "osv",
            "--osv-url",
            f"http://{where}/v1/query",
            "--no-deps",
            "--disable-pip",
            "-r",
            requirements,
            "-f",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 1, proc.stderr  # 1: vulnerabilities found
    report = json.loads(proc.stdout)
    (dependency,) = report["dependencies"]
    assert dependency["name"] == "requests"
    # pip-audit folds aliases: the two advisories, each under the id it prefers.
    assert sorted(v["id"] for v in dependency["vulns"]) == ["CVE-2024-35195", "PYSEC-2023-74"]
