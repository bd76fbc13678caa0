"""`serve`: PEP 691 negotiation, validators, path traversal, concurrency, and real installers."""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from tests.support.capabilities import find_uv, require
from tests.support.venvs import installed_versions as _installed
from tests.support.wheelhouses import sample_wheelhouse
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run
from wheelhouse.errors import InvalidWheelhouseError, NetworkError
from wheelhouse.house.index import write_index
from wheelhouse.serve._asgi import AsgiServer
from wheelhouse.serve.static import make_server
from wheelhouse.simple.media import negotiate

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
# What pip and uv send (PEP 691's recommended client header).
CLIENT_ACCEPT = f"{JSON}, {HTML};q=0.2, text/html;q=0.01"
WHEEL = "dep_two-2.0-py3-none-any.whl"


@pytest.fixture
def house(tmp_path: Path, dists: Any) -> Path:
    root = tmp_path / "house"
    sample_wheelhouse(root, dists, writes=[write_index])
    (tmp_path / "secret.txt").write_text("outside the wheelhouse\n")
    return root


@pytest.fixture
def server(house: Path) -> Iterator[AsgiServer]:
    srv = make_server(house, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def request(
    srv: AsgiServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request with ``path`` sent as is (http.client does not normalize it)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


# --- content negotiation (PEP 691) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        (CLIENT_ACCEPT, JSON),
        (f"{JSON};q=0.1, {HTML}", HTML),
        (f"{HTML}, text/html;q=0.01", HTML),
        ("text/html", "text/html"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
        ("text/*", "text/html"),
        ("application/*", JSON),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("application/vnd.pypi.simple.latest+html", HTML),
        (f"{JSON};q=0, */*", HTML),  # explicitly refused JSON; the wildcard takes the rest
        (f"{HTML}, */*", HTML),  # an explicit type beats an equal-quality wildcard
        ("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", JSON),
        ("application/xml", None),
        ("application/json", None),
        (f"{JSON};q=0", None),
        ("*/*;q=0", None),
        (f"{JSON};q=oops", None),
        ("application/vnd.pypi.simple.v2+json", None),
    ],
)
def test_negotiate(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize(
    ("accept", "content_type", "page"),
    [
        (CLIENT_ACCEPT, JSON, "index.json"),
        (HTML, HTML, "index.html"),
        ("text/html", "text/html; charset=utf-8", "index.html"),
    ],
)
@pytest.mark.parametrize("path", ["/simple/", "/simple/dep-two/"])
def test_pages_are_negotiated(
    server: AsgiServer, house: Path, path: str, accept: str, content_type: str, page: str
) -> None:
    response, body = request(server, path, headers={"Accept": accept})
    assert response.status == 200
    assert response.getheader("Content-Type") == content_type
    assert response.getheader("Vary") == "Accept"
    assert body == (house / path.strip("/") / page).read_bytes()


def test_json_page_fields_over_http(server: AsgiServer, house: Path) -> None:
    response, body = request(server, "/simple/dep-two/", headers={"Accept": JSON})
    assert response.getheader("Content-Type") == JSON
    data = json.loads(body)
    assert data["meta"] == {"api-version": "1.1"}
    wheel = next(f for f in data["files"] if f["filename"] == WHEEL)
    # The relative URL resolves, against the page URL, to the file the hash describes.
    assert wheel["url"] == f"../../{WHEEL}"
    file_response, content = request(server, f"/{WHEEL}")
    assert file_response.status == 200
    assert hashlib.sha256(content).hexdigest() == wheel["hashes"]["sha256"]
    assert len(content) == wheel["size"] == int(file_response.getheader("Content-Length", "-1"))
    meta_response, metadata = request(server, f"/{WHEEL}.metadata")
    assert meta_response.status == 200
    assert hashlib.sha256(metadata).hexdigest() == wheel["core-metadata"]["sha256"]


def test_nothing_acceptable_is_406(server: AsgiServer) -> None:
    response, body = request(server, "/simple/dep-two/", headers={"Accept": "application/xml"})
    assert response.status == 406
    assert response.getheader("Vary") == "Accept"
    assert body.decode().startswith(f"acceptable types: {JSON}, {HTML}, text/html")


def test_files_have_their_content_types(server: AsgiServer, house: Path) -> None:
    expected = {
        f"/{WHEEL}": "application/zip",
        f"/{WHEEL}.metadata": "text/plain; charset=utf-8",
        "/dep_two-2.0.tar.gz": "application/gzip",
        "/simple/dep-two/index.json": "application/json",
    }
    for path, content_type in expected.items():
        response, body = request(server, path)
        assert (response.status, response.getheader("Content-Type")) == (200, content_type), path
        assert body == (house / path.lstrip("/")).read_bytes()
        assert response.getheader("Vary") is None


def test_head_has_the_headers_and_no_body(server: AsgiServer, house: Path) -> None:
    get, _ = request(server, f"/{WHEEL}")
    head, body = request(server, f"/{WHEEL}", method="HEAD")
    assert head.status == 200
    assert body == b""
    for header in ("Content-Type", "Content-Length", "ETag", "Last-Modified"):
        assert head.getheader(header) == get.getheader(header), header
    assert head.getheader("Content-Length") == str((house / WHEEL).stat().st_size)


def test_post_is_not_served(server: AsgiServer) -> None:
    response, _ = request(server, "/simple/", method="POST")
    assert (response.status, response.getheader("Allow")) == (405, "GET, HEAD")


# --- validators ---------------------------------------------------------------------------------


def test_etag_gives_304(server: AsgiServer) -> None:
    first, _ = request(server, "/simple/dep-two/", headers={"Accept": JSON})
    etag = first.getheader("ETag")
    assert etag and etag.startswith('"') and etag.endswith('"')
    again, body = request(
        server, "/simple/dep-two/", headers={"Accept": JSON, "If-None-Match": etag}
    )
    assert (again.status, body) == (304, b"")
    assert again.getheader("ETag") == etag
    assert again.getheader("Vary") == "Accept"
    weak, _ = request(
        server, "/simple/dep-two/", headers={"Accept": JSON, "If-None-Match": f"W/{etag}"}
    )
    assert weak.status == 304


def test_etag_differs_per_representation(server: AsgiServer) -> None:
    as_json, _ = request(server, "/simple/dep-two/", headers={"Accept": JSON})
    etag = as_json.getheader("ETag", "")
    as_html, body = request(
        server, "/simple/dep-two/", headers={"Accept": HTML, "If-None-Match": etag}
    )
    assert as_html.status == 200
    assert body.startswith(b"<!DOCTYPE html>")
    assert as_html.getheader("ETag") != etag


def test_if_modified_since(server: AsgiServer, house: Path) -> None:
    first, _ = request(server, f"/{WHEEL}")
    last_modified = first.getheader("Last-Modified", "")
    assert last_modified == formatdate((house / WHEEL).stat().st_mtime, usegmt=True)
    again, body = request(server, f"/{WHEEL}", headers={"If-Modified-Since": last_modified})
    assert (again.status, body) == (304, b"")
    older = formatdate((house / WHEEL).stat().st_mtime - 3600, usegmt=True)
    changed, body = request(server, f"/{WHEEL}", headers={"If-Modified-Since": older})
    assert changed.status == 200
    assert body == (house / WHEEL).read_bytes()
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3).
    stale, _ = request(
        server, f"/{WHEEL}", headers={"If-None-Match": '"nope"', "If-Modified-Since": last_modified}
    )
    assert stale.status == 200


# --- names, redirects, traversal ----------------------------------------------------------------


def test_unknown_project_is_404_never_a_redirect(server: AsgiServer) -> None:
    for path in ("/simple/requests/", "/simple/Requests/", "/simple/requests"):
        response, _ = request(server, path, headers={"Accept": CLIENT_ACCEPT})
        assert response.status == 404, path
        assert response.getheader("Location") is None


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple/Dep_Two/", "/simple/dep-two/"),
        ("/simple/DEP.two", "/simple/dep-two/"),
        ("/simple/dep-two", "/simple/dep-two/"),
        ("/simple", "/simple/"),
    ],
)
def test_redirects_stay_on_this_server(server: AsgiServer, path: str, location: str) -> None:
    response, _ = request(server, path)
    assert response.status == 301
    assert response.getheader("Location") == location


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/simple/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/simple/..%2F..%2Fsecret.txt",
        "/simple/%2e%2e/%2e%2e/secret.txt",
        "/..%5csecret.txt",
        "http://127.0.0.1/../secret.txt",
        "/%00secret.txt",
        "/.%2e/secret.txt",
        "//secret.txt",  # an empty segment: some servers read it as another host or the root
    ],
)
def test_traversal_is_refused(server: AsgiServer, path: str) -> None:
    response, body = request(server, path)
    assert response.status == 400, path
    assert b"outside the wheelhouse" not in body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/%252e%252e/secret.txt", 404),  # decoded once: a name "%2e%2e", not a parent
        ("/simple/%2e%2e%5c%2e%2e%5csecret.txt", 400),
        ("/%c0%ae%c0%ae/secret.txt", 400),  # overlong UTF-8 dots
        ("/..;/secret.txt", 400),  # a dot segment
        ("/simple/dep-two/%00", 400),
        ("/simple/%00/", 400),
    ],
)
def test_more_traversal_forms_stay_in_root(server: AsgiServer, path: str, status: int) -> None:
    response, body = request(server, path)
    assert response.status == status, path
    assert b"outside the wheelhouse" not in body


