"""One file into the mirror: downloaded (or copied from a file:// index), verified against
the index's sha256, its METADATA and provenance placed beside it, claimed, renamed in."""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlsplit

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse._base.files import sha256_file, write_atomic
from wheelhouse._base.progress import Reporter
from wheelhouse._base.urls import file_url_path
from wheelhouse._base.wheels import read_wheel_metadata
from wheelhouse.download.stream import CHUNK, Received, download
from wheelhouse.errors import FetchError, HashMismatchError, UpstreamError, WheelhouseError
from wheelhouse.house.index import METADATA_SUFFIX, requires_python_of, write_if_changed
from wheelhouse.house.manifest import PROVENANCE_SUFFIX, Downloaded, FileRecord, Sha256
from wheelhouse.mirror.candidates import _Candidate, _yank_reason
from wheelhouse.mirror.settings import MirrorSettings
from wheelhouse.mirror.state import _Mirrored, _ProjectState, _refusal
from wheelhouse.provenance.fetch import fetch_provenance
from wheelhouse.simple import PageFile

logger = logging.getLogger(__name__)


# -- one file --------------------------------------------------------------------------------


def _obtain(
    out: Path,
    tmp: Path,
    candidate: _Candidate,
    old: _ProjectState,
    client: HttpClient,
    settings: MirrorSettings,
    report: Reporter,
    claim: Callable[[], None],
    warnings: list[str],
) -> _Mirrored:
    """The file verified in place: found there already (a killed run's), or downloaded.

    ``claim`` records durably that the mirror owns the file's name: called once the bytes
    are verified, before they are put in place.
    """
    file = candidate.file
    assert file.sha256 is not None
    # Checked by _select (or _checked_state): one plain file name of the project, in `out`.
    assert _refusal(file.filename, candidate.name) is None, file.filename
    path = out / file.filename
    if path.exists():
        digest, size = sha256_file(path)
        if digest == file.sha256:
            if not (out / (file.filename + PROVENANCE_SUFFIX)).exists():
                _keep_provenance(out, candidate, client, settings, warnings)
            return _place_metadata(out, path, candidate, size)
        if file.filename not in old.owned:
            raise WheelhouseError(
                f"{str(path)!r} exists, was not written by the mirror, and is not the file "
                f"the index lists (sha256 {file.sha256}); left alone"
            )
    placed: list[bytes | None] = []

    def place(partial: Path, received: Received) -> None:
        # Verified, not yet in place: what the mirror serves beside it, then the claim.
        metadata = _metadata(partial, candidate)
        provenance = _provenance(candidate, client, settings, warnings)
        claim()
        if metadata is not None:
            write_atomic(out / (file.filename + METADATA_SUFFIX), metadata)
        # What proved other bytes of this name (a file the index replaced) proves nothing now.
        _write_provenance(out, file.filename, provenance)
        placed.append(metadata)

    partial = tmp / f"{uuid.uuid4().hex}.part"
    try:
        received = _download(client, candidate, partial, path, settings, report, place)
    except HashMismatchError as exc:
        shown = strip_credentials(file.url)
        raise HashMismatchError(
            # A local file's own hash is not for the index's page to learn by listing it.
            f"{file.filename} from {shown} does not have the sha256 the index promised "
            f"({file.sha256}); not mirrored"
            if candidate.local
            else f"{file.filename} from {shown} has sha256 {exc.actual}, "
            f"but the index promised {file.sha256}; not mirrored",
            filename=file.filename,
            expected=file.sha256,
            actual=exc.actual,
        ) from None
    return _mirrored(candidate, received.size, placed[0])


def _provenance(
    candidate: _Candidate, client: HttpClient, settings: MirrorSettings, warnings: list[str]
) -> bytes | None:
    """The file's PEP 740 provenance from the index, checked against its name and sha256;
    None (with a warning) when the page names none or it cannot be had, unless the settings
    require it (then ``WheelhouseError``: the file is not mirrored)."""
    file = candidate.file
    if file.provenance is None or candidate.local:
        if settings.require_provenance:
            raise WheelhouseError(
                f"{file.filename}: the index names no provenance for it, and "
                "--require-provenance is given; not mirrored"
            )
        return None
    try:
        return fetch_provenance(client, file)
    except UpstreamError as exc:
        if settings.require_provenance:
            raise WheelhouseError(
                f"{file.filename}: its provenance cannot be had ({exc.message}), and "
                "--require-provenance is given; not mirrored"
            ) from exc
        warning = f"{file.filename}: its provenance is not kept: {exc.message}"
        logger.warning("%s: %s", candidate.name, warning)
        warnings.append(warning)
        return None


def _keep_provenance(
    out: Path,
    candidate: _Candidate,
    client: HttpClient,
    settings: MirrorSettings,
    warnings: list[str],
) -> None:
    """Fetch the provenance of a file the mirror has (verified) and keep it beside it."""
    provenance = _provenance(candidate, client, settings, warnings)
    if provenance is not None:
        _write_provenance(out, candidate.file.filename, provenance)


def _write_provenance(out: Path, filename: str, provenance: bytes | None) -> None:
    path = out / (filename + PROVENANCE_SUFFIX)
    if provenance is None:
        path.unlink(missing_ok=True)
    else:
        write_if_changed(path, provenance)


