"""The ``wheelhouse`` command line: parses, calls the library, prints; the only error boundary."""

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

import typer

# Each command module registers itself on the app; each command imports what it needs
# itself: `wheelhouse install` must not pay for loading the build pipeline (it is timed
# against running pip or uv by hand). The command modules do not defer their annotations
# (no `from __future__ import annotations`): typer reads every command's parameters at each
# start, and evaluating them from strings cost 0.05 s a run.
# isort: off
from wheelhouse.cli import build, install, house, publish, serve, cache, bundle, mirror  # noqa: F401
from wheelhouse.cli import provenance  # noqa: F401
from wheelhouse.cli import audit  # noqa: F401
from wheelhouse.cli import reserve, users, yank  # noqa: F401

# isort: on
from wheelhouse._base._subprocess import stop_all
from wheelhouse.cli._app import app, state
from wheelhouse.errors import WheelhouseError

__all__ = ["app", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (so tests can call it in-process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    state.passthrough = ()
    if "--" in args:
        cut = args.index("--")
        args, state.passthrough = args[:cut], tuple(args[cut + 1 :])
    args = serve.bare_upstream(args)
    state.debug = bool(os.environ.get("WHEELHOUSE_DEBUG")) or "--debug" in args
    from wheelhouse._base._dns import share_dns_lookups

    share_dns_lookups()
    try:
        # Standalone mode: typer reports usage errors itself (exit 2) and exits via SystemExit.
        with _terminate_as_interrupt():
            app(args=args, prog_name="wheelhouse")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 130 and _interrupted(exc):
            # typer turns KeyboardInterrupt into a silent Exit(130): say so, as documented.
            typer.echo("error: interrupted", err=True)
        return code
    except WheelhouseError as exc:
        if state.debug:
            traceback.print_exc()
        typer.echo(f"error: {exc.message}", err=True)
        for line in getattr(exc, "log_tail", "").splitlines():
            typer.echo(f"  | {line}", err=True)
        if exc.hint:
            typer.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    finally:
        # Commands that other threads started (pip downloading): the exit waits for none.
        stop_all()
    return 0


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds the command as Ctrl-C does (temporary files removed, the commands it
    runs stopped) instead of ending the process where it stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run() -> None:
    """The console entry point: ``main()``, then an exit that skips the interpreter's teardown.

    Tearing down every imported module costs 30-80 ms at the end of each run, a third of a
    whole offline uv install. By the time ``main()`` returns, every lock, temporary directory
    and thread pool has been closed by its context manager, so only the standard streams and
    the logging handlers are left to flush (mypy ends its runs the same way).
    """
    code = main()
    pip = sys.modules.get("wheelhouse._base._pip")
    if pip is not None:  # the netrc files holding credentials for pip do not outlive us
        pip.remove_netrc_files()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A reader that stopped early (`| head`) is not a failure of ours.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
