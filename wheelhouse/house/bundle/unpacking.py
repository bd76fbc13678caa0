"""``unpack``: every member of a bundle checked, then the wheelhouse it holds put in place."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from wheelhouse.errors import (
    BundleBaseError,
    Hint,
    InvalidBundleError,
    OutputDirError,
    TamperedError,
    UnsafeBundleError,
)
from wheelhouse.house.bundle.layout import (
    BUNDLE_FORMAT,
    CHUNK,
    HOUSE_DIR,
    INFO_NAME,
    MAX_HEADER,
    SUMS_NAME,
    BundleKind,
    UnpackResult,
    manifest_id,
    unsafe_name,
)
from wheelhouse.house.bundle.reader import (
    damaged,
    open_tar,
    parse_sums,
    read_errors,
    volumes_of,
)
from wheelhouse.house.directory import (
    check_output_dir,
    kept_carried,
    locked,
    put_in_place,
    scratch_beside,
)
from wheelhouse.house.manifest import MANIFEST_NAME, Manifest, read_manifest


def unpack(
    bundle: Path, out: Path, *, on_wait: Callable[[str], None] | None = None
) -> UnpackResult:
    """Check every member of ``bundle`` and publish the wheelhouse it holds into ``out``.

    Nothing is written to ``out`` unless every member is safe, listed in ``SHA256SUMS`` with
    its sha256, and the assembled wheelhouse passes ``verify``. An update is applied only onto
    the wheelhouse it was made against, and then replaces it whole, atomically.
    """
    out = out.absolute()
    # Everything the bundle alone can tell is checked before anything is written beside ``out``
    # (not even the lock file): a refused bundle leaves no trace.
    parent = next((p for p in (out.parent, *out.parent.parents) if p.is_dir()), Path("/"))
    with contextlib.ExitStack() as stack:
        try:
            scratch = stack.enter_context(scratch_beside(out, "unpack", parent))
        except OSError as exc:
            raise OutputDirError(
                f"cannot write beside {str(out)!r}: {exc.strerror}",
                path=out,
                hint=Hint.WRITABLE_OUTPUT,
            ) from exc
        try:
            info, written = _extract(bundle, scratch)
        except OSError as exc:
            # Reading the bundle, or writing the scratch copy (a full disk): say which.
            if exc.filename and str(exc.filename).startswith(str(scratch)):
                raise OutputDirError(
                    f"cannot write beside {str(out)!r}: {exc.strerror}; nothing was written",
                    path=out,
                    hint="make room there (the bundle is unpacked beside its target first)",
                ) from exc
            raise InvalidBundleError(
                f"cannot read the bundle {str(bundle)!r}: {exc.strerror or exc}",
                hint="check the path and the file's permissions",
            ) from exc
        house = scratch / HOUSE_DIR
        manifest = _bundled_manifest(bundle, info, house)
        # The sha256 of every file as it was written into the scratch copy: verify compares
        # those with the manifest instead of reading every wheel a second time.
        prefix = f"{HOUSE_DIR}/"
        known = {n[len(prefix) :]: d for n, d in written.items() if n.startswith(prefix)}
        if info["kind"] == "full":
            _verified(bundle, house, "full", known)
        else:
            _check_base(bundle, info, out)
        check_output_dir(out)
        with locked(out, on_wait=on_wait):
            return _apply(bundle, info, manifest, house, out, known)


def _unsafe(bundle: Path, member: tarfile.TarInfo, why: str) -> UnsafeBundleError:
    return UnsafeBundleError(
        f"the bundle {str(bundle)!r} holds {member.name!r}, {why}; nothing was written",
        hint=Hint.NOT_PACKED,
    )


def _check_member(bundle: Path, member: tarfile.TarInfo, scratch: Path, seen: set[str]) -> None:
    name = member.name
    if member.issym() or member.islnk():
        raise _unsafe(bundle, member, f"a link to {member.linkname!r}")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise _unsafe(bundle, member, "a device or pipe")
    if not member.isfile():
        raise _unsafe(bundle, member, "which is not a regular file")
    parts = PurePosixPath(name).parts
    if (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or not parts
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise _unsafe(bundle, member, "a path outside the bundle's directory")
    try:
        # The standard library's own rules on top of ours (absolute paths, escapes, modes).
        tarfile.data_filter(member, str(scratch))
    except tarfile.FilterError as exc:
        raise _unsafe(bundle, member, f"refused by tarfile's data filter ({exc})") from exc
    if name in seen:
        raise _unsafe(bundle, member, "a second member of the same name")
    seen.add(name)


def _extract(bundle: Path, scratch: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Stream every member into ``scratch``, checking each against ``SHA256SUMS`` as it comes.

    Returns ``bundle.json`` and the sha256 of every file written (member name -> digest).
    """
    seen: set[str] = set()
    written: dict[str, str] = {}
    made: set[Path] = set()
    sums: dict[str, str] | None = None
    info_bytes = b""
    try:
        with open_tar(bundle) as (tar, _):
            for member in tar:
                # Not ours at all (a tarball of a directory) says so before the member's checks.
                if not seen and member.name != INFO_NAME:
                    raise InvalidBundleError(
                        f"{str(bundle)!r} is not a wheelhouse bundle: it starts with "
                        f"{member.name!r}, not {INFO_NAME} and {SUMS_NAME}",
                        hint=Hint.PACK,
                    )
                _check_member(bundle, member, scratch, seen)
                position = len(seen)
                if (position == 1 and member.name != INFO_NAME) or (
                    position == 2 and member.name != SUMS_NAME
                ):
                    raise InvalidBundleError(
                        f"{str(bundle)!r} is not a wheelhouse bundle: it starts with "
                        f"{member.name!r}, not {INFO_NAME} and {SUMS_NAME}",
                        hint=Hint.PACK,
                    )
                handle = tar.extractfile(member)
                assert handle is not None
                if position <= 2:
                    if member.size > MAX_HEADER:
                        raise _unsafe(bundle, member, f"of {member.size} bytes")
                    data = handle.read()
                    if position == 1:
                        info_bytes = data
                    else:
                        sums = parse_sums(bundle, data)
                        _check_digest(bundle, INFO_NAME, hashlib.sha256(info_bytes), sums)
                    continue
                assert sums is not None
                if member.name not in sums:
                    raise _unsafe(bundle, member, f"which {SUMS_NAME} does not list")
                target = scratch / member.name
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                digest = hashlib.sha256()
                sink = _open_scratch(target)
                with sink:
                    while chunk := handle.read(CHUNK):
                        digest.update(chunk)
                        _write_scratch(sink, chunk, target)
                _check_digest(bundle, member.name, digest, sums)
                written[member.name] = digest.hexdigest()
            # A stream cut at a member's end reads as a tar without its end-of-archive block:
            # tarfile stops quietly, so ask whether that block was there.
            if tar.fileobj.tell() < tar.offset + tarfile.BLOCKSIZE:
                raise EOFError("unexpected end of data")
    except read_errors() as exc:
        raise damaged(bundle, volumes_of(bundle), exc) from exc
    if sums is None:
        raise InvalidBundleError(
            f"{str(bundle)!r} is not a wheelhouse bundle (it has no {SUMS_NAME})",
            hint=Hint.PACK,
        )
    missing = sorted(set(sums) - seen)
    if missing:
        raise TamperedError(
            f"the bundle {str(bundle)!r} lacks {missing[0]!r}, which {SUMS_NAME} lists"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; nothing was written",
            hint=Hint.RECOPY_BUNDLE,
        )
    try:
        info = json.loads(info_bytes)
        if info.get("format") != "wheelhouse-bundle" or info.get("kind") not in ("full", "update"):
            raise ValueError("not a wheelhouse bundle description")
        if info.get("format-version") != BUNDLE_FORMAT:
            raise ValueError(f"format version {info.get('format-version')!r} is not supported")
    except (ValueError, AttributeError) as exc:
        raise InvalidBundleError(
            f"the bundle {str(bundle)!r} has an unusable {INFO_NAME}: {exc}",
            hint="make bundles with this version of 'wheelhouse pack'",
        ) from exc
    if not (scratch / HOUSE_DIR / MANIFEST_NAME).is_file():
        raise InvalidBundleError(
            f"the bundle {str(bundle)!r} holds no {HOUSE_DIR}/{MANIFEST_NAME}",
            hint=Hint.PACK,
        )
    return dict(info), written


