"""The command line's shared DNS lookups: reused for a minute, so a long-running proxy sees an
upstream move; failures are never kept."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from wheelhouse._base import _dns

ADDRESS = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 443))]
MOVED = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.2", 443))]


class Resolver:
    """A resolver whose answer the test changes, counting the questions it is asked."""

    def __init__(self) -> None:
        self.answer: list[Any] | None = ADDRESS
        self.asked = 0

    def __call__(self, host: Any, port: Any, *args: Any) -> list[Any]:
        self.asked += 1
        if self.answer is None:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return list(self.answer)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> tuple[Resolver, list[float]]:
    resolver, now = Resolver(), [1000.0]
    monkeypatch.setattr(_dns, "_system_getaddrinfo", resolver)
    monkeypatch.setattr(_dns, "_clock", lambda: now[0])
    monkeypatch.setattr(_dns, "_lookups", {})
    return resolver, now


def test_an_upstream_that_moves_is_seen_after_the_ttl(
    resolver: tuple[Resolver, list[float]],
) -> None:
    system, now = resolver
    assert _dns._getaddrinfo_once("index.example", 443) == ADDRESS
    assert _dns._getaddrinfo_once("index.example", 443) == ADDRESS
    assert system.asked == 1  # parallel downloads share one lookup
    system.answer = MOVED
    now[0] += _dns.TTL - 1
    assert _dns._getaddrinfo_once("index.example", 443) == ADDRESS
    now[0] += 2
    assert _dns._getaddrinfo_once("index.example", 443) == MOVED
    assert system.asked == 2
    assert _dns.TTL <= 300


def test_a_failed_lookup_is_asked_again(resolver: tuple[Resolver, list[float]]) -> None:
    system, _ = resolver
    system.answer = None
    with pytest.raises(socket.gaierror):
        _dns._getaddrinfo_once("index.example", 443)
    system.answer = ADDRESS
    assert _dns._getaddrinfo_once("index.example", 443) == ADDRESS
    assert system.asked == 2
