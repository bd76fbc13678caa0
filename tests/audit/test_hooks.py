"""The audit's hooks for other commands: the OSV query API answered from a snapshot, and the
CycloneDX SBOM's vulnerabilities."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.osv import real_record
from wheelhouse.audit.osv import load_snapshot
from wheelhouse.audit.query import MAX_QUERY_BYTES, answer_query
from wheelhouse.audit.scan import audit_wheelhouse, cyclonedx_vulnerabilities
from wheelhouse.house.manifest import read_manifest


def query(snapshot: Path, body: object) -> tuple[int, object]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = answer_query(load_snapshot(snapshot), raw)
    return status, json.loads(answer)


def test_a_query_is_answered_with_the_whole_records(real_snapshot: Path) -> None:
    # What pip-audit's OSV service sends for each pinned distribution.
    status, answer = query(
        real_snapshot,
        {"package": {"name": "Requests", "ecosystem": "PyPI"}, "version": "2.30.0"},
    )
    assert status == 200
    assert answer == {
        "vulns": [
            real_record("GHSA-9wx4-h78v-vm56"),
            real_record("GHSA-j8r2-6x86-q33q"),
            real_record("PYSEC-2023-74"),
        ]
    }
    status, answer = query(real_snapshot, {"package": {"purl": "pkg:pypi/jinja2@3.1.3"}})
    assert (status, answer) == (200, {"vulns": [real_record("GHSA-h75v-3vvj-5mfj")]})
    # Nothing known: an empty object, as the OSV API answers.
    status, answer = query(
        real_snapshot, {"package": {"name": "idna", "ecosystem": "PyPI"}, "version": "3.7"}
    )
    assert (status, answer) == (200, {})


def test_bad_queries_are_refused_with_the_apis_error_shape(real_snapshot: Path) -> None:
    cases = [
        (b"{not json", "the query is not JSON"),
        (b"[]", "the query is not a JSON object"),
        ({"commit": "74ea7cf7"}, "the query names no package (only package queries are answered)"),
        (
            {"package": {"name": "left-pad", "ecosystem": "npm"}, "version": "1.0.0"},
            "this server answers for the 'PyPI' ecosystem only",
        ),
        (
            {"package": {"name": "requests", "ecosystem": "PyPI"}},
            "the query has no version (a commit query cannot be answered here)",
        ),
        (b" " * (MAX_QUERY_BYTES + 1), f"the query is larger than {MAX_QUERY_BYTES} bytes"),
    ]
    for body, message in cases:
        assert query(real_snapshot, body) == (400, {"code": 3, "message": message})


def test_findings_become_cyclonedx_vulnerabilities(house: Path, real_snapshot: Path) -> None:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    manifest = read_manifest(house)
    assert manifest is not None
    report = audit_wheelhouse(manifest, real_snapshot)
    bom = Bom()
    for record in manifest.files:
        bom.components.add(
            Component(
                type=ComponentType.LIBRARY,
                name=record.name,
                version=record.version,
                bom_ref=record.filename,
            )
        )
    bom.vulnerabilities.update(cyclonedx_vulnerabilities(report.findings))
    data = json.loads(JsonV1Dot6(bom).output_as_string())
    found = {v["id"]: v for v in data["vulnerabilities"]}
    assert sorted(found) == ["GHSA-34jh-p97f-mpxf", "GHSA-9wx4-h78v-vm56", "GHSA-h75v-3vvj-5mfj"]
    urllib3 = found["GHSA-34jh-p97f-mpxf"]
    assert urllib3["affects"] == [
        {
            "ref": "urllib3-2.2.1-py3-none-any.whl",
            "versions": [{"version": "2.2.1", "status": "affected"}],
        }
    ]
    assert urllib3["references"] == [
        {
            "id": "CVE-2024-37891",
            "source": {"name": "OSV", "url": "https://osv.dev/vulnerability/CVE-2024-37891"},
        }
    ]
    # The library writes the vector without its "CVSS:3.1/" prefix (the method says it).
    assert urllib3["ratings"] == [
        {"method": "CVSSv31", "vector": "AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:N/A:N"}
    ]
    assert urllib3["recommendation"] == "upgrade urllib3 to 2.2.2"
