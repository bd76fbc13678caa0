"""A `wheelhouse serve` process that takes uploads, its users, and the forms clients post."""

from __future__ import annotations

import functools
import hashlib
import http.client
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support import files
from tests.support.capabilities import missing
from tests.support.credentials import PASSWORD, USER
from tests.support.process import ServeProcess, run_command

# Every file of an upload index's root but its lock, relative path -> bytes.
snapshot = functools.partial(files.snapshot, leave_out=[".upload.lock"])


StartServe = Callable[..., ServeProcess]


@dataclass
class Field:
    name: str
    value: bytes
    filename: str | None = None


def upload_fields(path: Path, **override: str | None) -> list[Field]:
    """The form twine sends for the dist at ``path``; ``override`` replaces (None drops)."""
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    data = path.read_bytes()
    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        filetype = "bdist_wheel"
    else:
        name, version = parse_sdist_filename(path.name)
        filetype = "sdist"
    values: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": str(name),
        "version": str(version),
        "filetype": filetype,
        "pyversion": "py3" if filetype == "bdist_wheel" else "source",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "filename": path.name,
    }
    values.update(override)
    filename = values.pop("filename")
    fields = [Field(k, v.encode()) for k, v in values.items() if v is not None]
    fields.append(Field("content", data, filename))
    return fields


BOUNDARY = "wheelhouse-test-boundary-7d1f"


def encode_form(fields: list[Field]) -> bytes:
    out = bytearray()
    for field in fields:
        out += f"--{BOUNDARY}\r\n".encode()
        disposition = f'form-data; name="{field.name}"'
        if field.filename is not None:
            disposition += f'; filename="{field.filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if field.filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + field.value + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def post(
    server: ServeProcess,
    body: bytes,
    *,
    auth: str | None = None,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """POST ``body`` to the server's root; (status, headers, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        sent = {"Content-Type": content_type, **(headers or {})}
        if auth is not None:
            sent["Authorization"] = auth
        conn.request("POST", "/", body=body, headers=sent)
        response = conn.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.headers.items()},
            response.read().decode(),
        )
    finally:
        conn.close()


def users_cli(*args: str | os.PathLike[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wheelhouse", "users", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def twine_command() -> list[str]:
    if importlib.util.find_spec("twine") is None:
        missing("twine", "twine is not installed in the test environment (noxfile TEST_DEPS)")
    return [sys.executable, "-m", "twine"]


def twine_upload(
    server: ServeProcess | str, *files: Path, user: str = USER, password: str = PASSWORD
) -> subprocess.CompletedProcess[str]:
    """`twine upload --repository-url URL FILES` with the credentials in its environment;
    ``server`` is the upload index, or the URL to upload to."""
    env = {
        **os.environ,
        "TWINE_USERNAME": user,
        "TWINE_PASSWORD": password,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    url = server if isinstance(server, str) else server.base
    argv = [*twine_command(), "upload", "--non-interactive", "--disable-progress-bar", "--verbose"]
    return run_command([*argv, "--repository-url", url, *files], env=env)


def make_token(users_file: Path, user: str, index: str) -> str:
    result = users_cli("token", user, "--users", users_file, "--index", index)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("wht_") and len(token) > 40
    assert token not in Path(str(users_file) + ".tokens").read_text()
    return token
