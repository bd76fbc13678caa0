"""The ``wheelhouse`` command line: parses, calls the library, prints; the only error boundary."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from wheelhouse import __version__
from wheelhouse.errors import ExitCode, InvalidWheelhouseError, UsageError, WheelhouseError
from wheelhouse.locations import cache_root, default_wheelhouse_dir
from wheelhouse.manifest import MANIFEST_NAME, Manifest, read_manifest

if TYPE_CHECKING:
    from wheelhouse.pipeline import BuildSummary

# Each command imports what it needs itself: `wheelhouse install` must not pay for loading
# the build pipeline (it is timed against running pip or uv by hand).

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
    # Arguments after a lone "--", handed to the installer untouched.
    passthrough: tuple[str, ...] = ()


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
    target: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--target",
            metavar="TAG",
            help="Build for {interpreter}-{platform} (e.g. cp312-manylinux_2_28_aarch64, "
            "cp311-win_amd64) or host [default: host]; repeatable.",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, help="More output (-v shows pip's commands)."),
    ] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a versioned JSON summary on stdout.")
    ] = False,
) -> None:
    """Resolve, download and build everything the requirements need into a wheelhouse."""
    from wheelhouse._reporters import make_reporter
    from wheelhouse.pipeline import build_wheelhouse
    from wheelhouse.settings import BuildSettings, IndexOptions, default_jobs
    from wheelhouse.targets import parse_target

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
        targets=tuple(dict.fromkeys(parse_target(t) for t in target or ["host"])),
    )
    started = time.monotonic()
    reporter = make_reporter(verbosity)
    try:
        summary = build_wheelhouse(settings, reporter)
    finally:
        reporter.close()
    seconds = time.monotonic() - started
    if as_json:
        _print_json(_build_json(summary, seconds))
    _print_build_summary(summary, verbosity)


def _build_json(summary: BuildSummary, seconds: float) -> dict[str, object]:
    from wheelhouse.export import requirements_filename

    manifest = summary.manifest
    return {
        "schema-version": 1,
        "output": str(summary.output),
        "noop": summary.noop,
        "seconds": round(seconds, 3),
        "files": len(manifest.files),
        "bytes": sum(f.size for f in manifest.files),
        "downloaded": summary.downloaded,
        "reused": summary.reused,
        "built": summary.built,
        "targets": [
            {
                "target": lock.target,
                "requirements": requirements_filename(lock, manifest),
                "packages": [
                    {"name": e.name, "version": e.version, "files": list(e.filenames)}
                    for e in lock.entries
                ],
            }
            for lock in manifest.locks
        ],
    }


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


WheelhouseDir = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Argument(
        metavar="[DIR]",
        help="The wheelhouse [default: $WHEELHOUSE_DIR, else ./wheelhouse].",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a versioned JSON summary on stdout.")]


def _wheelhouse_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("WHEELHOUSE_DIR")
    return Path(env) if env else default_wheelhouse_dir()


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


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
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--python",
            metavar="PY",
            help="Interpreter to install into [default: the active virtualenv, else this one].",
        ),
    ] = None,
    installer: Annotated[
        str, typer.Option("--installer", metavar="pip|uv", help="Installer to run.")
    ] = "pip",
    as_json: JsonFlag = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More output.")] = 0,
) -> None:
    """Install from a wheelhouse, offline and hash-checked (arguments after -- go to pip/uv)."""
    _setup_logging(verbose)
    if installer not in ("pip", "uv"):
        raise UsageError(f"--installer must be 'pip' or 'uv', not {installer!r}")
    from wheelhouse.install import InstallOptions
    from wheelhouse.install import install as run_install

    result = run_install(
        InstallOptions(
            wheelhouse=_wheelhouse_dir(wheelhouse),
            requirements=tuple(requirement or ()),
            packages=tuple(packages or ()),
            python=python,
            installer="uv" if installer == "uv" else "pip",
            installer_args=_state.passthrough,
        )
    )
    plan = result.plan
    if verbose:
        typer.echo(f"wheelhouse: ran {shlex.join(plan.argv)}", err=True)
    if as_json:
        _print_json(
            {
                "schema-version": 1,
                "wheelhouse": str(plan.wheelhouse),
                "python": str(plan.python),
                "installer": plan.installer,
                "target": plan.target,
                "installed": [{"name": e.name, "version": e.version} for e in plan.entries],
                "seconds": round(result.seconds, 3),
            }
        )
    else:
        typer.echo(
            f"installed {len(plan.entries)} distributions from {plan.wheelhouse} into "
            f"{plan.python} with {plan.installer} ({result.seconds:.1f} s)",
            err=True,
        )


@app.command(epilog=EXIT_CODES)
def verify(directory: WheelhouseDir = None, as_json: JsonFlag = False) -> None:
    """Check every file of a wheelhouse against its manifest; exit 0 only if all holds."""
    from wheelhouse.verify import verify as run_verify

    report = run_verify(_wheelhouse_dir(directory))
    if as_json:
        _print_json(report.to_json())
    else:
        for problem in report.problems:
            typer.echo(f"problem: {problem.message}", err=True)
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        typer.echo(f"{report.directory}: {len(report.files)} files, {verdict}", err=True)
    if not report.ok:
        raise typer.Exit(ExitCode.INTEGRITY)


@app.command(epilog=EXIT_CODES)
def index(directory: WheelhouseDir = None) -> None:
    """Write (again) the static PEP 503/691/658 index of a wheelhouse into DIR/simple/."""
    from wheelhouse.index import index_directory
    from wheelhouse.wheelhouse_dir import locked

    where = _wheelhouse_dir(directory).absolute()
    with locked(where):
        manifest = index_directory(where)
    projects = len({f.name for f in manifest.files})
    typer.echo(f"{where / 'simple'}: {projects} projects indexed", err=True)


@app.command(epilog=EXIT_CODES)
def serve(
    directory: WheelhouseDir = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8000,
) -> None:
    """Serve a wheelhouse's index and files over HTTP (PEP 503/691) until Ctrl-C."""
    from wheelhouse.serve import serve as run_serve

    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    where = _wheelhouse_dir(directory)
    run_serve(
        where,
        host,
        port,
        ready=lambda url: typer.echo(f"serving {where} at {url} (Ctrl-C to stop)", err=True),
    )


