"""Projects and locks for builds for foreign targets (another platform, another Python)."""

from __future__ import annotations

import gzip
import io
import platform
import sys
import sysconfig
import tarfile
from pathlib import Path

from packaging.tags import sys_tags

from tests.support.dists import DistFactory
from wheelhouse.house.manifest import Manifest

HOST_MINOR = sys.version_info.minor


HOST_CP = f"cp3{HOST_MINOR}"


# The Linux servers run another CPython: the next one (or the previous, past the newest that
# targets know) on an architecture that is not the host's.
OTHER_MINOR = HOST_MINOR + 1 if HOST_MINOR < 14 else HOST_MINOR - 1


OTHER_PY = f"3.{OTHER_MINOR}"


OTHER_CP = f"cp3{OTHER_MINOR}"


ARCH = "x86_64" if sys.platform == "linux" and platform.machine() == "aarch64" else "aarch64"


# A dependency only the other CPython gets (newpy keeps its name when that CPython is older).
OTHER_PY_MARKER = f'python_version >= "{OTHER_PY}"'


# The laptops run another operating system on the host's CPython.
OS_PLATFORM, OS_SYS_PLATFORM = (
    ("macosx_11_0_arm64", "darwin") if sys.platform == "win32" else ("win_amd64", "win32")
)


OS_MARKER = f'sys_platform == "{OS_SYS_PLATFORM}"'


AARCH64 = f"{OTHER_CP}-manylinux_2_28_{ARCH}"


WINDOWS = f"{HOST_CP}-{OS_PLATFORM}"


TARGETS = ("host", AARCH64, WINDOWS)


def _host_compiled_tag() -> str:
    """The best platform-specific tag of this interpreter that an index could serve."""
    for tag in sys_tags():
        if tag.abi not in ("none", "abi3") and not tag.platform.startswith("linux_"):
            return str(tag)
    raise AssertionError("this interpreter accepts no platform wheel an index serves")


COMPILED = {
    "host": f"compiled-1.0-{_host_compiled_tag()}.whl",
    AARCH64: f"compiled-1.0-{OTHER_CP}-{OTHER_CP}-manylinux_2_17_{ARCH}.manylinux2014_{ARCH}.whl",
    WINDOWS: f"compiled-1.0-{HOST_CP}-{HOST_CP}-{OS_PLATFORM}.whl",
}


PURE = "purepkg-1.0-py3-none-any.whl"


SRCPURE_WHEEL = "srcpure-1.0-py3-none-any.whl"  # built here from srcpure-1.0.tar.gz


WINONLY = "winonly-1.0-py3-none-any.whl"


NEWPY = "newpy-1.0-py3-none-any.whl"


# name -> the one file each target's lock must install it from, and nothing else.
EXPECTED = {
    "host": {"compiled": COMPILED["host"], "purepkg": PURE, "srcpure": SRCPURE_WHEEL},
    AARCH64: {
        "compiled": COMPILED[AARCH64],
        "newpy": NEWPY,
        "purepkg": PURE,
        "srcpure": SRCPURE_WHEEL,
    },
    WINDOWS: {
        "compiled": COMPILED[WINDOWS],
        "purepkg": PURE,
        "srcpure": SRCPURE_WHEEL,
        "winonly": WINONLY,
    },
}


LOOSE = "purepkg\ncompiled\nsrcpure\n"


CSRC = "csrc"


# What a compiled sdist builds into here: the host's own platform, as bdist_wheel names it.
_HOST_INTERPRETER, _HOST_ABI = _host_compiled_tag().split("-")[:2]


_HOST_PLATFORM = sysconfig.get_platform().replace("-", "_").replace(".", "_")


CSRC_TAG = f"{_HOST_INTERPRETER}-{_HOST_ABI}-{_HOST_PLATFORM}"


def rewrite_sdist(path: Path, *, tag: str | None = None) -> Path:
    """Give a ``dists.sdist`` static metadata (Metadata-Version 2.2), and optionally a platform.

    With ``tag``, its backend builds a ``{tag}`` wheel (Root-Is-Purelib false), as a compiled
    project does. The bytes stay reproducible: same input, same output.
    """
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            assert handle is not None, member.name
            members.append((member, handle.read()))
    edited = []
    for member, data in members:
        if member.name.endswith("/PKG-INFO"):
            assert data.startswith(b"Metadata-Version: 2.1\n"), data[:40]
            data = b"Metadata-Version: 2.2\n" + data[len(b"Metadata-Version: 2.1\n") :]
        if member.name.endswith("/_backend/tiny_backend.py") and tag is not None:
            text = data.decode()
            # The backend names the tag twice (WHEEL's Tag line, the file name) and purelib once.
            assert text.count("py3-none-any") == 2 and text.count("Root-Is-Purelib: true") == 1
            text = text.replace("py3-none-any", tag)
            data = text.replace("Root-Is-Purelib: true", "Root-Is-Purelib: false").encode()
        member.size = len(data)
        edited.append((member, data))
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for member, data in edited:
            archive.addfile(member, io.BytesIO(data))
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(buffer.getvalue())
    temp.replace(path)
    return path


def make_project(dists: DistFactory) -> None:
    dists.wheel(
        "purepkg",
        "1.0",
        requires=[f"winonly; {OS_MARKER}", f"newpy; {OTHER_PY_MARKER}"],
    )
    dists.wheel("winonly", "1.0")
    dists.wheel("newpy", "1.0")
    for filename in COMPILED.values():
        tag = filename.removeprefix("compiled-1.0-").removesuffix(".whl")
        dists.wheel("compiled", "1.0", tag=tag)
    rewrite_sdist(dists.sdist("srcpure", "1.0"))


def lock_files(manifest: Manifest, target: str) -> dict[str, tuple[str, ...]]:
    (lock,) = [lock for lock in manifest.locks if lock.target == target]
    return {entry.name: entry.filenames for entry in lock.entries}


INCOMPATIBLE_LINES = [
    f"error: target {AARCH64!r} needs csrc 1.0 (built csrc-1.0-{CSRC_TAG}.whl), which only "
    "ship as sdists, and their wheels built here are for this machine's platform only",
    f"hint: build the wheelhouse on a {AARCH64} machine (the default target, host) and join "
    "them with 'wheelhouse merge', or pass --keep-sdists to ship the sdists",
]
