"""The SBOM of a wheelhouse: every file it ships, as CycloneDX (via cyclonedx-python-lib) or
SPDX 2.3 JSON, with licences, hashes, where each wheel came from and the SBOMs wheels carry."""

from __future__ import annotations

import json
import re
import tarfile
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import canonicalize_name, parse_wheel_filename

from wheelhouse import __version__
from wheelhouse._base.wheels import metadata_member
from wheelhouse.errors import UsageError
from wheelhouse.house.manifest import BuiltFrom, Downloaded, FileRecord, Manifest

if TYPE_CHECKING:
    from cyclonedx.model.vulnerability import Vulnerability

__all__ = ["FORMATS", "Component", "SbomFormat", "components", "render_sbom"]

SbomFormat = Literal["cyclonedx-json", "spdx-json"]
FORMATS: tuple[SbomFormat, ...] = ("cyclonedx-json", "spdx-json")
# Namespace of the ids derived from a manifest (serial numbers, SPDX namespaces): the same
# wheelhouse gives the same SBOM, byte for byte.
_NAMESPACE = uuid.UUID("7d3f1c52-5a0b-4a4e-9d8b-7f0c1e2a9b61")

# Trove licence classifiers that name exactly one SPDX licence (older metadata has no
# License-Expression); others are kept as names.
_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: BSD License": None,
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: Zope Public License": "ZPL-2.1",
    "License :: OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "License :: OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "License :: OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}


@dataclass(frozen=True)
class EmbeddedSbom:
    """An SBOM a wheel carries (PEP 770: ``.dist-info/sboms/``)."""

    path: str  # inside the wheel
    sha256: str


@dataclass(frozen=True)
class Licence:
    """A component's licence: an SPDX expression where the metadata gives one, else text."""

    expression: str | None
    names: tuple[str, ...] = ()
    source: Literal["License-Expression", "classifiers", "License", "none"] = "none"


@dataclass(frozen=True)
class Component:
    """One shipped file, as an SBOM lists it."""

    record: FileRecord
    purl: str
    licence: Licence
    targets: tuple[str, ...]  # the targets whose lock installs it
    # The shipped sdists it is needed to build: those of each target whose build lock has it.
    build_dependency_of: tuple[str, ...]
    embedded: tuple[EmbeddedSbom, ...]
    summary: str | None

    @property
    def built_from(self) -> BuiltFrom | None:
        origin = self.record.origin
        return origin if isinstance(origin, BuiltFrom) else None


def purl_of(name: str, version: str, filename: str | None = None) -> str:
    from packageurl import PackageURL

    qualifiers = {"file_name": filename} if filename else None
    purl = PackageURL(
        type="pypi", name=canonicalize_name(name), version=version, qualifiers=qualifiers
    )
    return str(purl.to_string())


def components(directory: Path, manifest: Manifest) -> list[Component]:
    """Every file the manifest records, with what its own metadata says about it."""
    targets: dict[str, list[str]] = {}
    for lock in manifest.locks:
        for entry in lock.entries:
            for filename in entry.filenames:
                targets.setdefault(filename, []).append(lock.target)
    shipped_sdists = {r.filename for r in manifest.files if r.kind == "sdist"}
    sdists_of: dict[str, set[str]] = {}
    for lock in manifest.locks:
        for entry in lock.entries:
            sdists_of.setdefault(lock.target, set()).update(
                f for f in entry.filenames if f in shipped_sdists
            )
    # A build lock says what a target's sdists need, not which sdist needs what: each of its
    # files is a build dependency of every sdist that target ships, named once however many
    # targets share them.
    build_of: dict[str, set[str]] = {}
    for lock in manifest.build_locks:
        for entry in lock.entries:
            for filename in entry.filenames:
                build_of.setdefault(filename, set()).update(sdists_of.get(lock.target, ()))
    found = []
    for record in sorted(manifest.files, key=lambda r: r.filename):
        metadata, embedded = _read_dist(directory / record.filename, record)
        found.append(
            Component(
                record=record,
                purl=purl_of(record.name, record.version, record.filename),
                licence=licence_of(metadata),
                targets=tuple(sorted(set(targets.get(record.filename, ())))),
                build_dependency_of=tuple(sorted(build_of.get(record.filename, ()))),
                embedded=embedded,
                summary=(metadata.get("Summary") or None) if metadata else None,
            )
        )
    return found


