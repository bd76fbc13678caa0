"""docs/nginx.md's configuration in real nginx: negotiation, statuses, pip and uv through it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.capabilities import find_uv
from tests.support.nginx import Nginx, docs_block, require_nginx
from tests.support.venvs import installed_versions as _installed
from tests.support.wheelhouses import sample_wheelhouse
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run
from wheelhouse.house.index import write_index

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
CLIENT_ACCEPT = f"{JSON}, {HTML};q=0.2, text/html;q=0.01"  # what pip and uv send
WHEEL = "dep_two-2.0-py3-none-any.whl"


@pytest.fixture
def house(tmp_path: Path, dists: Any) -> Path:
    root = tmp_path / "house"
    sample_wheelhouse(root, dists, writes=[write_index])
    return root


@pytest.fixture
def nginx(tmp_path: Path, house: Path) -> Iterator[Nginx]:
    block = docs_block("nginx.md").replace("root /srv/wheelhouse;", f"root {house};")
    server = Nginx(require_nginx(), tmp_path / "nginx", block).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("accept", "content_type", "page"),
    [
        (CLIENT_ACCEPT, JSON, "index.json"),
        (JSON, JSON, "index.json"),
        (f"{JSON};q=0, text/html", "text/html", "index.html"),
        ("text/html", "text/html", "index.html"),
        (None, "text/html", "index.html"),
        ("*/*", "text/html", "index.html"),
    ],
)
def test_project_page_is_negotiated(
    nginx: Nginx, house: Path, accept: str | None, content_type: str, page: str
) -> None:
    status, headers, body = nginx.get("/simple/foo-bar/", accept)
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == content_type
    assert headers["Vary"] == "Accept"
    assert body == (house / "simple" / "foo-bar" / page).read_bytes()


def test_root_page_json(nginx: Nginx, house: Path) -> None:
    status, headers, body = nginx.get("/simple/", CLIENT_ACCEPT)
    assert (status, headers["Content-Type"]) == (200, JSON)
    names = [p["name"] for p in json.loads(body)["projects"]]
    assert names == ["dep-two", "foo-bar"]


def test_unacceptable_accept_is_406(nginx: Nginx) -> None:
    status, headers, _ = nginx.get("/simple/foo-bar/", "application/xml")
    assert status == 406
    assert headers["Vary"] == "Accept"


def test_unknown_project_is_404(nginx: Nginx) -> None:
    status, headers, _ = nginx.get("/simple/not-here/", CLIENT_ACCEPT)
    assert status == 404
    assert "Location" not in headers


def test_missing_slash_redirects_to_the_page(nginx: Nginx) -> None:
    status, headers, _ = nginx.get("/simple/foo-bar", CLIENT_ACCEPT)
    assert status == 301
    assert headers["Location"].endswith("/simple/foo-bar/")


def test_files_and_metadata_have_their_types(nginx: Nginx, house: Path) -> None:
    status, headers, body = nginx.get(f"/{WHEEL}")
    assert (status, headers["Content-Type"]) == (200, "application/zip")
    assert body == (house / WHEEL).read_bytes()
    status, headers, body = nginx.get(f"/{WHEEL}.metadata")
    assert (status, headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    assert body == (house / f"{WHEEL}.metadata").read_bytes()
    status, headers, _ = nginx.get("/dep_two-2.0.tar.gz")
    assert (status, headers["Content-Type"]) == (200, "application/gzip")
    assert "Content-Encoding" not in headers


@pytest.mark.slow
def test_bundled_pip_installs_through_nginx(nginx: Nginx, make_venv: Any) -> None:
    python = make_venv("old-pip")
    argv = [python, "-m", "pip", "install", "--no-cache-dir", "--index-url", f"{nginx.url}/simple/"]
    result = run([*argv, "Foo.Bar"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")


@pytest.mark.slow
def test_newest_pip_reads_json_and_metadata_through_nginx(nginx: Nginx, make_venv: Any) -> None:
    python = make_venv("new-pip", with_pip=False)
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result = run([*argv, "--index-url", f"{nginx.url}/simple/", "foo-bar"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")
    log = "\n".join(nginx.access_log())
    # Resolution used the PEP 658 files; the older dep-two wheel was never downloaded.
    assert f'GET /{WHEEL}.metadata HTTP/1.1" 200' in log
    assert "GET /dep_two-1.5-py3-none-any.whl " not in log


@pytest.mark.slow
def test_uv_installs_through_nginx(nginx: Nginx, make_venv: Any, tmp_path: Path) -> None:
    uv = find_uv()
    python = make_venv("uv", with_pip=False)
    argv = [
        *uv,
        "pip",
        "install",
        "--no-config",
        "--cache-dir",
        tmp_path / "uvc",
        "--python",
        python,
    ]
    result = run([*argv, "--index-url", f"{nginx.url}/simple/", "foo-bar"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")
