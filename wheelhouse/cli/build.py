"""`wheelhouse build`: requirements in, a wheelhouse out."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

from wheelhouse._base.words import count
from wheelhouse.cli._app import (
    EXIT_CODES,
    ExtraIndexUrls,
    FindLinks,
    IndexUrl,
    RequirementFiles,
    app,
    print_json,
    setup_logging,
)
from wheelhouse.errors import UsageError
from wheelhouse.house.locations import default_wheelhouse_dir

if TYPE_CHECKING:
    from wheelhouse.pipeline.run import BuildSummary


_BINARY_KEY = "wheelhouse.binary-options"

# The release cooldown, as pip (--uploaded-prior-to) and uv (--exclude-newer) spell it;
# shared with `mirror`. See docs/cooldown.md.
ExcludeNewer = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--exclude-newer",
        metavar="DATE|DURATION",
        help="Release cooldown: use only files uploaded before DATE (ISO 8601: 2026-11-30, "
        "2026-11-30T12:00:00Z) or more than DURATION ago (7d, 12h, 2w, P7D).",
    ),
]
ExcludeNewerPackage = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--exclude-newer-package",
        metavar="NAME=DATE|DURATION",
        help="The cooldown for project NAME instead of --exclude-newer's; repeatable.",
    ),
]
NoUploadTime = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--no-upload-time",
        metavar="refuse|keep",
        help="With a cooldown, what to do with a file whose upload time the index does not "
        "give: refuse it (its age cannot be proven) or keep it [default: refuse].",
    ),
]


def _binary_option(
    option: Literal["no-binary", "only-binary"],
) -> Callable[[typer.Context, list[str] | None], list[str] | None]:
    """Record ``--no-binary``/``--only-binary`` values in the order given: pip applies them in
    that order (``:all:`` clears the other option's names). click calls these callbacks in
    the order each option first appears, so an option given again after the other one counts
    at its first place."""

    def record(ctx: typer.Context, values: list[str] | None) -> list[str] | None:
        found = ctx.meta.setdefault(_BINARY_KEY, [])
        for value in values or ():
            if not value or value.startswith("-"):
                raise typer.BadParameter(
                    f"--{option} takes comma-separated project names, :all: or :none:"
                )
            found.append((option, value))
        return values

    return record


@app.command(epilog=EXIT_CODES)
def build(
    ctx: typer.Context,
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
    index_url: IndexUrl = None,
    extra_index_url: ExtraIndexUrls = None,
    find_links: FindLinks = None,
    pre: Annotated[bool, typer.Option("--pre", help="Allow pre-releases (as pip).")] = False,
    no_binary: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--no-binary",
            metavar="NAMES",
            callback=_binary_option("no-binary"),
            help="Do not use wheels of these projects: build them from sdists (as pip: "
            "comma-separated names, :all: or :none:); repeatable.",
        ),
    ] = None,
    only_binary: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--only-binary",
            metavar="NAMES",
            callback=_binary_option("only-binary"),
            help="Use only wheels of these projects, never sdists (as pip: comma-separated "
            "names, :all: or :none:); repeatable.",
        ),
    ] = None,
    prefer_binary: Annotated[
        bool,
        typer.Option(
            "--prefer-binary",
            help="Prefer an older version with a wheel to a newer sdist (as pip).",
        ),
    ] = False,
    extra: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--extra",
            metavar="NAME",
            help="Optional dependencies NAME of a pyproject.toml or lock input (an unknown "
            "name is an error); repeatable.",
        ),
    ] = None,
    group: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--group",
            metavar="NAME",
            help="Dependency group NAME (PEP 735) of a pyproject.toml or lock input; only the "
            "groups named are taken ('dev' too); repeatable.",
        ),
    ] = None,
    keep_sdists: Annotated[
        bool,
        typer.Option("--keep-sdists", help="Ship the sdists beside the wheels built from them."),
    ] = False,
    no_provenance: Annotated[
        bool,
        typer.Option(
            "--no-provenance",
            help="Do not fetch the PEP 740 provenance an index page names for a file "
            "(kept as FILE.provenance otherwise).",
        ),
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
    exclude_newer: ExcludeNewer = None,
    exclude_newer_package: ExcludeNewerPackage = None,
    no_upload_time: NoUploadTime = None,
    resolver: Annotated[
        str,
        typer.Option(
            "--resolver",
            metavar="pip|uv",
            help="Who resolves loose requirements for the host: pip (the pip installed with "
            "wheelhouse, >= 26.1; the same answer as 'pip install') or uv (many times faster; "
            "its pins are then checked and fetched as a pinned file is). Fully pinned input "
            "needs neither; other --target values are always resolved by uv.",
        ),
    ] = "pip",
    verbose: Annotated[
        int,
        typer.Option(
            "-v",
            "--verbose",
            count=True,
            help="More output (-v shows pip's and uv's commands and versions).",
        ),
    ] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a versioned JSON summary on stdout.")
    ] = False,
) -> None:
    """Resolve, download and build everything the requirements need into a wheelhouse."""
    from wheelhouse._base.cooldown import Cooldown
    from wheelhouse._base.pip_settings import IndexOptions
    from wheelhouse._base.targets import parse_target
    from wheelhouse.cli._reporters import make_reporter
    from wheelhouse.pipeline.run import build_wheelhouse
    from wheelhouse.pipeline.settings import BuildSettings, default_jobs

    if resolver not in ("pip", "uv"):
        raise UsageError(f"--resolver must be 'pip' or 'uv', not {resolver!r}")
    cooldown = Cooldown.from_options(
        exclude_newer, exclude_newer_package or (), no_upload_time or "refuse"
    )
    if cooldown is None and no_upload_time is not None:
        raise UsageError("--no-upload-time applies to a cooldown: give --exclude-newer too")
    verbosity = -1 if quiet else verbose
    setup_logging(verbosity)
    settings = BuildSettings(
        requirements=tuple(requirement),
        constraints=tuple(constraint or ()),
        output=output if output is not None else default_wheelhouse_dir(),
        index=IndexOptions(
            index_url=index_url,
            extra_index_urls=tuple(extra_index_url or ()),
            find_links=tuple(find_links or ()),
            pre=pre,
            binary=tuple(ctx.meta.get(_BINARY_KEY, ())),
            prefer_binary=prefer_binary,
            cooldown=cooldown,
        ),
        cache_dir=cache_dir,
        keep_sdists=keep_sdists,
        provenance=not no_provenance,
        jobs=jobs or default_jobs(),
        refresh=refresh,
        targets=tuple(dict.fromkeys(parse_target(t) for t in target or ["host"])),
        resolver="uv" if resolver == "uv" else "pip",
        extras=tuple(dict.fromkeys(extra or ())),
        groups=tuple(dict.fromkeys(group or ())),
    )
    started = time.monotonic()
    reporter = make_reporter(verbosity)
    try:
        summary = build_wheelhouse(settings, reporter)
    finally:
        reporter.close()
    seconds = time.monotonic() - started
    if as_json:
        print_json(_build_json(summary, seconds))
    _print_summary(summary, verbosity)


def _build_json(summary: "BuildSummary", seconds: float) -> dict[str, object]:
    from wheelhouse.house.export import requirements_filename

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


def _print_summary(summary: "BuildSummary", verbosity: int) -> None:
    if verbosity < 0:
        return
    files = summary.manifest.files
    size = sum(f.size for f in files)
    if summary.noop:
        typer.echo(f"{summary.output}: up to date ({count(len(files), 'file')})", err=True)
        return
    typer.echo(
        f"{summary.output}: {count(len(files), 'file')}, {size / 1e6:.1f} MB "
        f"({summary.downloaded} downloaded, {summary.reused} from cache, "
        f"{summary.built} built from sdists)",
        err=True,
    )
