"""``wheelhouse install --sync``: make the target environment hold exactly the lock (pip-sync).

The decision is pip-tools' (``install._piptools``), made on the distributions the TARGET
interpreter reports; the uninstall runs the target's installer offline, and the install is
the hermetic one (``install.hermetic``): ``--no-index --find-links DIR``, hashes required,
every pip and uv configuration shut out.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse._base._pip import offline_env, pip_command
from wheelhouse._base._subprocess import run, tail
from wheelhouse.errors import Hint, WheelhouseError
from wheelhouse.install.hermetic import (
    InstallOptions,
    InstallPlan,
    InstallResult,
    Progress,
    execute,
    plan_install,
)

__all__ = ["Change", "SyncResult", "installed_distributions", "sync"]

logger = logging.getLogger(__name__)

# Runs inside the target interpreter with -I (no current directory, no PYTHONPATH, no user
# site): what is installed in that environment, each distribution once (the first found wins,
# as for imports).
_SCRIPT = """\
import json, sys
from importlib.metadata import distributions
found = []
for dist in distributions():
    name = dist.metadata["Name"]
    if name:
        found.append({"name": name, "version": dist.version, "requires": dist.requires or []})
json.dump(found, sys.stdout)
"""

_TIMEOUT = 120.0


@dataclass(frozen=True)
class Change:
    """One distribution a sync installed, replaced or removed."""

    name: NormalizedName
    version: str  # the lock's version (installed), or the version that was removed
    previous: str | None = None  # the version it replaced, for an install


@dataclass(frozen=True)
class SyncResult:
    """A finished sync: the install (None when nothing was missing) and what changed."""

    plan: InstallPlan
    install: InstallResult | None
    added: tuple[Change, ...]
    removed: tuple[Change, ...]
    seconds: float


def installed_distributions(python: Path) -> dict[NormalizedName, tuple[str, tuple[str, ...]]]:
    """``name -> (version, Requires-Dist)`` of every distribution ``python``'s environment has."""
    try:
        result = run([str(python), "-I", "-c", _SCRIPT], env=offline_env(), timeout=_TIMEOUT)
    except FileNotFoundError as exc:
        raise WheelhouseError(
            f"cannot run {str(python)!r}: {exc.strerror}",
            hint=Hint.PYTHON,
        ) from exc
    try:
        if not result.ok:
            raise ValueError(f"exit {result.returncode}")
        listed = json.loads(result.stdout)
        found: dict[NormalizedName, tuple[str, tuple[str, ...]]] = {}
        for item in listed:
            name = canonicalize_name(str(item["name"]))
            if name not in found:
                found[name] = (str(item["version"]), tuple(map(str, item["requires"])))
    except (ValueError, KeyError, TypeError) as exc:
        output = tail(result.stderr + "\n" + result.stdout, 5) or "no output"
        raise WheelhouseError(
            f"cannot list what {str(python)!r} has installed ({exc}):\n{output}",
            hint=Hint.PYTHON,
        ) from exc
    return found


def sync(options: InstallOptions, progress: Progress | None = None) -> SyncResult:
    """Install what the lock lists and the environment lacks; uninstall what the lock does not list.

    pip-sync's rules decide (pip-tools' ``diff``): a distribution whose name the lock does not
    list is removed, except pip, pip-tools, setuptools and wheel (on Python < 3.12), wheelhouse
    itself, and what those depend on; a listed one at another version is replaced.
    """
    from wheelhouse.install._piptools import Installed, sync_diff

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wheelhouse-install-") as workdir:
        plan = plan_install(options, workdir=Path(workdir))
        before = installed_distributions(plan.python)
        diff = sync_diff(
            [(entry.name, entry.version) for entry in plan.entries],
            [Installed(name, version, requires) for name, (version, requires) in before.items()],
            plan.interpreter.environment,
        )
        removed = tuple(Change(name, before[name][0]) for name in diff.uninstall)
        if removed:
            _uninstall(plan, [change.name for change in removed])
        versions = {entry.name: entry.version for entry in plan.entries}
        added = tuple(
            Change(name, versions[name], before[name][0] if name in before else None)
            for name in diff.install
        )
        # Nothing missing: the installer would only confirm what the diff already saw.
        install = execute(plan, progress) if added else None
    return SyncResult(plan, install, added, removed, time.perf_counter() - started)


def _uninstall(plan: InstallPlan, names: Sequence[str]) -> None:
    """Remove ``names`` from the target with its installer, offline (nothing is fetched)."""
    if plan.installer == "uv":
        # plan_install found uv: the plan runs it.
        argv = [plan.argv[0], "pip", "uninstall", "--offline", "--no-config", "--python"]
        argv += [str(plan.python), *names]
    elif plan.interpreter.has_pip:
        argv = [*pip_command(plan.python), "uninstall", "--yes", *names]
    else:
        argv = [*pip_command(), "--python", str(plan.python), "uninstall", "--yes", *names]
    logger.info("uninstalling %s from %s", ", ".join(names), plan.python)
    result = run(argv, env=offline_env())
    if not result.ok:
        output = tail(result.stderr + "\n" + result.stdout, 15) or "no output"
        raise WheelhouseError(
            f"{plan.installer} could not uninstall {', '.join(names)} from "
            f"{str(plan.python)!r} (exit {result.returncode}):\n{output}",
            hint=f"the lines above are {plan.installer}'s own",
        )
