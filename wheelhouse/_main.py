"""The ``wheelhouse`` command's entry point: what must start before the command line loads."""

from __future__ import annotations

import sys

__all__ = ["run"]


def run() -> None:
    """Start what a command waits on later, then load and run the command line."""
    try:
        if _command(sys.argv[1:]) == "build":
            from wheelhouse._base import _pip_ahead

            # pip's configuration, read while the command line and the pipeline load.
            _pip_ahead.start(sys.executable)
        from wheelhouse.cli import run as run_cli

        run_cli()
    except KeyboardInterrupt:
        # Ctrl-C while the command line loads (half a second), before it can say so itself:
        # nothing has started yet.
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)


def _command(args: list[str]) -> str | None:
    """The subcommand named on the command line (the global options take no values)."""
    return next((arg for arg in args if not arg.startswith("-")), None)
