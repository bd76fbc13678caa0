"""A cold build hashes each downloaded file once, as it arrives, and never again after."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import wheelhouse.download.stream as stream
from tests.support.dists import DistFactory
from tests.support.server import IndexServer


def test_a_cold_pinned_build_hashes_each_file_once(
    cli: Any,
    dists: DistFactory,
    index_server: IndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheels = [dists.wheel("alpha", "1.0"), dists.wheel("beta", "2.0")]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha==1.0\nbeta==2.0\n")
    read_whole: list[str] = []  # files hashed by reading them again (sha256_file and co.)
    file_digest = hashlib.file_digest

    def spy(stream_: Any, digest: Any) -> Any:
        read_whole.append(Path(getattr(stream_, "name", "?")).name)
        return file_digest(stream_, digest)

    monkeypatch.setattr(hashlib, "file_digest", spy)
    arrived: list[str] = []
    received = stream._Sink.received

    def counted(self: stream._Sink, name: str, expected: str | None) -> stream.Received:
        arrived.append(name)
        return received(self, name, expected)

    monkeypatch.setattr(stream._Sink, "received", counted)

    result = cli(
        "build", "-r", requirements, "-o", tmp_path / "out", "--index-url", index_server.url,
        "--cache-dir", tmp_path / "cache",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert sorted(arrived) == sorted(w.name for w in wheels)  # hashed as they arrived
    assert read_whole == ["requirements.txt"]  # the input's fingerprint; no wheel again
    for wheel in wheels:
        assert (tmp_path / "out" / wheel.name).read_bytes() == wheel.read_bytes()
