"""download.stream: the one download path, against a loopback server that cuts bodies, ignores
ranges, stalls and sends wrong bytes."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.support.loopback import BODY, NAME, SHA, Script, ScriptedServer, cut, ranged, whole
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.download.stream import CHUNK, Received, download, receive
from wheelhouse.errors import DownloadError, ExitCode, HashMismatchError


def fetch(tmp_path: Path, url: str, client: HttpClient | None = None, **options: object):  # type: ignore[no-untyped-def]
    """``download`` into ``tmp_path/partial`` -> ``tmp_path/out/NAME``."""
    return download(
        client or HttpClient(PipSettings()),
        url,
        tmp_path / "partial",
        tmp_path / "out" / NAME,
        **options,  # type: ignore[arg-type]
    )


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())


def test_a_whole_answer_is_stored_verified_with_one_request(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path
) -> None:
    server = serve(lambda h, n, r: whole(h))
    counted: list[int] = []

    path, received = fetch(tmp_path, server.url, sha256=SHA, progress=counted.append)

    assert (path, received) == (tmp_path / "out" / NAME, Received(SHA, len(BODY)))
    assert path.read_bytes() == BODY
    assert path.stat().st_mode & 0o777 == 0o644
    assert sum(counted) == len(BODY)
    assert server.asked == [None]
    assert leftovers(tmp_path) == [f"out/{NAME}"]


def test_a_cut_body_is_asked_again_from_where_it_stopped(
    serve: Callable[[Script], ScriptedServer],
    tmp_path: Path,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def behaviour(handler: BaseHTTPRequestHandler, n: int, asked: str | None) -> None:
        cut(handler) if n == 0 else ranged(handler, asked or "bytes=0-")

    server = serve(behaviour)
    counted: list[int] = []
    with caplog.at_level(logging.WARNING, logger="wheelhouse.download.stream"):
        path, received = fetch(tmp_path, server.url, sha256=SHA, progress=counted.append)

    assert server.asked == [None, f"bytes={len(BODY) // 2}-"]
    assert path.read_bytes() == BODY and received == Received(SHA, len(BODY))
    assert sum(counted) == len(BODY)  # no byte counted twice
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"downloading {NAME} was cut short"
    ]
    assert sleeps == []  # urllib3's Retry waits nothing before the first retry
    assert leftovers(tmp_path) == [f"out/{NAME}"]


def test_a_whole_answer_to_the_retry_is_checked_against_the_bytes_written(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    # A server that ignores Range: the partial file only grows (readers may follow it), so
    # the bytes already written are skipped, after a check that they are the same.
    server = serve(lambda h, n, r: cut(h) if n == 0 else whole(h))
    counted: list[int] = []

    path, _ = fetch(tmp_path, server.url, sha256=SHA, progress=counted.append)

    assert server.asked == [None, f"bytes={len(BODY) // 2}-"]
    assert path.read_bytes() == BODY
    assert sum(counted) == len(BODY)


def test_other_bytes_in_the_answer_to_a_retry_fail_the_download(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: cut(h) if n == 0 else whole(h, b"\0" * len(BODY)))

    with pytest.raises(DownloadError) as info:
        fetch(tmp_path, server.url, sha256=SHA)

    assert info.value.message == f"cannot download {server.url}: its bytes changed when asked again"
    assert len(server.asked) == 2
    assert leftovers(tmp_path) == []


def test_a_body_cut_every_time_fails_after_the_policy_s_retries(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: cut(h, at=1000 * (n + 1)) if r is None else cut(h, at=1000))

    with pytest.raises(DownloadError) as info:
        fetch(tmp_path, server.url, sha256=SHA)

    # pip's default retries (2): three requests in all, not three on top of the client's.
    assert len(server.asked) == 3
    assert server.asked[0] is None
    err = info.value
    assert err.exit_code == ExitCode.NETWORK
    assert err.url == server.url and err.status is None
    assert err.message.startswith(f"cannot download {server.url}: ")
    assert sleeps == [0.5]  # 0.25 * 2 before the third request, none after the last
    assert leftovers(tmp_path) == []


def test_a_stalled_body_is_asked_again(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    release = threading.Event()

    def behaviour(handler: BaseHTTPRequestHandler, n: int, asked: str | None) -> None:
        if n == 0:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(BODY)))
            handler.end_headers()
            handler.wfile.write(BODY[:CHUNK])  # one whole chunk reaches the client
            handler.wfile.flush()
            release.wait(10)  # past the client's read timeout
            handler.close_connection = True
        else:
            ranged(handler, asked or "bytes=0-")

    server = serve(behaviour)
    started = time.monotonic()
    try:
        path, _ = fetch(
            tmp_path, server.url, HttpClient(PipSettings.parse({"timeout": "0.3"})), sha256=SHA
        )
    finally:
        release.set()

    assert time.monotonic() - started < 5
    assert server.asked == [None, f"bytes={CHUNK}-"]
    assert path.read_bytes() == BODY


def test_wrong_bytes_are_a_hash_mismatch_and_leave_nothing(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    wrong = b"x" * 1000
    server = serve(lambda h, n, r: whole(h, wrong))

    with pytest.raises(HashMismatchError) as info:
        fetch(tmp_path, server.url, sha256=SHA)

    actual = hashlib.sha256(wrong).hexdigest()
    err = info.value
    assert err.exit_code == ExitCode.INTEGRITY
    assert (err.filename, err.expected, err.actual) == (NAME, SHA, actual)
    assert (
        err.message == f"{NAME} from {server.url} has sha256 {actual}, but the index promised {SHA}"
    )
    assert server.asked == [None]  # wrong bytes are not asked for again
    assert leftovers(tmp_path) == []


def test_credentials_are_never_shown(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: whole(h, b"other"))
    secret = server.url.replace("http://", "http://user:s3cret@")

    with pytest.raises(HashMismatchError) as info:
        fetch(tmp_path, secret, sha256=SHA)

    assert "s3cret" not in info.value.message
    assert f"from {server.url} has sha256" in info.value.message


def test_a_refusal_is_not_retried_and_names_its_status(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: whole(h, b"gone\n", status=404))

    with pytest.raises(DownloadError) as info:
        fetch(tmp_path, server.url, sha256=SHA)

    assert (info.value.message, info.value.status) == (
        f"cannot download {server.url}: HTTP 404",
        404,
    )
    assert server.asked == [None]
    assert leftovers(tmp_path) == []


def test_a_size_limit_stops_the_transfer_as_it_goes(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: whole(h))
    seen: list[int] = []

    def too_big(size: int) -> str | None:
        seen.append(size)
        return "larger than 300000 bytes" if size > 300_000 else None

    with pytest.raises(DownloadError) as info:
        fetch(tmp_path, server.url, sha256=SHA, too_big=too_big)

    assert info.value.message == "larger than 300000 bytes"
    assert max(seen) <= 300_000 + 256 * 1024  # stopped within one chunk of the limit
    assert leftovers(tmp_path) == []


def test_the_before_hook_may_still_refuse_the_verified_file(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path
) -> None:
    server = serve(lambda h, n, r: whole(h))
    checked: list[bytes] = []

    def before(partial: Path, received: Received) -> None:
        checked.append(partial.read_bytes())
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        fetch(tmp_path, server.url, sha256=SHA, before=before)

    assert checked == [BODY]
    assert leftovers(tmp_path) == []


def test_receive_appends_to_a_file_that_readers_follow(
    serve: Callable[[Script], ScriptedServer], tmp_path: Path, sleeps: list[float]
) -> None:
    server = serve(lambda h, n, r: cut(h) if n == 0 else whole(h))
    sizes: list[int] = []
    partial = tmp_path / "partial"
    with partial.open("wb", buffering=0) as out:
        received = receive(
            HttpClient(PipSettings()), server.url, out, sha256=SHA,
            progress=lambda _: sizes.append(partial.stat().st_size),
        )  # fmt: skip
    assert received == Received(SHA, len(BODY))
    assert sizes == sorted(sizes)  # never shrank: a reader never saw bytes taken back
    assert partial.read_bytes() == BODY
