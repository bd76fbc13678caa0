"""house.sbom and `wheelhouse sbom`: CycloneDX and SPDX of what a wheelhouse ships."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.support.dists import DistFactory, make_sdist, make_wheel
from tests.support.files import sha256_of
from tests.support.fixtures import Cli
from tests.support.wheelhouses import LINUX, lock_of, record_of
from wheelhouse.errors import ExitCode
from wheelhouse.house.bundle import pack
from wheelhouse.house.directory import put_in_place
from wheelhouse.house.export import write_requirements
from wheelhouse.house.index import write_index
from wheelhouse.house.manifest import (
    BuiltFrom,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    Sha256,
    TargetLock,
)

SPDX_SCHEMA = Path(__file__).parent / "data" / "spdx-2.3.schema.json"
EMBEDDED = b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}\n'


def wheel_with(
    dest: Path,
    name: str,
    version: str,
    headers: Sequence[str] = (),
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """A test wheel whose METADATA gains ``headers`` and which carries extra ``files``."""
    path = make_wheel(dest, name, version)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    metadata = next(m for m in members if m.endswith(".dist-info/METADATA"))
    members[metadata] = members[metadata] + "".join(f"{h}\n" for h in headers).encode()
    dist_info = metadata.rsplit("/", 1)[0]
    for relative, data in (files or {}).items():
        members[f"{dist_info}/{relative}"] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), data)
    path.write_bytes(buffer.getvalue())
    return path


class House:
    """A wheelhouse with every case an SBOM must tell apart."""

    def __init__(self, root: Path, dists: DistFactory, targets: Sequence[str] = ("host",)) -> None:
        d = dists.root
        self.app = wheel_with(
            d, "app", "1.0", ["License-Expression: mit OR apache-2.0", "Summary: The app"]
        )
        self.common = wheel_with(
            d, "common", "2.0", ["Classifier: License :: OSI Approved :: MIT License"]
        )
        self.old = wheel_with(d, "old", "0.1", ["License: BSD-3-Clause"])
        self.odd = wheel_with(d, "odd", "3.0", ["License: Our own terms\n  second line"])
        self.carrier = wheel_with(
            d,
            "carrier",
            "1.0",
            files={"sboms/bom.cdx.json": EMBEDDED, "sboms/x/nested.json": b"{}"},
        )
        self.built = make_wheel(d, "built", "1.0")
        self.sdist = make_sdist(d, "built", "1.0")
        self.backend = make_wheel(d, "flit_core", "3.9.0")
        built_from = BuiltFrom(
            sdist=self.sdist.name,
            sdist_sha256=Sha256(sha256_of(self.sdist)),
            sdist_url=f"https://files.example.invalid/{self.sdist.name}",
            backend="flit_core.buildapi",
        )
        runtime = [self.app, self.common, self.old, self.odd, self.carrier, self.built]
        records = [record_of(w) for w in runtime if w != self.built]
        records += [record_of(self.built, origin=built_from), record_of(self.backend)]
        records.append(
            FileRecord(
                name=record_of(self.built).name,
                version="1.0",
                filename=self.sdist.name,
                sha256=Sha256(sha256_of(self.sdist)),
                size=self.sdist.stat().st_size,
                kind="sdist",
                origin=record_of(self.built).origin,
            )
        )
        locks = []
        for target in targets:
            lock = lock_of(target, runtime)
            locks.append(
                TargetLock(
                    lock.target,
                    lock.tags,
                    lock.environment,
                    tuple(
                        LockEntry(e.name, e.version, (*e.filenames, self.sdist.name), e.requested)
                        if e.name == "built"
                        else e
                        for e in lock.entries
                    ),
                )
            )
        self.manifest = Manifest(
            generator="wheelhouse-tests",
            created="2026-11-30T12:34:56.789+00:00",
            inputs=Inputs(files=(), options={}, fingerprint="f" * 64),
            files=tuple(sorted(records, key=lambda r: r.filename)),
            locks=tuple(locks),
            build_locks=tuple(lock_of(target, [self.backend]) for target in targets),
        )
        sources = {p.name: p for p in [*runtime, self.sdist, self.backend]}
        put_in_place(root, self.manifest, sources, writers=[write_requirements, write_index])
        self.root = root


@pytest.fixture
def house(tmp_path: Path, dists: DistFactory) -> House:
    return House(tmp_path / "house", dists)


def by_ref(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in document["components"]}


def properties(component: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in component.get("properties", []):
        found.setdefault(item["name"], []).append(item["value"])
    return found


def test_cyclonedx_validates_and_matches_the_files(house: House, cli: Cli) -> None:
    result = cli("sbom", house.root, "--format", "cyclonedx-json")
    assert result.exit_code == 0, result.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout) is None
    document = json.loads(result.stdout)
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["timestamp"] == "2026-11-30T12:34:56+00:00"
    components = by_ref(document)
    assert set(components) == {r.filename for r in house.manifest.files}
    for filename, component in components.items():
        path = house.root / filename
        assert component["hashes"] == [{"alg": "SHA-256", "content": sha256_of(path)}]
        record = house.manifest.file(filename)
        assert component["purl"] == f"pkg:pypi/{record.name}@{record.version}?file_name={filename}"
        assert (component["name"], component["version"]) == (record.name, record.version)

    app = components[house.app.name]
    assert app["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert app["description"] == "The app"
    assert properties(app)["wheelhouse:license-source"] == ["License-Expression"]
    assert components[house.common.name]["licenses"] == [{"license": {"id": "MIT"}}]
    assert properties(components[house.common.name])["wheelhouse:license-source"] == ["classifiers"]
    assert components[house.old.name]["licenses"] == [{"license": {"id": "BSD-3-Clause"}}]
    assert components[house.odd.name]["licenses"] == [{"license": {"name": "Our own terms"}}]

    built = components[house.built.name]
    assert properties(built)["wheelhouse:built-from-sdist"] == [house.sdist.name]
    [ancestor] = built["pedigree"]["ancestors"]
    assert ancestor["hashes"] == [{"alg": "SHA-256", "content": sha256_of(house.sdist)}]
    assert properties(components[house.sdist.name])["wheelhouse:kind"] == ["sdist"]

    backend = components[house.backend.name]
    assert backend["scope"] == "excluded"
    # The sdist it builds, not the target whose sdists those are.
    assert properties(backend)["wheelhouse:build-dependency-of"] == [house.sdist.name]
    assert app["scope"] == "required"

    carried = components[house.carrier.name]["externalReferences"]
    assert [(r["type"], r["url"], r["hashes"][0]["content"]) for r in carried] == [
        (
            "bom",
            f"{house.carrier.name}#carrier-1.0.dist-info/sboms/bom.cdx.json",
            hashlib.sha256(EMBEDDED).hexdigest(),
        ),
        (
            "bom",
            f"{house.carrier.name}#carrier-1.0.dist-info/sboms/x/nested.json",
            hashlib.sha256(b"{}").hexdigest(),
        ),
    ]


def test_spdx_validates_against_the_schema_and_matches_the_files(
    house: House, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "sbom.spdx.json"
    result = cli("sbom", house.root, "--format", "spdx-json", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"{out}: spdx-json SBOM written\n"
    document = json.loads(out.read_text())
    schema = json.loads(SPDX_SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["creationInfo"]["created"] == "2026-11-30T12:34:56Z"
    packages = {p["packageFileName"]: p for p in document["packages"]}
    shipped = {r.filename for r in house.manifest.files}
    assert set(packages) == shipped
    for filename in shipped:
        package = packages[filename]
        assert package["checksums"] == [
            {"algorithm": "SHA256", "checksumValue": sha256_of(house.root / filename)}
        ]
        assert package["externalRefs"][0]["referenceLocator"].endswith(f"?file_name={filename}")
    assert packages[house.app.name]["licenseDeclared"] == "MIT OR Apache-2.0"
    assert packages[house.common.name]["licenseDeclared"] == "MIT"
    assert packages[house.odd.name]["licenseDeclared"] == "NOASSERTION"
    assert packages[house.odd.name]["licenseComments"] == "License: Our own terms"
    ids = {p["packageFileName"]: p["SPDXID"] for p in document["packages"]}
    relations = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in document["relationships"]
    }
    assert (ids[house.built.name], "GENERATED_FROM", ids[house.sdist.name]) in relations
    assert (ids[house.backend.name], "BUILD_DEPENDENCY_OF", ids[house.sdist.name]) in relations
    described = {r[2] for r in relations if r[1] == "DESCRIBES"}
    assert described == set(ids.values())
    assert (
        "bom.cdx.json sha256 " + hashlib.sha256(EMBEDDED).hexdigest()
        in (packages[house.carrier.name]["comment"])
    )


def test_a_build_dependency_of_two_targets_names_the_sdist_once_in_both_formats(
    tmp_path: Path, dists: DistFactory, cli: Cli
) -> None:
    house = House(tmp_path / "house", dists, targets=("host", LINUX))
    cyclonedx = cli("sbom", house.root, "--format", "cyclonedx-json")
    assert cyclonedx.exit_code == 0, cyclonedx.stderr
    backend = by_ref(json.loads(cyclonedx.stdout))[house.backend.name]
    assert properties(backend)["wheelhouse:build-dependency-of"] == [house.sdist.name]
    assert properties(backend)["wheelhouse:kind"] == ["wheel"]

    spdx = cli("sbom", house.root, "--format", "spdx-json")
    assert spdx.exit_code == 0, spdx.stderr
    document = json.loads(spdx.stdout)
    ids = {p["packageFileName"]: p["SPDXID"] for p in document["packages"]}
    relations = [
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in document["relationships"]
    ]
    assert [r for r in relations if r[1] == "BUILD_DEPENDENCY_OF"] == [
        (ids[house.backend.name], "BUILD_DEPENDENCY_OF", ids[house.sdist.name])
    ]
    assert len(relations) == len(set(relations))


def test_sbom_is_deterministic_and_rides_in_every_bundle(
    house: House, cli: Cli, tmp_path: Path
) -> None:
    first = cli("sbom", house.root)
    second = cli("sbom", house.root)
    assert first.stdout == second.stdout
    spdx = cli("sbom", house.root, "--format", "spdx-json").stdout
    pack(house.root, tmp_path / "b.tar")
    with tarfile.open(tmp_path / "b.tar") as tar:
        cdx_member = tar.extractfile("sbom.cdx.json")
        spdx_member = tar.extractfile("sbom.spdx.json")
        assert cdx_member is not None and spdx_member is not None
        assert cdx_member.read().decode() == first.stdout
        assert spdx_member.read().decode() == spdx


def test_unknown_format_is_a_usage_error(house: House, cli: Cli) -> None:
    result = cli("sbom", house.root, "--format", "swid")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.splitlines()[0] == (
        "error: --format must be one of cyclonedx-json, spdx-json, not 'swid'"
    )


def test_sbom_of_no_wheelhouse(tmp_path: Path, cli: Cli) -> None:
    result = cli("sbom", tmp_path)
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.startswith(f"error: {str(tmp_path)!r} is not a wheelhouse")
