"""`wheelhouse mirror`: the files of an index that chosen targets can install, verified, kept
up to date incrementally in a static tree that pip, uv and `wheelhouse serve` read."""

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from wheelhouse.cli._app import (
    EXIT_CODES,
    ExtraIndexUrls,
    IndexUrl,
    app,
    print_json,
    setup_logging,
)
from wheelhouse.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from wheelhouse.house.publish import PublishResult
    from wheelhouse.serve.mirror import MirrorSummary

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str) -> int:
    """``500``, ``20MB``, ``1.5G``, ``64KiB`` -> bytes (decimal units; ``i`` means binary)."""
    match = _SIZE.match(text)
    if match is None:
        raise UsageError(
            f"--max-file-size {text!r} is not a size", hint="write it as 500, 20MB or 1.5GB"
        )
    number, unit = float(match[1]), (match[2] or "").lower()
    prefix = unit[:1] if unit[:1] in "kmgt" else ""
    factor = _UNITS[prefix] if "i" not in unit else 1024 ** " kmgt".index(prefix)
    return int(number * factor)


@app.command(epilog=EXIT_CODES)
def mirror(
    projects: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer reads the annotation at run time
        typer.Argument(
            metavar="[PROJECT...]",
            help="Projects to mirror, with optional version specifiers ('django>=4.2').",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            metavar="DIR|URL",
            help="The mirror directory, or s3://BUCKET[/PREFIX] (kept through a working tree "
            "in the cache, then published in safe order).",
        ),
    ] = "mirror",
    endpoint_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--endpoint-url",
            metavar="URL",
            help="S3 endpoint of a self-hosted store (MinIO, Ceph, SeaweedFS) for -o s3://... "
            "[default: $AWS_ENDPOINT_URL, else AWS].",
        ),
    ] = None,
    requirement: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option(
            "-r",
            "--requirement",
            metavar="FILE",
            help="Mirror the dependency closure of a requirements file, resolved for every "
            "--target as 'build' resolves it; repeatable.",
        ),
    ] = None,
    all_projects: Annotated[
        bool, typer.Option("--all", help="Every project the index lists (its PEP 691 root).")
    ] = False,
    index_url: IndexUrl = None,
    extra_index_url: ExtraIndexUrls = None,
    target: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--target",
            metavar="TAG",
            help="Keep the wheels {interpreter}-{platform} (e.g. cp312-manylinux_2_28_aarch64) "
            "or host can install; repeatable [default: every wheel; host with -r].",
        ),
    ] = None,
    no_sdists: Annotated[bool, typer.Option("--no-sdists", help="Leave sdists out.")] = False,
    latest: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--latest", min=1, metavar="N", help="Only the N newest releases."),
    ] = None,
    no_prereleases: Annotated[
        bool, typer.Option("--no-prereleases", help="Leave pre- and dev releases out.")
    ] = False,
    max_file_size: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--max-file-size", metavar="SIZE", help="Leave out larger files (e.g. 50MB)."),
    ] = None,
    no_yanked: Annotated[
        bool,
        typer.Option("--no-yanked", help="Leave yanked files out [default: kept, marked]."),
    ] = False,
    jobs: Annotated[
        int, typer.Option("-j", "--jobs", min=1, max=64, help="Parallel downloads.")
    ] = 8,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the projects, files and bytes a run would fetch; change nothing.",
        ),
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh", help="Resolve -r again even if the requirements have not changed."
        ),
    ] = False,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More output (every file).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a versioned JSON summary on stdout.")
    ] = False,
) -> None:
    """Mirror an index's files that the targets can install into DIR, each verified against
    the index's sha256; a rerun fetches only what changed. Exit code 10 when some projects
    failed (the others are mirrored)."""
    from wheelhouse._base.targets import parse_target
    from wheelhouse.build.settings import IndexOptions
    from wheelhouse.cli._reporters import make_reporter
    from wheelhouse.serve.mirror import MirrorSettings
    from wheelhouse.serve.mirror import mirror as run_mirror

    verbosity = -1 if quiet else verbose
    setup_logging(verbosity)
    if not projects and not requirement and not all_projects:
        raise UsageError(
            "nothing to mirror", hint="name projects, pass -r FILE, or --all for the whole index"
        )
    store = None
    if "://" in output:
        from wheelhouse._base.storage import open_store

        store = open_store(output, endpoint_url=endpoint_url)
    elif endpoint_url is not None:
        raise UsageError(
            "--endpoint-url is for a mirror in object storage",
            hint="write -o s3://BUCKET/PREFIX, or leave --endpoint-url out",
        )
    settings = MirrorSettings(
        output=Path(output),
        projects=tuple(projects or ()),
        requirements=tuple(requirement or ()),
        all_projects=all_projects,
        index=IndexOptions(index_url=index_url, extra_index_urls=tuple(extra_index_url or ())),
        targets=tuple(dict.fromkeys(parse_target(t) for t in target or ())),
        sdists=not no_sdists,
        latest=latest,
        prereleases=not no_prereleases,
        max_file_size=parse_size(max_file_size) if max_file_size is not None else None,
        yanked=not no_yanked,
        jobs=jobs,
        dry_run=dry_run,
        refresh=refresh,
    )
    reporter = make_reporter(verbosity)
    published: PublishResult | None = None
    try:
        if store is None:
            summary = run_mirror(settings, reporter)
        else:
            from wheelhouse.serve.mirror_store import mirror_to_store

            result = mirror_to_store(settings, store, endpoint_url=endpoint_url, reporter=reporter)
            summary, published = result.summary, result.published
    finally:
        reporter.close()
    if as_json:
        data = _summary_json(summary)
        if store is not None:
            data["output"] = store.url
            data["work-dir"] = str(summary.output)
            data["published"] = _published_json(published)
        print_json(data)
    _print_summary(summary, verbosity, listing=not as_json)
    if store is not None and published is not None and verbosity >= 0:
        plan = published.plan
        typer.echo(
            f"{plan.store_url}: uploaded {len(published.uploaded)} objects "
            f"({plan.upload_bytes / 1e6:.1f} MB), {plan.unchanged} unchanged, "
            f"{len(published.deleted)} deleted",
            err=True,
        )
    if summary.failed:
        raise typer.Exit(ExitCode.PARTIAL)


