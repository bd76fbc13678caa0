"""The proxy's store downloads through the one path: a cut body is asked for again, wrong or
excess bytes are never stored, and the partial file readers follow only ever grows."""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import pytest

from tests.support.loopback import BODY, NAME, SHA, Script, ScriptedServer, cut, whole
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.serve._store import DownloadFailed, Stats, Store
from wheelhouse.simple import PageFile


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store", "key", HttpClient(PipSettings()), Stats(), 60.0)


def _file(url: str, size: int | None = len(BODY)) -> PageFile:
    return PageFile(NAME, url, {"sha256": SHA}, size=size)


def _partials(store: Store) -> list[str]:
    return sorted(p.name for p in (store.root / "partial").iterdir())


def test_a_cut_body_is_asked_again_and_stored(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: cut(h) if n == 0 else whole(h))
    store = _store(tmp_path)

    path = store.wait_for_file(_file(server.url), stall=60)

    assert path == store.file_path(SHA) and path.read_bytes() == BODY
    assert len(server.asked) == 2
    stats = store.stats.to_json()
    assert (stats["upstream_requests"], stats["upstream_bytes"]) == (2, len(BODY))
    assert (stats["hash_mismatches"], stats["errors"]) == (0, 0)
    assert _partials(store) == []


def test_wrong_bytes_are_never_stored(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    wrong = b"\0" * len(BODY)
    server = serve(lambda h, n, r: whole(h, wrong))
    store = _store(tmp_path)

    with pytest.raises(DownloadFailed) as info:
        store.wait_for_file(_file(server.url), stall=60)

    assert str(info.value) == (
        f"{server.url} sent {len(BODY)} bytes with sha256 {sha256(wrong).hexdigest()}, "
        f"not the {SHA} its page promises; nothing was stored"
    )
    assert server.asked == [None]
    assert store.stats.to_json()["hash_mismatches"] == 1
    assert not store.has_file(SHA) and _partials(store) == []


def test_a_body_past_the_page_s_size_stops_as_it_goes(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: whole(h))
    store = _store(tmp_path)

    with pytest.raises(DownloadFailed) as info:
        store.wait_for_file(_file(server.url, size=1000), stall=60)

    assert str(info.value) == (
        f"reading {server.url} failed: it sent more than the 1000 bytes its page gives"
    )
    assert not store.has_file(SHA) and _partials(store) == []
