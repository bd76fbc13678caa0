"""Hostile uploads from outside the process: each gets its status and one line, and leaves
what the private index stores exactly as it was."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.credentials import basic
from tests.support.dists import make_wheel
from tests.support.process import ServeProcess
from tests.support.upload import BOUNDARY, encode_form, post, snapshot, upload_fields

WHEEL = "team_pkg-1.0-py3-none-any.whl"


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path / "dists", "team-pkg", "1.0")


def refused(
    private: ServeProcess, tmp_path: Path, body: bytes, status: int, line: str, **kwargs: object
) -> dict[str, str]:
    """POST ``body``; assert the answer and that the index on disk did not change."""
    root = tmp_path / "private"
    before = snapshot(root)
    got, headers, text = post(private, body, **kwargs)  # type: ignore[arg-type]
    assert (got, text) == (status, line + "\n")
    assert snapshot(root) == before
    assert not any((root / ".upload-tmp").iterdir())
    return headers


def test_no_credentials_is_401_with_a_basic_challenge(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    body = encode_form(upload_fields(wheel))
    line = "authentication required: give a user and password"
    headers = refused(private, tmp_path, body, 401, line)
    assert headers["www-authenticate"] == 'Basic realm="wheelhouse"'


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "Tr0ub4dor&3"), ("mallory", "correct horse battery staple")]
)
def test_wrong_password_or_unknown_user_is_401(
    tmp_path: Path, private: ServeProcess, wheel: Path, user: str, password: str
) -> None:
    body = encode_form(upload_fields(wheel))
    line = "wrong user name or password"
    headers = refused(private, tmp_path, body, 401, line, auth=basic(user, password))
    assert headers["www-authenticate"] == 'Basic realm="wheelhouse"'
    assert password not in private.log


@pytest.mark.parametrize(
    "filename",
    [f"../{WHEEL}", f"/tmp/{WHEEL}", f"sub/{WHEEL}", "team_pkg-1.0-py3-none-any\0.whl", ".whl"],
)
def test_a_file_name_that_is_a_path_is_400(
    tmp_path: Path, private: ServeProcess, wheel: Path, filename: str
) -> None:
    body = encode_form(upload_fields(wheel, filename=filename))
    line = f"the file name {filename!r} is not a plain file name"
    refused(private, tmp_path, body, 400, line, auth=basic())
    assert not (tmp_path / WHEEL).exists()
    assert not Path(f"/tmp/{WHEEL}").exists()


def test_a_form_name_other_than_the_files_is_400(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    body = encode_form(upload_fields(wheel, name="other-pkg"))
    line = f"the form's name 'other-pkg' does not match the file {WHEEL!r}"
    refused(private, tmp_path, body, 400, line, auth=basic())


def test_a_form_version_other_than_the_files_is_400(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    body = encode_form(upload_fields(wheel, version="2.0"))
    line = f"the form's version '2.0' does not match the file {WHEEL!r}"
    refused(private, tmp_path, body, 400, line, auth=basic())


def test_a_wheel_whose_metadata_names_another_project_is_400(
    tmp_path: Path, private: ServeProcess
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "team_pkg-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: other-pkg\nVersion: 1.0\n",
        )
        archive.writestr("team_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    hostile = tmp_path / "hostile" / WHEEL
    hostile.parent.mkdir()
    hostile.write_bytes(buffer.getvalue())
    body = encode_form(upload_fields(hostile))
    line = f"the metadata in {WHEEL!r} names 'other-pkg' '1.0', not the file's project and version"
    refused(private, tmp_path, body, 400, line, auth=basic())


def test_a_wheel_that_is_not_a_zip_is_400(tmp_path: Path, private: ServeProcess) -> None:
    hostile = tmp_path / "hostile" / WHEEL
    hostile.parent.mkdir()
    hostile.write_bytes(b"not a zip at all" * 100)
    body = encode_form(upload_fields(hostile))
    line = f"the wheel {WHEEL!r} does not open as a zip archive"
    refused(private, tmp_path, body, 400, line, auth=basic())


def test_a_sha256_that_does_not_match_the_bytes_is_400(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    fields = upload_fields(wheel, sha256_digest="0" * 64)
    actual = next(f for f in upload_fields(wheel) if f.name == "sha256_digest").value.decode()
    line = f"the file's sha256 is {actual!r}, the form says {'0' * 64!r}"
    refused(private, tmp_path, encode_form(fields), 400, line, auth=basic())


def test_a_truncated_form_is_400(tmp_path: Path, private: ServeProcess, wheel: Path) -> None:
    body = encode_form(upload_fields(wheel))
    cut = body[: len(body) // 2]
    line = "the upload was cut short: the form has no closing boundary"
    refused(private, tmp_path, cut, 400, line, auth=basic())


def test_a_connection_cut_mid_body_stores_nothing(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    root = tmp_path / "private"
    before = snapshot(root)
    body = encode_form(upload_fields(wheel))
    with socket.create_connection(("127.0.0.1", private.port), timeout=30) as sock:
        head = (
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Authorization: {basic()}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])
    deadline = time.monotonic() + 30
    while '"POST /" 400 alice: the upload was cut short' not in private.log:
        assert time.monotonic() < deadline, private.log
        time.sleep(0.1)
    assert snapshot(root) == before
    assert not any((root / ".upload-tmp").iterdir())


def test_a_body_announced_too_large_is_413_before_it_is_read(
    tmp_path: Path, private: ServeProcess
) -> None:
    root = tmp_path / "private"
    before = snapshot(root)
    conn = http.client.HTTPConnection("127.0.0.1", private.port, timeout=30)
    try:
        conn.putrequest("POST", "/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Authorization", basic())
        conn.putheader("Content-Length", str(10 * 1024**3))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert response.read() == b"the upload is larger than 5194304 bytes\n"
    finally:
        conn.close()
    assert snapshot(root) == before


def test_a_streamed_file_past_the_limit_is_413(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    fields = upload_fields(wheel)
    fields[-1].value = b"x" * 1_500_000  # past --max-upload-size 1000000
    root = tmp_path / "private"
    before = snapshot(root)
    conn = http.client.HTTPConnection("127.0.0.1", private.port, timeout=60)
    try:
        body = encode_form(fields)
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        headers = {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Authorization": basic(),
        }
        # The server may answer and close before the whole body went out.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
        response = conn.getresponse()
        assert (response.status, response.read()) == (
            413,
            b"the file is larger than 1000000 bytes\n",
        )
    finally:
        conn.close()
    assert snapshot(root) == before
    assert not any((root / ".upload-tmp").iterdir())


@pytest.mark.parametrize(
    ("content_type", "body", "line"),
    [
        ("application/x-www-form-urlencoded", b"a=b", "the upload must be multipart/form-data"),
        ("multipart/form-data", b"--x\r\n", "the multipart form has no usable boundary"),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f"--{BOUNDARY}\r\nno colon in this header\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(),
            "the multipart form is malformed",
        ),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name=":action"\r\n\r\n'
            f"file_upload\r\n--{BOUNDARY}--\r\n".encode(),
            "the form has no file (a 'content' part)",
        ),
    ],
)
def test_a_malformed_form_is_400(
    tmp_path: Path, private: ServeProcess, content_type: str, body: bytes, line: str
) -> None:
    refused(private, tmp_path, body, 400, line, auth=basic(), content_type=content_type)


def test_a_second_upload_of_a_file_is_409_and_keeps_the_first(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    status, _, text = post(private, encode_form(upload_fields(wheel)), auth=basic())
    assert (status, text) == (200, "OK\n")
    other = make_wheel(tmp_path / "other", "team-pkg", "1.0", requires=["something-else"])
    assert other.name == WHEEL and other.read_bytes() != wheel.read_bytes()
    body = encode_form(upload_fields(other))
    refused(private, tmp_path, body, 409, f"file {WHEEL!r} already exists", auth=basic())
    assert (tmp_path / "private" / WHEEL).read_bytes() == wheel.read_bytes()


def test_twenty_concurrent_uploads_of_distinct_files_all_succeed(
    tmp_path: Path, private: ServeProcess
) -> None:
    wheels = [make_wheel(tmp_path / "dists", f"pkg-{i}", "1.0") for i in range(20)]
    bodies = [encode_form(upload_fields(w)) for w in wheels]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda b: post(private, b, auth=basic())[::2], bodies))
    assert answers == [(200, "OK\n")] * 20
    root = tmp_path / "private"
    index = (root / "simple" / "index.html").read_text()
    for i, path in enumerate(wheels):
        assert (root / path.name).read_bytes() == path.read_bytes()
        assert f'href="pkg-{i}/"' in index
        assert path.name in (root / "simple" / f"pkg-{i}" / "index.json").read_text()


def test_two_concurrent_uploads_of_the_same_file_exactly_one_succeeds(
    tmp_path: Path, private: ServeProcess, wheel: Path
) -> None:
    other = make_wheel(tmp_path / "other", "team-pkg", "1.0", requires=["something-else"])
    bodies = [encode_form(upload_fields(wheel)), encode_form(upload_fields(other))]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda b: post(private, b, auth=basic())[::2], bodies))
    assert sorted(answers) == [(200, "OK\n"), (409, f"file {WHEEL!r} already exists\n")]
    stored = (tmp_path / "private" / WHEEL).read_bytes()
    winner = answers.index((200, "OK\n"))
    assert stored == (wheel, other)[winner].read_bytes()
