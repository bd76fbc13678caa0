"""What tests ask of a `wheelhouse serve --upstream` proxy (a ServeProcess): its pages, its
store, pip through it; and the Simple API's media types."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from tests.support.process import ServeProcess, run_command

StartProxy = Callable[..., ServeProcess]


def proxy_store(proxy: ServeProcess) -> Path:
    """The proxy's ``--store`` folder."""
    return Path(proxy.args[proxy.args.index("--store") + 1])


def linked_files(root: Path) -> dict[str, str]:
    """Every file the static index under ``root/simple`` links, filename -> sha256 it
    promises, read from the JSON and HTML pages without the code under test; fails the test
    when a page links a file that is missing or whose bytes do not match."""
    promised: dict[str, str] = {}
    simple = root / "simple"
    for page in sorted(simple.glob("*/index.json")):
        data = json.loads(page.read_text(encoding="utf-8"))
        assert data["meta"]["api-version"] == "1.1"
        for item in data["files"]:
            target = Path(unquote(urlsplit(urljoin(page.as_uri(), item["url"])).path))
            assert target.is_file(), f"{page} links {item['filename']}, which is missing"
            digest = hashlib.sha256(target.read_bytes()).hexdigest()
            assert digest == item["hashes"]["sha256"], f"{page} promises other bytes"
            assert item["size"] == target.stat().st_size
            core = item["core-metadata"]
            if item["filename"].endswith(".whl"):
                metadata = Path(str(target) + ".metadata").read_bytes()
                assert core == {"sha256": hashlib.sha256(metadata).hexdigest()}
            promised[item["filename"]] = digest
        html_text = (page.parent / "index.html").read_text(encoding="utf-8")
        for filename, digest in promised.items():
            if filename in {i["filename"] for i in data["files"]}:
                assert f"#sha256={digest}" in html_text
    return promised


JSON = "application/vnd.pypi.simple.v1+json"


HTML = "application/vnd.pypi.simple.v1+html"


CLIENT_ACCEPT = f"{JSON}, {HTML};q=0.2, text/html;q=0.01"


def pip_download(
    proxy: ServeProcess, dest: Path, *requirements: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The test environment's pip downloading through the proxy (a real client, no venv)."""
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-cache-dir",
        "--disable-pip-version-check",
    ]
    argv += ["--index-url", proxy.url, "-d", str(dest), *extra, *requirements]
    return run_command(argv)


def page(proxy: ServeProcess, project: str) -> dict[str, Any]:
    status, headers, body = proxy.get(f"/simple/{project}/", CLIENT_ACCEPT)
    assert status == 200, body
    assert headers["content-type"] == JSON
    data: dict[str, Any] = json.loads(body)
    return data


class _Http10(http.client.HTTPConnection):
    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


def raw_get(
    proxy: ServeProcess, path: str, timeout: float = 60, *, http10: bool = False
) -> tuple[str, bytes]:
    """``(status, body)`` as a client that checks framing sees it: "incomplete" when the
    connection ended before the body did (Content-Length or chunked framing). An HTTP/1.0
    client has no chunked framing: without a Content-Length, the end of the connection is the
    end of the body, so a cut-off body looks complete to it."""
    parts = urlsplit(proxy.base)
    kind = _Http10 if http10 else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            return "incomplete", exc.partial
        return str(response.status), body
    except (ConnectionError, http.client.RemoteDisconnected) as exc:
        return "broken", str(exc).encode()
    finally:
        conn.close()


def stored_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "files").rglob("*") if p.is_file())


def _big_wheel(
    dest: Path, name: str = "big", version: str = "1.0", requires: tuple[str, ...] = ()
) -> Path:
    """A valid wheel with 1 MB of incompressible data before its METADATA (past the size the
    proxy fetches whole for METADATA, so it reads this one by range requests)."""
    path = dest / f"{name}-{version}-py3-none-any.whl"
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}/blob.bin", os.urandom(1024 * 1024))
        archive.writestr(f"{dist_info}/METADATA", metadata)
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    return path
