"""Fixtures of the download tests: a scripted loopback server serving one file."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.loopback import FILE, Script, ScriptedServer


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    """``serve(script) -> server``: ``server.url`` is the file ``FILE``, answered by ``script``."""
    started: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        started.append(ScriptedServer({FILE: script}, path=FILE))
        return started[-1]

    yield start
    for server in started:
        server.stop()
