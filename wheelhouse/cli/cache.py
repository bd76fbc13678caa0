"""`wheelhouse cache`: where the cache is, what it holds, and emptying it."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse.cli._app import JsonFlag, app, print_json
from wheelhouse.cli._reporters import count, mb
from wheelhouse.errors import UsageError
from wheelhouse.house.locations import cache_root

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
    from wheelhouse.download.cache import Cache

    info = Cache(cache_root(cache_dir)).info()
    if as_json:
        print_json(
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
    typer.echo(f"  downloaded files: {info.files} ({mb(info.files_bytes)})")
    typer.echo(f"  built wheels:     {info.built} ({mb(info.built_bytes)})")


@cache_app.command("purge")
def cache_purge(
    cache_dir: CacheDir = None,
    yes: Annotated[
        bool, typer.Option("-y", "--yes", help="Remove without asking (needed without a terminal).")
    ] = False,
    proxy_store: Annotated[
        bool,
        typer.Option(
            "--proxy-store",
            help="Also remove the caching proxy's default store (what 'serve --upstream' kept).",
        ),
    ] = False,
) -> None:
    """Remove what wheelhouse cached (downloads, built wheels); asks first."""
    from wheelhouse.download.cache import Cache

    cache = Cache(cache_root(cache_dir))
    parts = cache.parts(proxy_store=proxy_store)
    shown = [p for p in parts if p.files]
    if not shown:
        cache.purge(parts)  # empty directories at most
        typer.echo(f"nothing to remove in {cache.root}", err=True)
        return
    width = max(len(p.label) for p in shown)
    typer.echo(f"this removes from {cache.root}:", err=True)
    for part in shown:
        typer.echo(
            f"  {part.label:<{width}}  {count(part.files, 'file')}, {mb(part.size)}", err=True
        )
    if not proxy_store:
        for kept in (p for p in cache.proxy_stores() if p.files):
            typer.echo(
                f"kept: {kept.label}, {mb(kept.size)} (add --proxy-store to remove it too)",
                err=True,
            )
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "cache purge asks before it removes anything, and there is no terminal to ask",
                hint="pass --yes to remove them",
            )
        if not typer.confirm("remove them?", default=False, err=True):
            typer.echo("nothing removed", err=True)
            raise typer.Exit(1)
    removed = cache.purge(parts)
    typer.echo(f"removed {mb(removed)} from the cache", err=True)