@app.command(epilog=EXIT_CODES)
def export(
    directory: WheelhouseDir = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="requirements|pylock", help="Output format.")
    ] = "requirements",
    target: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--target", help="Target lock to export (requirements format)."),
    ] = None,
) -> None:
    """Print the wheelhouse's lock as a requirements file or a PEP 751 pylock.toml."""
    from wheelhouse.export import render_requirements

    manifest = _manifest_of(_wheelhouse_dir(directory))
    if fmt == "pylock":
        from wheelhouse.pylock import render_pylock

        typer.echo(render_pylock(manifest), nl=False)
        return
    if fmt != "requirements":
        raise UsageError(f"--format must be 'requirements' or 'pylock', not {fmt!r}")
    locks = [lock for lock in manifest.locks if target in (None, lock.target)]
    if not locks:
        known = ", ".join(lock.target for lock in manifest.locks)
        raise UsageError(f"the wheelhouse has no target {target!r} (it has: {known})")
    if len(locks) > 1:
        known = ", ".join(lock.target for lock in locks)
        raise UsageError(f"the wheelhouse has several targets ({known}): choose one with --target")
    typer.echo(render_requirements(manifest, locks[0]), nl=False)


@app.command(epilog=EXIT_CODES)
def merge(
    sources: Annotated[
        list[Path], typer.Argument(metavar="DIR...", help="Wheelhouses to join (each is verified).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", metavar="OUT", help="The merged wheelhouse (may be one of DIR)."
        ),
    ],
) -> None:
    """Join wheelhouses built on different machines into one, keeping each target's lock."""
    from wheelhouse._reporters import PlainReporter
    from wheelhouse.merge import merge as run_merge

    _setup_logging(0)
    manifest = run_merge(sources, output, reporter=PlainReporter(0))
    targets = ", ".join(lock.target for lock in manifest.locks)
    typer.echo(f"{output}: {len(manifest.files)} files, targets {targets}", err=True)


