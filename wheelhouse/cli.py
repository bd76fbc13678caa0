"""The ``wheelhouse`` command line: parses, calls the library, prints; the only error boundary."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse import __version__
from wheelhouse.errors import ExitCode, WheelhouseError
from wheelhouse.locations import default_wheelhouse_dir
from wheelhouse.pipeline import BuildSummary, build_wheelhouse
from wheelhouse.settings import BuildSettings, IndexOptions, default_jobs

__all__ = ["app", "main"]

EXIT_CODES = " ".join(
    f"{code} {meaning};"
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
        (130, "interrupted"),
    ]
).join(["Exit codes: ", ""])

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


_state = _State()


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
    _state.debug = debug


class _PlainReporter:
    """One line per step on stderr; quiet hides it, verbose adds every file."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity

    def _say(self, text: str, level: int = 0) -> None:
        if self.verbosity >= level:
            typer.echo(text, err=True)

    def stage(self, text: str) -> None:
        self._say(f"wheelhouse: {text}")

    def note(self, text: str) -> None:
        self._say(f"wheelhouse: {text}")

    def download_started(self, files: int) -> None:
        pass

    def downloaded(self, filename: str, nbytes: int) -> None:
        pass

    def build_event(self, filename: str, status: str) -> None:
        self._say(f"wheelhouse: {status} {filename}")


def _setup_logging(verbosity: int) -> None:
    level = logging.DEBUG if _state.debug else logging.INFO if verbosity > 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


RequirementFiles = Annotated[
    list[Path],
    typer.Option(
        "-r",
        "--requirement",
        help="Requirements file (pip's format); repeatable.",
        metavar="FILE",
    ),
]


@app.command(epilog=EXIT_CODES)
def build(
    requirement: RequirementFiles,
    constraint: Annotated[
        Optional[list[Path]],  # noqa: UP045 - typer reads the annotation at run time
        typer.Option(
            "-c",
            "--constraint",
            metavar="FILE",
            help="Constraints file (pip's format); repeatable.",
        ),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            metavar="DIR",
            help="Wheelhouse directory [default: ./wheelhouse, or ./wheelhouse-out when "
            "./wheelhouse holds something else].",
        ),
    ] = None,
    index_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "-i", "--index-url", metavar="URL", help="Base URL of the package index (as pip)."
        ),
    ] = None,
    extra_index_url: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--extra-index-url", metavar="URL", help="Extra index URL (as pip); repeatable."
        ),
    ] = None,
    find_links: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "-f", "--find-links", metavar="URL|DIR", help="Extra place to look for files (as pip)."
        ),
    ] = None,
    pre: Annotated[bool, typer.Option("--pre", help="Allow pre-releases (as pip).")] = False,
    keep_sdists: Annotated[
        bool,
        typer.Option("--keep-sdists", help="Ship the sdists beside the wheels built from them."),
    ] = False,
    cache_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--cache-dir", metavar="DIR", envvar="WHEELHOUSE_CACHE_DIR", help="Cache directory."
        ),
    ] = None,
    jobs: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("-j", "--jobs", min=1, help="Parallel sdist builds [default: cores]."),
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Resolve again even if nothing changed.")
    ] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More output.")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
) -> None:
    """Resolve, download and build everything the requirements need into a wheelhouse."""
    verbosity = -1 if quiet else verbose
    _setup_logging(verbosity)
    settings = BuildSettings(
        requirements=tuple(requirement),
        constraints=tuple(constraint or ()),
        output=output if output is not None else default_wheelhouse_dir(),
        index=IndexOptions(
            index_url=index_url,
            extra_index_urls=tuple(extra_index_url or ()),
            find_links=tuple(find_links or ()),
            pre=pre,
        ),
        cache_dir=cache_dir,
        keep_sdists=keep_sdists,
        jobs=jobs or default_jobs(),
        refresh=refresh,
    )
    summary = build_wheelhouse(settings, _PlainReporter(verbosity))
    _print_build_summary(summary, verbosity)


def _print_build_summary(summary: BuildSummary, verbosity: int) -> None:
    if verbosity < 0:
        return
    files = summary.manifest.files
    size = sum(f.size for f in files)
    if summary.noop:
        typer.echo(f"{summary.output}: up to date ({len(files)} files)", err=True)
        return
    typer.echo(
        f"{summary.output}: {len(files)} files, {size / 1e6:.1f} MB "
        f"({summary.downloaded} downloaded, {summary.reused} from cache, "
        f"{summary.built} built from sdists)",
        err=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (so tests can call it in-process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _state.debug = bool(os.environ.get("WHEELHOUSE_DEBUG")) or "--debug" in args
    try:
        # Standalone mode: typer reports usage errors itself (exit 2) and exits via SystemExit.
        app(args=args, prog_name="wheelhouse")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except WheelhouseError as exc:
        if _state.debug:
            traceback.print_exc()
        typer.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            typer.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