def _summary_json(summary: "MirrorSummary") -> dict[str, object]:
    projects = summary.projects
    data: dict[str, object] = {
        "schema-version": 1,
        "output": str(summary.output),
        "dry-run": summary.dry_run,
        "seconds": round(summary.seconds, 3),
        "requests": summary.requests,
        "projects": len(projects),
        "failed": len(summary.failed),
        "files": sum(p.files for p in projects),
        "bytes": sum(p.bytes for p in projects),
        "fetched": sum(p.fetched for p in projects),
        "fetched-bytes": sum(p.fetched_bytes for p in projects),
        "removed": sum(p.removed for p in projects),
        "project-results": [
            {
                "name": p.name,
                "status": p.status,
                "files": p.files,
                "bytes": p.bytes,
                "fetched": p.fetched,
                "fetched-bytes": p.fetched_bytes,
                "removed": p.removed,
                "errors": list(p.errors),
                "warnings": list(p.warnings),
            }
            for p in projects
        ],
    }
    if summary.dry_run:
        # A PEP 503 (HTML) page gives no sizes: those files count 0 bytes above.
        data["unknown-size"] = sum(1 for f in summary.planned if f.fetch and f.size is None)
        data["planned"] = [
            {"project": f.project, "filename": f.filename, "size": f.size, "fetch": f.fetch}
            for f in summary.planned
        ]
    return data


def _published_json(published: "PublishResult | None") -> dict[str, object] | None:
    if published is None:
        return None  # --dry-run: the store is not touched
    return {
        "url": published.plan.store_url,
        "uploaded": published.uploaded,
        "uploaded-bytes": published.plan.upload_bytes,
        "unchanged": published.plan.unchanged,
        "deleted": published.deleted,
    }


def _print_summary(summary: "MirrorSummary", verbosity: int, *, listing: bool) -> None:
    for project in summary.failed:
        for error in project.errors or ("failed",):
            typer.echo(f"error: {project.name}: {error}", err=True)
    if verbosity < 0:
        return
    projects = summary.projects
    if summary.dry_run:
        for project in projects if listing else ():
            typer.echo(
                f"{project.name}: {project.status}, {project.files} files "
                f"({project.bytes} bytes), would fetch {project.fetched} "
                f"({project.fetched_bytes} bytes)"
                + (f", would remove {project.removed}" if project.removed else "")
            )
            if verbosity > 0:
                for file in summary.planned:
                    if file.project == project.name and file.fetch:
                        typer.echo(f"  {file.filename} ({file.size} bytes)")
        fetch = sum(p.fetched for p in projects)
        size = sum(p.fetched_bytes for p in projects)
        unknown = sum(1 for f in summary.planned if f.fetch and f.size is None)
        typer.echo(
            f"{summary.output}: would fetch {fetch} files, {size / 1e6:.1f} MB "
            f"({size} bytes) for {len(projects)} projects"
            + (f"; {unknown} files of unknown size (the index gives none)" if unknown else ""),
            err=True,
        )
        return
    files = sum(p.files for p in projects)
    size = sum(p.bytes for p in projects)
    fetched = sum(p.fetched for p in projects)
    fetched_size = sum(p.fetched_bytes for p in projects)
    removed = sum(p.removed for p in projects)
    failed = f", {len(summary.failed)} projects failed" if summary.failed else ""
    typer.echo(
        f"{summary.output}: {len(projects)} projects, {files} files, {size / 1e6:.1f} MB "
        f"({fetched} fetched, {fetched_size / 1e6:.1f} MB; {removed} removed{failed}) "
        f"in {summary.seconds:.2f} s",
        err=True,
    )
