"""The OSV snapshot in the SBOM, and what a rebuild keeps of what a wheelhouse carries."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.support.dists import DistFactory
from tests.support.fixtures import Cli
from tests.support.osv import real_members, write_zip
from tests.support.server import IndexServer
from wheelhouse.audit.fetch import SnapshotInfo
from wheelhouse.errors import ExitCode
from wheelhouse.house.manifest import read_manifest

TRUST_ROOT = Path(__file__).parents[1] / "provenance" / "data" / "trusted_root.json"


def place_snapshot(house: Path) -> None:
    data = write_zip(house / "osv" / "PyPI.zip", real_members()).read_bytes()
    info = SnapshotInfo(
        source="https://osv.example.invalid/PyPI/all.zip",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        fetched="2026-12-07T00:00:00+00:00",
        records=5,
    )
    (house / "osv" / "PyPI.zip.json").write_text(info.to_json(), encoding="utf-8")


def vulnerabilities(document: str) -> list[tuple[str, str, list[str]]]:
    data = json.loads(document)
    return sorted(
        (v["id"], v.get("recommendation", ""), [a["ref"] for a in v["affects"]])
        for v in data.get("vulnerabilities", [])
    )


def test_the_cyclonedx_sbom_lists_the_snapshot_s_vulnerabilities(
    house: Path, cli: Cli, tmp_path: Path
) -> None:
    place_snapshot(house)
    manifest = read_manifest(house)
    assert manifest is not None
    wheel = {r.name: r.filename for r in manifest.files}
    result = cli("sbom", house, "--format", "cyclonedx-json")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout) is None
    expected = [
        ("GHSA-34jh-p97f-mpxf", "upgrade urllib3 to 2.2.2", [wheel["urllib3"]]),
        ("GHSA-9wx4-h78v-vm56", "upgrade requests to 2.32.2", [wheel["requests"]]),
        ("GHSA-h75v-3vvj-5mfj", "upgrade jinja2 to 3.1.4", [wheel["jinja2"]]),
    ]
    assert vulnerabilities(result.stdout) == expected
    components = {c["bom-ref"] for c in json.loads(result.stdout)["components"]}
    assert {ref for _, _, refs in expected for ref in refs} <= components
    # The SBOM every bundle carries says the same.
    bundle = tmp_path / "house.tar.gz"
    assert cli("pack", house, "-o", bundle).exit_code == ExitCode.OK
    with tarfile.open(bundle) as tar:
        carried = tar.extractfile("sbom.cdx.json").read().decode()  # type: ignore[union-attr]
    assert vulnerabilities(carried) == expected


def test_the_sbom_of_a_wheelhouse_without_a_snapshot_lists_none(house: Path, cli: Cli) -> None:
    result = cli("sbom", house)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "vulnerabilities" not in json.loads(result.stdout)


def test_a_rebuild_keeps_what_the_wheelhouse_carries_for_the_files_it_keeps(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    dists.wheel("alpha", "1.0")
    dists.wheel("beta", "1.0")
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\nbeta==1.0\n", encoding="utf-8")
    out = tmp_path / "house"
    built = cli("build", "--index-url", index_server.url, "-o", out, "-r", reqs)
    assert built.exit_code == ExitCode.OK, built.stderr
    alpha, beta = sorted(p.name for p in out.glob("*.whl"))
    place_snapshot(out)
    (out / "sigstore").mkdir()
    shutil.copyfile(TRUST_ROOT, out / "sigstore" / "trusted_root.json")
    (out / f"{alpha}.provenance").write_bytes(b'{"alpha": "provenance"}')
    (out / f"{beta}.provenance").write_bytes(b'{"beta": "provenance"}')
    (out / "osv" / "NOTES.txt").write_text("fetched by hand\n", encoding="utf-8")
    kept = {
        path: (out / path).read_bytes()
        for path in (
            "osv/PyPI.zip",
            "osv/PyPI.zip.json",
            "osv/NOTES.txt",
            "sigstore/trusted_root.json",
            f"{alpha}.provenance",
        )
    }

    reqs.write_text("alpha==1.0\n", encoding="utf-8")
    rebuilt = cli("build", "--index-url", index_server.url, "-o", out, "-r", reqs)
    assert rebuilt.exit_code == ExitCode.OK, rebuilt.stderr
    assert {path: (out / path).read_bytes() for path in kept} == kept
    # The provenance of a file the new wheelhouse no longer has would link nothing.
    assert not (out / f"{beta}.provenance").exists()
    assert not (out / beta).exists()
    verified = cli("verify", out)
    assert verified.exit_code == ExitCode.OK, verified.stderr
    assert verified.stderr.splitlines() == [
        "note: 'osv/NOTES.txt' is not in the manifest: kept as a file of your own "
        "(never packed nor published)",
        f"{out}: 1 file, ok",
    ]
