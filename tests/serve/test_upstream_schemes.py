"""Only http(s) links from a remote page: a hostile page linking file:, ftp: or data: URLs
gets nothing read; a file: index may still link local files."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hostile import (
    serve,
)
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.simple import fetch_project_page, parse_html_page

PASSWD_PAGE = b"""<!DOCTYPE html><html><body>
<a href="file:///etc/passwd#sha256=%s">evil-1.0.tar.gz</a>
<a href="FILE:///etc/hostname">evil-1.1.tar.gz</a>
<a href="ftp://127.0.0.1/evil-1.2.tar.gz">evil-1.2.tar.gz</a>
<a href="data:application/octet-stream;base64,AAAA">evil-1.3.tar.gz</a>
<a href="../../files/evil-2.0.tar.gz">evil-2.0.tar.gz</a>
</body></html>"""


def test_a_remote_page_links_http_files_only(
    index_server: IndexServer, caplog: pytest.LogCaptureFixture
) -> None:
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest().encode()
    serve(index_server, {"evil": ({"Content-Type": "text/html"}, PASSWD_PAGE % passwd)})
    caplog.set_level(logging.WARNING, logger="wheelhouse.simple.parse")

    result = fetch_project_page(HttpClient(PipSettings()), index_server.url, "evil")

    assert result.page is not None
    assert [(f.filename, f.url) for f in result.page.files] == [
        ("evil-2.0.tar.gz", index_server.files_url + "evil-2.0.tar.gz")
    ]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"{index_server.url}evil/ links 2 file: URL(s), 1 ftp: URL(s), 1 data: URL(s);"
        " only http(s) links are followed: they are ignored"
    ]


def test_a_local_index_may_link_local_files(tmp_path: Path) -> None:
    page = b'<a href="../files/x-1.0.tar.gz">x-1.0.tar.gz</a><a href="ftp://h/y">y-1.0.tar.gz</a>'
    parsed = parse_html_page(page, (tmp_path / "simple" / "x").as_uri() + "/", "x")
    assert [f.url for f in parsed.files] == [
        (tmp_path / "simple" / "files").as_uri() + "/x-1.0.tar.gz"
    ]


def test_the_mirror_never_copies_a_local_file_a_remote_page_links(
    tmp_path: Path, index_server: IndexServer
) -> None:
    secret = tmp_path / "secret-1.0.tar.gz"
    secret.write_bytes(b"a local file the index must not reach")
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    page = (f'<a href="{secret.as_uri()}#sha256={digest}">secret-1.0.tar.gz</a>').encode()
    serve(index_server, {"secret": ({"Content-Type": "text/html"}, page)})
    out = tmp_path / "mirror"
    done = subprocess.run(
        [sys.executable, "-m", "wheelhouse", "mirror", "secret", "-o", str(out),
         "-i", index_server.url],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    copied = [p for p in out.rglob("*") if p.is_file() and p.read_bytes() == secret.read_bytes()]
    assert copied == [], done.stderr
    assert "only http(s) links are followed" in done.stderr, done.stderr
