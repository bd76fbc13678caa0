"""What an upload must be before anything links it: names, version, hash, and an archive
that opens and says it is what the form says."""

from __future__ import annotations

import hmac
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse._base.wheels import read_wheel_metadata
from wheelhouse.errors import UploadRefusedError
from wheelhouse.house.manifest import FileKind
from wheelhouse.upload.form import UploadForm

__all__ = ["CheckedUpload", "check_upload", "safe_filename"]

_FILETYPES: dict[str, FileKind] = {"bdist_wheel": "wheel", "sdist": "sdist"}
_SDIST_SUFFIXES = (".tar.gz", ".zip")
_MAX_FILENAME = 255
# An sdist is opened to find its PKG-INFO: at most this many members are looked at, and the
# tar stream is read no further than this many times the file's size (a gzip bomb).
_MAX_SDIST_MEMBERS = 10_000
_MAX_SDIST_RATIO = 200


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed every check, ready to be stored."""

    name: NormalizedName
    version: str
    filename: str
    kind: FileKind
    sha256: str
    size: int
    requires_python: str | None
    summary: str | None
    description: str | None = None  # the readme, as the uploader gave it (never trusted)
    description_type: str | None = None  # its Description-Content-Type


def _bad(line: str) -> UploadRefusedError:
    return UploadRefusedError(400, line)


def safe_filename(filename: str | None) -> str:
    """The client's file name, if it is a plain name; 400 for paths, NUL, dots, controls."""
    if not filename:
        raise _bad("the file has no name")
    if (
        any(c in filename for c in "/\\\0")
        or filename.startswith(".")
        or any(ord(c) < 32 or ord(c) == 127 for c in filename)
        or len(filename.encode()) > _MAX_FILENAME
    ):
        raise _bad(f"the file name {filename!r} is not a plain file name")
    return filename


def check_upload(form: UploadForm) -> CheckedUpload:
    """Check the form and its file (``form.path``); raise ``UploadRefusedError`` (400)."""
    action = form.one(":action")
    if action != "file_upload":
        raise _bad(f"unsupported :action {action!r} (only 'file_upload')")
    protocol = form.one("protocol_version")
    if protocol not in (None, "1"):
        raise _bad(f"unsupported protocol_version {protocol!r} (only '1')")
    filename = safe_filename(form.filename)
    filetype = form.one("filetype")
    kind = _FILETYPES.get(filetype or "")
    if kind is None:
        raise _bad(f"unsupported filetype {filetype!r} (only 'bdist_wheel' or 'sdist')")
    name, version = _parse_filename(filename, kind)
    form_name = form.one("name") or ""
    if canonicalize_name(form_name) != name:
        raise _bad(f"the form's name {form_name!r} does not match the file {filename!r}")
    form_version = form.one("version") or ""
    if _version(form_version) != version:
        raise _bad(f"the form's version {form_version!r} does not match the file {filename!r}")
    digest = (form.one("sha256_digest") or "").strip().lower()
    if not digest:
        raise _bad("the form has no sha256_digest")
    if not hmac.compare_digest(digest, form.sha256):
        raise _bad(f"the file's sha256 is {form.sha256!r}, the form says {digest!r}")
    if form.size == 0:
        raise _bad(f"the file {filename!r} is empty")
    assert form.path is not None
    metadata = (
        _wheel_metadata(form.path, filename, name, version)
        if kind == "wheel"
        else _sdist_metadata(form.path, filename, form.size)
    )
    headers = BytesParser().parsebytes(metadata)
    meta_name, meta_version = str(headers.get("Name", "")), str(headers.get("Version", ""))
    if canonicalize_name(meta_name) != name or _version(meta_version) != version:
        raise _bad(
            f"the metadata in {filename!r} names {meta_name!r} {meta_version!r}, "
            "not the file's project and version"
        )
    requires_python = str(headers.get("Requires-Python", "")).strip() or None
    summary = str(headers.get("Summary", "")).strip() or None
    return CheckedUpload(
        name=name,
        version=str(version),
        filename=filename,
        kind=kind,
        sha256=form.sha256,
        size=form.size,
        requires_python=requires_python,
        summary=summary,
        description=_description(headers),
        description_type=str(headers.get("Description-Content-Type", "")).strip() or None,
    )


def _description(headers: Message) -> str | None:
    """The readme: METADATA's body (2.1 and later), else its Description header."""
    body = headers.get_payload()
    if isinstance(body, str) and body.strip():
        return body
    value = headers.get("Description")
    return str(value) if value else None


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _parse_filename(filename: str, kind: FileKind) -> tuple[NormalizedName, Version]:
    try:
        if kind == "wheel":
            if not filename.endswith(".whl"):
                raise _bad(f"the wheel {filename!r} does not end in .whl")
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            if not filename.endswith(_SDIST_SUFFIXES):
                raise _bad(f"the sdist {filename!r} is not a .tar.gz or .zip")
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise _bad(f"{filename!r} is not a valid {kind} file name") from exc
    return name, version


def _wheel_metadata(path: Path, filename: str, name: NormalizedName, version: Version) -> bytes:
    try:
        metadata = read_wheel_metadata(path, name, version)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise _bad(f"the wheel {filename!r} does not open as a zip archive") from exc
    if metadata is None:
        raise _bad(f"the wheel {filename!r} has no {name}-{version}.dist-info/METADATA")
    return metadata


def _sdist_metadata(path: Path, filename: str, size: int) -> bytes:
    """The top-level ``PKG-INFO`` of an sdist, bounded in members and bytes inflated."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist()[:_MAX_SDIST_MEMBERS]:
                    if info.filename.count("/") == 1 and info.filename.endswith("/PKG-INFO"):
                        return _bounded(archive.open(info).read(1024 * 1024 + 1))
        else:
            limit = size * _MAX_SDIST_RATIO + 1024 * 1024
            with tarfile.open(path, mode="r:gz") as archive:
                for _ in range(_MAX_SDIST_MEMBERS):
                    member = archive.next()
                    if member is None or member.offset > limit:
                        break
                    parts = member.name.strip("/").split("/")
                    if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                        stream = archive.extractfile(member)
                        if stream is not None:
                            return _bounded(stream.read(1024 * 1024 + 1))
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise _bad(f"the sdist {filename!r} does not open as an archive") from exc
    raise _bad(f"the sdist {filename!r} has no top-level PKG-INFO")


def _bounded(data: bytes) -> bytes:
    if len(data) > 1024 * 1024:
        raise _bad("the PKG-INFO is larger than 1 MiB")
    return data
