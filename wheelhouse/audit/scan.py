"""A wheelhouse's distributions matched against an OSV snapshot: findings, aliases merged."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import NormalizedName
from packaging.version import Version

from wheelhouse.audit.osv import Advisory, OsvDatabase, load_snapshot

if TYPE_CHECKING:
    from cyclonedx.model.vulnerability import Vulnerability

    # A type only: the audit sits below the wheelhouse, whose verify and SBOM read it.
    from wheelhouse.house.manifest import Manifest

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "AuditReport",
    "Finding",
    "audit_manifest",
    "audit_wheelhouse",
    "cyclonedx_vulnerabilities",
]

REPORT_SCHEMA_VERSION = 1

# Which id of a merged group is shown first: the PyPI advisory database's, then GitHub's.
_ID_PREFERENCE = ("PYSEC-", "GHSA-")


@dataclass(frozen=True)
class Finding:
    """One vulnerability of one distribution: the records that name it merged into one."""

    name: NormalizedName
    version: str
    id: str
    # Every other name of it: the other records' ids and all their aliases (CVE, GHSA...).
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str
    severity: tuple[tuple[str, str], ...]
    # The wheelhouse's files of this distribution (the SBOM's bom-refs).
    filenames: tuple[str, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))


@dataclass(frozen=True)
class AuditReport:
    """What an audit found: the vulnerable distributions and what ``--ignore`` set aside."""

    snapshot: Path
    snapshot_sha256: str
    records: int
    distributions: int
    findings: tuple[Finding, ...]
    ignored: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape (documented in docs/audit.md)."""
        return {
            "schema-version": REPORT_SCHEMA_VERSION,
            "snapshot": {
                "path": str(self.snapshot),
                "sha256": self.snapshot_sha256,
                "records": self.records,
            },
            "distributions": self.distributions,
            "vulnerabilities": [_finding_json(f) for f in self.findings],
            "ignored": [_finding_json(f) for f in self.ignored],
        }


def audit_wheelhouse(
    manifest: Manifest,
    snapshot: Path,
    *,
    ignore: Collection[str] = (),
    expected_sha256: str | None = None,
) -> AuditReport:
    """Match every distribution ``manifest`` records against the snapshot at ``snapshot``."""
    wanted = {record.name for record in manifest.files}
    database = load_snapshot(snapshot, names=wanted, expected_sha256=expected_sha256)
    return audit_manifest(manifest, database, ignore=ignore)


def audit_manifest(
    manifest: Manifest, database: OsvDatabase, *, ignore: Collection[str] = ()
) -> AuditReport:
    """Match ``manifest``'s distributions (name and version) against ``database``."""
    files: dict[tuple[NormalizedName, str], list[str]] = {}
    for record in manifest.files:
        files.setdefault((record.name, record.version), []).append(record.filename)
    skipped = {i.upper() for i in ignore}
    findings: list[Finding] = []
    ignored: list[Finding] = []
    for (name, version), filenames in sorted(files.items()):
        for finding in _findings(name, version, database.query(name, version), sorted(filenames)):
            if any(n.upper() in skipped for n in finding.names):
                ignored.append(finding)
            else:
                findings.append(finding)
    return AuditReport(
        snapshot=database.path,
        snapshot_sha256=database.sha256,
        records=database.records,
        distributions=len(files),
        findings=tuple(findings),
        ignored=tuple(ignored),
    )


def _findings(
    name: NormalizedName, version: str, advisories: Sequence[Advisory], filenames: Sequence[str]
) -> list[Finding]:
    """One finding per vulnerability: records that share an id or an alias are one."""
    groups: list[list[Advisory]] = []
    group_names: list[set[str]] = []
    for advisory in advisories:
        names = {advisory.id, *advisory.aliases}
        joined = [i for i, known in enumerate(group_names) if known & names]
        merged = [advisory]
        for i in reversed(joined):
            merged += groups.pop(i)
            names |= group_names.pop(i)
        groups.append(merged)
        group_names.append(names)
    found = []
    for group, names in zip(groups, group_names, strict=True):
        group.sort(key=_preference)
        first = group[0]
        fixed: set[str] = set()
        for advisory in group:
            fixed.update(advisory.fixed_versions(name, version))
        found.append(
            Finding(
                name=name,
                version=version,
                id=first.id,
                aliases=tuple(sorted(names - {first.id}, key=_preference_of_id)),
                fixed=tuple(sorted(fixed, key=Version)),
                summary=next((a.summary for a in group if a.summary), "")
                or _first_line(next((a.details for a in group if a.details), "")),
                severity=tuple(dict.fromkeys(s for a in group for s in a.severity)),
                filenames=tuple(filenames),
            )
        )
    return sorted(found, key=lambda f: _preference_of_id(f.id))


def _preference(advisory: Advisory) -> tuple[int, str]:
    return _preference_of_id(advisory.id)


def _preference_of_id(ident: str) -> tuple[int, str]:
    for rank, prefix in enumerate(_ID_PREFERENCE):
        if ident.startswith(prefix):
            return (rank, ident)
    return (len(_ID_PREFERENCE), ident)


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line[:200]


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "name": finding.name,
        "version": finding.version,
        "id": finding.id,
        "aliases": list(finding.aliases),
        "fixed-versions": list(finding.fixed),
        "summary": finding.summary,
        "severity": [{"type": t, "score": s} for t, s in finding.severity],
        "files": list(finding.filenames),
    }


# -- the CycloneDX SBOM's vulnerabilities (for `wheelhouse sbom`) ----------------------------

_CVSS_METHOD = re.compile(r"^CVSS:(?P<version>[0-9.]+)/")


def cyclonedx_vulnerabilities(findings: Iterable[Finding]) -> list[Vulnerability]:
    """The findings as CycloneDX vulnerabilities, each affecting its files' components.

    The SBOM's components have their file name as ``bom-ref``; add the result to
    ``Bom.vulnerabilities``.
    """
    from cyclonedx.model import XsUri
    from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilityScoreSource,
        VulnerabilitySource,
    )

    methods: Mapping[str, VulnerabilityScoreSource] = {
        "2": VulnerabilityScoreSource.CVSS_V2,
        "3.0": VulnerabilityScoreSource.CVSS_V3,
        "3.1": VulnerabilityScoreSource.CVSS_V3_1,
        "4.0": VulnerabilityScoreSource.CVSS_V4,
    }

    def source(ident: str) -> VulnerabilitySource:
        return VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{ident}"))

    found = []
    for finding in findings:
        ratings = []
        for kind, score in finding.severity:
            match = _CVSS_METHOD.match(score)
            version = match["version"] if match else ("2" if kind == "CVSS_V2" else "")
            method = methods.get(version, VulnerabilityScoreSource.OTHER)
            ratings.append(VulnerabilityRating(method=method, vector=score))
        fixed = ", ".join(finding.fixed)
        found.append(
            Vulnerability(
                bom_ref=f"vulnerability:{finding.id}:{finding.name}=={finding.version}",
                id=finding.id,
                source=source(finding.id),
                references=[
                    VulnerabilityReference(id=alias, source=source(alias))
                    for alias in finding.aliases
                ],
                ratings=ratings,
                description=finding.summary or None,
                recommendation=f"upgrade {finding.name} to {fixed}" if fixed else None,
                affects=[
                    BomTarget(
                        ref=filename,
                        versions=[
                            BomTargetVersionRange(
                                version=finding.version,
                                status=ImpactAnalysisAffectedStatus.AFFECTED,
                            )
                        ],
                    )
                    for filename in finding.filenames
                ],
            )
        )
    return found
