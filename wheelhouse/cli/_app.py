"""The typer app, its shared state and options, and the helpers every command uses."""

import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, TextIO

import typer

from wheelhouse import __version__
from wheelhouse.errors import ExitCode
from wheelhouse.house.locations import default_wheelhouse_dir

EXIT_CODES = "; ".join(
    f"{code} {meaning}"
    for code, meaning in [
        (ExitCode.OK, "success"),
        (ExitCode.FAILURE, "other failure"),
        (ExitCode.USAGE, "bad command line"),
        (ExitCode.INPUT, "bad requirements file or wheelhouse"),
        (ExitCode.RESOLUTION, "nothing satisfies the requirements"),
        (ExitCode.NETWORK, "network failure"),
        (ExitCode.INTEGRITY, "hash mismatch or tampered wheelhouse"),
        (ExitCode.BUILD, "sdist build failed"),
        (ExitCode.OUTPUT, "output directory unusable"),
        (ExitCode.INCOMPATIBLE, "no wheel fits the target interpreter"),
        (ExitCode.PARTIAL, "some projects failed, the others were done"),
        (ExitCode.VULNERABLE, "audit found known vulnerabilities"),
        (ExitCode.PROVENANCE, "a file's provenance does not verify"),
        (ExitCode.TRUST_ROOT, "the Sigstore trust root is missing or expired"),
        (130, "interrupted"),
    ]
).join(["Exit codes: ", "."])

app = typer.Typer(
    name="wheelhouse",
    help="Build self-contained, hash-locked wheelhouses and install from them offline.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class _State:
    debug: bool = False
    verbosity: int = 0
    # Arguments after a lone "--", handed to the installer untouched.
    passthrough: tuple[str, ...] = ()


state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wheelhouse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks and debug logs.", envvar="WHEELHOUSE_DEBUG"),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    state.debug = debug
    setup_logging(0)


class _UserFormatter(logging.Formatter):
    """Log lines as a person reads them: ``warning: ...``, with no logger names (those, and
    tracebacks, are for --debug)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return f"wheelhouse: {message}"


class _Chatter(logging.Filter):
    """What a person does not need to see by default: urllib3's "Retrying (Retry(...)) after
    connection broken by ..." for every retried connection (the error after the last try says
    what failed; -v shows each try), and Python warnings from libraries (--debug shows them)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings":
            return state.debug
        if record.name == "urllib3" or record.name.startswith("urllib3."):
            return self.verbose or state.debug or record.levelno >= logging.ERROR
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged: under a live progress
    display that is rich's proxy, which prints the line above the display, not into it."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(verbosity: int) -> None:
    """Where log lines go and how they read; every command gets it (see ``_root``), and the
    commands with -v call it again with their verbosity."""
    level = logging.DEBUG if state.debug else logging.INFO if verbosity > 0 else logging.WARNING
    root = logging.getLogger()
    # Only the handler this function added is replaced; others (a test's capture) stay.
    for old in [
        h for h in root.handlers if isinstance(h.filters[0] if h.filters else None, _Chatter)
    ]:
        root.removeHandler(old)
    handler = _StderrHandler()
    if state.debug:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_UserFormatter())
    handler.addFilter(_Chatter(verbose=verbosity > 0))
    root.addHandler(handler)
    root.setLevel(level)
    # Python warnings (a library's FutureWarning) become log lines (py.warnings), which the
    # filter above shows only with --debug.
    warnings.showwarning = _log_warning


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = warnings.formatwarning(message, category, filename, lineno, line="").strip()
    logging.getLogger("py.warnings").warning("%s", text)


RequirementFiles = Annotated[
    list[Path],
    typer.Option(
        "-r",
        "--requirement",
        help="Requirements file (pip's format), pyproject.toml, or one lock file (pylock.toml, "
        "uv.lock, poetry.lock, pdm.lock, Pipfile.lock); repeatable.",
        metavar="FILE",
    ),
]


WheelhouseDir = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Argument(
        metavar="[DIR]",
        help="The wheelhouse [default: $WHEELHOUSE_DIR, else ./wheelhouse].",
        show_default=False,
    ),
]

# pip's index options, spelled as pip spells them, for every command that reads an index.
IndexUrl = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time
    typer.Option(
        "-i", "--index-url", metavar="URL", help="Base URL of the package index (as pip)."
    ),
]
ExtraIndexUrls = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--extra-index-url", metavar="URL", help="Extra index URL (as pip); repeatable."),
]
FindLinks = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "-f", "--find-links", metavar="URL|DIR", help="Extra place to look for files (as pip)."
    ),
]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print a versioned JSON summary on stdout.")]


def wheelhouse_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("WHEELHOUSE_DIR")
    return Path(env) if env else default_wheelhouse_dir()


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))
