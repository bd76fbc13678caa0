"""The Pythons and platforms a wheelhouse is built for, described with ``packaging``.

A target is ``host`` (the interpreter running wheelhouse) or a tag ``{interpreter}-{platform}``
such as ``cp312-manylinux_2_28_aarch64``: what it accepts is computed with ``packaging.tags``
(manylinux_2_x down to the legacy aliases, abi3, py3-none-any), never by matching strings.
"""

from __future__ import annotations

import functools
import platform
import re
import sys
from dataclasses import dataclass, field

from packaging import tags as pkg_tags
from packaging.markers import default_environment
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion

from wheelhouse.errors import UsageError

__all__ = [
    "HOST",
    "TARGET_FORMS",
    "Target",
    "is_native",
    "native_name",
    "parse_target",
    "surely_foreign",
    "target_name",
]

TARGET_FORMS = (
    "host, or {interpreter}-{platform} with a CPython interpreter (cp39 ... cp314) and one of "
    "manylinux_2_X_{x86_64,aarch64,i686,ppc64le,s390x,armv7l}, manylinux2014_ARCH, "
    "musllinux_1_X_{x86_64,aarch64}, win_amd64, win32, win_arm64, macosx_X_Y_{arm64,x86_64}; "
    "e.g. cp312-manylinux_2_28_aarch64, cp311-win_amd64, cp313-macosx_11_0_arm64, "
    "cp311-musllinux_1_2_x86_64"
)

_INTERPRETER = re.compile(r"^cp3(?P<minor>\d{1,2})$")
_MANYLINUX = re.compile(r"^manylinux_(?P<major>2)_(?P<minor>\d+)_(?P<arch>[a-z0-9_]+)$")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MUSLLINUX = re.compile(r"^musllinux_1_(?P<minor>\d+)_(?P<arch>x86_64|aarch64)$")
_MACOS = re.compile(r"^macosx_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>arm64|x86_64|universal2)$")
_LINUX_ARCHES = ("x86_64", "aarch64", "i686", "ppc64le", "s390x", "armv7l")
_WINDOWS_MACHINE = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}
_UV_WINDOWS = {
    "win_amd64": "x86_64-pc-windows-msvc",
    "win32": "i686-pc-windows-msvc",
    "win_arm64": "aarch64-pc-windows-msvc",
}
# glibc versions uv knows for --python-platform (x86_64 and aarch64 only).
_UV_GLIBC = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


@dataclass(frozen=True)
class Target:
    """A Python and platform that wheels are chosen and built for."""

    name: str
    python_version: tuple[int, int] = (sys.version_info.major, sys.version_info.minor)
    platform: str | None = None
    _tags: tuple[pkg_tags.Tag, ...] = field(default=(), repr=False, compare=False)

    @property
    def is_host(self) -> bool:
        return self.platform is None

    @property
    def python(self) -> str:
        """The interpreter that resolves and builds for the target: always the one running us."""
        return sys.executable

    @property
    def tags(self) -> tuple[pkg_tags.Tag, ...]:
        """Every tag the target accepts, most preferred first."""
        return self._tags or _host_tags()

    @property
    def key(self) -> str:
        """Identifies the wheels an sdist builds into for this target, for the build cache."""
        best = self.tags[0]
        return f"{best.interpreter}-{best.abi}-{best.platform}"

    @property
    def environment(self) -> dict[str, str]:
        """PEP 508 marker values; for a foreign target, what its interpreter would report."""
        if self.is_host:
            return {key: str(value) for key, value in default_environment().items()}
        assert self.platform is not None
        system, sys_platform, os_name, machine = _platform_facts(self.platform)
        version = "{}.{}".format(*self.python_version)
        return {
            "implementation_name": "cpython",
            # The patch level is unknown; .0 is the earliest the target can be.
            "implementation_version": f"{version}.0",
            "os_name": os_name,
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{version}.0",
            "python_version": version,
            "sys_platform": sys_platform,
        }

    @property
    def uv_platform(self) -> tuple[str, dict[str, str]]:
        """uv's ``--python-platform`` for this target, and environment variables it needs."""
        assert self.platform is not None
        return _uv_platform(self.platform)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platform tags the target accepts, most preferred first (``any`` left out)."""
        return tuple(dict.fromkeys(t.platform for t in self.tags if t.platform != "any"))

    def accepts(self, filename_tags: frozenset[pkg_tags.Tag]) -> int | None:
        """The rank of the best of ``filename_tags`` for this target (lower is better)."""
        ranks = _rank_table(self)
        found = [ranks[t] for t in filename_tags if t in ranks]
        return min(found) if found else None


HOST = Target("host")


def target_name(tag: str) -> str:
    """The ``{interpreter}-{platform}`` that ``--target`` takes for a wheel tag (the abi
    follows from them): ``cp312-cp312-manylinux_2_36_x86_64`` -> ``cp312-manylinux_2_36_x86_64``."""
    parsed = min(pkg_tags.parse_tag(tag), key=str)  # one, unless the tag is compressed
    return f"{parsed.interpreter}-{parsed.platform}"


def native_name(tag: str) -> str:
    """``host-cp312-linux_aarch64``: one machine's host lock, named apart in a merged wheelhouse."""
    return f"{HOST.name}-{target_name(tag)}"


