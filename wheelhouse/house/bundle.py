"""One-file bundles of a wheelhouse: pack, unpack (verified, then published atomically),
updates against an older wheelhouse (``--since``) and volumes for media with a size limit."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelhouse import __version__
from wheelhouse._base.files import sha256_file
from wheelhouse._base.words import count
from wheelhouse.errors import (
    BundleBaseError,
    InvalidBundleError,
    OutputDirError,
    TamperedError,
    UnsafeBundleError,
    UsageError,
)
from wheelhouse.house.contents import generated_names, open_wheelhouse, requirements_filename
from wheelhouse.house.directory import (
    check_output_dir,
    kept_carried,
    locked,
    put_in_place,
    scratch_beside,
)
from wheelhouse.house.manifest import (
    MANIFEST_NAME,
    AddedFiles,
    Manifest,
    added_files,
    is_carried,
    read_manifest,
)

if TYPE_CHECKING:
    # Imported where pack renders the SBOMs: unpack needs none of it.
    from wheelhouse.house.sbom import SbomFormat

__all__ = [
    "BUNDLE_FORMAT",
    "INFO_NAME",
    "INSTALL_NAME",
    "SUMS_NAME",
    "BundleKind",
    "Compression",
    "PackResult",
    "UnpackResult",
    "Volume",
    "base_of",
    "compression_of",
    "manifest_id",
    "pack",
    "parse_size",
    "unpack",
]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
INFO_NAME = "bundle.json"
SUMS_NAME = "SHA256SUMS"
INSTALL_NAME = "INSTALL.txt"
HOUSE_DIR = "wheelhouse"
INSTALLERS_DIR = "installers"
SBOM_NAMES: dict[SbomFormat, str] = {
    "cyclonedx-json": "sbom.cdx.json",
    "spdx-json": "sbom.spdx.json",
}
# Every member carries the same time and owner, so the same wheelhouse gives the same bytes;
# 1980-01-01 is the earliest time a wheel's zip entries can carry.
_MTIME = 315532800
_CHUNK = 1 << 20
# bundle.json and SHA256SUMS are read into memory: a bundle with larger ones is not ours.
_MAX_HEADER = 64 << 20
_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_VOLUME = re.compile(r"\.(\d{3})$")

Compression = Literal["none", "gzip", "zstd"]
BundleKind = Literal["full", "update"]
# Member name -> where its bytes come from: a file on disk, or bytes made here.
_Source = Path | bytes


@dataclass(frozen=True)
class Volume:
    """One file that pack wrote: the bundle, or one of its volumes."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class PackResult:
    """What ``pack`` wrote."""

    volumes: tuple[Volume, ...]
    kind: BundleKind
    members: int
    files: int  # wheelhouse files (wheels and sdists) in the bundle
    base: str | None  # the base manifest's id for an update
    compression: Compression

    @property
    def size(self) -> int:
        return sum(v.size for v in self.volumes)


@dataclass(frozen=True)
class UnpackResult:
    """What ``unpack`` published."""

    directory: Path
    manifest: Manifest
    kind: BundleKind
    files: int  # wheelhouse files that came from the bundle
    reused: int  # files taken from the base wheelhouse (updates)
    removed: tuple[str, ...] = field(default=())  # files of the base the new one no longer has


# -- naming and sizes ----------------------------------------------------------------------


def compression_of(path: Path) -> Compression:
    """The compression a bundle's name asks for: ``.tar``, ``.tar.gz`` (``.tgz``), ``.tar.zst``."""
    name = path.name
    if name.endswith((".tar.gz", ".tgz")):
        return "gzip"
    if name.endswith((".tar.zst", ".tzst")):
        return "zstd"
    if name.endswith(".tar"):
        return "none"
    raise UsageError(
        f"cannot tell the bundle format from {str(path)!r}",
        hint="name the bundle FILE.tar, FILE.tar.gz or FILE.tar.zst",
    )


