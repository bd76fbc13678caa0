"""Fixtures of the serve tests: the real `wheelhouse serve --upstream` in a subprocess, and an
upstream index that behaves like a real one."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.process import ServeProcess
from tests.support.proxy import StartProxy
from tests.support.server import IndexServer


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[StartProxy]:
    """``start_proxy(*args) -> ServeProcess``: `wheelhouse serve --port 0 *args`, stopped after
    the test. The store defaults to ``tmp_path / "store"`` unless ``--store`` is given."""
    started: list[ServeProcess] = []

    def start(*args: str | os.PathLike[str]) -> ServeProcess:
        argv = [os.fspath(a) for a in args]
        if "--store" not in argv:
            argv += ["--store", str(tmp_path / "store")]
        proxy = ServeProcess(argv, dict(os.environ))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop(signal.SIGKILL)


@pytest.fixture
def upstream(dists: DistFactory) -> Iterator[IndexServer]:
    """An index on 127.0.0.1 with PEP 691 JSON, ETags (304) and yank support, serving
    ``dists.root``; PEP 658 files are off (``upstream.metadata_files = True`` turns them on)."""
    with IndexServer(dists.root) as server:
        server.json_pages = True
        server.etags = True
        yield server
