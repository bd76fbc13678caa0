"""`wheelhouse cache`: where the cache is, what it holds, and emptying it."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse.cli._app import JsonFlag, app, print_json
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
    from wheelhouse.build.cache import Cache

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
    typer.echo(f"  downloaded files: {info.files} ({info.files_bytes / 1e6:.1f} MB)")
    typer.echo(f"  built wheels:     {info.built} ({info.built_bytes / 1e6:.1f} MB)")


@cache_app.command("purge")
def cache_purge(cache_dir: CacheDir = None) -> None:
    """Remove everything wheelhouse cached."""
    from wheelhouse.build.cache import Cache

    removed = Cache(cache_root(cache_dir)).purge()
    typer.echo(f"removed {removed / 1e6:.1f} MB from the cache", err=True)