def _open_scratch(target: Path) -> IO[bytes]:
    try:
        return target.open("wb")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(target)) from exc


def _write_scratch(sink: IO[bytes], chunk: bytes, target: Path) -> None:
    # A write error names no file: name the scratch copy, so unpack blames the right side.
    try:
        sink.write(chunk)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(target)) from exc


def _check_digest(bundle: Path, name: str, digest: Any, sums: dict[str, str]) -> None:
    actual = digest.hexdigest()
    expected = sums.get(name)
    if actual != expected:
        raise TamperedError(
            f"{name!r} in the bundle {str(bundle)!r} has sha256 {actual}, {SUMS_NAME} records "
            f"{expected}; nothing was written",
            hint=Hint.RECOPY_BUNDLE,
        )


def _bundled_manifest(bundle: Path, info: dict[str, Any], house: Path) -> Manifest:
    manifest = Manifest.from_json(
        (house / MANIFEST_NAME).read_text(encoding="utf-8"), source=bundle
    )
    if manifest_id(manifest) != info.get("manifest"):
        raise TamperedError(
            f"the manifest in the bundle {str(bundle)!r} is not the one its {INFO_NAME} names; "
            "nothing was written",
            hint=Hint.RECOPY_BUNDLE,
        )
    # Before anything reads, links or writes a file by these names (an update links the
    # files it keeps from the old wheelhouse).
    bad = unsafe_name(manifest)
    if bad is not None:
        raise UnsafeBundleError(
            f"the manifest in the bundle {str(bundle)!r} names the file {bad!r}, which is not "
            "a wheel or sdist file name; nothing was written",
            hint=Hint.NOT_PACKED,
        )
    return manifest


