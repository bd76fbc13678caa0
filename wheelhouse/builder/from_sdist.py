"""sdist -> wheel, through ``build`` (PEP 517, isolated), in parallel and cached."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import shutil
import tarfile
import tomllib
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from wheelhouse._base._pip import online_env
from wheelhouse._base._subprocess import run, tail
from wheelhouse._base._uv import pip_settings_as_uv_toml, uv_env
from wheelhouse._base.files import sha256_file, write_atomic
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.targets import Target
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched
from wheelhouse.errors import BuildError
from wheelhouse.house.manifest import Sha256

__all__ = ["Built", "build_all"]

logger = logging.getLogger(__name__)

_RECORD = "build.json"
_RECORD_VERSION = 3
_DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"

Notify = Callable[[Fetched, str], None]


@dataclass(frozen=True)
class Built:
    """A wheel built from an sdist, stored in the cache."""

    sdist: Fetched
    path: Path
    sha256: Sha256
    size: int
    backend: str
    cached: bool
    # What building it needed (PEP 518 and PEP 517 requirements), for --keep-sdists.
    requires: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return self.path.name


def build_all(
    sdists: Sequence[Fetched],
    cache: Cache,
    target: Target,
    *,
    jobs: int,
    notify: Notify | None = None,
    pip: PipSettings | None = None,
) -> list[Built]:
    """Build a wheel from every sdist (cached builds are reused), ``jobs`` at a time.

    Build environments are made by uv (pypa/build's ``installer="uv"``) with pip's index and
    format settings (``pip``; pip's configuration here when not given). uv keeps its cache
    under ours, so the wheels of setuptools and the like are downloaded once, not once per
    sdist.
    """
    if not sdists:
        return []
    settings = cache.new_tmp_dir("uv-config-")
    try:
        env = _build_env(pip if pip is not None else PipSettings.read(), cache, settings)
        builder = _Builder(cache, target, notify, env)
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(sdists)))) as pool:
            return list(pool.map(builder, sdists))
    finally:
        shutil.rmtree(settings, ignore_errors=True)


def _build_env(pip: PipSettings, cache: Cache, settings: Path) -> dict[str, str]:
    """The environment of the build processes: uv configured from pip's settings alone."""
    uv_toml = settings / "uv.toml"
    write_atomic(uv_toml, pip_settings_as_uv_toml(pip).encode())
    env = uv_env(pip, online_env())
    # uv_env shuts uv's own configuration out; this file is ours, made from pip's.
    env.pop("UV_NO_CONFIG", None)
    env["UV_CONFIG_FILE"] = str(uv_toml)
    env["UV_CACHE_DIR"] = str(cache.uv_dir)
    if pip.constraints:
        # A pip run in a build environment reads pip's constraints too.
        env["UV_CONSTRAINT"] = " ".join(pip.constraints)
    return env


@dataclass
class _Builder:
    cache: Cache
    target: Target
    notify: Notify | None
    env: dict[str, str]

    def __call__(self, sdist: Fetched) -> Built:
        cached = built_earlier(sdist, self.cache, self.target)
        if cached is not None:
            return cached
        done = self.cache.built_dir(sdist.sha256, self.target.key)
        if self.notify:
            self.notify(sdist, "building")
        work = self.cache.new_tmp_dir("build-")
        try:
            source = _extract(sdist, work / "src")
            backend = _backend(source)
            out = work / "out"
            requires_file = work / "requires.json"
            env = dict(self.env)
            # Reproducible wheels: the same sdist built on two machines gives the same bytes, so
            # that 'wheelhouse merge' of a CI matrix does not see two different wheels.
            env.setdefault("SOURCE_DATE_EPOCH", str(_source_epoch(source)))
            result = run(
                [
                    self.target.python,
                    # -P: the current directory may hold a "wheelhouse" folder of its own.
                    "-P",
                    "-m",
                    "wheelhouse.builder._pep517_build",
                    "--installer",
                    "uv",
                    "--env-dir",
                    work / "env",
                    source,
                    out,
                    requires_file,
                ],
                env=env,
            )
            if not result.ok:
                raise _build_error(sdist, result.stdout + "\n" + result.stderr)
            wheel = _the_wheel(out, sdist)
            requires = json.loads(requires_file.read_text(encoding="utf-8"))["requires"]
            staged = work / "done"
            staged.mkdir()
            final_wheel = staged / wheel.name
            wheel.rename(final_wheel)
            digest = _sha256(final_wheel)
            record = {
                "record-version": _RECORD_VERSION,
                "wheel": wheel.name,
                "sha256": digest,
                "backend": backend,
                "requires": requires,
            }
            (staged / _RECORD).write_text(json.dumps(record), encoding="utf-8")
            done.parent.mkdir(parents=True, exist_ok=True)
            if done.exists() and _load(done, sdist) is None:
                # An entry from an older wheelhouse, or one a crash left incomplete.
                shutil.rmtree(done, ignore_errors=True)
            # If another run built the same sdist meanwhile, its result is as good as ours.
            with contextlib.suppress(OSError):
                staged.rename(done)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        built = _load(done, sdist)
        if built is None:
            raise BuildError(
                f"the wheel built from {sdist.pin.filename} vanished from the cache",
                name=sdist.pin.name,
                version=sdist.pin.version,
            )
        if self.notify:
            self.notify(sdist, "built")
        return dataclasses.replace(built, cached=False)


def built_earlier(sdist: Fetched, cache: Cache, target: Target) -> Built | None:
    """The wheel built from ``sdist`` for ``target`` by an earlier run, if the cache has it."""
    return _load(cache.built_dir(sdist.sha256, target.key), sdist)


def _load(directory: Path, sdist: Fetched) -> Built | None:
    try:
        record = json.loads((directory / _RECORD).read_text(encoding="utf-8"))
        if record.get("record-version") != _RECORD_VERSION:
            return None
        wheel = directory / record["wheel"]
        size = wheel.stat().st_size
    except (OSError, ValueError, KeyError):
        return None
    return Built(
        sdist,
        wheel,
        Sha256(record["sha256"]),
        size,
        record["backend"],
        cached=True,
        requires=tuple(record["requires"]),
    )


def _extract(sdist: Fetched, dest: Path) -> Path:
    dest.mkdir(parents=True)
    name = sdist.pin.filename
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(sdist.path) as archive:
                for member in archive.namelist():
                    target = (dest / member).resolve()
                    if not target.is_relative_to(dest.resolve()):
                        raise _bad_archive(sdist, f"member {member!r} escapes the archive")
                archive.extractall(dest)
        else:
            with tarfile.open(sdist.path) as archive:
                # PEP 706's filter refuses links and paths that leave ``dest``.
                archive.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise _bad_archive(sdist, str(exc)) from exc
    entries = [p for p in dest.iterdir()]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    if not (root / "pyproject.toml").is_file() and not (root / "setup.py").is_file():
        raise _bad_archive(sdist, "it has neither pyproject.toml nor setup.py")
    return root


def _source_epoch(source: Path) -> int:
    """The sdist's own timestamp (PKG-INFO's mtime), never before 1980 (zip's epoch)."""
    for name in ("PKG-INFO", "pyproject.toml", "setup.py"):
        with contextlib.suppress(OSError):
            return max(315532800, int((source / name).stat().st_mtime))
    return 315532800


def _bad_archive(sdist: Fetched, why: str) -> BuildError:
    return BuildError(
        f"cannot unpack {sdist.pin.filename}: {why}",
        name=sdist.pin.name,
        version=sdist.pin.version,
        hint="the sdist is damaged or not a standard sdist",
    )


def _backend(source: Path) -> str:
    try:
        data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _DEFAULT_BACKEND
    backend = data.get("build-system", {}).get("build-backend")
    return str(backend) if backend else _DEFAULT_BACKEND


def _the_wheel(out: Path, sdist: Fetched) -> Path:
    wheels = sorted(out.glob("*.whl")) if out.is_dir() else []
    if len(wheels) != 1:
        raise BuildError(
            f"building {sdist.pin.filename} produced {len(wheels)} wheels instead of one",
            name=sdist.pin.name,
            version=sdist.pin.version,
        )
    wheel = wheels[0]
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise BuildError(
            f"building {sdist.pin.filename} produced an invalid wheel name {wheel.name!r}",
            name=sdist.pin.name,
            version=sdist.pin.version,
        ) from exc
    if name != sdist.pin.name or version != Version(sdist.pin.version):
        raise BuildError(
            f"building {sdist.pin.filename} produced {wheel.name}, which is not "
            f"{sdist.pin.name} {sdist.pin.version}",
            name=sdist.pin.name,
            version=sdist.pin.version,
        )
    return wheel


# What a failed compile says. Whole words: a log's temporary paths (pip-install-k9gcc1_x) hold
# random letters, and "gcc" inside one gave the compiler hint to a build that compiled nothing.
_COMPILER = re.compile(
    r"(?<![A-Za-z0-9_])(?:gcc|cc1|cc1plus|compiler)(?![A-Za-z0-9_])"
    r"|error: command|Python\.h|fatal error:"
)


def sdist_build_hint(output: str) -> str:
    """What to do about an sdist whose build failed, from the build's output: the one hint
    for every path that builds (here, and pip's while it resolves)."""
    if _COMPILER.search(output):
        return (
            "the build needs a C compiler or system headers: install them (e.g. build-essential "
            "and python3-dev) or require a version that ships a wheel for this platform"
        )
    return "read the build log above; a newer or older version may ship a wheel instead"


def _build_error(sdist: Fetched, output: str) -> BuildError:
    hint = sdist_build_hint(output)
    return BuildError(
        f"building a wheel from {sdist.pin.filename} ({sdist.pin.name} {sdist.pin.version}) failed",
        name=sdist.pin.name,
        version=sdist.pin.version,
        log_tail=tail(output),
        hint=hint,
    )


def _sha256(path: Path) -> Sha256:
    return Sha256(sha256_file(path)[0])
