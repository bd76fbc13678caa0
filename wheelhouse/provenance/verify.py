"""Verify every provenance file of a wheelhouse offline: digests, Sigstore bundles, publishers."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse.house.contents import open_wheelhouse
from wheelhouse.house.manifest import FileRecord
from wheelhouse.provenance.policy import ProjectPin, ProvenancePolicy
from wheelhouse.provenance.trustroot import TRUST_ROOT_PATH, TrustRoot, read_trust_root

if TYPE_CHECKING:
    from pypi_attestations import Attestation, AttestationBundle
    from sigstore.verify import Verifier

__all__ = [
    "MAX_ATTESTATIONS",
    "MAX_PROVENANCE_BYTES",
    "PROVENANCE_SUFFIX",
    "REPORT_SCHEMA_VERSION",
    "FileProvenance",
    "FileStatus",
    "ProblemKind",
    "ProvenanceProblem",
    "ProvenanceReport",
    "Publisher",
    "file_identity",
    "verify_provenance",
]

REPORT_SCHEMA_VERSION = 1
# A file's provenance sits beside it: `<filename>.provenance`, the PEP 740 provenance object.
PROVENANCE_SUFFIX = ".provenance"
# One attestation is about 10 KB (certificate, log entry, inclusion proof): PyPI's files carry
# one or two. These bounds keep a hostile file from costing more than a second of verification.
MAX_PROVENANCE_BYTES = 2 * 1024 * 1024
MAX_ATTESTATIONS = 16
# The in-toto payload type of a DSSE envelope, and the statements PyPI accepts (PEP 740).
_INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_PREDICATE_TYPES = {
    "https://docs.pypi.org/attestations/publish/v1",
    "https://slsa.dev/provenance/v1",
}

FileStatus = Literal["verified", "failed", "no-provenance", "refused"]
ProblemKind = Literal[
    "malformed",  # the .provenance file is not a PEP 740 provenance object
    "unrecorded",  # provenance for a file the manifest does not record
    "missing-file",  # provenance whose file is not in the wheelhouse
    "file-changed",  # the file's bytes are not those the manifest records
    "subject-mismatch",  # the attestation is for another file name or another sha256
    "signature",  # the Sigstore bundle does not verify against the trust root
    "trust-root",  # the trust root had no valid key when the attestation was signed
    "publisher-changed",  # published by another publisher than the policy pins
    "refused",  # no provenance, and the policy requires it
]


@dataclass(frozen=True)
class Publisher:
    """A Trusted Publisher, as its attestations' certificates prove it."""

    kind: str  # "GitHub", "GitLab", "Google" or "CircleCI", as PEP 740 spells them
    repository: str | None = None
    workflow: str | None = None
    email: str | None = None
    environment: str | None = None

    def describe(self) -> str:
        if self.repository is None:
            return f"{self.kind.lower()} {self.email or '(unknown identity)'}"
        workflow = f", workflow {self.workflow}" if self.workflow else ""
        return f"{self.kind.lower()} {self.repository}{workflow}"

    def matches(self, pin: ProjectPin) -> bool:
        if pin.kind is None:
            return True
        if self.kind.lower() != pin.kind:
            return False
        if pin.kind == "google":
            return (self.email or "").lower() == (pin.email or "").lower()
        # Repository names are case-insensitive on GitHub and GitLab; workflow files are not.
        if (self.repository or "").lower() != (pin.repository or "").lower():
            return False
        return pin.workflow is None or self.workflow == pin.workflow

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "repository": self.repository,
            "workflow": self.workflow,
            "email": self.email,
            "environment": self.environment,
        }


@dataclass(frozen=True)
class ProvenanceProblem:
    """Why one file's provenance failed, with one sentence for a user."""

    kind: ProblemKind
    filename: str
    message: str


@dataclass(frozen=True)
class FileProvenance:
    """What was found for one file of the wheelhouse."""

    filename: str
    status: FileStatus
    publishers: tuple[Publisher, ...] = ()
    attestations: int = 0
    signed_at: tuple[str, ...] = ()
    problem: ProvenanceProblem | None = None


