"""_base.storage: streaming and conditional reads, from a real S3-compatible server (SeaweedFS)
and from a local tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.s3 import S3Server
from wheelhouse._base.storage import LocalStore, S3Store, Store

DATA = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and a short last one


def _chunks(store: Store, key: str) -> list[bytes]:
    streamed = store.stream(key)
    assert streamed is not None and streamed.size == len(DATA)
    return list(streamed.chunks)


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


def _check_get_changed(store: Store) -> None:
    assert store.get_changed("pages/p.json", None) is None
    store.put_bytes("pages/p.json", b"first", "application/json")
    first = store.get_changed("pages/p.json", None)
    assert first is not None and first.data == b"first" and first.etag
    unchanged = store.get_changed("pages/p.json", first.etag)
    assert unchanged is not None and (unchanged.data, unchanged.etag) == (None, first.etag)
    store.put_bytes("pages/p.json", b"second", "application/json")
    second = store.get_changed("pages/p.json", first.etag)
    assert second is not None and second.data == b"second" and second.etag != first.etag


def test_s3_get_changed_is_a_conditional_get(s3_server: S3Server, bucket: str) -> None:
    _check_get_changed(S3Store(bucket, "p", endpoint_url=s3_server.endpoint))


def test_local_get_changed_knows_a_replaced_file(tmp_path: Path) -> None:
    _check_get_changed(LocalStore(tmp_path / "store"))


class _Stop(Exception):
    pass


def _check_writer(store: Store) -> None:
    big = DATA * 4  # 12 MiB: S3 gets a multipart upload of 8 MiB parts
    with store.writer("files/w", "application/octet-stream") as out:
        for start in range(0, len(big), 256 * 1024):
            out.write(big[start : start + 256 * 1024])
    assert store.get("files/w") == big
    with pytest.raises(_Stop), store.writer("files/aborted", "application/octet-stream") as out:
        for start in range(0, len(big), 256 * 1024):
            out.write(big[start : start + 256 * 1024])
        raise _Stop  # the writer's owner gives up: nothing may appear
    assert store.get("files/aborted") is None
    assert "files/aborted" not in store.list()


def test_s3_writer_appears_whole_or_not_at_all(s3_server: S3Server, bucket: str) -> None:
    _check_writer(S3Store(bucket, "p", endpoint_url=s3_server.endpoint))


def test_local_writer_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    _check_writer(LocalStore(tmp_path / "store"))