def parse_size(text: str) -> int:
    """Bytes in ``4G``, ``700M``, ``100K`` or ``1048576`` (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match or int(match.group(1)) == 0:
        raise UsageError(
            f"--split {text!r} is not a size",
            hint="give a size such as 4G, 700M or 100K (powers of 1024)",
        )
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(match.group(1)) * int(1024**power)


def manifest_id(manifest: Manifest) -> str:
    """The sha256 of the manifest as wheelhouse writes it: what an update names as its base."""
    return hashlib.sha256(manifest.to_json().encode("utf-8")).hexdigest()


# -- pack ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    name: str
    source: _Source
    size: int
    sha256: str | None  # known beforehand: checked while the file is streamed


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
    manifest = _read_house(directory)
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

    members: list[_Member] = []
    for record in shipped:
        path = directory / record.filename
        _check_recorded(path, record.size)
        members.append(_Member(f"{HOUSE_DIR}/{record.filename}", path, record.size, record.sha256))
    recorded = {r.filename for r in manifest.files}
    for relative in _generated_files(directory, manifest, recorded):
        data = (directory / relative).read_bytes()
        members.append(_Member(f"{HOUSE_DIR}/{relative}", data, len(data), None))
    for relative in added.carried:
        path = directory / relative
        digest, size = sha256_file(path)  # then checked again as it is streamed
        if base_carried.get(relative) != digest:
            members.append(_Member(f"{HOUSE_DIR}/{relative}", path, size, digest))
    # The manifest as wheelhouse writes it: the id an update names is of these bytes.
    data = manifest.to_json().encode("utf-8")
    members.append(_Member(f"{HOUSE_DIR}/{MANIFEST_NAME}", data, len(data), None))
    for name, path in extra:
        digest, size = sha256_file(path)  # then checked again as it is streamed
        members.append(_Member(f"{INSTALLERS_DIR}/{name}", path, size, digest))
    from wheelhouse.house.sbom import FORMATS, components, render_sbom

    found = components(directory, manifest)
    for fmt in FORMATS:
        document = render_sbom(directory, manifest, fmt, found)
        members.append(_Member(SBOM_NAMES[fmt], document, len(document), None))
    installers = sorted(name for name, _ in extra)
    install_text = _install_text(manifest, extra, base is not None).encode("utf-8")
    members.append(_Member(INSTALL_NAME, install_text, len(install_text), None))

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
    sums = _sums_text([_Member(INFO_NAME, info_bytes, len(info_bytes), None), *members])
    ordered = [
        _Member(INFO_NAME, info_bytes, len(info_bytes), None),
        _Member(SUMS_NAME, sums, len(sums), None),
        *members,
    ]
    volumes = _write_bundle(output, ordered, compression, split)
    return PackResult(
        volumes=volumes,
        kind=kind,
        members=len(ordered),
        files=len(shipped),
        base=info["base-manifest"],  # type: ignore[arg-type]
        compression=compression,
    )


def _read_house(directory: Path) -> Manifest:
    manifest = open_wheelhouse(directory)
    bad = _unsafe_name(manifest)
    if bad is not None:
        from wheelhouse.errors import InvalidWheelhouseError

        # Each name is read as a file of the wheelhouse: never one outside it.
        raise InvalidWheelhouseError(
            f"the manifest of {str(directory)!r} names the file {bad!r}, which is not a "
            "wheel or sdist file name",
            hint="rebuild the wheelhouse with 'wheelhouse build'",
        )
    return manifest


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
    prefix = f"{HOUSE_DIR}/"
    try:
        with _open_tar(since) as (tar, _):
            for member in tar:
                if member.name == SUMS_NAME and member.isfile() and member.size <= _MAX_HEADER:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    sums = _parse_sums(since, handle.read())
                    recorded = {r.filename for r in base.files}
                    return {
                        name[len(prefix) :]: digest
                        for name, digest in sums.items()
                        if name.startswith(prefix) and is_carried(name[len(prefix) :], recorded)
                    }
    except _read_errors() as exc:
        raise _damaged(since, [since], exc) from exc
    return {}


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


def _sums_text(members: Sequence[_Member]) -> bytes:
    lines = []
    for member in members:
        digest = member.sha256
        if digest is None:
            assert isinstance(member.source, bytes)
            digest = hashlib.sha256(member.source).hexdigest()
        lines.append(f"{digest}  {member.name}\n")
    return "".join(lines).encode("utf-8")


def _install_text(manifest: Manifest, installers: Sequence[tuple[str, Path]], update: bool) -> str:
    """INSTALL.txt: the commands for what the bundle ships, each runnable as written from the
    directory the bundle was extracted in (the tests run them offline)."""
    names = sorted(name for name, _ in installers)
    pip_wheel = next((name for name in names if name.startswith("pip-")), None)
    uv_wheels = {name: _uv_program(path) for name, path in installers if name.startswith("uv-")}
    lines = [
        f"A wheelhouse bundle, written by wheelhouse {__version__}.",
        "",
    ]
    if update:
        lines += [
            "This is an UPDATE: it holds only what changed since an older wheelhouse.",
            "Apply it onto that wheelhouse (it refuses any other):",
            "    wheelhouse unpack THIS-FILE -o WHEELHOUSE-DIR",
            "",
        ]
    else:
        lines += [
            "With wheelhouse (checks every file before anything is written):",
            "    wheelhouse unpack THIS-FILE -o wheelhouse",
            "",
            "Without wheelhouse:",
            "    tar -xf THIS-FILE            (gzip: tar -xzf; zstd: tar --zstd -xf)",
            "    sha256sum -c SHA256SUMS      (every line must say OK)",
            "",
        ]
    options = f"--no-index --find-links {HOUSE_DIR} --require-hashes"
    if pip_wheel or not uv_wheels:
        lines.append("Install offline, with plain pip, one of:")
        python_pip = "python -m pip"
        if pip_wheel:
            python_pip = f"python {INSTALLERS_DIR}/{pip_wheel}/pip"
        for lock in manifest.locks:
            requirements = requirements_filename(lock, manifest)
            lines.append(f"  target {lock.target}:")
            lines.append(f"    {python_pip} install {options} -r {HOUSE_DIR}/{requirements}")
        if pip_wheel:
            lines += [
                "",
                f"({INSTALLERS_DIR}/{pip_wheel} is pip itself: Python runs it from the wheel, "
                "so the",
                "machine needs nothing but Python.)",
            ]
    if uv_wheels:
        if pip_wheel:
            lines.append("")
        lines.append(
            "Install offline, with the uv this bundle carries, into the Python on PATH "
            "(activate the virtual environment first), one of:"
        )
        for lock in manifest.locks:
            requirements = requirements_filename(lock, manifest)
            wheel = _uv_wheel_for(lock.target, uv_wheels)
            lines.append(f"  target {lock.target}:")
            if wheel is None:
                lines.append("    (no uv wheel of this bundle runs there: use pip)")
                continue
            inside = uv_wheels[wheel]
            if inside is None:
                lines.append(f"    ({INSTALLERS_DIR}/{wheel} holds no uv program: use pip)")
                continue
            where = f"{INSTALLERS_DIR}/{wheel.removesuffix('.whl')}"
            program = f"{where}/{inside}"
            lines.append(f"    python -m zipfile -e {INSTALLERS_DIR}/{wheel} {where}")
            if not program.endswith(".exe"):
                lines.append(f"    chmod +x {program}")
            lines.append(
                f"    {program} pip install --python python --offline {options} "
                f"-r {HOUSE_DIR}/{requirements}"
            )
        lines += [
            "",
            "(A uv wheel is a zip file that holds uv's program: Python's zipfile takes it out.)",
        ]
    lines += [
        "",
        "What ships is listed in wheelhouse/wheelhouse.json and, as SBOMs, in sbom.*.json.",
    ]
    return "\n".join(lines) + "\n"


def _uv_program(wheel: Path) -> str | None:
    """Where uv's program is inside its wheel (``uv-VERSION.data/scripts/uv``), if anywhere."""
    import zipfile

    with contextlib.suppress(OSError, zipfile.BadZipFile), zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if re.fullmatch(r"[^/]+\.data/scripts/uv(\.exe)?", name):
                return name
    return None


