"""wheelhouse provenance verify: real PEP 740 provenance checked offline, and hostile variants."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.files import snapshot
from tests.support.fixtures import Cli, Offline
from tests.support.provenance import (
    DATA,
    GITLAB_SDIST,
    SDIST,
    SDIST_SHA256,
    TRUST_ROOT,
    MakeHouse,
)
from tests.support.wheelhouses import make_wheelhouse, write_manifest

ROOT_FILE = Path("sigstore") / "trusted_root.json"


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("problem: ")]


def test_real_provenance_verifies_offline(
    make_house: MakeHouse, offline: Offline, tmp_path: Path
) -> None:
    house = make_house(gitlab=True)
    policy = _policy(
        tmp_path,
        "require = true\n"
        '[projects.pypi-attestations]\nrepository = "trailofbits/pypi-attestations"\n'
        'workflow = "release.yml"\n[projects.gitlab-oidc-project]\nkind = "gitlab"\n'
        'repository = "facutuesca/gitlab-oidc-project"\nworkflow = ".gitlab-ci.yml"\n',
    )
    before = snapshot(house)
    argv = [sys.executable, "-m", "wheelhouse", "provenance", "verify", house]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        offline([*argv, "--policy", str(policy), "--json"]),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert report["trust-root"] == str(house / ROOT_FILE)
    by_name = {f["filename"]: f for f in report["files"]}
    assert by_name[SDIST]["status"] == "verified"
    assert by_name[SDIST]["attestations"] == 1
    assert by_name[SDIST]["signed-at"] == ["2024-12-04T23:14:01+00:00"]
    assert by_name[SDIST]["publishers"] == [
        {
            "kind": "GitHub",
            "repository": "trailofbits/pypi-attestations",
            "workflow": "release.yml",
            "email": None,
            "environment": None,
        }
    ]
    assert by_name[GITLAB_SDIST]["status"] == "verified"
    assert by_name[GITLAB_SDIST]["publishers"][0]["repository"] == "facutuesca/gitlab-oidc-project"
    assert report["problems"] == [] and report["without-provenance"] == []
    assert snapshot(house) == before
    # The table, as a user reads it.
    proc = subprocess.run(
        offline(argv), capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2].split() == [
        SDIST, "github", "trailofbits/pypi-attestations,", "workflow", "release.yml", "verified"
    ]  # fmt: skip
    assert proc.stderr.strip().endswith(": 2 verified, 0 without provenance, ok")
    # sigstore's TUF cache was never touched: nothing fetched, nothing written anywhere.
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "xdg-cache").exists()


def test_subject_digest_differs_from_the_file(make_house: MakeHouse, cli: Cli) -> None:
    house = make_house()
    # Another file under the attested name, recorded by the manifest as it is: only the
    # attestation can tell that these are not the bytes the publisher released.
    data = bytearray((DATA / SDIST).read_bytes())
    data[1000] ^= 0x01
    (house / SDIST).write_bytes(bytes(data))
    make_wheelhouse(house, [house / SDIST], writes=[write_manifest])
    import hashlib

    actual = hashlib.sha256(bytes(data)).hexdigest()
    before = snapshot(house)
    result = cli("provenance", "verify", house)
    assert result.exit_code == 12
    assert _problems(result.stderr) == [
        f"problem: {SDIST!r} has sha256 {actual}, but its attestation is for sha256 {SDIST_SHA256}"
    ]
    assert snapshot(house) == before


def test_file_changed_after_the_manifest(make_house: MakeHouse, cli: Cli) -> None:
    house = make_house()
    data = bytearray((house / SDIST).read_bytes())
    data[-1] ^= 0xFF
    (house / SDIST).write_bytes(bytes(data))
    result = cli("provenance", "verify", house, "--json")
    assert result.exit_code == 12
    report = json.loads(result.stdout)
    assert [p["kind"] for p in report["problems"]] == ["file-changed"]
    assert report["files"][0]["status"] == "failed"


def test_another_publisher_than_the_policy_pins(
    make_house: MakeHouse, cli: Cli, tmp_path: Path
) -> None:
    house = make_house()
    policy = _policy(
        tmp_path,
        '[projects.PyPI_Attestations]\nrepository = "pypa/pypi-attestations"\n'
        'workflow = "release.yml"\n',
    )
    before = snapshot(house)
    result = cli("provenance", "verify", house, "--policy", policy)
    assert result.exit_code == 12
    assert _problems(result.stderr) == [
        f"problem: {SDIST!r} was published by github trailofbits/pypi-attestations, workflow "
        "release.yml, but the policy pins github pypa/pypi-attestations, workflow release.yml "
        "for 'pypi-attestations'"
    ]
    assert snapshot(house) == before


def test_another_workflow_than_the_policy_pins(
    make_house: MakeHouse, cli: Cli, tmp_path: Path
) -> None:
    house = make_house()
    policy = _policy(
        tmp_path,
        '[projects.pypi-attestations]\nrepository = "TrailOfBits/pypi-attestations"\n'
        'workflow = "publish.yml"\n',
    )
    result = cli("provenance", "verify", house, "--policy", policy, "--json")
    assert result.exit_code == 12
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["kind"] == "publisher-changed"
    assert "workflow publish.yml" in problem["message"]


def test_a_claimed_publisher_the_certificate_does_not_name(
    make_house: MakeHouse, cli: Cli, tmp_path: Path
) -> None:
    # A hostile index rewrites the provenance's publisher to the one the policy pins: the
    # signing certificate still names the real repository, so the bundle does not verify.
    house = make_house()
    provenance = json.loads((house / f"{SDIST}.provenance").read_bytes())
    provenance["attestation_bundles"][0]["publisher"]["repository"] = "pypa/pypi-attestations"
    (house / f"{SDIST}.provenance").write_text(json.dumps(provenance))
    policy = _policy(
        tmp_path, '[projects.pypi-attestations]\nrepository = "pypa/pypi-attestations"\n'
    )
    result = cli("provenance", "verify", house, "--policy", policy)
    assert result.exit_code == 12
    [line] = _problems(result.stderr)
    assert line.startswith(
        f"problem: {SDIST!r}: its Sigstore bundle does not verify against the trust root "
        "(published by github pypa/pypi-attestations, workflow release.yml): "
    )
    assert "github.com/pypa/pypi-attestations" in line


def _flip(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        ("signature", "DSSE: invalid signature"),
        ("certificate", "failed to build timestamp certificate chain"),
        ("statement", "DSSE: invalid signature"),
        ("log-entry", "invalid inclusion promise"),
    ],
)
def test_a_tampered_sigstore_bundle(
    make_house: MakeHouse, cli: Cli, part: str, reason: str
) -> None:
    house = make_house()
    path = house / f"{SDIST}.provenance"
    provenance = json.loads(path.read_bytes())
    attestation = provenance["attestation_bundles"][0]["attestations"][0]
    if part == "signature":
        attestation["envelope"]["signature"] = _flip(attestation["envelope"]["signature"], 20)
    elif part == "certificate":
        # A byte inside the signed part of the certificate (its validity period).
        material = attestation["verification_material"]
        material["certificate"] = _flip(material["certificate"], 160)
    elif part == "statement":
        statement = json.loads(base64.b64decode(attestation["envelope"]["statement"]))
        statement["subject"][0]["digest"]["sha256"] = "0" * 64
        attestation["envelope"]["statement"] = base64.b64encode(
            json.dumps(statement).encode()
        ).decode()
    else:
        entry = attestation["verification_material"]["transparency_entries"][0]
        entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    path.write_text(json.dumps(provenance))
    before = snapshot(house)
    result = cli("provenance", "verify", house, "--json")
    assert result.exit_code == 12, result.stderr
    report = json.loads(result.stdout)
    [problem] = report["problems"]
    assert (problem["kind"], problem["filename"]) == ("signature", SDIST)
    assert problem["message"].startswith(
        f"{SDIST!r}: its Sigstore bundle does not verify against the trust root (published by "
        "github trailofbits/pypi-attestations, workflow release.yml): "
    )
    assert reason in problem["message"]
    assert report["files"][0]["status"] == "failed"
    assert snapshot(house) == before


def test_the_trust_root_is_missing(make_house: MakeHouse, cli: Cli) -> None:
    house = make_house(trust_root=False)
    before = snapshot(house)
    result = cli("provenance", "verify", house)
    assert result.exit_code == 13
    assert result.stderr.splitlines()[0] == (
        f"error: the trust root {str(house / ROOT_FILE)!r} is missing: provenance cannot be "
        "verified without it"
    )
    assert result.stdout == ""
    assert snapshot(house) == before


def _edit_root(house: Path, edit: object) -> None:
    path = house / ROOT_FILE
    root = json.loads(path.read_bytes())
    assert callable(edit)
    edit(root)
    path.write_text(json.dumps(root))


def test_the_trust_root_has_expired(make_house: MakeHouse, cli: Cli) -> None:
    house = make_house()

    def expire(root: dict[str, list[dict[str, dict[str, dict[str, str]]]]]) -> None:
        for section in ("tlogs", "ctlogs"):
            for entry in root[section]:
                entry["publicKey"]["validFor"]["end"] = "2023-01-01T00:00:00Z"
        for entry in root["certificateAuthorities"]:
            entry["validFor"]["end"] = "2023-01-01T00:00:00Z"  # type: ignore[index]

    _edit_root(house, expire)
    before = snapshot(house)
    result = cli("provenance", "verify", house)
    assert result.exit_code == 13
    assert result.stderr.splitlines()[0] == (
        f"error: the trust root {str(house / ROOT_FILE)!r} has expired: its last Fulcio "
        "certificate authority was valid until 2023-01-01T00:00:00+00:00"
    )
    assert snapshot(house) == before


def test_the_trust_root_was_not_valid_when_the_file_was_signed(
    make_house: MakeHouse, cli: Cli
) -> None:
    # sigstore-python accepts a key whatever its validity period says; the key must have been
    # valid when the file was signed (2024-12-04), and this root's CA starts in 2025.
    house = make_house()

    def later(root: dict[str, list[dict[str, dict[str, str]]]]) -> None:
        for entry in root["certificateAuthorities"]:
            if "end" not in entry["validFor"]:
                entry["validFor"]["start"] = "2025-01-01T00:00:00Z"

    _edit_root(house, later)
    result = cli("provenance", "verify", house)
    assert result.exit_code == 12
    assert _problems(result.stderr) == [
        f"problem: {SDIST!r} was signed at 2024-12-04T23:14:01+00:00, when the trust root "
        f"{str(house / ROOT_FILE)!r} had no valid Fulcio certificate authority: it has "
        "expired, or it is not the root the file was signed under"
    ]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"version": 1, "attestation_bundles": []}', b'{"version": 2}'],
    ids=["not-json", "not-an-object", "no-attestation", "wrong-version"],
)
def test_a_malformed_provenance(make_house: MakeHouse, cli: Cli, content: bytes) -> None:
    house = make_house()
    (house / f"{SDIST}.provenance").write_bytes(content)
    before = snapshot(house)
    result = cli("provenance", "verify", house)
    assert result.exit_code == 12
    [line] = _problems(result.stderr)
    assert line.startswith(f"problem: {SDIST + '.provenance'!r} ")
    assert "PEP 740 provenance object" in line or "holds no attestation" in line
    assert snapshot(house) == before


def test_files_without_provenance_are_listed_then_refused_by_policy(
    make_house: MakeHouse, cli: Cli, tmp_path: Path
) -> None:
    house = make_house()
    make_wheelhouse(house, [house / SDIST, DATA / GITLAB_SDIST], writes=[write_manifest])
    result = cli("provenance", "verify", house, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["without-provenance"] == [GITLAB_SDIST]
    policy = _policy(tmp_path, "require = true\n")
    result = cli("provenance", "verify", house, "--policy", policy)
    assert result.exit_code == 12
    assert _problems(result.stderr) == [
        f"problem: {GITLAB_SDIST!r} has no provenance, and the policy requires it for "
        "'gitlab-oidc-project'"
    ]


def test_provenance_of_a_file_the_manifest_does_not_record(make_house: MakeHouse, cli: Cli) -> None:
    house = make_house()
    (house / f"{GITLAB_SDIST}.provenance").write_bytes(b"{}")
    result = cli("provenance", "verify", house)
    assert result.exit_code == 12
    assert _problems(result.stderr) == [
        f"problem: {GITLAB_SDIST + '.provenance'!r} is the provenance of {GITLAB_SDIST!r}, "
        "which the manifest does not record"
    ]


@pytest.mark.parametrize(
    "text",
    ["require = 'yes'\n", "[projects.x]\nrepo = 'a/b'\n", "[projects.x]\nkind = 'svn'\n", "= ="],
)
def test_a_malformed_policy_is_bad_input(
    make_house: MakeHouse, cli: Cli, tmp_path: Path, text: str
) -> None:
    house = make_house()
    result = cli("provenance", "verify", house, "--policy", _policy(tmp_path, text))
    assert result.exit_code == 3
    assert result.stderr.startswith(
        f"error: the provenance policy {str(tmp_path / 'policy.toml')!r}"
    )


def test_trust_root_command_writes_the_shipped_root_that_verifies(
    make_house: MakeHouse, cli: Cli
) -> None:
    house = make_house(trust_root=False)
    result = cli("provenance", "trust-root", house)
    assert result.exit_code == 0, result.stderr
    written = json.loads((house / ROOT_FILE).read_bytes())
    assert written["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    assert cli("provenance", "verify", house).exit_code == 0
    result = cli("provenance", "trust-root", house, "--from", TRUST_ROOT)
    assert result.exit_code == 0
    assert (house / ROOT_FILE).read_bytes() == TRUST_ROOT.read_bytes()


def test_trust_root_command_refuses_an_expired_root_and_writes_nothing(
    make_house: MakeHouse, cli: Cli, tmp_path: Path
) -> None:
    house = make_house(trust_root=False)
    root = json.loads(TRUST_ROOT.read_bytes())
    for entry in root["certificateAuthorities"]:
        entry["validFor"]["end"] = "2022-12-31T00:00:00Z"
    expired = tmp_path / "expired.json"
    expired.write_text(json.dumps(root))
    before, beside = snapshot(house), sorted(tmp_path.iterdir())
    result = cli("provenance", "trust-root", house, "--from", expired)
    assert result.exit_code == 13
    assert result.stderr.splitlines()[0] == (
        f"error: the trust root {str(expired)!r} has expired: its last Fulcio certificate "
        "authority was valid until 2022-12-31T00:00:00+00:00"
    )
    assert snapshot(house) == before
    assert sorted(tmp_path.iterdir()) == beside  # not even a lock file next to it
    assert not (house / "sigstore").exists()


def test_the_other_commands_do_not_import_sigstore() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wheelhouse", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines()]
    assert "wheelhouse.cli.provenance" in imported
    assert not [m for m in imported if m.split(".")[0] in {"sigstore", "pypi_attestations"}]


def test_a_fifo_for_provenance_does_not_block(make_house: MakeHouse, tmp_path: Path) -> None:
    house = make_house()
    (house / f"{SDIST}.provenance").unlink()
    os.mkfifo(house / f"{SDIST}.provenance")
    proc = subprocess.run(
        [sys.executable, "-m", "wheelhouse", "provenance", "verify", house],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 12
    assert _problems(proc.stderr) == [f"problem: {SDIST + '.provenance'!r} is not a regular file"]


def test_an_oversized_provenance_is_not_read(make_house: MakeHouse, cli: Cli) -> None:
    house = make_house()
    with (house / f"{SDIST}.provenance").open("wb") as handle:
        handle.write(b'{"version": 1, "attestation_bundles": [' + b" " * (3 * 1024 * 1024))
    result = cli("provenance", "verify", house)
    assert result.exit_code == 12
    assert _problems(result.stderr) == [
        f"problem: {SDIST + '.provenance'!r} is larger than {2 * 1024 * 1024} bytes"
    ]


def test_a_trust_root_named_on_the_command_line(
    make_house: MakeHouse, cli: Cli, tmp_path: Path
) -> None:
    house = make_house(trust_root=False)
    result = cli("provenance", "verify", house, "--trust-root", TRUST_ROOT, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["trust-root"] == str(TRUST_ROOT)
    broken = tmp_path / "root.json"
    broken.write_text('{"mediaType": "application/json"}')
    result = cli("provenance", "verify", house, "--trust-root", broken)
    assert result.exit_code == 13
    assert result.stderr.splitlines()[0].startswith(
        f"error: the trust root {str(broken)!r} is not a Sigstore trusted root: "
    )
