"""Fixtures for the HTTP fence: a test CA, an HTTPS index, a CONNECT proxy, all on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.server import IndexServer
from tests.support.tls import CertAuthority, Proxy, ProxyLog, _ProxyHandler, _ProxyServer, make_ca


@pytest.fixture
def test_ca(tmp_path: Path) -> CertAuthority:
    """A CA made for this test; its server certificate is valid for 127.0.0.1."""
    return make_ca(tmp_path / "tls", "trusted")


@pytest.fixture
def other_ca(tmp_path: Path) -> CertAuthority:
    """Another CA, which signed nothing the servers present."""
    return make_ca(tmp_path / "tls", "other")


@pytest.fixture
def tls_index(dists: DistFactory, test_ca: CertAuthority) -> Iterator[IndexServer]:
    """The loopback index over HTTPS, with ``test_ca``'s server certificate."""
    with IndexServer(dists.root, ssl_context=test_ca.server_context()) as server:
        yield server


# -- a forward and CONNECT proxy -----------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """An HTTP proxy on loopback that forwards GETs and tunnels CONNECT (to loopback only)."""
    server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
    server.log = ProxyLog()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield Proxy(f"http://127.0.0.1:{server.server_address[1]}", server.log)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
