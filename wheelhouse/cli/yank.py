"""`wheelhouse yank`: mark a file of a private index yanked (PEP 592), or not any more."""

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse.cli._app import app
from wheelhouse.errors import UsageError


@app.command()
def yank(
    filename: Annotated[
        str, typer.Argument(metavar="FILENAME", help="The file's name, as the index lists it.")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (pip shows it to whoever installs it).")
    ] = "",
    undo: Annotated[bool, typer.Option("--undo", help="Un-yank the file.")] = False,
    directory: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--dir", help="The private index's directory (any file).", show_default=False),
    ] = None,
    url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--url",
            help="The server's root URL, to yank one's own upload with an account.",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--user",
            help="With --url: the user (or __token__); the password comes from "
            "$WHEELHOUSE_PASSWORD, else a prompt.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Yank a file of a private index (PEP 592: installers skip it unless pinned exactly)."""
    if (directory is None) == (url is None):
        raise UsageError("give the index's --dir, or the server's --url (with --user)")
    wanted = None if undo else reason
    if directory is not None:
        from wheelhouse.upload.yank import yank_local

        yank_local(directory, filename, wanted)
        typer.echo(f"{'un-yanked' if undo else 'yanked'} {filename}", err=True)
        return
    assert url is not None
    if not user:
        raise UsageError("--url needs --user")
    password = os.environ.get("WHEELHOUSE_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True)
    from wheelhouse.upload.yank import yank_at

    typer.echo(yank_at(url, user, password, filename, wanted), err=True)