def licence_of(metadata: Message | None) -> Licence:
    """PEP 639's License-Expression (canonical), else the licence classifiers, else License."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    if metadata is None:
        return Licence(None)
    expression = metadata.get("License-Expression")
    if expression:
        try:
            return Licence(canonicalize_license_expression(expression), (), "License-Expression")
        except InvalidLicenseExpression:
            return Licence(None, (str(expression),), "License-Expression")
    classifiers = [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        ids = [_CLASSIFIERS.get(c) for c in classifiers]
        if all(ids):
            unique = sorted(set(filter(None, ids)))
            return Licence(" AND ".join(unique), (), "classifiers")
        names = tuple(c.rsplit(" :: ", 1)[-1] for c in classifiers)
        return Licence(None, names, "classifiers")
    text = (metadata.get("License") or "").strip()
    if text and text.upper() != "UNKNOWN":
        first = text.splitlines()[0].strip()
        try:
            return Licence(canonicalize_license_expression(first), (), "License")
        except InvalidLicenseExpression:
            return Licence(None, (first[:200],), "License")
    return Licence(None)


def _read_dist(path: Path, record: FileRecord) -> tuple[Message | None, tuple[EmbeddedSbom, ...]]:
    import hashlib

    try:
        if record.kind != "wheel":
            return _sdist_metadata(path, record), ()
        name, version, _, _ = parse_wheel_filename(record.filename)
        embedded: list[EmbeddedSbom] = []
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            member = metadata_member(names, name, version)
            raw = archive.read(member) if member is not None else None
            for entry in names:
                top, _, rest = entry.partition("/")
                if top.endswith(".dist-info") and rest.startswith("sboms/") and rest[6:]:
                    digest = hashlib.sha256(archive.read(entry)).hexdigest()
                    embedded.append(EmbeddedSbom(entry, digest))
        return _headers(raw) if raw is not None else None, tuple(
            sorted(embedded, key=lambda e: e.path)
        )
    except (OSError, zipfile.BadZipFile, tarfile.TarError, ValueError):
        return None, ()


def _headers(raw: bytes) -> Message:
    # Only the headers matter here: the body (the long description) can be most of the bytes.
    head, _, _ = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return BytesHeaderParser().parsebytes(head + b"\n")


def _sdist_metadata(path: Path, record: FileRecord) -> Message | None:
    if not record.filename.endswith(".tar.gz"):
        return None
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                handle = archive.extractfile(member)
                if handle is not None:
                    return _headers(handle.read())
    return None


def _created(manifest: Manifest) -> datetime:
    try:
        created = datetime.fromisoformat(manifest.created)
    except ValueError:
        created = datetime(1980, 1, 1, tzinfo=UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.astimezone(UTC).replace(microsecond=0)


def _document_id(manifest: Manifest) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, manifest.to_json())


def render_sbom(
    directory: Path, manifest: Manifest, fmt: str, found: list[Component] | None = None
) -> bytes:
    """The SBOM of the wheelhouse in ``directory``, as JSON bytes (the same for the same house).

    ``found`` is ``components(directory, manifest)`` when the caller renders several formats.
    When the wheelhouse carries an OSV snapshot, the CycloneDX SBOM lists the known
    vulnerabilities of its files (the findings of ``wheelhouse audit``, none ignored).
    """
    if fmt == "cyclonedx-json":
        return _cyclonedx(
            manifest,
            found or components(directory, manifest),
            _vulnerabilities(directory, manifest),
        )
    if fmt == "spdx-json":
        return _spdx(manifest, found or components(directory, manifest))
    raise UsageError(
        f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}",
        hint="cyclonedx-json is CycloneDX 1.6, spdx-json is SPDX 2.3",
    )


# -- CycloneDX -----------------------------------------------------------------------------


def _vulnerabilities(directory: Path, manifest: Manifest) -> list[Vulnerability]:
    """The CycloneDX vulnerabilities of the wheelhouse's files, from the OSV snapshot it
    carries (checked against its recorded sha256); none without a snapshot."""
    from wheelhouse.house.manifest import OSV_SNAPSHOT

    snapshot = directory / OSV_SNAPSHOT
    if snapshot.is_symlink() or not snapshot.is_file():
        return []  # a link is a note of the user's (see added_files), not a carried snapshot
    from wheelhouse.audit.fetch import read_info
    from wheelhouse.audit.scan import audit_wheelhouse, cyclonedx_vulnerabilities

    info = read_info(snapshot)
    report = audit_wheelhouse(
        manifest, snapshot, expected_sha256=info.sha256 if info is not None else None
    )
    return cyclonedx_vulnerabilities(report.findings)


def _cyclonedx(
    manifest: Manifest, found: list[Component], vulnerabilities: list[Vulnerability]
) -> bytes:
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentScope, ComponentType, Pedigree
    from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    items = []
    for component in found:
        record = component.record
        licences: list[License] = []
        expression = component.licence.expression
        # One SPDX id is a `license.id`; an expression, or a LicenseRef, is an `expression`.
        if (
            expression
            and re.fullmatch(r"[A-Za-z0-9.+-]+", expression)
            and not expression.startswith(("LicenseRef-", "DocumentRef-"))
        ):
            licences.append(DisjunctiveLicense(id=expression))
        elif expression:
            licences.append(LicenseExpression(expression))
        else:
            licences += [DisjunctiveLicense(name=name) for name in component.licence.names]
        properties = [
            Property(name="wheelhouse:kind", value=record.kind),
            Property(name="wheelhouse:size", value=str(record.size)),
        ]
        if component.licence.source != "none":
            properties.append(
                Property(name="wheelhouse:license-source", value=component.licence.source)
            )
        if isinstance(record.origin, Downloaded):
            properties.append(Property(name="wheelhouse:downloaded-from", value=record.origin.url))
        properties += [Property(name="wheelhouse:target", value=t) for t in component.targets]
        properties += [
            Property(name="wheelhouse:build-dependency-of", value=sdist)
            for sdist in component.build_dependency_of
        ]
        pedigree = None
        built = component.built_from
        if built is not None:
            properties += [
                Property(name="wheelhouse:built-from-sdist", value=built.sdist),
                Property(name="wheelhouse:build-backend", value=built.backend),
            ]
            pedigree = Pedigree(
                ancestors=[
                    CdxComponent(
                        type=ComponentType.LIBRARY,
                        name=record.name,
                        version=record.version,
                        bom_ref=f"sdist:{built.sdist}",
                        purl=PackageURL.from_string(
                            purl_of(record.name, record.version, built.sdist)
                        ),
                        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=built.sdist_sha256)],
                    )
                ]
            )
        references = [
            ExternalReference(
                type=ExternalReferenceType.BOM,
                url=XsUri(f"{record.filename}#{sbom.path}"),
                comment="an SBOM this wheel carries (PEP 770): the member of the wheel",
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sbom.sha256)],
            )
            for sbom in component.embedded
        ]
        only_build = not component.targets and bool(component.build_dependency_of)
        items.append(
            CdxComponent(
                type=ComponentType.LIBRARY,
                name=record.name,
                version=record.version,
                bom_ref=record.filename,
                description=component.summary,
                purl=PackageURL.from_string(component.purl),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=record.sha256)],
                licenses=licences,
                scope=ComponentScope.EXCLUDED if only_build else ComponentScope.REQUIRED,
                properties=properties,
                pedigree=pedigree,
                external_references=references,
            )
        )
    from cyclonedx.model.tool import ToolRepository

    root = CdxComponent(
        type=ComponentType.APPLICATION,
        name="wheelhouse",
        version=_document_id(manifest).hex[:12],
        bom_ref="wheelhouse",
        description="a wheelhouse for " + ", ".join(lock.target for lock in manifest.locks),
    )
    tool = CdxComponent(
        type=ComponentType.APPLICATION,
        name="wheelhouse",
        version=__version__,
        bom_ref="tool:wheelhouse",
    )
    bom = Bom(
        serial_number=_document_id(manifest),
        metadata=BomMetaData(
            timestamp=_created(manifest),
            tools=ToolRepository(components=[tool]),
            component=root,
        ),
        components=items,
    )
    # The wheelhouse ships every component; which ones a target installs is in the properties.
    bom.register_dependency(root, items)
    bom.vulnerabilities.update(vulnerabilities)
    return (JsonV1Dot6(bom).output_as_string(indent=2) + "\n").encode("utf-8")


# -- SPDX 2.3 ------------------------------------------------------------------------------


def _spdx_id(index: int, filename: str) -> str:
    return f"SPDXRef-{index}-" + re.sub(r"[^A-Za-z0-9.-]", "-", filename)


def _spdx(manifest: Manifest, found: list[Component]) -> bytes:
    """SPDX 2.3 JSON: one package per shipped file (written here: the format is small and fixed,
    and the SPDX library pulls in rdflib, ply and beartype for it)."""
    ids = {c.record.filename: _spdx_id(i, c.record.filename) for i, c in enumerate(found, 1)}
    packages: list[dict[str, Any]] = []
    relationships: list[dict[str, str]] = []
    extra: dict[str, dict[str, Any]] = {}  # sdists a wheel was built from that do not ship
    for component in found:
        record = component.record
        spdx_id = ids[record.filename]
        licence = component.licence
        package: dict[str, Any] = {
            "SPDXID": spdx_id,
            "name": record.name,
            "versionInfo": record.version,
            "packageFileName": record.filename,
            "downloadLocation": record.origin.url
            if isinstance(record.origin, Downloaded)
            else "NOASSERTION",
            "filesAnalyzed": False,
            "checksums": [{"algorithm": "SHA256", "checksumValue": record.sha256}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": licence.expression or "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": component.purl,
                }
            ],
        }
        if component.summary:
            package["summary"] = component.summary
        if not licence.expression and licence.names:
            package["licenseComments"] = f"{licence.source}: " + "; ".join(licence.names)
        notes = [f"targets: {', '.join(component.targets) or 'none'}"]
        notes += [
            f"SBOM carried in the wheel (PEP 770): {e.path} sha256 {e.sha256}"
            for e in component.embedded
        ]
        package["comment"] = "; ".join(notes)
        packages.append(package)
        relationships.append(
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": spdx_id,
            }
        )
        built = component.built_from
        if built is not None:
            sdist_id = ids.get(built.sdist)
            if sdist_id is None:
                sdist_id = _spdx_id(len(ids) + len(extra) + 1, built.sdist)
                extra.setdefault(
                    built.sdist,
                    {
                        "SPDXID": sdist_id,
                        "name": record.name,
                        "versionInfo": record.version,
                        "packageFileName": built.sdist,
                        "downloadLocation": built.sdist_url or "NOASSERTION",
                        "filesAnalyzed": False,
                        "checksums": [{"algorithm": "SHA256", "checksumValue": built.sdist_sha256}],
                        "licenseConcluded": "NOASSERTION",
                        "licenseDeclared": "NOASSERTION",
                        "copyrightText": "NOASSERTION",
                        "primaryPackagePurpose": "SOURCE",
                        "comment": "the sdist a shipped wheel was built from; not shipped",
                    },
                )
                sdist_id = extra[built.sdist]["SPDXID"]
            relationships.append(
                {
                    "spdxElementId": spdx_id,
                    "relationshipType": "GENERATED_FROM",
                    "relatedSpdxElement": sdist_id,
                    "comment": f"built here with {built.backend}",
                }
            )
        for sdist in component.build_dependency_of:
            relationships.append(
                {
                    "spdxElementId": spdx_id,
                    "relationshipType": "BUILD_DEPENDENCY_OF",
                    "relatedSpdxElement": ids[sdist],
                }
            )
    packages += [extra[name] for name in sorted(extra)]
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "wheelhouse " + ", ".join(lock.target for lock in manifest.locks),
        "documentNamespace": f"https://spdx.org/spdxdocs/wheelhouse-{_document_id(manifest)}",
        "creationInfo": {
            "created": _created(manifest).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": [f"Tool: wheelhouse-{__version__}"],
        },
        "packages": packages,
        "relationships": relationships,
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")