def _uv_wheel_for(target: str, wheels: dict[str, str | None]) -> str | None:
    """The uv wheel that runs on ``target`` (the only one, when its tags cannot be told)."""
    from wheelhouse._base.targets import HOST, is_native, parse_target
    from wheelhouse.errors import WheelhouseError

    try:
        if target == HOST.name:
            chosen = HOST
        else:
            # A host lock that a merge named after its machine is that machine's tag.
            chosen = parse_target(
                target.removeprefix(f"{HOST.name}-") if is_native(target) else target
            )
        accepted = {str(tag) for tag in chosen.tags}
    except WheelhouseError:
        accepted = set()
    for name in sorted(wheels):
        try:
            _, _, _, wheel_tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        if any(str(tag) in accepted for tag in wheel_tags):
            return name
    return next(iter(wheels)) if len(wheels) == 1 else None


class _HashingReader(io.RawIOBase):
    """Reads a file while hashing it, for members whose sha256 the manifest promises."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        return data


class _Sink(io.RawIOBase):
    """The output files: one, or volumes of ``split`` bytes, each hashed as it is written."""

    def __init__(self, output: Path, split: int | None) -> None:
        self._output = output
        self._split = split
        self._tag = uuid.uuid4().hex[:12]
        self.temps: list[tuple[Path, Path]] = []  # (temporary, final)
        self._held: list[int] = []  # a descriptor holding each temporary file's lock
        self.volumes: list[Volume] = []
        self._handle: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._written = 0

    def writable(self) -> bool:
        return True

    def _open_next(self) -> None:
        self._finish_volume()
        number = len(self.temps) + 1
        final = self._output if self._split is None else _volume_path(self._output, number)
        temp = final.with_name(f".{final.name}.{self._tag}{_TEMP_SUFFIX}")
        self.temps.append((temp, final))
        self._handle = temp.open("xb")
        # Held until the rename: a later pack removes a temporary file nobody holds (the
        # leftover of a killed pack), never one a running pack writes.
        self._held.append(_hold(temp))
        self._digest = hashlib.sha256()
        self._written = 0

    def _finish_volume(self) -> None:
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        self.volumes.append(Volume(self.temps[-1][1], self._digest.hexdigest(), self._written))

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            if self._handle is None or (self._split and self._written >= self._split):
                self._open_next()
            assert self._handle is not None
            room = len(view) if not self._split else min(len(view), self._split - self._written)
            chunk = view[:room]
            self._handle.write(chunk)
            self._digest.update(chunk)
            self._written += room
            view = view[room:]
        return total

    def finish(self) -> None:
        if self._handle is None:
            self._open_next()
        self._finish_volume()

    def release(self) -> None:
        while self._held:
            fd = self._held.pop()
            if fd >= 0:
                os.close(fd)

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for temp, _ in self.temps:
            temp.unlink(missing_ok=True)
        self.release()


_TEMP_SUFFIX = ".tmp"
# A temporary file younger than this is never taken for a leftover: its pack may be between
# creating it and locking it.
_LEFTOVER_AGE = 2.0


def _hold(temp: Path) -> int:
    """A descriptor of ``temp`` holding an exclusive lock on it (-1 where there are no locks)."""
    try:
        import fcntl
    except ImportError:  # Windows: no leftovers are removed there
        return -1
    fd = os.open(temp, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _remove_leftovers(output: Path) -> None:
    """Remove the temporary files of a killed pack to ``output`` (or to its volumes): the
    names pack gives them, and only those no running pack holds."""
    try:
        import fcntl
    except ImportError:
        return
    name = re.escape(output.name)
    pattern = re.compile(rf"\.{name}(?:\.\d{{3}})?\.[0-9a-f]{{12}}{re.escape(_TEMP_SUFFIX)}")
    try:
        entries = list(os.scandir(output.parent))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < _LEFTOVER_AGE:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            logger.info("removing %s, left by a pack that was stopped", entry.path)
            os.unlink(entry.path)
        except OSError:
            continue  # held: a pack is writing it
        finally:
            os.close(fd)


def _volume_path(output: Path, number: int) -> Path:
    return output.with_name(f"{output.name}.{number:03d}")


def _write_bundle(
    output: Path, members: Sequence[_Member], compression: Compression, split: int | None
) -> tuple[Volume, ...]:
    _check_bundle_output(output)
    _remove_leftovers(output)
    sink = _Sink(output, split)
    try:
        with (
            _compressor(sink, compression) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for member in members:
                _add(tar, member)
        sink.finish()
        for temp, final in sink.temps:
            temp.chmod(0o644)
            os.replace(temp, final)
        sink.release()
    except BaseException:
        sink.discard()
        raise
    if split is not None:
        # Volumes of an earlier, longer bundle of the same name would be read as part of this one.
        number = len(sink.temps) + 1
        while (stale := _volume_path(output, number)).exists():
            logger.info("removing %s, a volume of an earlier bundle of that name", stale)
            stale.unlink()
            number += 1
    return tuple(sink.volumes)


def _check_bundle_output(output: Path) -> None:
    if output.is_dir():
        raise OutputDirError(
            f"output {str(output)!r} is a directory, not a bundle file",
            path=output,
            hint="give the bundle file to write with -o, e.g. -o wheelhouse.tar.gz",
        )
    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirError(
            f"cannot create {str(parent)!r}: {exc.strerror}",
            path=output,
            hint="choose a writable location with -o",
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"cannot write to {str(parent)!r} (permission denied)",
            path=output,
            hint="choose a writable location with -o",
        )


@contextlib.contextmanager
def _compressor(sink: _Sink, compression: Compression) -> Iterator[IO[bytes]]:
    if compression == "none":
        yield sink  # type: ignore[misc]
    elif compression == "gzip":
        # No file name and time 0 in the header: the same members give the same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=6) as gz:
            yield gz  # type: ignore[misc]
    else:
        zstandard = _zstandard()
        # Single-threaded: zstd's output differs between its one- and multi-threaded modes.
        # With the frame checksum, as the zstd tool writes it, so `zstd -t` can check a copy.
        compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
        with compressor.stream_writer(sink, closefd=False) as writer:
            yield writer


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - a dependency
        raise UsageError(
            "zstd bundles need the 'zstandard' package",
            hint="install it (pip install zstandard), or use .tar.gz",
        ) from exc
    return zstandard


def _add(tar: tarfile.TarFile, member: _Member) -> None:
    info = tarfile.TarInfo(member.name)
    info.size = member.size
    info.mtime = _MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if isinstance(member.source, bytes):
        tar.addfile(info, io.BytesIO(member.source))
        return
    with member.source.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size != member.size:
            raise TamperedError(
                f"{str(member.source)!r} changed size while it was packed; nothing was written",
                hint="pack again when nothing else writes the wheelhouse",
            )
        reader = _HashingReader(handle)
        tar.addfile(info, reader)
    if member.sha256 is not None and reader.digest.hexdigest() != member.sha256.lower():
        raise TamperedError(
            f"{str(member.source)!r} has sha256 {reader.digest.hexdigest()}, the manifest records "
            f"{member.sha256}; nothing was packed",
            hint=f"check the wheelhouse with 'wheelhouse verify {member.source.parent}'",
        )


# -- reading bundles -----------------------------------------------------------------------


def _volumes_of(path: Path) -> list[Path]:
    """The files of the bundle ``path``: itself, or ``X.001`` and every volume after it."""
    match = _VOLUME.search(path.name)
    if path.is_dir():
        raise InvalidBundleError(
            f"{str(path)!r} is a directory, not a bundle file",
            hint="pass the file 'wheelhouse pack' wrote (or its first volume, FILE.001)",
        )
    if not path.is_file():
        if _volume_path(path, 1).is_file():
            return _volumes_of(_volume_path(path, 1))
        raise InvalidBundleError(
            f"the bundle {str(path)!r} does not exist",
            hint="pass the bundle file (or its first volume, FILE.001)",
        )
    if match is None:
        return [path]
    if match.group(1) != "001":
        raise InvalidBundleError(
            f"{str(path)!r} is not the first volume of its bundle",
            hint=f"pass {path.name[: -len(match.group(0))]}.001",
        )
    stem = path.name[: -len(match.group(0))]
    numbers = sorted(
        int(m.group(1))
        for sibling in path.parent.iterdir()
        if sibling.name.startswith(stem + ".")
        and (m := _VOLUME.search(sibling.name))
        and sibling.name == f"{stem}{m.group(0)}"
    )
    for expected, number in enumerate(numbers, start=1):
        if number != expected:
            missing = path.with_name(f"{stem}.{expected:03d}")
            raise InvalidBundleError(
                f"volume {str(missing)!r} of the bundle is missing "
                f"(found {count(len(numbers), 'volume')} up to {stem}.{numbers[-1]:03d})",
                hint="copy every volume of the bundle into one directory",
            )
    return [path.with_name(f"{stem}.{n:03d}") for n in numbers]


class _Volumes(io.RawIOBase):
    """The volumes of a bundle read as one stream, in order."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._index = 0
        self._handle: IO[bytes] | None = paths[0].open("rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._handle is not None:
            count = self._handle.readinto(buffer)  # type: ignore[attr-defined]
            if count:
                return int(count)
            self._handle.close()
            self._index += 1
            self._handle = (
                self.paths[self._index].open("rb") if self._index < len(self.paths) else None
            )
        return 0

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        super().close()


class _Head(io.RawIOBase):
    """A stream that keeps its first bytes: what tells a bundle cut short from another file."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.head = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self.inner.read(-1 if size is None else size)
        if len(self.head) < tarfile.BLOCKSIZE:
            self.head += data[: tarfile.BLOCKSIZE - len(self.head)]
        return data


# Every bundle pack writes starts with the tar header of bundle.json, uncompressed or not.
_FIRST_HEADER = INFO_NAME.encode() + b"\0"


@contextlib.contextmanager
def _open_tar(path: Path) -> Iterator[tuple[tarfile.TarFile, list[Path]]]:
    paths = _volumes_of(path)
    raw = io.BufferedReader(_Volumes(paths), buffer_size=_CHUNK)
    with raw:
        magic = raw.peek(4)[:4]
        stream: IO[bytes]
        compression: Compression = "none"
        if magic.startswith(_MAGIC_GZIP):
            stream, compression = gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"  # type: ignore[assignment]
        elif magic == _MAGIC_ZSTD:
            stream = _zstandard().ZstdDecompressor().stream_reader(raw, closefd=False)
            compression = "zstd"
        else:
            stream = raw
        head = _Head(stream)
        try:
            with tarfile.open(fileobj=head, mode="r|") as tar:
                yield tar, paths
        except _read_errors() as exc:
            error = _not_a_bundle(path, head.head, compression) or _damaged(path, paths, exc)
            raise error from exc
        finally:
            stream.close()


def _not_a_bundle(path: Path, head: bytes, compression: Compression) -> InvalidBundleError | None:
    """Why the file that failed to read as a tar is not a bundle at all; None when it is one
    that is cut short or damaged (its first bytes are those every bundle starts with)."""
    if head.startswith(_FIRST_HEADER) or (head and _FIRST_HEADER.startswith(head)):
        return None
    if not head and compression != "none":
        return None  # cut short before its first block could be decompressed
    if not head:
        why = "it is empty"
    elif compression == "none":
        why = "it is not a tar, gzip or zstd archive"
    else:
        why = f"it is {compression} data that holds no tar archive of a bundle"
    return InvalidBundleError(
        f"{str(path)!r} is not a wheelhouse bundle: {why}",
        hint="pass the file 'wheelhouse pack' wrote (FILE.tar, FILE.tar.gz or FILE.tar.zst)",
    )


def _damaged(path: Path, paths: list[Path], exc: BaseException) -> WheelhouseErrorType:
    why = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end" in why:
        if len(paths) > 1 or _VOLUME.search(paths[0].name):
            following = _volume_path(paths[0].with_suffix(""), len(paths) + 1)
            return InvalidBundleError(
                f"the bundle {str(path)!r} ends early after {paths[-1].name}: "
                f"its next volume ({following.name}) "
                "is missing or a volume is cut short",
                hint="copy every volume of the bundle into one directory",
            )
        return TamperedError(
            f"the bundle {str(path)!r} is cut short ({why}); nothing was written",
            hint="copy the bundle again and compare its sha256 with the one pack printed",
        )
    return TamperedError(
        f"the bundle {str(path)!r} is damaged ({why}); nothing was written",
        hint="copy the bundle again and compare its sha256 with the one pack printed",
    )


WheelhouseErrorType = InvalidBundleError | TamperedError


_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
)


def _read_errors() -> tuple[type[BaseException], ...]:
    with contextlib.suppress(ImportError):
        import zstandard

        return (*_READ_ERRORS, zstandard.ZstdError)
    return _READ_ERRORS


def base_of(since: Path) -> Manifest:
    """The manifest an update is made against: of a bundle, a manifest file or a wheelhouse."""
    if since.is_dir():
        return _read_house(since)
    if since.name.endswith(".json") and since.is_file():
        try:
            text = since.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidBundleError(f"cannot read {str(since)!r}: {exc.strerror}") from exc
        return Manifest.from_json(text, source=since)
    wanted = f"{HOUSE_DIR}/{MANIFEST_NAME}"
    try:
        with _open_tar(since) as (tar, _):
            for member in tar:
                if member.name == wanted and member.isfile() and member.size <= _MAX_HEADER:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    return Manifest.from_json(handle.read().decode("utf-8"), source=since)
    except _read_errors() as exc:
        raise _damaged(since, [since], exc) from exc
    raise InvalidBundleError(
        f"{str(since)!r} holds no {wanted}: it is not a wheelhouse bundle",
        hint="give --since an older bundle, its wheelhouse.json, or the old wheelhouse directory",
    )


# -- unpack --------------------------------------------------------------------------------


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
                hint="choose a writable location with -o",
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
        hint="a bundle that wheelhouse packed has none: do not use this file",
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
        with _open_tar(bundle) as (tar, _):
            for member in tar:
                # Not ours at all (a tarball of a directory) says so before the member's checks.
                if not seen and member.name != INFO_NAME:
                    raise InvalidBundleError(
                        f"{str(bundle)!r} is not a wheelhouse bundle: it starts with "
                        f"{member.name!r}, not {INFO_NAME} and {SUMS_NAME}",
                        hint="make bundles with 'wheelhouse pack'",
                    )
                _check_member(bundle, member, scratch, seen)
                position = len(seen)
                if (position == 1 and member.name != INFO_NAME) or (
                    position == 2 and member.name != SUMS_NAME
                ):
                    raise InvalidBundleError(
                        f"{str(bundle)!r} is not a wheelhouse bundle: it starts with "
                        f"{member.name!r}, not {INFO_NAME} and {SUMS_NAME}",
                        hint="make bundles with 'wheelhouse pack'",
                    )
                handle = tar.extractfile(member)
                assert handle is not None
                if position <= 2:
                    if member.size > _MAX_HEADER:
                        raise _unsafe(bundle, member, f"of {member.size} bytes")
                    data = handle.read()
                    if position == 1:
                        info_bytes = data
                    else:
                        sums = _parse_sums(bundle, data)
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
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        _write_scratch(sink, chunk, target)
                _check_digest(bundle, member.name, digest, sums)
                written[member.name] = digest.hexdigest()
            # A stream cut at a member's end reads as a tar without its end-of-archive block:
            # tarfile stops quietly, so ask whether that block was there.
            if tar.fileobj.tell() < tar.offset + tarfile.BLOCKSIZE:
                raise EOFError("unexpected end of data")
    except _read_errors() as exc:
        raise _damaged(bundle, _volumes_of(bundle), exc) from exc
    if sums is None:
        raise InvalidBundleError(
            f"{str(bundle)!r} is not a wheelhouse bundle (it has no {SUMS_NAME})",
            hint="make bundles with 'wheelhouse pack'",
        )
    missing = sorted(set(sums) - seen)
    if missing:
        raise TamperedError(
            f"the bundle {str(bundle)!r} lacks {missing[0]!r}, which {SUMS_NAME} lists"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; nothing was written",
            hint="copy the bundle again and compare its sha256 with the one pack printed",
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
            hint="make bundles with 'wheelhouse pack'",
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


def _parse_sums(bundle: Path, data: bytes) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not match or match.group(2) in sums or match.group(2) in (SUMS_NAME,):
            raise TamperedError(
                f"line {number} of {SUMS_NAME} in the bundle {str(bundle)!r} is not a unique "
                "'SHA256  NAME' line; nothing was written",
                hint="copy the bundle again and compare its sha256 with the one pack printed",
            )
        sums[match.group(2)] = match.group(1)
    return sums


def _check_digest(bundle: Path, name: str, digest: Any, sums: dict[str, str]) -> None:
    actual = digest.hexdigest()
    expected = sums.get(name)
    if actual != expected:
        raise TamperedError(
            f"{name!r} in the bundle {str(bundle)!r} has sha256 {actual}, {SUMS_NAME} records "
            f"{expected}; nothing was written",
            hint="copy the bundle again and compare its sha256 with the one pack printed",
        )


def _bundled_manifest(bundle: Path, info: dict[str, Any], house: Path) -> Manifest:
    manifest = Manifest.from_json(
        (house / MANIFEST_NAME).read_text(encoding="utf-8"), source=bundle
    )
    if manifest_id(manifest) != info.get("manifest"):
        raise TamperedError(
            f"the manifest in the bundle {str(bundle)!r} is not the one its {INFO_NAME} names; "
            "nothing was written",
            hint="copy the bundle again and compare its sha256 with the one pack printed",
        )
    # Before anything reads, links or writes a file by these names (an update links the
    # files it keeps from the old wheelhouse).
    bad = _unsafe_name(manifest)
    if bad is not None:
        raise UnsafeBundleError(
            f"the manifest in the bundle {str(bundle)!r} names the file {bad!r}, which is not "
            "a wheel or sdist file name; nothing was written",
            hint="a bundle that wheelhouse packed has none: do not use this file",
        )
    return manifest


def _unsafe_name(manifest: Manifest) -> str | None:
    """The first file name of ``manifest`` that is not one plain wheel or sdist file name (a
    single path component), else None: the manifest's names are data, never paths."""
    for record in manifest.files:
        name = record.filename
        if (
            not name
            or name.startswith(".")
            or any(c in name for c in "/\\\x00:")
            or PurePosixPath(name).name != name
        ):
            return name
        try:
            if name.endswith(".whl"):
                parse_wheel_filename(name)
            else:
                parse_sdist_filename(name)
        except (InvalidWheelFilename, InvalidSdistFilename):
            return name
    return None


def _check_base(bundle: Path, info: dict[str, Any], out: Path) -> Manifest:
    base = read_manifest(out) if out.is_dir() else None
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
            hint="copy the bundle again and compare its sha256 with the one pack printed",
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
