"""Ask a target Python interpreter itself for its wheel tags and PEP 508 marker environment."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import packaging
from packaging.markers import default_environment
from packaging.tags import sys_tags

from wheelhouse._base._subprocess import run, tail
from wheelhouse._base.files import write_atomic
from wheelhouse.errors import Hint, UsageError, WheelhouseError
from wheelhouse.house.locations import cache_root

__all__ = ["InterpreterInfo", "describe", "find_python"]

logger = logging.getLogger(__name__)

# Runs inside the target interpreter. pip is looked for before our own site-packages is put on
# sys.path, so that ``has_pip`` is about the target and not about the pip we ship; our
# ``packaging`` goes first so every interpreter is judged by the same tag logic.
_SCRIPT = """\
import importlib.util, json, platform, sys
has_pip = importlib.util.find_spec("pip") is not None
sys.path.insert(0, sys.argv[1])
try:
    from packaging.markers import default_environment
    from packaging.tags import sys_tags
except (ImportError, SyntaxError):
    # Our packaging may need a newer Python than the target's (packaging 26 needs 3.10):
    # judge it with the copy its own pip vendors.
    del sys.path[0]
    for name in [m for m in sys.modules if m == "packaging" or m.startswith("packaging.")]:
        del sys.modules[name]
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.tags import sys_tags
json.dump(
    {
        "version": platform.python_version(),
        "tags": [str(t) for t in sys_tags()],
        "environment": default_environment(),
        "has_pip": has_pip,
    },
    sys.stdout,
)
"""

_TIMEOUT = 60.0


# A version as --python takes it: "3" or "3.12", meaning the command python3 or python3.12.
_VERSION = re.compile(r"\d+(\.\d+)?")


def find_python(spec: str, environ: Mapping[str, str] | None = None) -> Path:
    """The interpreter ``--python`` names, as uv and pip-tools read it: a path (anything with
    a slash, or a file that exists), a command on PATH (``python3.12``), or a version
    (``3.12``: the command ``python3.12``). A pyenv shim on PATH stands for the newest pyenv
    version that has the command; pyenv's versions are looked in when PATH has none.

    A path is returned as given, not resolved: a venv's ``bin/python`` is a link out of the
    venv, and the venv is the target.
    """
    env = os.environ if environ is None else environ
    if "/" in spec or os.sep in spec or Path(spec).exists():
        return Path(spec)
    command = f"python{spec}" if _VERSION.fullmatch(spec) else spec
    pyenv = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for directory in env.get("PATH", "").split(os.pathsep):
        found = shutil.which(command, path=directory) if directory else None
        if found is None:
            continue
        if Path(directory) == pyenv / "shims":
            # A shim runs whichever version pyenv selects here, which may lack the command.
            version = _pyenv_version(pyenv, command)
            if version is not None:
                return version
            continue
        return Path(found)
    version = _pyenv_version(pyenv, command)
    if version is not None:
        return version
    raise UsageError(
        f"no Python interpreter {spec!r}: it is not a path, and no {command!r} is on PATH "
        f"or in pyenv's versions ({str(pyenv / 'versions')!r})",
        hint="pass the interpreter's path (e.g. --python .venv/bin/python), a command on PATH "
        "(--python python3.12) or a version (--python 3.12)",
    )


def _pyenv_version(pyenv: Path, command: str) -> Path | None:
    """``command`` in the newest pyenv version that has it."""
    from packaging.version import InvalidVersion, Version

    found: list[tuple[Version, Path]] = []
    for candidate in (pyenv / "versions").glob(f"*/bin/{command}"):
        try:
            found.append((Version(candidate.parent.parent.name), candidate))
        except InvalidVersion:
            continue  # a virtualenv or another implementation kept by pyenv
    return max(found)[1] if found else None


@dataclass(frozen=True)
class InterpreterInfo:
    """What an interpreter can install: its tags (best first) and its marker environment."""

    executable: Path
    version: str
    tags: tuple[str, ...]
    environment: dict[str, str]
    has_pip: bool

    @property
    def best_tag(self) -> str:
        return self.tags[0] if self.tags else "(none)"


_cache: dict[tuple[str, int], InterpreterInfo] = {}
_cache_lock = threading.Lock()


def describe(python: Path) -> InterpreterInfo:
    """Run ``python`` and return what it reports about itself (cached per path and mtime)."""
    # absolute() and not resolve(): a venv's python is a symlink, and the venv is the target.
    path = python.absolute()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise WheelhouseError(
            f"the Python interpreter {str(python)!r} does not exist",
            hint="pass the path of a python executable with --python, "
            "e.g. --python .venv/bin/python",
        ) from None
    except OSError as exc:
        raise WheelhouseError(
            f"the Python interpreter {str(python)!r} cannot be used: {exc.strerror}"
        ) from exc
    key = (str(path), stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    # The interpreter running us answers in-process: a target that is wheelhouse's own venv
    # (the common case) then costs no interpreter start, which matters next to uv's speed.
    if path == Path(sys.executable).absolute():
        info = _ask_self()
    elif (twin := _venv_of_our_interpreter(path)) is not None:
        info = twin
    else:
        info = _load_answer(path) or _save_answer(path, _ask(path))
    with _cache_lock:
        _cache[key] = info
    return info


def _venv_of_our_interpreter(path: Path) -> InterpreterInfo | None:
    """The answer for a venv made from the very interpreter running us, without starting it.

    The same binary reports the same tags and markers; only whether pip is installed differs,
    and that is on disk. Fresh venvs (a Docker build, a CI job) are the common target, and
    this saves starting one, a fifth of a whole uv install.
    """
    prefix = path.parent.parent
    try:
        config = dict(
            line.split("=", 1)
            for line in (prefix / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
            if "=" in line
        )
        same_binary = path.resolve() == Path(getattr(sys, "_base_executable", "")).resolve()
    except (OSError, ValueError):
        return None
    settings = {k.strip(): v.strip() for k, v in config.items()}
    if (
        not same_binary
        or settings.get("version", settings.get("version_info")) != platform.python_version()
        or settings.get("include-system-site-packages", "false").lower() != "false"
    ):
        return None
    site_dirs = [*prefix.glob("lib/python*/site-packages"), *prefix.glob("Lib/site-packages")]
    ours = _ask_self()
    return InterpreterInfo(
        executable=path,
        version=ours.version,
        tags=ours.tags,
        environment=ours.environment,
        has_pip=any((d / "pip" / "__init__.py").is_file() for d in site_dirs),
    )


def _answer_file(path: Path) -> Path | None:
    """Where an answer about ``path`` is kept, or None when nothing can tell it went stale.

    Only a virtual environment's interpreter qualifies: its answer changes when the base
    interpreter is replaced or when packages (pip among them) come or go, and each of those
    changes a modification time that the file's name is made from.
    """
    prefix = path.parent.parent
    config = prefix / "pyvenv.cfg"
    site_dirs = sorted(prefix.glob("lib/python*/site-packages")) or sorted(
        prefix.glob("Lib/site-packages")
    )
    try:
        real = path.resolve().stat()
        stamps = [str(path), str(real.st_mtime_ns), str(real.st_size)]
        stamps.append(str(config.stat().st_mtime_ns))
        stamps += [f"{d}:{d.stat().st_mtime_ns}" for d in site_dirs]
    except OSError:
        return None
    if not site_dirs:
        return None
    key = hashlib.sha256("\0".join(stamps).encode()).hexdigest()
    return cache_root() / "interpreters" / f"{key}.json"


def _load_answer(path: Path) -> InterpreterInfo | None:
    answer = _answer_file(path)
    if answer is None:
        return None
    try:
        data = json.loads(answer.read_text(encoding="utf-8"))
        return InterpreterInfo(
            executable=path,
            version=str(data["version"]),
            tags=tuple(data["tags"]),
            environment=dict(data["environment"]),
            has_pip=bool(data["has_pip"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_answer(path: Path, info: InterpreterInfo) -> InterpreterInfo:
    answer = _answer_file(path)
    if answer is not None:
        data = {
            "version": info.version,
            "tags": list(info.tags),
            "environment": info.environment,
            "has_pip": info.has_pip,
        }
        try:
            answer.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(answer, json.dumps(data).encode("utf-8"))
        except OSError:
            logger.debug("cannot keep the answer of %s", path, exc_info=True)
    return info


def _ask_self() -> InterpreterInfo:
    return InterpreterInfo(
        executable=Path(sys.executable).absolute(),
        version=platform.python_version(),
        tags=tuple(str(t) for t in sys_tags()),
        environment={str(k): str(v) for k, v in default_environment().items()},
        has_pip=importlib.util.find_spec("pip") is not None,
    )


def _ask(path: Path) -> InterpreterInfo:
    if path.is_dir():
        raise WheelhouseError(
            f"the Python interpreter {str(path)!r} is a directory",
            hint=f"pass the interpreter itself, e.g. --python {str(path / 'bin' / 'python')!r}",
        )
    ours = str(Path(packaging.__file__).parent.parent)
    # -I: neither PYTHON* variables nor the user's site-packages may change the answer.
    argv = [str(path), "-I", "-c", _SCRIPT, ours]
    try:
        result = run(argv, timeout=_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise WheelhouseError(
            f"the Python interpreter {str(path)!r} does not run: {exc}",
            hint=Hint.PYTHON,
        ) from exc
    if not result.ok:
        detail = tail(result.stderr or result.stdout, 5) or "no output"
        raise WheelhouseError(
            f"the Python interpreter {str(path)!r} failed (exit {result.returncode}) when asked "
            f"for its tags:\n{detail}",
            hint=Hint.PYTHON,
        )
    try:
        data: dict[str, Any] = json.loads(result.stdout)
        info = InterpreterInfo(
            executable=path,
            version=str(data["version"]),
            tags=tuple(str(t) for t in data["tags"]),
            environment={str(k): str(v) for k, v in data["environment"].items()},
            has_pip=bool(data["has_pip"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WheelhouseError(
            f"the Python interpreter {str(path)!r} gave an answer that cannot be read: {exc}",
            hint="pass a CPython or PyPy executable with --python",
        ) from exc
    logger.debug("%s: Python %s, best tag %s", path, info.version, info.best_tag)
    return info
