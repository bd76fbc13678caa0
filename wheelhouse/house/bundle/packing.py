"""``pack``: a wheelhouse (or what changed since a base) into one verifiable bundle."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from wheelhouse import __version__
from wheelhouse._base.files import sha256_file
from wheelhouse.errors import TamperedError, UsageError
from wheelhouse.house.bundle.install_notes import render_install
from wheelhouse.house.bundle.layout import (
    BUNDLE_FORMAT,
    HOUSE_DIR,
    INFO_NAME,
    INSTALL_NAME,
    INSTALLERS_DIR,
    SBOM_NAMES,
    SUMS_NAME,
    BundleKind,
    Member,
    PackResult,
    compression_of,
    manifest_id,
)
from wheelhouse.house.bundle.reader import (
    base_of,
    parse_sums,
    read_header,
    read_house,
)
from wheelhouse.house.bundle.writer import write_bundle
from wheelhouse.house.contents import AddedFiles, added_files, generated_names, is_carried
from wheelhouse.house.manifest import MANIFEST_NAME, Manifest


def pack(
    directory: Path,
    output: Path,
    *,
    since: Path | None = None,
    split: int | None = None,
    extra: Sequence[tuple[str, Path]] = (),
) -> PackResult:
    """Write the wheelhouse in ``directory`` into the bundle ``output``.

    Every recorded file is hashed as it is streamed and compared with the manifest, so a
    tampered wheelhouse never leaves as a bundle. What the wheelhouse carries (its OSV
    snapshot, checked against its recorded sha256, the files' provenance and the trust root)
    travels with the files. ``since`` (an older bundle, manifest or wheelhouse) makes an
    update holding only the files that one lacks (and the carried files that differ from its
    own, or all of them when ``since`` is a bare manifest). ``extra`` adds files
    under ``installers/`` (name in the bundle, path). Every bundle carries the SBOMs of the
    whole wheelhouse (CycloneDX and SPDX).
    The output appears whole (written to a temporary name, then renamed) or not at all.
    """
    compression = compression_of(output)
    manifest = read_house(directory)
    if output.absolute().parent == directory.absolute():
        raise UsageError(
            f"the bundle {str(output)!r} would be written into the wheelhouse it packs",
            hint="write it beside the wheelhouse, e.g. -o wheelhouse.tar.gz",
        )
    added = _refuse_added_distributions(directory, manifest)
    _refuse_changed_snapshot(directory, added)
    base: Manifest | None = None
    base_carried: dict[str, str] = {}
    if since is not None:
        base = base_of(since)
        base_carried = _carried_of(since, base)
    base_files = {r.filename: r.sha256 for r in base.files} if base else {}
    shipped = [r for r in manifest.files if base_files.get(r.filename) != r.sha256]

    members: list[Member] = []
    for record in shipped:
        path = directory / record.filename
        _check_recorded(path, record.size)
        members.append(Member(f"{HOUSE_DIR}/{record.filename}", path, record.size, record.sha256))
    recorded = {r.filename for r in manifest.files}
    for relative in _generated_files(directory, manifest, recorded):
        data = (directory / relative).read_bytes()
        members.append(Member(f"{HOUSE_DIR}/{relative}", data, len(data), None))
    for relative in added.carried:
        path = directory / relative
        digest, size = sha256_file(path)  # then checked again as it is streamed
        if base_carried.get(relative) != digest:
            members.append(Member(f"{HOUSE_DIR}/{relative}", path, size, digest))
    # The manifest as wheelhouse writes it: the id an update names is of these bytes.
    data = manifest.to_json().encode("utf-8")
    members.append(Member(f"{HOUSE_DIR}/{MANIFEST_NAME}", data, len(data), None))
    for name, path in extra:
        digest, size = sha256_file(path)  # then checked again as it is streamed
        members.append(Member(f"{INSTALLERS_DIR}/{name}", path, size, digest))
    from wheelhouse.house.sbom import FORMATS, components, render_sbom

    found = components(directory, manifest)
    for fmt in FORMATS:
        document = render_sbom(directory, manifest, fmt, found)
        members.append(Member(SBOM_NAMES[fmt], document, len(document), None))
    installers = sorted(name for name, _ in extra)
    install_text = render_install(manifest, extra, base is not None).encode("utf-8")
    members.append(Member(INSTALL_NAME, install_text, len(install_text), None))

    kind: BundleKind = "update" if base is not None else "full"
    info = {
        "format": "wheelhouse-bundle",
        "format-version": BUNDLE_FORMAT,
        "generator": f"wheelhouse {__version__}",
        "kind": kind,
        "manifest": manifest_id(manifest),
        "base-manifest": manifest_id(base) if base is not None else None,
        "targets": [lock.target for lock in manifest.locks],
        "files": len(shipped),
        "installers": installers,
    }
    info_bytes = (json.dumps(info, indent=2) + "\n").encode("utf-8")
    members.sort(key=lambda m: m.name)
    sums = _sums_text([Member(INFO_NAME, info_bytes, len(info_bytes), None), *members])
    ordered = [
        Member(INFO_NAME, info_bytes, len(info_bytes), None),
        Member(SUMS_NAME, sums, len(sums), None),
        *members,
    ]
    volumes = write_bundle(output, ordered, compression, split)
    return PackResult(
        volumes=volumes,
        kind=kind,
        members=len(ordered),
        files=len(shipped),
        base=info["base-manifest"],  # type: ignore[arg-type]
        compression=compression,
    )


def _refuse_added_distributions(directory: Path, manifest: Manifest) -> AddedFiles:
    """The rule verify and publish follow too: a user's notes stay behind, unpacked and no
    problem; a wheel or sdist nobody recorded is one (shipped or not, it is a surprise)."""
    added = added_files(directory, manifest)
    stray = added.distributions
    if stray:
        more = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
        raise TamperedError(
            f"{str(directory)!r} holds {stray[0]!r}{more}, which its manifest does not record; "
            "nothing was packed",
            hint=f"remove it, or build it into the wheelhouse; see 'wheelhouse verify {directory}'",
        )
    return added


def _refuse_changed_snapshot(directory: Path, added: AddedFiles) -> None:
    """An OSV snapshot that differs from its recorded sha256 would not unpack: it stays."""
    from wheelhouse.house.verify import carried_problems

    problems = carried_problems(directory, added.carried)
    if problems:
        raise TamperedError(
            f"{problems[0].message}; nothing was packed",
            hint=f"fetch it again with 'wheelhouse audit fetch {directory}'",
        )


def _carried_of(since: Path, base: Manifest) -> dict[str, str]:
    """The sha256 of what the base of an update carries (relative path -> digest): read from
    an older wheelhouse or an older bundle's SHA256SUMS; a bare manifest tells nothing."""
    if since.is_dir():
        return {path: sha256_file(since / path)[0] for path in added_files(since, base).carried}
    if since.name.endswith(".json"):
        return {}
    data = read_header(since, SUMS_NAME)
    if data is None:
        return {}
    prefix = f"{HOUSE_DIR}/"
    recorded = {r.filename for r in base.files}
    return {
        name[len(prefix) :]: digest
        for name, digest in parse_sums(since, data).items()
        if name.startswith(prefix) and is_carried(name[len(prefix) :], recorded)
    }


def _check_recorded(path: Path, size: int) -> None:
    try:
        actual = path.stat().st_size
    except OSError:
        raise TamperedError(
            f"{str(path)!r} is recorded in the manifest but missing; nothing was packed",
            hint=f"check the wheelhouse with 'wheelhouse verify {path.parent}'",
        ) from None
    if actual != size:
        raise TamperedError(
            f"{str(path)!r} has {actual} bytes, the manifest records {size}; nothing was packed",
            hint=f"check the wheelhouse with 'wheelhouse verify {path.parent}'",
        )


def _generated_files(directory: Path, manifest: Manifest, recorded: set[str]) -> list[str]:
    """The files wheelhouse wrote from the manifest (index, locks), relative, POSIX-style."""
    found: list[str] = []
    for name in sorted(generated_names(manifest) - recorded - {MANIFEST_NAME}):
        path = directory / name
        if path.is_symlink():
            continue
        if path.is_file():
            found.append(name)
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for leaf in sorted(files):
                    full = Path(root) / leaf
                    if not full.is_symlink():
                        found.append(full.relative_to(directory).as_posix())
    return found


def _sums_text(members: Sequence[Member]) -> bytes:
    lines = []
    for member in members:
        digest = member.sha256
        if digest is None:
            assert isinstance(member.source, bytes)
            digest = hashlib.sha256(member.source).hexdigest()
        lines.append(f"{digest}  {member.name}\n")
    return "".join(lines).encode("utf-8")
