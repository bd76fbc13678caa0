"""The speed-ups of resolution change how fast a build is, never what it gives."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.capabilities import need_uv
from tests.support.fixtures import Cli
from tests.support.graph import GRAPH_WHEELS
from tests.support.graph import build as build_with
from tests.support.server import IndexServer
from wheelhouse.resolve.speedups import NO_SPEEDUPS_ENV, Speedups


def _contents(out: Path) -> tuple[dict[str, str], list[object]]:
    """Each file of the wheelhouse with its sha256 (as the manifest records and the bytes
    confirm), and its locks."""
    manifest = json.loads((out / "wheelhouse.json").read_text(encoding="utf-8"))
    files = {record["filename"]: record["sha256"] for record in manifest["files"]}
    for filename, digest in files.items():
        assert hashlib.sha256((out / filename).read_bytes()).hexdigest() == digest
    return files, manifest["targets"]


@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_a_build_without_speedups_gives_the_same_wheelhouse(
    cli: Cli,
    index_server: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    resolver: str,
) -> None:
    if resolver == "uv":
        need_uv()
    # For uv, a graph whose lock the files' metadata confirms (else pip resolves again).
    requirements: Path = request.getfixturevalue("uv_graph" if resolver == "uv" else "graph")
    on, off = tmp_path / "on", tmp_path / "off"
    if resolver == "uv":
        # uv reads speedup's page a second after it asked: by then it has read app's
        # metadata, and a read-ahead would have fetched app's file before uv was done.
        index_server.delay("/simple/speedup/", 1.0)
    # Off first, with caches of its own: every request below is the build without speed-ups.
    monkeypatch.setenv(NO_SPEEDUPS_ENV, "1")
    monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / "cache-off"))
    build_with(cli, index_server, requirements, off, "--resolver", resolver)
    received = list(index_server.received)

    monkeypatch.delenv(NO_SPEEDUPS_ENV)
    monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / "cache-on"))
    build_with(cli, index_server, requirements, on, "--resolver", resolver)

    files, locks = _contents(on)
    assert "app-1.0-py3-none-any.whl" in files
    if resolver == "pip":
        assert set(files) == GRAPH_WHEELS
    assert _contents(off) == (files, locks)
    agents = [h.get("User-Agent", "") for _, h in received]
    if resolver == "pip":
        # No tap: pip asked the index for its pages itself.
        assert any(
            p.startswith("/simple/") and a.startswith("pip/")
            for (p, _), a in zip(received, agents, strict=True)
        )
    else:
        # Nothing read ahead of uv: every file of ours was asked after uv was done.
        by_uv = [i for i, a in enumerate(agents) if a.startswith("uv/")]
        ours = [i for i, (p, _) in enumerate(received) if p.startswith("/files/")]
        ours = [i for i in ours if not agents[i].startswith("uv/")]
        assert by_uv and ours and min(ours) > max(by_uv)


def test_the_switch_reads_the_environment_once_for_all_of_them() -> None:
    assert Speedups.from_environment(env={}).enabled
    assert Speedups.from_environment(env={NO_SPEEDUPS_ENV: "0"}).enabled
    assert not Speedups.from_environment(env={NO_SPEEDUPS_ENV: "1"}).enabled
    assert not Speedups.from_environment(False, env={}).enabled
