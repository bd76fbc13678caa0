"""Fixtures of the download tests: the scripted loopback server, and the retry policy's sleeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import urllib3

from tests.support.loopback import Behaviour, Server


@pytest.fixture
def serve() -> Iterator[Callable[[Behaviour], Server]]:
    started: list[Server] = []

    def start(behaviour: Behaviour) -> Server:
        started.append(Server(behaviour))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry policy's back-off sleeps (urllib3's Retry), recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    return recorded