def _check_base(bundle: Path, info: dict[str, Any], out: Path) -> Manifest:
    base = read_manifest(out) if out.is_dir() else None
    have_id = None if base is None else manifest_id(base)
    if have_id is not None and have_id == info.get("manifest") != info.get("base-manifest"):
        # The same update unpacked twice (a rerun): say so, not "holds another wheelhouse".
        # (An update of carried files alone keeps the manifest: it applies again as it is.)
        raise BundleBaseError(
            f"{str(out)!r} already holds the wheelhouse the update {str(bundle)!r} makes "
            f"({have_id[:12]}): it was applied before; nothing was written",
            hint="nothing to do: the wheelhouse is up to date with this update",
        )
    if base is None or manifest_id(base) != info.get("base-manifest"):
        have = "no wheelhouse" if base is None else f"the wheelhouse {manifest_id(base)[:12]}"
        raise BundleBaseError(
            f"the bundle {str(bundle)!r} is an update of the wheelhouse "
            f"{str(info.get('base-manifest'))[:12]}, but {str(out)!r} holds {have}; "
            "nothing was written",
            hint="unpack it onto the wheelhouse it was made from, or unpack a full bundle",
        )
    return base


def _verified(bundle: Path, house: Path, kind: BundleKind, known: dict[str, str]) -> None:
    from wheelhouse.house.verify import verify

    report = verify(house, known=known)
    if not report.ok:
        problems = report.problems
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        where = "with the wheelhouse it updates " if kind == "update" else ""
        raise TamperedError(
            f"the bundle {str(bundle)!r} {where}does not verify: {problems[0].message}{more}; "
            "nothing was written",
            hint=Hint.RECOPY_BUNDLE,
        )


def _apply(
    bundle: Path,
    info: dict[str, Any],
    manifest: Manifest,
    house: Path,
    out: Path,
    known: dict[str, str],
) -> UnpackResult:
    kind: BundleKind = info["kind"]
    reused = 0
    removed: tuple[str, ...] = ()
    if kind == "update":
        base = _check_base(bundle, info, out)  # again, now that the lock is held
        for record in manifest.files:
            target = house / record.filename
            if not target.exists():
                with contextlib.suppress(OSError):
                    _link_or_copy(out / record.filename, target)
                reused += 1
        # What the base carries and the bundle does not bring (an update brings only what
        # changed): taken from the base as it would be by a rebuild, then verified with the rest.
        for path in kept_carried(out, base, manifest)[0]:
            target = house / path
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    _link_or_copy(out / path, target)
        kept = {r.filename for r in manifest.files}
        removed = tuple(sorted(r.filename for r in base.files if r.filename not in kept))
        # Files linked from the base are not in ``known``: verify reads those.
        _verified(bundle, house, kind, known)
    recorded = {r.filename for r in manifest.files}

    def move_generated(staging: Path, _: Manifest) -> None:
        # The index, locks and metadata files were checked in the scratch copy: move them over
        # whole (one rename for all of simple/), rather than file by file.
        for entry in house.iterdir():
            if entry.name in recorded or entry.name == MANIFEST_NAME:
                continue
            try:
                os.rename(entry, staging / entry.name)
            except OSError:  # another file system
                if entry.is_dir():
                    shutil.copytree(entry, staging / entry.name)
                else:
                    shutil.copyfile(entry, staging / entry.name)

    sources = {r.filename: house / r.filename for r in manifest.files}
    put_in_place(out, manifest, sources, writers=[move_generated], link=True)
    return UnpackResult(
        directory=out,
        manifest=manifest,
        kind=kind,
        files=len(manifest.files) - reused,
        reused=reused,
        removed=removed,
    )


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