@app.command("list", epilog=EXIT_CODES)
def list_(directory: WheelhouseDir = None, as_json: JsonFlag = False) -> None:
    """List what a wheelhouse holds, per target."""
    manifest = _manifest_of(_wheelhouse_dir(directory))
    if as_json:
        _print_json(
            {
                "schema-version": 1,
                "targets": [
                    {
                        "target": lock.target,
                        "packages": [
                            {"name": e.name, "version": e.version, "files": list(e.filenames)}
                            for e in lock.entries
                        ],
                    }
                    for lock in manifest.locks
                ],
            }
        )
        return
    for lock in manifest.locks:
        typer.echo(f"{lock.target}:")
        for entry in sorted(lock.entries, key=lambda e: e.name):
            typer.echo(f"  {entry.name}=={entry.version}  {' '.join(entry.filenames)}")


def _manifest_of(directory: Path) -> Manifest:
    manifest = read_manifest(directory)
    if manifest is None:
        raise InvalidWheelhouseError(
            f"{str(directory)!r} is not a wheelhouse (it has no {MANIFEST_NAME})",
            hint="build one with 'wheelhouse build -r requirements.txt -o DIR'",
        )
    return manifest


cache_app = typer.Typer(help="Inspect or empty wheelhouse's cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

CacheDir = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--cache-dir", metavar="DIR", envvar="WHEELHOUSE_CACHE_DIR", help="Cache."),
]


@cache_app.command("dir")
def cache_dir_(cache_dir: CacheDir = None) -> None:
    """Print the cache directory."""
    typer.echo(str(cache_root(cache_dir)))


@cache_app.command("info")
def cache_info(cache_dir: CacheDir = None, as_json: JsonFlag = False) -> None:
    """Show how many files the cache holds and their size."""
    from wheelhouse.cache import Cache

    info = Cache(cache_root(cache_dir)).info()
    if as_json:
        _print_json(
            {
                "schema-version": 1,
                "path": str(info.path),
                "files": info.files,
                "files-bytes": info.files_bytes,
                "built": info.built,
                "built-bytes": info.built_bytes,
            }
        )
        return
    typer.echo(str(info.path))
    typer.echo(f"  downloaded files: {info.files} ({info.files_bytes / 1e6:.1f} MB)")
    typer.echo(f"  built wheels:     {info.built} ({info.built_bytes / 1e6:.1f} MB)")


@cache_app.command("purge")
def cache_purge(cache_dir: CacheDir = None) -> None:
    """Remove everything wheelhouse cached."""
    from wheelhouse.cache import Cache

    removed = Cache(cache_root(cache_dir)).purge()
    typer.echo(f"removed {removed / 1e6:.1f} MB from the cache", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (so tests can call it in-process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _state.passthrough = ()
    if "--" in args:
        cut = args.index("--")
        args, _state.passthrough = args[:cut], tuple(args[cut + 1 :])
    _state.debug = bool(os.environ.get("WHEELHOUSE_DEBUG")) or "--debug" in args
    from wheelhouse._dns import share_dns_lookups

    share_dns_lookups()
    try:
        # Standalone mode: typer reports usage errors itself (exit 2) and exits via SystemExit.
        app(args=args, prog_name="wheelhouse")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 130 and _interrupted(exc):
            # typer turns KeyboardInterrupt into a silent Exit(130): say so, as documented.
            typer.echo("error: interrupted", err=True)
        return code
    except WheelhouseError as exc:
        if _state.debug:
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
    return 0


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
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A reader that stopped early (`| head`) is not a failure of ours.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
