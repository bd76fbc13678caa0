"""PEP 740 provenance carried by `wheelhouse mirror` and served by `wheelhouse serve DIR`: the
real pypi-attestations sdist with its real provenance, from a loopback index's integrity API."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.httpget import get
from tests.support.provenance import (
    DATA,
    PROVENANCE,
    SDIST,
    SDIST_SHA256,
    TRUST_ROOT,
    attested_index,
)
from tests.support.server import IndexServer
from wheelhouse.errors import ExitCode

PROJECT = "pypi-attestations"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[IndexServer]:
    """A JSON index listing the real sdist, its provenance at its integrity URL."""
    with attested_index(tmp_path / "upstream") as server:
        yield server


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def page_links(out: Path) -> tuple[dict[str, Any], str]:
    page = json.loads((out / f"simple/{PROJECT}/index.json").read_text())
    html = (out / f"simple/{PROJECT}/index.html").read_text()
    return {f["filename"]: f for f in page["files"]}, html


@pytest.mark.parametrize("pages", ["json", "html"])
def test_the_mirror_keeps_the_provenance_links_it_and_verify_passes_offline(
    cli: Any, index: IndexServer, tmp_path: Path, pages: str
) -> None:
    index.json_pages = pages == "json"
    out = tmp_path / "mirror"
    result = cli("mirror", PROJECT, "-o", out, "-i", index.url)
    assert result.exit_code == 0, result.stderr
    assert warnings_of(result.stderr) == []
    # The very bytes the integrity API served, asked for once.
    assert (out / f"{SDIST}.provenance").read_bytes() == PROVENANCE
    assert index.count(f"/integrity/{PROJECT}/0.0.19/{SDIST}/provenance") == 1
    files, html = page_links(out)
    assert files[SDIST]["provenance"] == f"../../{SDIST}.provenance"
    assert f'data-provenance="../../{SDIST}.provenance"' in html

    # Offline (no network is asked for): the trust root travels in the mirror.
    assert cli("provenance", "trust-root", out, "--from", TRUST_ROOT).exit_code == 0
    verified = cli("verify", out, "--provenance")
    assert verified.exit_code == 0, verified.stderr
    assert f"{SDIST}" in verified.stdout and "verified" in verified.stdout

    # A rerun asks nothing again and keeps it; a removal takes it with the file.
    again = cli("mirror", "-o", out)
    assert again.exit_code == 0, again.stderr
    assert index.count(f"/integrity/{PROJECT}/0.0.19/{SDIST}/provenance") == 1
    assert (out / f"{SDIST}.provenance").read_bytes() == PROVENANCE
    removed = cli("mirror", "--remove", PROJECT, "-o", out)
    assert removed.exit_code == 0, removed.stderr
    assert not (out / SDIST).exists()
    assert not (out / f"{SDIST}.provenance").exists()


def test_a_file_mirrored_before_gets_its_provenance_on_a_rerun(
    cli: Any, index: IndexServer, tmp_path: Path
) -> None:
    del index.provenance[SDIST]
    out = tmp_path / "mirror"
    assert cli("mirror", PROJECT, "-o", out, "-i", index.url).exit_code == 0
    assert not (out / f"{SDIST}.provenance").exists()
    assert "provenance" not in page_links(out)[0][SDIST]
    index.provenance[SDIST] = PROVENANCE
    result = cli("mirror", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert (out / f"{SDIST}.provenance").read_bytes() == PROVENANCE
    assert page_links(out)[0][SDIST]["provenance"] == f"../../{SDIST}.provenance"


def other_subject() -> bytes:
    """The real provenance with its statement rewritten to name another file."""
    document = json.loads(PROVENANCE)
    attestation = document["attestation_bundles"][0]["attestations"][0]
    statement = json.loads(base64.b64decode(attestation["envelope"]["statement"]))
    statement["subject"][0]["name"] = "pypi_attestations-0.0.18.tar.gz"
    attestation["envelope"]["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(document).encode()


class _Other(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PROVENANCE)))
        self.end_headers()
        self.wfile.write(PROVENANCE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("attack", ["other-subject", "other-digest", "endless", "file", "404"])
def test_a_hostile_provenance_is_refused_with_one_line_and_nothing_kept(
    cli: Any, index: IndexServer, tmp_path: Path, attack: str
) -> None:
    path = f"/integrity/{PROJECT}/0.0.19/{SDIST}/provenance"
    secret = tmp_path / "secret.provenance"
    secret.write_bytes(PROVENANCE)
    if attack == "other-subject":
        index.provenance[SDIST] = other_subject()
        why = "an attestation is for another file, 'pypi_attestations-0.0.18.tar.gz'"
    elif attack == "other-digest":
        # The real provenance of the real file, named for a file with other bytes.
        (index.root / SDIST).write_bytes((DATA / SDIST).read_bytes() + b"\0")
        actual = __import__("hashlib").sha256((index.root / SDIST).read_bytes()).hexdigest()
        why = f"an attestation is for sha256 {SDIST_SHA256}, not {actual}"
    elif attack == "endless":
        index.provenance[SDIST] = b"[" * (3 * 1024 * 1024)
        why = ""
    elif attack == "file":
        index.provenance_urls[SDIST] = secret.as_uri()
        why = ""
    else:
        index.provenance_urls[SDIST] = index.base_url + "integrity/nothing/provenance"
        why = ""
    out = tmp_path / "mirror"
    result = cli("mirror", PROJECT, "-o", out, "-i", index.url)
    # The file is mirrored; its provenance is not kept, with one line saying why.
    assert result.exit_code == 0, result.stderr
    assert (out / SDIST).is_file()
    assert not (out / f"{SDIST}.provenance").exists()
    assert "provenance" not in page_links(out)[0][SDIST]
    assert "provenance" not in page_links(out)[1]
    warned = warnings_of(result.stderr)
    shown = index.base_url.rstrip("/") + path
    if attack in ("other-subject", "other-digest"):
        assert warned == [
            f"warning: {PROJECT}: {SDIST}: its provenance is not kept: {shown} is not the "
            f"provenance of {SDIST!r}: {why}"
        ]
    elif attack == "endless":
        assert warned == [
            f"warning: {PROJECT}: {SDIST}: its provenance is not kept: {shown} sent more "
            f"than {2 * 1024 * 1024} bytes"
        ]
    elif attack == "404":
        assert warned == [
            f"warning: {PROJECT}: {SDIST}: its provenance is not kept: "
            f"{index.base_url}integrity/nothing/provenance answered HTTP 404"
        ]
    else:
        # A file: URL on an http page is never followed: the page names no provenance.
        assert warned == [
            f"warning: {index.url}{PROJECT}/ links 1 file: URL(s); only http(s) links are "
            "followed: they are ignored"
        ]
        assert str(secret) not in result.stderr

    # --require-provenance: the file is not mirrored, and the project fails.
    strict = tmp_path / "strict"
    refused = cli("mirror", PROJECT, "-o", strict, "-i", index.url, "--require-provenance")
    assert refused.exit_code == ExitCode.PARTIAL, refused.stderr
    assert not (strict / SDIST).exists()
    assert not (strict / f"{SDIST}.provenance").exists()
    assert "--require-provenance is given; not mirrored" in refused.stderr


def test_a_provenance_on_another_origin_is_never_asked_for(
    cli: Any, index: IndexServer, tmp_path: Path
) -> None:
    seen: list[str | None] = []

    class Recording(_Other):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            super().do_GET()

    other = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        # The real provenance, on another port: the index's credentials would go there.
        index.provenance_urls[SDIST] = f"http://127.0.0.1:{other.server_address[1]}/p"
        url = index.url.replace("http://", "http://user:s3cret@")
        out = tmp_path / "mirror"
        result = cli("mirror", PROJECT, "-o", out, "-i", url)
    finally:
        other.shutdown()
        other.server_close()
    assert result.exit_code == 0, result.stderr
    assert seen == []
    assert not (out / f"{SDIST}.provenance").exists()
    assert warnings_of(result.stderr) == [
        f"warning: {index.url}{PROJECT}/ names 1 provenance URL(s) on another origin than its "
        "own; they are ignored"
    ]
    assert "s3cret" not in result.stderr


def serve_static(root: Path) -> tuple[Any, threading.Thread]:
    from wheelhouse.serve.static import make_server

    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def test_serve_serves_the_provenance_its_page_names_and_a_mirror_of_it_keeps_it(
    cli: Any, index: IndexServer, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    assert cli("mirror", PROJECT, "-o", first, "-i", index.url).exit_code == 0
    server, thread = serve_static(first)
    try:
        status, _, body = get(f"{server.url}{PROJECT}/", "application/vnd.pypi.simple.v1+json")
        assert status == 200
        link = json.loads(body)["files"][0]["provenance"]
        status, headers, data = get(urllib.parse.urljoin(f"{server.url}{PROJECT}/", link))
        assert status == 200
        assert headers["content-type"] == "application/vnd.pypi.integrity.v1+json"
        assert data == PROVENANCE
        # A second mirror reading our HTML pages carries it on.
        second = tmp_path / "second"
        result = cli("mirror", PROJECT, "-o", second, "-i", server.url)
        assert result.exit_code == 0, result.stderr
        assert (second / f"{SDIST}.provenance").read_bytes() == PROVENANCE
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
