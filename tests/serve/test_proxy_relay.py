"""`serve --upstream` relaying PyPI-shaped pages (``simple.relay``): what real pip and uv get,
what a restarted proxy still serves, and links a client makes up, tried from outside."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.dists import DistFactory
from tests.support.process import wait_until
from tests.support.proxy import CLIENT_ACCEPT, JSON, StartProxy, page, pip_download, stored_files
from tests.support.server import IndexServer


@pytest.fixture
def pypi_like(dists: DistFactory, index_server: IndexServer) -> IndexServer:
    """The loopback index writing its JSON pages as PyPI does: absolute links on one host."""
    dists.wheel("alpha", "1.0", requires=["beta>=2"])
    dists.sdist("alpha", "1.0")
    dists.wheel("beta", "2.0")
    index_server.json_pages = True
    index_server.absolute_links = True
    return index_server


def link_path(listed: dict[str, Any], project: str) -> str:
    return urlsplit(urljoin(f"/simple/{project}/", str(listed["url"]))).path


def stored_page(store: Path, project: str) -> bytes:
    (path,) = (store / "pages").rglob(f"{project}.json")
    return path.read_bytes()


def test_a_pypi_shaped_page_is_relayed_and_its_files_served_verified(
    pypi_like: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = start_proxy("--upstream", pypi_like.url)
    listed = {f["filename"]: f for f in page(proxy, "alpha")["files"]}
    wheel, sdist = listed["alpha-1.0-py3-none-any.whl"], listed["alpha-1.0.tar.gz"]
    # Linked on the proxy by their path on upstream's host; the wheel's METADATA offered.
    assert link_path(wheel, "alpha") == "/files/alpha/via/files/alpha-1.0-py3-none-any.whl"
    assert link_path(sdist, "alpha") == "/files/alpha/via/files/alpha-1.0.tar.gz"
    assert (wheel.get("core-metadata"), sdist.get("core-metadata")) == (True, None)
    assert f"127.0.0.1:{urlsplit(pypi_like.url).port}" not in json.dumps(listed)
    # The record keeps upstream's page as it came.
    head = json.loads(stored_page(tmp_path / "store", "alpha").partition(b"\n")[0])
    assert head["relay"]["files"] == 2

    status, _, metadata = proxy.get(link_path(wheel, "alpha") + ".metadata")
    assert status == 200 and b"Requires-Dist: beta>=2" in metadata
    result = pip_download(proxy, tmp_path / "dl", "alpha==1.0", extra=("--only-binary", ":all:"))
    assert result.returncode == 0, result.stderr
    got = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert got == ["alpha-1.0-py3-none-any.whl", "beta-2.0-py3-none-any.whl"]
    for name in got:  # stored under their sha256, the bytes upstream's
        data = (tmp_path / "dl" / name).read_bytes()
        assert (pypi_like.root / name).read_bytes() == data
        sha256 = hashlib.sha256(data).hexdigest()
        assert any(p.name == sha256 for p in stored_files(tmp_path / "store"))


@pytest.mark.slow
def test_uv_installs_through_relayed_pages(
    pypi_like: IndexServer, start_proxy: StartProxy, make_venv: Any
) -> None:
    proxy = start_proxy("--upstream", pypi_like.url)
    uv = shutil.which("uv")
    assert uv is not None, "uv is a test dependency"
    python = make_venv("uv-venv", with_pip=False)
    proc = subprocess.run(
        [uv, "pip", "install", "--python", str(python), "--index-url", proxy.url, "--no-cache",
         "--only-binary", ":all:", "alpha"],
        capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "+ alpha==1.0" in proc.stderr and "+ beta==2.0" in proc.stderr
    assert pypi_like.count("/files/alpha-1.0-py3-none-any.whl") == 1


def test_a_restarted_proxy_serves_what_relayed_pages_link(
    pypi_like: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    first = start_proxy("--upstream", pypi_like.url, "--ttl", "3600")
    wheel = next(f for f in page(first, "alpha")["files"] if f["filename"].endswith(".whl"))
    first.stop()
    again = start_proxy("--upstream", pypi_like.url, "--ttl", "3600")
    status, _, body = again.get(link_path(wheel, "alpha"))
    assert status == 200
    assert body == (pypi_like.root / "alpha-1.0-py3-none-any.whl").read_bytes()
    status, _, metadata = again.get(link_path(wheel, "alpha") + ".metadata")
    with zipfile.ZipFile(pypi_like.root / "alpha-1.0-py3-none-any.whl") as whl:
        assert (status, metadata) == (200, whl.read("alpha-1.0.dist-info/METADATA"))
    assert pypi_like.count("/simple/alpha/") == 1  # the page was not asked again


@pytest.mark.parametrize(
    "path",
    [
        "/files/alpha/via/files/gamma-1.0-py3-none-any.whl",  # not on the page
        "/files/alpha/via/files/alpha-1.0-py3-none-any",  # a prefix of a link
        "/files/beta/via/files/alpha-1.0-py3-none-any.whl",  # another project's page
        "/files/alpha/via/files/../files/alpha-1.0-py3-none-any.whl",
        "/files/alpha/via/files/%2e%2e/simple/alpha/",
        "/files/alpha/via//files/alpha-1.0-py3-none-any.whl",
        "/files/alpha/via/" + "a/" * 600 + "x.whl",  # longer than any link
    ],
)
def test_a_made_up_link_is_not_found_and_upstream_is_not_asked(
    path: str, pypi_like: IndexServer, start_proxy: StartProxy
) -> None:
    proxy = start_proxy("--upstream", pypi_like.url)
    page(proxy, "alpha"), page(proxy, "beta")
    before = list(pypi_like.requests)
    status, _, _ = proxy.get(path, CLIENT_ACCEPT)
    assert status == 404
    assert pypi_like.requests == before  # nothing made up reaches upstream


def test_a_relayed_link_whose_file_has_no_sha256_is_refused(
    pypi_like: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    """The page is relayed as it is (the client sees a file without a hash), but the proxy
    hands out nothing it cannot check: the link answers 404 and upstream is not asked."""
    origin = pypi_like.url.removesuffix("simple/")
    body = json.dumps(
        {"files": [{"filename": "alpha-1.0.tar.gz", "hashes": {},
                    "url": f"{origin}files/alpha-1.0.tar.gz"}], "name": "alpha"}
    ).encode()  # fmt: skip
    pypi_like.intercept(
        lambda path, headers: (200, {"Content-Type": JSON}, body)
        if path.startswith("/simple/alpha/") else None
    )  # fmt: skip
    proxy = start_proxy("--upstream", pypi_like.url)
    page(proxy, "alpha")
    status, _, _ = proxy.get("/files/alpha/via/files/alpha-1.0.tar.gz")
    assert status == 404
    assert pypi_like.count("/files/alpha-1.0.tar.gz") == 0


def test_an_html_client_of_a_relayed_page_gets_it_parsed_and_linked_by_sha256(
    pypi_like: IndexServer, start_proxy: StartProxy
) -> None:
    proxy = start_proxy("--upstream", pypi_like.url)
    page(proxy, "alpha")  # stored relayed
    status, _, html = proxy.get("/simple/alpha/", "text/html")
    assert status == 200
    wheel = (pypi_like.root / "alpha-1.0-py3-none-any.whl").read_bytes()
    sha256 = hashlib.sha256(wheel).hexdigest()
    link = f"/files/alpha/{sha256}/alpha-1.0-py3-none-any.whl"
    assert link.encode() in html and b"/via/" not in html
    status, _, body = proxy.get(link)
    assert (status, body) == (200, wheel)


def test_a_relayed_page_is_rendered_parsed_once_its_metadata_is_known(
    pypi_like: IndexServer, start_proxy: StartProxy
) -> None:
    """The first clients get the page relayed; once a wheel's METADATA is known, the page is
    parsed and rendered behind them (sha256 links, the METADATA hash), and the links the
    first clients hold still answer."""
    proxy = start_proxy("--upstream", pypi_like.url)
    wheel = next(f for f in page(proxy, "alpha")["files"] if f["filename"].endswith(".whl"))
    status, _, metadata = proxy.get(link_path(wheel, "alpha") + ".metadata")
    assert status == 200

    def listed() -> dict[str, Any]:
        return next(f for f in page(proxy, "alpha")["files"] if f["filename"] == wheel["filename"])

    assert wait_until(lambda: "/via/" not in listed()["url"], timeout=30)
    again = listed()
    sha256 = hashlib.sha256((pypi_like.root / wheel["filename"]).read_bytes()).hexdigest()
    assert link_path(again, "alpha") == f"/files/alpha/{sha256}/{wheel['filename']}"
    assert again["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    status, _, body = proxy.get(link_path(wheel, "alpha"))  # the relayed link still answers
    assert (status, body) == (200, (pypi_like.root / wheel["filename"]).read_bytes())
