"""`wheelhouse mirror`: the files of an index that chosen targets can install, verified, kept
up to date incrementally in a static tree that pip, uv and `wheelhouse serve` read."""

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from wheelhouse._base.words import count
from wheelhouse.cli._app import (
    EXIT_CODES,
    ExtraIndexUrls,
    IndexUrl,
    app,
    print_json,
    setup_logging,
)
from wheelhouse.cli.build import ExcludeNewer, ExcludeNewerPackage, NoUploadTime
from wheelhouse.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from wheelhouse.house.publish import PublishResult
    from wheelhouse.mirror.run import MirrorSummary

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
            help="Projects to add to the mirror (it remembers them), with optional version "
            "specifiers ('django>=4.2'); none: refresh everything the mirror keeps.",
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
            "--target as 'build' resolves it (remembered, read again each run); repeatable.",
        ),
    ] = None,
    all_projects: Annotated[
        bool,
        typer.Option("--all", help="Every project the index lists (its PEP 691 root); remembered."),
    ] = False,
    remove: Annotated[
        bool,
        typer.Option(
            "--remove",
            help="Stop mirroring the PROJECTs (and -r files, --all) named, and delete the files "
            "the mirror wrote for them and their pages.",
        ),
    ] = False,
    replace_filters: Annotated[
        bool,
        typer.Option(
            "--replace-filters",
            help="Make this run's filters (--target, --sdists, --latest, --prereleases, "
            "--max-file-size, --yanked, --exclude-newer: defaults for those not given; the "
            "indexes if given) the mirror's, for every project. Without it, a filter that "
            "differs from the remembered one is refused.",
        ),
    ] = False,
    index_url: IndexUrl = None,
    extra_index_url: ExtraIndexUrls = None,
    target: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--target",
            metavar="TAG",
            help="Keep the wheels {interpreter}-{platform} (e.g. cp312-manylinux_2_28_aarch64) "
            "or host can install; repeatable [default: the mirror's; every wheel, host with "
            "-r].",
        ),
    ] = None,
    sdists: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--sdists/--no-sdists",
            help="Keep sdists, or leave them out [default: the mirror's; kept].",
            show_default=False,
        ),
    ] = None,
    latest: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--latest",
            min=1,
            metavar="N",
            help="Only the N newest releases [default: the mirror's; all].",
        ),
    ] = None,
    prereleases: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--prereleases/--no-prereleases",
            help="Keep pre- and dev releases, or leave them out [default: the mirror's; kept].",
            show_default=False,
        ),
    ] = None,
    max_file_size: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--max-file-size",
            metavar="SIZE",
            help="Leave out larger files (e.g. 50MB) [default: the mirror's; none].",
        ),
    ] = None,
    yanked: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--yanked/--no-yanked",
            help="Keep yanked files (marked), or leave them out [default: the mirror's; kept].",
            show_default=False,
        ),
    ] = None,
    exclude_newer: ExcludeNewer = None,
    exclude_newer_package: ExcludeNewerPackage = None,
    no_upload_time: NoUploadTime = None,
    require_provenance: Annotated[
        bool,
        typer.Option(
            "--require-provenance",
            help="Mirror only files whose PEP 740 provenance the index names and serves "
            "(kept beside each file); without it, a file whose provenance cannot be had is "
            "mirrored with a warning.",
        ),
    ] = False,
    jobs: Annotated[
        int, typer.Option("-j", "--jobs", min=1, max=64, help="Parallel downloads.")
    ] = 8,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the projects, files and bytes a run would fetch, and the projects it "
            "would add or remove; change nothing.",
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
    the index's sha256; a rerun fetches only what changed. DIR remembers its projects,
    requirement files and filters: naming projects adds to them, a run without any refreshes
    them all, --remove takes some away. Exit code 10 when some projects failed (the others
    are mirrored; a failed run deletes nothing)."""
    from wheelhouse._base.cooldown import Cooldown
    from wheelhouse._base.pip_settings import IndexOptions
    from wheelhouse._base.targets import parse_target
    from wheelhouse.cli._reporters import make_reporter
    from wheelhouse.mirror.run import MirrorSettings
    from wheelhouse.mirror.run import mirror as run_mirror
    from wheelhouse.mirror.selection import FilterKey

    verbosity = -1 if quiet else verbose
    setup_logging(verbosity)
    given: dict[FilterKey, bool] = {
        "targets": target is not None,
        "sdists": sdists is not None,
        "latest": latest is not None,
        "prereleases": prereleases is not None,
        "max-file-size": max_file_size is not None,
        "yanked": yanked is not None,
        "index": index_url is not None or bool(extra_index_url),
        "exclude-newer": exclude_newer is not None
        or bool(exclude_newer_package)
        or no_upload_time is not None,
    }
    # Checked before anything is read or written (the values are remembered as given).
    Cooldown.from_options(exclude_newer, exclude_newer_package or (), no_upload_time or "refuse")
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
        sdists=sdists is not False,
        latest=latest,
        prereleases=prereleases is not False,
        max_file_size=parse_size(max_file_size) if max_file_size is not None else None,
        yanked=yanked is not False,
        exclude_newer=exclude_newer,
        exclude_newer_packages=tuple(exclude_newer_package or ()),
        no_upload_time=no_upload_time or "refuse",
        jobs=jobs,
        dry_run=dry_run,
        refresh=refresh,
        filters_given=frozenset(key for key, value in given.items() if value),
        replace_filters=replace_filters,
        remove=remove,
        require_provenance=require_provenance,
    )
    reporter = make_reporter(verbosity)
    published: PublishResult | None = None
    try:
        if store is None:
            summary = run_mirror(settings, reporter)
        else:
            from wheelhouse.mirror.store import mirror_to_store

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
            f"{plan.store_url}: uploaded {count(len(published.uploaded), 'object')} "
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
    selection = summary.selection
    remembered = selection.remembered
    # With --dry-run: what the run would add, remove and remember.
    data["projects-added"] = list(selection.added)
    data["projects-not-added"] = list(selection.not_added)
    data["projects-removed"] = list(selection.removed)
    data["requirements-added"] = list(selection.requirements_added)
    data["requirements-removed"] = list(selection.requirements_removed)
    data["filters-replaced"] = selection.filters_replaced
    data["adopted"] = list(selection.adopted)
    data["remembered"] = {
        "projects": dict(remembered.projects),
        "requirements": list(remembered.requirements),
        "all": remembered.all_projects,
        "filters": remembered.filters.to_dict(),
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
    _print_selection(summary)
    projects = summary.projects
    if summary.dry_run:
        for project in projects if listing else ():
            typer.echo(
                f"{project.name}: {project.status}, {count(project.files, 'file')} "
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
            f"{summary.output}: would fetch {count(fetch, 'file')}, {size / 1e6:.1f} MB "
            f"({size} bytes) for {count(len(projects), 'project')}"
            + (
                f"; {count(unknown, 'file')} of unknown size (the index gives none)"
                if unknown
                else ""
            ),
            err=True,
        )
        return
    files = sum(p.files for p in projects)
    size = sum(p.bytes for p in projects)
    fetched = sum(p.fetched for p in projects)
    fetched_size = sum(p.fetched_bytes for p in projects)
    removed = sum(p.removed for p in projects)
    failed = f", {count(len(summary.failed), 'project')} failed" if summary.failed else ""
    # What the mirror holds now: a project this run removed is in "removed", not here.
    kept = [p for p in projects if p.status != "removed"]
    typer.echo(
        f"{summary.output}: {count(len(kept), 'project')}, {count(files, 'file')}, "
        f"{size / 1e6:.1f} MB "
        f"({fetched} fetched, {fetched_size / 1e6:.1f} MB; {removed} removed{failed}) "
        f"in {summary.seconds:.2f} s",
        err=True,
    )


def _print_selection(summary: "MirrorSummary") -> None:
    """What the run changed in what the mirror remembers (or would, with --dry-run)."""
    from wheelhouse.mirror.selection import FILTER_KEYS, describe_filters, selection_path

    selection = summary.selection
    dry = summary.dry_run
    if selection.adopted:
        typer.echo(
            f"note: {summary.output} has no {selection_path(summary.output).name} (an older "
            f"mirror): {'it would remember' if dry else 'it now remembers'} the "
            f"{count(len(selection.adopted), 'project')} mirrored there; nothing is removed",
            err=True,
        )
    lines = [
        ("would add" if dry else "added", ", ".join(selection.added)),
        ("would not add" if dry else "not added", ", ".join(selection.not_added)),
        ("would remove" if dry else "removed", ", ".join(selection.removed)),
        ("would add -r" if dry else "added -r", ", ".join(selection.requirements_added)),
        ("would remove -r" if dry else "removed -r", ", ".join(selection.requirements_removed)),
    ]
    for verb, names in lines:
        if names:
            typer.echo(f"{summary.output}: {verb} {names}", err=True)
    if selection.filters_replaced:
        filters = describe_filters(selection.remembered.filters, FILTER_KEYS)
        verb = "would become" if dry else "are now"
        typer.echo(f"{summary.output}: the mirror's filters {verb}: {filters}", err=True)
