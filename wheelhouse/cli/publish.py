"""`wheelhouse publish`: a wheelhouse or a mirror uploaded to object storage as a static index."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse._base.words import count
from wheelhouse.cli._app import EXIT_CODES, JsonFlag, app, print_json, setup_logging


@app.command(epilog=EXIT_CODES)
def publish(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The wheelhouse (or mirror) to publish.")
    ],
    url: Annotated[
        str,
        typer.Argument(metavar="URL", help="Where: s3://BUCKET[/PREFIX] or file:///PATH."),
    ],
    endpoint_url: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at run time
        typer.Option(
            "--endpoint-url",
            metavar="URL",
            help="S3 endpoint of a self-hosted store (MinIO, Ceph, SeaweedFS) "
            "[default: $AWS_ENDPOINT_URL, else AWS].",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="List the keys that would be uploaded and deleted (stdout); change nothing.",
        ),
    ] = False,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, help="Parallel uploads.")] = 8,
    as_json: JsonFlag = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More output.")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
) -> None:
    """Upload a wheelhouse as a static index: only what changed, pages after the files they link.

    Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, else
    ~/.aws/credentials and ~/.aws/config (AWS_PROFILE); without any, requests are anonymous.
    """
    from wheelhouse._base.storage import open_store
    from wheelhouse.house.locations import cache_root
    from wheelhouse.house.publish import plan_publish
    from wheelhouse.house.publish import publish as run_publish

    setup_logging(verbose)
    store = open_store(url, endpoint_url=endpoint_url)
    state_dir = cache_root(None) / "publish"
    if dry_run:
        plan = plan_publish(directory, store, state_dir=state_dir)
        uploaded, deleted = [u.key for u in plan.uploads], list(plan.deletions)
    else:
        result = run_publish(
            directory,
            store,
            jobs=jobs,
            state_dir=state_dir,
            on_upload=(lambda key: typer.echo(f"uploaded {key}", err=True)) if verbose else None,
            on_wait=(lambda line: typer.echo(f"wheelhouse: {line}", err=True))
            if not quiet
            else None,
        )
        plan, uploaded, deleted = result.plan, result.uploaded, result.deleted
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "directory": str(directory),
                "url": plan.store_url,
                "dry-run": dry_run,
                "uploaded": uploaded,
                "uploaded-bytes": plan.upload_bytes,
                "unchanged": plan.unchanged,
                "deleted": deleted,
            }
        )
    elif dry_run:
        # What would change, one key a line (what docs/scale.md promises), then the counts.
        for key in uploaded:
            typer.echo(f"upload {key}")
        for key in deleted:
            typer.echo(f"delete {key}")
    if quiet:
        return
    verb = "would upload" if dry_run else "uploaded"
    typer.echo(
        f"{plan.store_url}: {verb} {count(len(uploaded), 'object')} "
        f"({plan.upload_bytes / 1e6:.1f} MB), "
        f"{plan.unchanged} unchanged, {len(deleted)} {'to delete' if dry_run else 'deleted'}",
        err=True,
    )