def _place_metadata(out: Path, path: Path, candidate: _Candidate, size: int) -> _Mirrored:
    metadata = _metadata(path, candidate)
    if metadata is not None:
        write_if_changed(out / (candidate.file.filename + METADATA_SUFFIX), metadata)
    return _mirrored(candidate, size, metadata)


def _metadata(path: Path, candidate: _Candidate) -> bytes | None:
    if candidate.kind != "wheel":
        return None
    import zipfile
    import zlib

    try:
        metadata = read_wheel_metadata(path, candidate.name, candidate.version)
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,  # and a METADATA past the reader's size limit
        zlib.error,
        RuntimeError,  # an encrypted member
        NotImplementedError,  # a compression method zipfile does not know
        ValueError,
    ) as exc:
        raise WheelhouseError(
            f"{candidate.file.filename} is not a readable wheel: {exc}; not mirrored"
        ) from exc
    if metadata is None:
        raise WheelhouseError(
            f"{candidate.file.filename} has no {candidate.name}-{candidate.version}"
            ".dist-info/METADATA; not mirrored"
        )
    return metadata


def _mirrored(candidate: _Candidate, size: int, metadata: bytes | None) -> _Mirrored:
    import hashlib

    file = candidate.file
    requires_python = file.requires_python
    if requires_python is None and metadata is not None:
        # As the index writer does, so that `wheelhouse verify` renders the same pages.
        requires_python = requires_python_of(metadata)
    record = FileRecord(
        name=candidate.name,
        version=str(candidate.version),
        filename=file.filename,
        sha256=Sha256(str(file.sha256)),
        size=size,
        kind=candidate.kind,
        origin=Downloaded(strip_credentials(file.url)),
        requires_python=requires_python,
        yanked=_yank_reason(file),
    )
    digest = hashlib.sha256(metadata).hexdigest() if metadata is not None else None
    advertised = file.core_metadata
    if isinstance(advertised, dict) and digest and advertised.get("sha256") not in (None, digest):
        # PEP 658 says they are the same bytes; the wheel's own is what the mirror serves.
        logger.warning("%s: the index's PEP 658 metadata differs from the wheel's", file.filename)
    return _Mirrored(record, digest)


def _download(
    client: HttpClient,
    candidate: _Candidate,
    partial: Path,
    path: Path,
    settings: MirrorSettings,
    report: Reporter,
    place: Callable[[Path, Received], None],
) -> Received:
    """The file downloaded (or copied) through ``partial`` to ``path``: verified, bounded
    by --max-file-size and the page's size, ``place`` called before the rename."""
    file = candidate.file
    options = _Options(
        sha256=file.sha256,
        name=file.filename,
        too_big=lambda size: _too_big(file, settings, size),
        progress=lambda size: report.downloaded(file.filename, size),
        before=place,
    )
    if file.url.startswith("file:"):
        return _copy_local(client, candidate, partial, path, options)
    if urlsplit(file.url).scheme.lower() not in ("http", "https"):
        # _usable keeps only http(s) URLs of remote pages; a state file could hold others.
        raise FetchError(
            f"{file.filename} has a URL that is neither http(s) nor a local index's file: "
            f"{strip_credentials(file.url)!r}; not mirrored",
            url=strip_credentials(file.url),
        )
    return download(client, file.url, partial, path, **options)[1]


class _Options(TypedDict):
    sha256: str | None
    name: str
    too_big: Callable[[int], str | None]
    progress: Callable[[int], None]
    before: Callable[[Path, Received], None]


def _copy_local(
    client: HttpClient, candidate: _Candidate, partial: Path, path: Path, options: _Options
) -> Received:
    """A file a file:// index lists, copied and hashed; at most --max-file-size bytes are
    copied, and only from a regular file (not a device, a FIFO or a directory)."""
    file = candidate.file
    if not candidate.local:
        # _usable drops them from remote pages; a state file could hold one.
        raise FetchError(
            f"{file.filename} has a file: URL, but only a file:// index may list local files; "
            "not mirrored",
            url=file.url,
        )
    source = file_url_path(file.url)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError as exc:
        raise FetchError(f"{str(source)!r} is listed but missing", url=file.url) from exc
    except OSError as exc:
        raise FetchError(f"cannot read {str(source)!r}: {exc.strerror}", url=file.url) from exc
    with open(fd, "rb", closefd=True) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FetchError(
                f"{str(source)!r} is listed as {file.filename} but is not a regular file; "
                "not mirrored",
                url=file.url,
            )
        chunks = iter(lambda: handle.read(CHUNK), b"")
        return download(client, file.url, partial, path, source=chunks, **options)[1]


def _too_big(file: PageFile, settings: MirrorSettings, size: int) -> str | None:
    """Why a transfer that reached ``size`` bytes stops, checked as it goes: past
    --max-file-size, or past the size the page gives (the bytes cannot be the listed file)."""
    limit = settings.max_file_size
    if limit is not None and size > limit:
        return f"{file.filename} is larger than --max-file-size ({limit} bytes); not mirrored"
    if file.size is not None and size > file.size:
        return (
            f"{file.filename} is larger than the {file.size} bytes the index gives for it; "
            "not mirrored"
        )
    return None