LONG = "a" * 300  # longer than any file name the file system takes (ENAMETOOLONG)


@pytest.mark.parametrize(
    "path",
    [
        f"/simple/{LONG}/",
        f"/simple/{LONG}",
        f"/{LONG}-1.0-py3-none-any.whl",
        f"/simple/dep-two/{LONG}",
        "/" + "x/" * 2000 + "y.whl",  # a path longer than PATH_MAX
        "/simple/dep-two/index.html/x",  # a file taken for a directory (ENOTDIR)
        "/loop/x.whl",  # a symlink loop (ELOOP)
    ],
)
def test_names_the_file_system_refuses_are_404_without_a_traceback(
    server: AsgiServer, house: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    (house / "loop").symlink_to(house / "loop")
    caplog.set_level(logging.INFO)
    response, body = request(server, path)
    project_page = path.startswith(f"/simple/{LONG}")
    assert response.status == 404
    assert body == (b"no such project\n" if project_page else b"not found\n")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (errno.EACCES, 403, b"forbidden\n"),
        (errno.EMFILE, 503, b"busy\n"),
        (errno.EIO, 404, b"not found\n"),
    ],
)
def test_a_file_that_cannot_be_opened_is_never_a_200(
    server: AsgiServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: int,
    status: int,
    body: bytes,
) -> None:
    # FileResponse sends its 200 before it opens the file: an unreadable file (another
    # user's, mode 0600) or no descriptor left must be answered before that.
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(WHEEL):
            raise OSError(error, os.strerror(error), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    caplog.set_level(logging.INFO)
    response, got = request(server, "/" + WHEEL)
    assert (response.status, got) == (status, body)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("path", ["/secret.txt", "/etc/passwd", "/tmp/"])
def test_absolute_looking_paths_stay_in_root(server: AsgiServer, path: str) -> None:
    response, body = request(server, path)
    assert response.status == 404, path
    assert b"outside the wheelhouse" not in body
    assert b"root:" not in body


def test_symlink_out_of_root_is_404(server: AsgiServer, house: Path) -> None:
    (house / "escape.txt").symlink_to(house.parent / "secret.txt")
    (house / "escape-dir").symlink_to(house.parent)
    for path in ("/escape.txt", "/escape-dir/secret.txt"):
        response, body = request(server, path)
        assert response.status == 404, path
        assert b"outside the wheelhouse" not in body


def test_dot_files_and_directories_are_not_served(server: AsgiServer, house: Path) -> None:
    (house / ".hidden").write_text("temp\n")
    # A dot segment is a bad request; the root is a redirect to the index, never a listing.
    seen = {path: request(server, path)[0] for path in ("/.hidden", "/simple/dep-two/.", "/")}
    assert {path: response.status for path, response in seen.items()} == {
        "/.hidden": 400,
        "/simple/dep-two/.": 400,
        "/": 302,
    }
    assert seen["/"].getheader("Location") == "/simple/"
    root, _ = request(server, "/")
    assert (root.status, root.getheader("Location")) == (302, "/simple/")
    listing, _ = request(server, "/simple/dep-two/index.json/")
    assert listing.status == 404


def test_one_log_line_per_request(server: AsgiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wheelhouse.serve.static")
    request(server, "/simple/dep-two/")
    request(server, "/%2e%2e/secret.txt")
    request(server, "/simple/nope/")
    lines = [r.getMessage() for r in caplog.records if r.name == "wheelhouse.serve.static"]
    assert lines == [
        '127.0.0.1 "GET /simple/dep-two/ HTTP/1.1" 200 -',
        '127.0.0.1 "GET /%2e%2e/secret.txt HTTP/1.1" 400 -',
        '127.0.0.1 "GET /simple/nope/ HTTP/1.1" 404 -',
    ]


# --- errors -------------------------------------------------------------------------------------


def test_directory_without_index(tmp_path: Path) -> None:
    with pytest.raises(InvalidWheelhouseError) as info:
        make_server(tmp_path, "127.0.0.1", 0)
    assert info.value.message == f"{str(tmp_path)!r} has no package index (simple/index.html)"
    assert info.value.hint == f"write it with 'wheelhouse index {tmp_path}'"


def test_port_in_use(server: AsgiServer, house: Path) -> None:
    with pytest.raises(NetworkError, match=r"^cannot listen on '127.0.0.1' port \d+: "):
        make_server(house, "127.0.0.1", server.server_port)


# --- concurrency, memory, signals ---------------------------------------------------------------


def fetch_all(port: int, barrier: threading.Barrier, house: Path) -> list[int]:
    """What one client does: the project page, then every file it lists (hash-checked)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        barrier.wait()
        conn.request("GET", "/simple/dep-two/", headers={"Accept": CLIENT_ACCEPT})
        page = conn.getresponse()
        statuses = [page.status]
        for item in json.loads(page.read())["files"]:
            conn.request("GET", "/" + item["url"].removeprefix("../../"))
            response = conn.getresponse()
            body = response.read()
            statuses.append(response.status)
            assert hashlib.sha256(body).hexdigest() == item["hashes"]["sha256"]
        return statuses
    finally:
        conn.close()


def test_fifty_concurrent_clients(server: AsgiServer, house: Path) -> None:
    barrier = threading.Barrier(50, timeout=60)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: fetch_all(server.server_port, barrier, house), range(50)))
    assert results == [[200, 200, 200, 200]] * 50


_SERVE_SCRIPT = """
import logging, sys
from pathlib import Path
from wheelhouse.serve.static import serve
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
serve(Path(sys.argv[1]), "127.0.0.1", 0, ready=lambda url: print(url, flush=True))
print("returned", flush=True)
"""


def _vm_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_process_holds_fifty_clients_small_and_stops_on_signal(
    house: Path, signum: signal.Signals
) -> None:
    require("/proc", None if Path("/proc/self/status").exists() else "no /proc/self/status")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE_SCRIPT, str(house)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/simple/"), url
        port = int(url.split(":")[2].split("/")[0])
        barrier = threading.Barrier(50, timeout=60)
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(lambda _: fetch_all(port, barrier, house), range(50)))
        assert results == [[200, 200, 200, 200]] * 50
        peak_mib = _vm_kib(proc.pid, "VmHWM") / 1024
        assert peak_mib < 100, f"peak RSS {peak_mib:.1f} MiB"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert stdout == "returned\n"
    assert f"wheelhouse.serve._asgi stopped on {signal.Signals(signum).name}" in stderr
    assert f"wheelhouse.serve.static stopped serving {house}" in stderr
    assert stderr.count('"GET /simple/dep-two/ HTTP/1.1" 200') == 50
    assert "Traceback" not in stderr


# --- real installers against serve on loopback ------------------------------------------------


@pytest.mark.slow
def test_bundled_pip_installs_from_serve(server: AsgiServer, make_venv: Any) -> None:
    python = make_venv("old-pip")
    argv = [python, "-m", "pip", "install", "--no-cache-dir", "--index-url", server.url, "Foo.Bar"]
    result = run(argv, env=offline_env())
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")


@pytest.mark.slow
def test_newest_pip_installs_from_serve(
    server: AsgiServer, make_venv: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wheelhouse.serve.static")
    python = make_venv("new-pip", with_pip=False)
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result = run([*argv, "--index-url", server.url, "foo-bar"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")
    seen = " ".join(r.getMessage() for r in caplog.records)
    # Resolution used the PEP 658 files; the older dep-two wheel was never downloaded.
    assert f'GET /{WHEEL}.metadata HTTP/1.1" 200' in seen
    assert "GET /dep_two-1.5-py3-none-any.whl " not in seen


@pytest.mark.slow
def test_uv_installs_from_serve(server: AsgiServer, make_venv: Any, tmp_path: Path) -> None:
    uv = find_uv()
    python = make_venv("uv", with_pip=False)
    argv = [*uv, "pip", "install", "--no-config", "--cache-dir", tmp_path / "uvc"]
    result = run(
        [*argv, "--python", python, "--index-url", server.url, "foo-bar"], env=offline_env()
    )
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")