@dataclass(frozen=True)
class ProvenanceReport:
    """Everything ``wheelhouse provenance verify`` found in one wheelhouse."""

    directory: Path
    trust_root: Path
    files: tuple[FileProvenance, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> tuple[ProvenanceProblem, ...]:
        return tuple(f.problem for f in self.files if f.problem is not None)

    @property
    def without_provenance(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files if f.status in ("no-provenance", "refused"))

    @property
    def verified(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files if f.status == "verified")

    def to_json(self) -> dict[str, Any]:
        """A versioned, JSON-ready dict (``wheelhouse provenance verify --json``)."""
        return {
            "schema-version": REPORT_SCHEMA_VERSION,
            "directory": str(self.directory),
            "trust-root": str(self.trust_root),
            "ok": self.ok,
            "files": [
                {
                    "filename": f.filename,
                    "status": f.status,
                    "attestations": f.attestations,
                    "signed-at": list(f.signed_at),
                    "publishers": [p.to_json() for p in f.publishers],
                    "problem": None
                    if f.problem is None
                    else {"kind": f.problem.kind, "message": f.problem.message},
                }
                for f in self.files
            ],
            "without-provenance": list(self.without_provenance),
            "problems": [
                {"kind": p.kind, "filename": p.filename, "message": p.message}
                for p in self.problems
            ],
        }


class _Failed(Exception):
    def __init__(self, kind: ProblemKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def verify_provenance(
    directory: Path,
    *,
    policy: ProvenancePolicy | None = None,
    trust_root: Path | None = None,
) -> ProvenanceReport:
    """Verify, offline, the provenance of every file of the wheelhouse in ``directory``.

    Each ``<file>.provenance`` must hold attestations whose Sigstore bundles verify against
    the trust root (``DIR/sigstore/trusted_root.json`` unless ``trust_root`` names another),
    whose subject is the file (its name, and the sha256 both the manifest and the bytes on
    disk have), and whose publisher is the one ``policy`` pins for the project. Files without
    provenance are listed, and refused where the policy requires provenance.

    Raises InvalidWheelhouseError (not a wheelhouse) or TrustRootError (no usable trust root)
    before looking at any file; every file's verdict is in the report. Writes nothing.
    """
    policy = policy or ProvenancePolicy()
    manifest = open_wheelhouse(directory)
    root_path = trust_root if trust_root is not None else directory / TRUST_ROOT_PATH
    root = read_trust_root(root_path)
    checker = _Checker(root)
    records = {r.filename: r for r in manifest.files}
    provenance_of = _provenance_files(directory)
    results: list[FileProvenance] = []
    for filename in sorted(set(records) | set(provenance_of)):
        record = records.get(filename)
        if filename not in provenance_of:
            assert record is not None
            results.append(_without_provenance(record, policy))
            continue
        results.append(checker.check(directory, filename, record, policy))
    return ProvenanceReport(directory=directory, trust_root=root_path, files=tuple(results))


def _provenance_files(directory: Path) -> set[str]:
    found: set[str] = set()
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(PROVENANCE_SUFFIX) and len(entry.name) > len(PROVENANCE_SUFFIX):
                found.add(entry.name[: -len(PROVENANCE_SUFFIX)])
    return found


def _without_provenance(record: FileRecord, policy: ProvenancePolicy) -> FileProvenance:
    if not policy.requires(record.name):
        return FileProvenance(record.filename, "no-provenance")
    problem = ProvenanceProblem(
        "refused",
        record.filename,
        f"{record.filename!r} has no provenance, and the policy requires it for {record.name!r}",
    )
    return FileProvenance(record.filename, "refused", problem=problem)


class _Checker:
    """Verifies files against one trust root, keeping one sigstore Verifier per key set."""

    def __init__(self, root: TrustRoot) -> None:
        self.root = root
        self._verifiers: dict[tuple[tuple[int, ...], ...], Verifier] = {}

    def check(
        self, directory: Path, filename: str, record: FileRecord | None, policy: ProvenancePolicy
    ) -> FileProvenance:
        try:
            publishers, times, count = self._check(directory, filename, record, policy)
        except _Failed as failed:
            problem = ProvenanceProblem(failed.kind, filename, failed.message)
            return FileProvenance(filename, "failed", problem=problem)
        return FileProvenance(
            filename, "verified", publishers=publishers, attestations=count, signed_at=times
        )

    def _check(
        self, directory: Path, filename: str, record: FileRecord | None, policy: ProvenancePolicy
    ) -> tuple[tuple[Publisher, ...], tuple[str, ...], int]:
        if record is None:
            raise _Failed(
                "unrecorded",
                f"{filename + PROVENANCE_SUFFIX!r} is the provenance of {filename!r}, "
                "which the manifest does not record",
            )
        bundles = _read_provenance(directory / (filename + PROVENANCE_SUFFIX), filename)
        actual = _sha256(directory / filename)
        if actual is None:
            raise _Failed(
                "missing-file",
                f"{filename!r} has provenance but is missing from the wheelhouse "
                "(or is not a regular file)",
            )
        if actual != record.sha256.lower():
            raise _Failed(
                "file-changed",
                f"{filename!r} has sha256 {actual}, the manifest records {record.sha256}: "
                "the file was changed after the wheelhouse was built",
            )
        publishers: list[Publisher] = []
        times: list[str] = []
        count = 0
        for bundle in bundles:
            publisher = _publisher(bundle)
            for attestation in bundle.attestations:
                times.append(self._verify(filename, actual, bundle, attestation, publisher))
                count += 1
            if publisher not in publishers:
                publishers.append(publisher)
        pin = policy.pin(record.name)
        if pin is not None and pin.pins_publisher:
            for publisher in publishers:
                if not publisher.matches(pin):
                    raise _Failed(
                        "publisher-changed",
                        f"{filename!r} was published by {publisher.describe()}, but the policy "
                        f"pins {pin.describe()} for {record.name!r}",
                    )
        return tuple(publishers), tuple(times), count

    def _verify(
        self,
        filename: str,
        sha256: str,
        bundle: AttestationBundle,
        attestation: Attestation,
        publisher: Publisher,
    ) -> str:
        """Verify one attestation; returns when it was signed (ISO 8601)."""
        from pypi_attestations import AttestationError

        try:
            sigstore_bundle = attestation.to_bundle()
        except (AttestationError, ValueError) as exc:
            raise _Failed(
                "malformed", f"{filename!r}: an attestation cannot be read: {_first_line(exc)}"
            ) from exc
        signed = _signed_at(attestation)
        # A Rekor v2 entry has no integrated time: its RFC 3161 timestamps date it, and the
        # whole root is used (sigstore still checks the chain at each verified time).
        verifier = self._verifier(signed, filename)
        try:
            # The claimed publisher becomes the certificate policy: the certificate must name
            # that very repository and workflow (or identity), as PyPI checks on upload.
            payload_type, payload = verifier.verify_dsse(
                sigstore_bundle,
                bundle.publisher._as_policy(),
            )
        except Exception as exc:  # sigstore raises many types on hostile input: never verified
            raise _Failed(
                "signature",
                f"{filename!r}: its Sigstore bundle does not verify against the trust root "
                f"(published by {publisher.describe()}): {_first_line(exc)}",
            ) from exc
        _check_statement(filename, sha256, payload_type, payload)
        return signed.isoformat() if signed is not None else ""

    def _verifier(self, when: datetime | None, filename: str) -> Verifier:
        from sigstore.verify import Verifier

        keys, missing = self.root.keys_at(when)
        if missing is not None:
            assert when is not None
            raise _Failed(
                "trust-root",
                f"{filename!r} was signed at {when.isoformat()}, when the trust root "
                f"{str(self.root.path)!r} had no valid {missing}: it has expired, or it is "
                "not the root the file was signed under",
            )
        verifier = self._verifiers.get(keys)
        if verifier is None:
            verifier = self._verifiers[keys] = Verifier(trusted_root=self.root.restricted(keys))
        return verifier


def _read_provenance(path: Path, filename: str) -> list[AttestationBundle]:
    from pydantic import ValidationError
    from pypi_attestations import Provenance

    name = filename + PROVENANCE_SUFFIX
    try:
        # A FIFO or a device under that name would block the read or never end it.
        if not stat.S_ISREG(path.stat().st_mode):
            raise _Failed("malformed", f"{name!r} is not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_PROVENANCE_BYTES + 1)
    except OSError as exc:
        raise _Failed("malformed", f"cannot read {name!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_PROVENANCE_BYTES:
        raise _Failed("malformed", f"{name!r} is larger than {MAX_PROVENANCE_BYTES} bytes")
    try:
        provenance = Provenance.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        reason = errors[0]["msg"] if errors else str(exc)
        at = f" at {where!r}" if where else ""
        raise _Failed(
            "malformed", f"{name!r} is not a PEP 740 provenance object: {reason}{at}"
        ) from exc
    bundles = provenance.attestation_bundles
    total = sum(len(b.attestations) for b in bundles)
    if total == 0:
        raise _Failed("malformed", f"{name!r} holds no attestation")
    if total > MAX_ATTESTATIONS:
        raise _Failed(
            "malformed", f"{name!r} holds {total} attestations, more than {MAX_ATTESTATIONS}"
        )
    return bundles


def _publisher(bundle: AttestationBundle) -> Publisher:
    raw = bundle.publisher
    fields: dict[str, Any] = raw.model_dump()
    kind = str(fields.get("kind"))
    if kind == "GitLab":
        workflow = fields.get("workflow_filepath")
    elif kind == "CircleCI":
        workflow = fields.get("pipeline_definition_id")
    else:
        workflow = fields.get("workflow")
    repository = fields.get("repository") or fields.get("vcs_origin") or fields.get("project_id")
    return Publisher(
        kind=kind,
        repository=repository,
        workflow=workflow,
        email=fields.get("email"),
        environment=fields.get("environment"),
    )


def _signed_at(attestation: Attestation) -> datetime | None:
    # Covered by the log's signed entry timestamp, which sigstore verifies with the log's key:
    # a forged time fails verification.
    entry = attestation.verification_material.transparency_entries[0]
    raw = entry.get("integratedTime") if isinstance(entry, dict) else None
    try:
        seconds = int(raw) if raw is not None else 0
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


def _check_statement(filename: str, sha256: str, payload_type: str, payload: bytes) -> None:
    if payload_type != _INTOTO_PAYLOAD_TYPE:
        raise _Failed("signature", f"{filename!r}: the attestation signs {payload_type!r}")
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        predicate = statement["predicateType"]
        if not isinstance(subjects, list) or len(subjects) != 1:
            raise ValueError("a statement names exactly one subject")
        name = subjects[0]["name"]
        digest = subjects[0]["digest"].get("sha256")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _Failed(
            "subject-mismatch", f"{filename!r}: the attestation's statement is malformed: {exc}"
        ) from exc
    if predicate not in _PREDICATE_TYPES:
        raise _Failed("subject-mismatch", f"{filename!r}: unknown attestation type {predicate!r}")
    if (
        not isinstance(name, str)
        or file_identity(name) is None
        or file_identity(name) != file_identity(filename)
    ):
        raise _Failed(
            "subject-mismatch", f"{filename!r}: the attestation is for another file, {name!r}"
        )
    if not isinstance(digest, str) or digest.lower() != sha256:
        raise _Failed(
            "subject-mismatch",
            f"{filename!r} has sha256 {sha256}, but its attestation is for sha256 {digest}",
        )


def file_identity(filename: str) -> object:
    """What an attestation's subject must match: the parsed name, version (and tags), as
    pypi-attestations compares them, not the spelling; None for a name that is no file's."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _sha256(path: Path) -> str | None:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
