"""`wheelhouse serve`: a wheelhouse's index over HTTP."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from wheelhouse.cli._app import EXIT_CODES, WheelhouseDir, app, wheelhouse_dir


@app.command(epilog=EXIT_CODES)
def serve(
    directory: WheelhouseDir = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8000,
) -> None:
    """Serve a wheelhouse's index and files over HTTP (PEP 503/691) until Ctrl-C."""
    from wheelhouse.serve.static import serve as run_serve

    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    where = wheelhouse_dir(directory)
    run_serve(
        where,
        host,
        port,
        ready=lambda url: typer.echo(f"serving {where} at {url} (Ctrl-C to stop)", err=True),
    )
