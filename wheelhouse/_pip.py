"""The single fence around pip: its command line, its environment, and its configuration.

pip has no stable Python API, so everything that depends on how pip behaves lives here.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from wheelhouse._subprocess import Completed, run

__all__ = [
    "offline_env",
    "online_env",
    "pip_command",
    "pip_config",
    "run_pip",
]

# Set on every pip run: never prompt (a prompt would hang a build), never nag about versions.
_QUIET = {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip_command(python: str | Path | None = None) -> list[str]:
    """The argv prefix that runs pip for ``python`` (default: the interpreter running us)."""
    return [str(python or sys.executable), "-m", "pip"]


def online_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for pip runs that reach the index: the user's configuration is kept."""
    env = dict(os.environ if base is None else base)
    env.update(_QUIET)
    return env


def offline_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an offline install: no pip or uv configuration can leak in.

    ``pip --isolated`` still reads ``PIP_CONFIG_FILE`` and the global pip.conf, so the only way
    to ignore every configuration file is to point ``PIP_CONFIG_FILE`` at the null device and
    drop every ``PIP_*`` variable.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    env.update(_QUIET)
    return env


def run_pip(
    args: list[str],
    *,
    env: Mapping[str, str],
    python: str | Path | None = None,
    cwd: Path | None = None,
) -> Completed:
    """Run pip with ``args``; the caller decides what a failure means."""
    return run([*pip_command(python), *args], env=env, cwd=cwd)


def pip_config(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """pip's effective configuration, as ``pip config list`` shows it (files, then environment).

    Keys are reduced to the option name (``global.cert`` and ``:env:.cert`` both become
    ``cert``); the environment wins over files, and a section of ``download`` or ``install``
    over ``global``, as in pip.
    """
    result = run_pip(["config", "list"], env=online_env(env))
    if not result.ok:
        return {}
    ranked: dict[str, tuple[int, str]] = {}
    for line in result.stdout.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        section, _, option = key.rpartition(".")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        rank = {":env:": 3, "install": 2, "download": 2, "wheel": 2}.get(section, 1)
        if option not in ranked or ranked[option][0] <= rank:
            ranked[option] = (rank, str(value))
    return {option: value for option, (_, value) in ranked.items()}
