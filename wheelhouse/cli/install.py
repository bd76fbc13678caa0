"""`wheelhouse install`: an offline, hash-checked install from a wheelhouse."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse.cli._app import (
    EXIT_CODES,
    JsonFlag,
    app,
    print_json,
    setup_logging,
    state,
    wheelhouse_dir,
)
from wheelhouse.cli._reporters import InstallDisplay, count
from wheelhouse.errors import UsageError


@app.command(epilog=EXIT_CODES)
def install(
    packages: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(metavar="[PKG]...", help="Install only these (and their dependencies)."),
    ] = None,
    wheelhouse: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-w",
            "--wheelhouse",
            metavar="DIR",
            help="The wheelhouse [default: $WHEELHOUSE_DIR, else ./wheelhouse].",
        ),
    ] = None,
    requirement: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option("-r", "--requirement", metavar="FILE", help="Install what FILE asks."),
    ] = None,
    python: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--python",
            metavar="PY",
            help="Interpreter to install into: a path, a command on PATH (python3.12) or a "
            "version (3.12) [default: the active virtualenv, else this one].",
        ),
    ] = None,
    installer: Annotated[
        str, typer.Option("--installer", metavar="pip|uv", help="Installer to run.")
    ] = "pip",
    sync: Annotated[
        bool,
        typer.Option(
            "--sync",
            help="Make the environment match the lock exactly, like pip-sync: also uninstall "
            "what it does not list (pip, setuptools, wheel and wheelhouse are kept).",
        ),
    ] = False,
    as_json: JsonFlag = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More output.")] = 0,
) -> None:
    """Install from a wheelhouse, offline and hash-checked (arguments after -- go to pip/uv)."""
    setup_logging(verbose)
    if installer not in ("pip", "uv"):
        raise UsageError(f"--installer must be 'pip' or 'uv', not {installer!r}")
    from wheelhouse.install._interpreter import find_python
    from wheelhouse.install.hermetic import InstallOptions

    options = InstallOptions(
        wheelhouse=wheelhouse_dir(wheelhouse),
        requirements=tuple(requirement or ()),
        packages=tuple(packages or ()),
        python=find_python(python) if python is not None else None,
        installer="uv" if installer == "uv" else "pip",
        installer_args=state.passthrough,
    )
    added: list[dict[str, str | None]] = []
    removed: list[dict[str, str]] = []
    # Progress on a terminal only; with -v the command run is logged once (by the runner).
    display = InstallDisplay(options.installer) if sys.stderr.isatty() else None
    try:
        if sync:
            from wheelhouse.install.sync import sync as run_sync

            synced = run_sync(options, display)
            plan, seconds = synced.plan, synced.seconds
            added = [
                {"name": c.name, "version": c.version, "previous": c.previous} for c in synced.added
            ]
            removed = [{"name": c.name, "version": c.version} for c in synced.removed]
        else:
            from wheelhouse.install.hermetic import install as run_install

            result = run_install(options, display)
            plan, seconds = result.plan, result.seconds
    finally:
        if display is not None:
            display.close()
    if as_json:
        summary: dict[str, object] = {
            "schema-version": 1,
            "wheelhouse": str(plan.wheelhouse),
            "python": str(plan.python),
            "installer": plan.installer,
            "target": plan.target,
            "installed": [{"name": e.name, "version": e.version} for e in plan.entries],
            "seconds": round(seconds, 3),
            "sync": sync,
        }
        if sync:
            summary["added"] = added
            summary["removed"] = removed
        print_json(summary)
    elif sync:
        typer.echo(
            f"synced {plan.python} to the {count(len(plan.entries), 'distribution')} of "
            f"{plan.wheelhouse} "
            f"with {plan.installer}: {len(added)} installed, {len(removed)} removed "
            f"({seconds:.1f} s)",
            err=True,
        )
    else:
        typer.echo(
            f"installed {count(len(plan.entries), 'distribution')} from {plan.wheelhouse} into "
            f"{plan.python} with {plan.installer} ({seconds:.1f} s)",
            err=True,
        )