def is_native(name: str) -> bool:
    """A lock built for the machine that built it (``host``, or a host lock a merge named)."""
    return name == HOST.name or name.startswith(f"{HOST.name}-")


@functools.cache
def _host_tags() -> tuple[pkg_tags.Tag, ...]:
    return tuple(pkg_tags.sys_tags())


_RANKS: dict[str, dict[pkg_tags.Tag, int]] = {}


def _rank_table(target: Target) -> dict[pkg_tags.Tag, int]:
    table = _RANKS.get(target.name)
    if table is None:
        table = {tag: i for i, tag in reversed(list(enumerate(target.tags)))}
        _RANKS[target.name] = table
    return table


def parse_target(text: str) -> Target:
    """Parse ``host`` or ``{interpreter}-{platform}``; a clear usage error otherwise."""
    value = text.strip()
    if value == "host":
        return HOST
    interpreter, sep, platform = value.partition("-")
    match = _INTERPRETER.match(interpreter)
    if not sep or match is None:
        raise UsageError(f"unknown target {text!r}", hint=f"a target is {TARGET_FORMS}")
    python_version = (3, int(match["minor"]))
    platforms = _expand_platform(platform, text)
    accepted = [
        *pkg_tags.cpython_tags(python_version, abis=[interpreter], platforms=platforms),
        *pkg_tags.compatible_tags(python_version, interpreter=interpreter, platforms=platforms),
    ]
    return Target(value, python_version, platform, tuple(accepted))


def _expand_platform(platform: str, text: str) -> list[str]:
    if platform in _WINDOWS_MACHINE:
        return [platform]
    if (mac := _MACOS.match(platform)) is not None:
        version = (int(mac["major"]), int(mac["minor"]))
        return list(pkg_tags.mac_platforms(version, mac["arch"]))
    if (musl := _MUSLLINUX.match(platform)) is not None:
        return [f"musllinux_1_{m}_{musl['arch']}" for m in range(int(musl["minor"]), -1, -1)]
    glibc = _glibc(platform)
    if glibc is not None:
        (major, minor), arch = glibc
        # aarch64 and the other newer architectures start at manylinux2014 (glibc 2.17).
        floor = 5 if arch in ("x86_64", "i686") else 17
        if minor < floor:
            raise UsageError(
                f"unknown platform {platform!r} in target {text!r}: {arch} wheels start at "
                f"manylinux_2_{floor}",
                hint=f"a target is {TARGET_FORMS}",
            )
        expanded: list[str] = []
        for m in range(minor, floor - 1, -1):
            expanded.append(f"manylinux_{major}_{m}_{arch}")
            for legacy, (_, legacy_minor) in _LEGACY_MANYLINUX.items():
                if legacy_minor == m:
                    expanded.append(f"{legacy}_{arch}")
        return expanded
    raise UsageError(
        f"unknown platform {platform!r} in target {text!r}", hint=f"a target is {TARGET_FORMS}"
    )


