"""_base.storage: streaming reads from a real S3-compatible server (SeaweedFS) and a local tree."""

from __future__ import annotations

import os
from pathlib import Path

from tests._s3 import S3Server
from wheelhouse._base.storage import LocalStore, S3Store, Store

DATA = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a short last one


def _chunks(store: Store, key: str) -> list[bytes]:
    stream = store.stream(key)
    assert stream is not None
    return list(stream)


def test_s3_stream_reads_an_object_in_chunks(s3_server: S3Server, bucket: str) -> None:
    store = S3Store(bucket, "p", endpoint_url=s3_server.endpoint)
    assert store.put_bytes("files/big", DATA, "application/octet-stream")
    chunks = _chunks(store, "files/big")
    assert b"".join(chunks) == DATA
    assert len(chunks) > 1 and max(map(len, chunks)) < len(DATA)
    assert store.stream("files/missing") is None


def test_local_stream_reads_a_file_in_chunks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    assert store.put_bytes("files/big", DATA, "application/octet-stream")
    chunks = _chunks(store, "files/big")
    assert b"".join(chunks) == DATA
    assert max(map(len, chunks)) == 256 * 1024
    assert store.stream("files/missing") is None
