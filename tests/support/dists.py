"""Makes tiny, real wheels and sdists at test time, byte for byte reproducible."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "BUILD_FAILURE_LINE",
    "DistFactory",
    "dist_stem",
    "make_sdist",
    "make_wheel",
]

# The line a failing sdist's backend prints to stderr, so tests can assert the exact line.
BUILD_FAILURE_LINE = "tiny_backend: simulated compiler failure: gcc not found"

# Zip cannot store times before 1980; a fixed time makes the same call give the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_TAR_MTIME = 315532800  # 1980-01-01T00:00:00Z, for the same reason


def _escape_name(name: str) -> str:
    """The name as it appears in file names: normalized, with underscores (wheel spec)."""
    return canonicalize_name(name).replace("-", "_")


def _normalize_version(version: str) -> str:
    # A deliberately invalid version is passed through, so tests can make broken dists.
    try:
        return str(Version(version))
    except InvalidVersion:
        return version.replace("-", "_")


def dist_stem(name: str, version: str) -> str:
    """``{name}-{version}`` as both wheel and sdist file names spell it."""
    return f"{_escape_name(name)}-{_normalize_version(version)}"


def _with_extra(requirement: str, extra: str) -> str:
    req = Requirement(requirement)
    marker = f'extra == "{extra}"'
    if req.marker is not None:
        marker = f"({req.marker}) and {marker}"
    req.marker = None
    # A URL requirement needs a space before ";" or the ";" is read as part of the URL.
    return f"{req} ; {marker}" if req.url else f"{req}; {marker}"


def _metadata(
    name: str,
    version: str,
    requires: Iterable[str],
    requires_python: str | None,
    extras: Mapping[str, Sequence[str]] | None,
) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {req}" for req in requires)
    for extra, extra_requires in (extras or {}).items():
        normalized = canonicalize_name(extra)  # PEP 685
        lines.append(f"Provides-Extra: {normalized}")
        lines.extend(f"Requires-Dist: {_with_extra(req, normalized)}" for req in extra_requires)
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname, data in files.items():
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries the file mode
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar_gz(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of anything that varies.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for arcname, data in files.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            info.mtime = _TAR_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _write(dest: Path, filename: str, data: bytes) -> Path:
    # Written under a temp name and renamed, so a running index server never sees half a file.
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / filename
    temp = dest / f".{filename}.tmp"
    temp.write_bytes(data)
    temp.replace(path)
    return path


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    tag: str = "py3-none-any",
    extras: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write a valid wheel of a package ``{name}`` (importable, with ``__version__``) into dest.

    ``tag`` may be compressed (``py2.py3-none-any``); the WHEEL file lists every tag it expands to.
    """
    stem = dist_stem(name, version)
    package = _escape_name(name)
    norm_version = _normalize_version(version)
    dist_info = f"{stem}.dist-info"
    tags = sorted(str(t) for t in parse_tag(tag))
    purelib = all(t.endswith("-none-any") for t in tags)
    wheel_file = (
        "Wheel-Version: 1.0\n"
        "Generator: wheelhouse-tests\n"
        f"Root-Is-Purelib: {'true' if purelib else 'false'}\n"
        + "".join(f"Tag: {t}\n" for t in tags)
    )
    files = {
        f"{package}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": _metadata(
            name, norm_version, requires, requires_python, extras
        ).encode(),
        f"{dist_info}/WHEEL": wheel_file.encode(),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    return _write(Path(dest), f"{stem}-{tag}.whl", _zip(files))


# The backend is stdlib-only and reads everything it needs from PKG-INFO, so building an sdist
# made here needs nothing from an index (the build-system requires list is empty by default).
_BACKEND = '''\
"""A minimal in-tree PEP 517 backend, written by wheelhouse's test helpers (stdlib only)."""

import base64
import hashlib
import io
import os
import re
import sys
import zipfile
from email.parser import HeaderParser

FAIL = {fail!r}
FAILURE_LINE = {failure_line!r}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _pkg_info():
    with open("PKG-INFO", encoding="utf-8") as f:
        text = f.read()
    headers = HeaderParser().parsestr(text)
    return text, headers["Name"], headers["Version"]


def _escape(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_info_files():
    text, name, version = _pkg_info()
    dist_info = _escape(name) + "-" + version + ".dist-info"
    wheel = (
        "Wheel-Version: 1.0\\nGenerator: tiny_backend\\nRoot-Is-Purelib: true\\n"
        "Tag: py3-none-any\\n"
    )
    files = {{dist_info + "/METADATA": text.encode(), dist_info + "/WHEEL": wheel.encode()}}
    return dist_info, files


def _package_files():
    _, name, _ = _pkg_info()
    files = {{}}
    for root, dirs, names in os.walk(_escape(name)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for filename in sorted(names):
            path = os.path.join(root, filename)
            with open(path, "rb") as f:
                files[path.replace(os.sep, "/")] = f.read()
    return files


def _hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info, files = _dist_info_files()
    for arcname, data in files.items():
        path = os.path.join(metadata_directory, *arcname.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if FAIL:
        print(FAILURE_LINE, file=sys.stderr, flush=True)
        raise RuntimeError("tiny_backend: simulated build failure")
    dist_info, meta = _dist_info_files()
    files = _package_files()
    files.update(meta)
    record = "".join(
        "%s,%s,%d\\n" % (path, _hash(data), len(data)) for path, data in files.items()
    )
    files[dist_info + "/RECORD"] = (record + dist_info + "/RECORD,,\\n").encode()
    filename = dist_info[: -len(".dist-info")] + "-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname, data in files.items():
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    with open(os.path.join(wheel_directory, filename), "wb") as f:
        f.write(buffer.getvalue())
    return filename


def build_sdist(sdist_directory, config_settings=None):
    import gzip
    import tarfile

    _, name, version = _pkg_info()
    stem = _escape(name) + "-" + version
    paths = ["PKG-INFO", "pyproject.toml", "_backend/tiny_backend.py", *_package_files()]
    filename = stem + ".tar.gz"
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in paths:
                with open(path, "rb") as f:
                    data = f.read()
                info = tarfile.TarInfo(stem + "/" + path)
                info.size = len(data)
                info.mtime = 315532800
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    with open(os.path.join(sdist_directory, filename), "wb") as f:
        f.write(buffer.getvalue())
    return filename
'''


def _toml_strings(values: Iterable[str]) -> str:
    # JSON string escaping is valid TOML basic-string escaping for these simple values.
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def make_sdist(
    dest: Path,
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    fail: bool = False,
    build_requires: Iterable[str] = (),
    extras: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write ``{name}-{version}.tar.gz``: a PEP 517 sdist with an in-tree, stdlib-only backend.

    With ``fail=True`` its ``build_wheel`` prints :data:`BUILD_FAILURE_LINE` to stderr and
    raises; its metadata still builds, as with a real package whose compiler step fails.
    """
    stem = dist_stem(name, version)
    norm_version = _normalize_version(version)
    pyproject = (
        "[build-system]\n"
        f"requires = {_toml_strings(build_requires)}\n"
        'build-backend = "tiny_backend"\n'
        'backend-path = ["_backend"]\n'
    )
    files = {
        "PKG-INFO": _metadata(name, norm_version, requires, requires_python, extras).encode(),
        "pyproject.toml": pyproject.encode(),
        "_backend/tiny_backend.py": _BACKEND.format(
            fail=fail, failure_line=BUILD_FAILURE_LINE
        ).encode(),
        f"{_escape_name(name)}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    return _write(
        Path(dest),
        f"{stem}.tar.gz",
        _tar_gz({f"{stem}/{path}": data for path, data in files.items()}),
    )


class DistFactory:
    """Makes dists into one directory (``root``), the one the ``index_server`` fixture serves."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def wheel(
        self,
        name: str,
        version: str,
        *,
        requires: Iterable[str] = (),
        requires_python: str | None = None,
        tag: str = "py3-none-any",
        extras: Mapping[str, Sequence[str]] | None = None,
    ) -> Path:
        return make_wheel(
            self.root,
            name,
            version,
            requires=requires,
            requires_python=requires_python,
            tag=tag,
            extras=extras,
        )

    def sdist(
        self,
        name: str,
        version: str,
        *,
        requires: Iterable[str] = (),
        requires_python: str | None = None,
        fail: bool = False,
        build_requires: Iterable[str] = (),
        extras: Mapping[str, Sequence[str]] | None = None,
    ) -> Path:
        return make_sdist(
            self.root,
            name,
            version,
            requires=requires,
            requires_python=requires_python,
            fail=fail,
            build_requires=build_requires,
            extras=extras,
        )

    def __repr__(self) -> str:
        return f"DistFactory({str(self.root)!r})"


def vendor_dist_info(wheel: Path, name: str = "aaa_vendored", requires: str = "zeta") -> None:
    """Rewrite ``wheel`` to vendor another project's ``.dist-info`` (``name`` 0.1, requiring
    ``requires``), stored ahead of the wheel's own, as some wheels ship their vendored deps."""
    with zipfile.ZipFile(wheel) as source:
        members = [(member, source.read(member)) for member in source.namelist()]
    with zipfile.ZipFile(wheel, "w") as out:
        out.writestr(
            f"{name}-0.1.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\nRequires-Dist: {requires}\n",
        )
        for member, data in members:
            out.writestr(member, data)
