"""Fixtures of the upload tests: `wheelhouse serve DIR --upload` (static or in front of an
upstream) in a subprocess on loopback, its users file, and a raw client for hostile forms."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.credentials import PASSWORD, USER
from tests.support.process import ServeProcess
from tests.support.upload import StartServe, users_cli


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    """An htpasswd file with ``USER`` and ``PASSWORD``, written by `wheelhouse users add`."""
    path = tmp_path / "users.htpasswd"
    result = users_cli("add", USER, "--users", path, "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"added {USER} in {path}\n"
    return path


@pytest.fixture
def start_serve() -> Iterator[StartServe]:
    """``start_serve(*args) -> ServeProcess``: `wheelhouse serve --port 0 *args`."""
    started: list[ServeProcess] = []

    def start(*args: str | os.PathLike[str]) -> ServeProcess:
        server = ServeProcess([os.fspath(a) for a in args])
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def private(tmp_path: Path, users_file: Path, start_serve: StartServe) -> ServeProcess:
    """`wheelhouse serve PRIVATE --upload --users FILE` (static mode), uploads up to 1 MB."""
    return start_serve(
        tmp_path / "private", "--upload", "--users", users_file, "--max-upload-size", "1000000"
    )


# -- a raw client: what twine sends, and what it never would --------------------------------
