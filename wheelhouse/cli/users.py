"""`wheelhouse users`: the users who may upload to a private index (an htpasswd file)."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from wheelhouse.cli._app import app
from wheelhouse.errors import UsageError

users_app = typer.Typer(
    help="Manage who may upload to a private index (an htpasswd file of bcrypt entries).",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

UsersFile = Annotated[
    Path,
    typer.Option("--users", metavar="FILE", help="The users file (htpasswd, bcrypt entries)."),
]


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")],
    users: UsersFile,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from the first line of standard input."
        ),
    ] = False,
) -> None:
    """Add a user, or set their password (asked twice, or one line of stdin; never an argument)."""
    from wheelhouse.upload.accounts import set_user

    if password_stdin or not sys.stdin.isatty():
        # Piped in without the flag: read as with it (as yank does), not through a prompt
        # that could only warn twice that the password may be echoed.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise UsageError("the password is empty")
    added = set_user(users, name, password)
    typer.echo(f"{'added' if added else 'changed the password of'} {name} in {users}", err=True)


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")], users: UsersFile
) -> None:
    """Remove a user."""
    from wheelhouse.upload.accounts import remove_user

    remove_user(users, name)
    typer.echo(f"removed {name} from {users}", err=True)


@users_app.command("list")
def users_list(users: UsersFile) -> None:
    """List the users (their names only)."""
    from wheelhouse.upload.accounts import Accounts

    for name in Accounts(users).names():
        typer.echo(name)


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user the token acts for.")],
    users: UsersFile,
    index: Annotated[
        str,
        typer.Option(
            "--index",
            help="The index the token is for: the name in the --config file, or 'private' "
            "for 'serve DIR --upload'.",
        ),
    ] = "private",
) -> None:
    """Make an API token (printed once, stored hashed next to FILE as FILE.tokens).

    Upload with it as the user __token__: twine upload -u __token__ -p TOKEN.
    """
    from wheelhouse.upload.accounts import Accounts, new_token
    from wheelhouse.upload.config import tokens_path

    if name not in Accounts(users).names():
        raise UsageError(f"no user {name!r} in {str(users)!r}", hint="add it with 'users add'")
    token = new_token(tokens_path(users), name, index)
    typer.echo(token)
    typer.echo(f"made a token of {name} for the index {index!r} (shown only now)", err=True)
