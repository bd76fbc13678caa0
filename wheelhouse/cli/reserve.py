"""`wheelhouse reserve`: keep a project name for a private index before its first upload."""

from pathlib import Path
from typing import Annotated

import typer

from wheelhouse.cli._app import app


@app.command()
def reserve(
    names: Annotated[list[str], typer.Argument(metavar="NAME...", help="Project names.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="The private index's directory.", show_default=False)
    ],
) -> None:
    """Reserve project names on a private index: they are never served from upstream, even
    before the first upload (an empty page answers for them)."""
    from wheelhouse.upload.store import PrivateIndex

    index = PrivateIndex(directory)
    for name in names:
        typer.echo(f"reserved {index.reserve(name)} on {directory}", err=True)