def _glibc(platform: str) -> tuple[tuple[int, int], str] | None:
    if (many := _MANYLINUX.match(platform)) is not None and many["arch"] in _LINUX_ARCHES:
        return (int(many["major"]), int(many["minor"])), many["arch"]
    legacy, _, arch = platform.partition("_")
    if legacy in _LEGACY_MANYLINUX and arch in _LINUX_ARCHES:
        return _LEGACY_MANYLINUX[legacy], arch
    return None


def _platform_facts(platform: str) -> tuple[str, str, str, str]:
    """platform_system, sys_platform, os_name and platform_machine of a platform tag."""
    if platform in _WINDOWS_MACHINE:
        return "Windows", "win32", "nt", _WINDOWS_MACHINE[platform]
    if (mac := _MACOS.match(platform)) is not None:
        return "Darwin", "darwin", "posix", "x86_64" if mac["arch"] == "x86_64" else "arm64"
    if (musl := _MUSLLINUX.match(platform)) is not None:
        return "Linux", "linux", "posix", musl["arch"]
    glibc = _glibc(platform)
    assert glibc is not None, platform
    return "Linux", "linux", "posix", glibc[1]


def _uv_platform(platform: str) -> tuple[str, dict[str, str]]:
    if platform in _UV_WINDOWS:
        return _UV_WINDOWS[platform], {}
    if (mac := _MACOS.match(platform)) is not None:
        arch = "x86_64" if mac["arch"] == "x86_64" else "aarch64"
        return f"{arch}-apple-darwin", {
            "MACOSX_DEPLOYMENT_TARGET": f"{mac['major']}.{mac['minor']}"
        }
    if (musl := _MUSLLINUX.match(platform)) is not None:
        return f"{musl['arch']}-unknown-linux-musl", {}
    glibc = _glibc(platform)
    assert glibc is not None, platform
    (_, minor), arch = glibc
    if arch not in ("x86_64", "aarch64"):
        return f"{arch}-unknown-linux-gnu", {}
    known = [m for m in _UV_GLIBC if m <= minor]
    return (f"{arch}-manylinux_2_{known[-1]}" if known else f"{arch}-manylinux2014"), {}


def surely_foreign(filename: str) -> bool:
    """True for a wheel that the interpreter running us can never install, whatever pip's own
    tag rules: one built only for another CPython minor (not abi3), another implementation, or
    another operating system or machine. False for anything else (an sdist, a name that does
    not parse, a wheel for this machine with a newer glibc): a filter of what pip is shown
    must never hide a file pip could take. Linux and CPython only; elsewhere always False."""
    if not filename.endswith(".whl") or not _FILTERABLE_HOST:
        return False
    try:
        *_, file_tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return False
    host = _host_facts()
    return not any(tag in host.tags or _maybe_ours(tag, host) for tag in file_tags)


@dataclass(frozen=True)
class _HostFacts:
    tags: frozenset[pkg_tags.Tag]
    interpreters: frozenset[str]
    platforms: frozenset[str]
    minor: int
    machine: str


_FILTERABLE_HOST = sys.platform == "linux" and sys.implementation.name == "cpython"
_CPYTHON = re.compile(r"^cp3(?P<minor>\d{1,2})$")


@functools.cache
def _host_facts() -> _HostFacts:
    tags = _host_tags()
    return _HostFacts(
        tags=frozenset(tags),
        interpreters=frozenset(t.interpreter for t in tags),
        platforms=frozenset(t.platform for t in tags),
        minor=sys.version_info.minor,
        machine=platform.machine(),
    )


def _maybe_ours(tag: pkg_tags.Tag, host: _HostFacts) -> bool:
    platform_ok = (
        tag.platform == "any"
        or tag.platform in host.platforms
        # manylinux/musllinux/linux for this machine, whatever glibc or musl it names
        or (
            tag.platform.startswith(("manylinux", "musllinux", "linux_"))
            and tag.platform.endswith("_" + host.machine)
        )
    )
    if not platform_ok:
        return False
    if tag.interpreter in host.interpreters or tag.interpreter.startswith("py"):
        return True
    cpython = _CPYTHON.match(tag.interpreter)
    if cpython is None:
        # PyPy, GraalPy, ...: another implementation than this CPython
        return not tag.interpreter.startswith(("pp", "graalpy", "ip", "jy"))
    minor = int(cpython["minor"])
    return minor == host.minor or (tag.abi in ("abi3", "none") and minor <= host.minor)
