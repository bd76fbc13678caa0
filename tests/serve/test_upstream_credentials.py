"""An index's credentials go to its own origin (scheme, host and port) only, as pip's do:
never to another port of its host, by a link or by a redirect."""

from __future__ import annotations

from tests.support.credentials import basic
from tests.support.hostile import json_page, serve
from tests.support.proxy import JSON
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.serve._upstream import open_file
from wheelhouse.simple import fetch_project_page


def files_auth(server: IndexServer) -> list[tuple[str, str | None]]:
    return [(p, h.get("Authorization")) for p, h in server.received if p.startswith("/files/")]


def test_index_credentials_reach_its_own_origin_only(
    index_server: IndexServer, other_port: IndexServer
) -> None:
    here, there = "here-1.0-py3-none-any.whl", "there-1.0-py3-none-any.whl"
    moved = "moved-1.0-py3-none-any.whl"
    page = json_page(
        "demo",
        {
            here: f"../../files/{here}",  # relative: the index's own origin
            there: f"{other_port.files_url}{there}",  # same host, another port
            moved: f"../../files/{moved}",  # the index redirects it to the other port
        },
    )
    serve(index_server, {"demo": ({"Content-Type": JSON}, page)}, {here: b"here"})
    serve(other_port, {}, {there: b"there", moved: b"moved"})
    index_server.intercept(
        lambda path, headers: (
            (302, {"Location": f"{other_port.files_url}{moved}"}, b"")
            if path == f"/files/{moved}"
            else None
        )
    )
    index_url = index_server.url.replace("//", "//u:s3cret@", 1)
    client = HttpClient(PipSettings.parse({"index-url": index_url}))

    result = fetch_project_page(client, index_url, "demo")
    assert result.page is not None
    for file in result.page.files:
        response = open_file(client, file.url)
        try:
            assert response.read() == file.filename.split("-")[0].encode()
        finally:
            response.release_conn()

    assert files_auth(other_port) == [(f"/files/{there}", None), (f"/files/{moved}", None)]
    secret = basic("u", "s3cret")
    assert files_auth(index_server) == [(f"/files/{here}", secret), (f"/files/{moved}", secret)]


def test_credentials_from_pip_configuration_match_scheme_host_and_port(
    index_server: IndexServer, other_port: IndexServer
) -> None:
    serve(index_server, {}, {"a.whl": b"a"})
    serve(other_port, {}, {"b.whl": b"b"})
    # The index given with its default port spelled out still matches its URLs without it.
    config = {"index-url": f"http://u:p@127.0.0.1:{index_server.port}/simple/"}
    client = HttpClient(PipSettings.parse(config))
    for url in (index_server.files_url + "a.whl", other_port.files_url + "b.whl"):
        open_file(client, url).release_conn()
    assert files_auth(index_server) == [("/files/a.whl", basic("u", "p"))]
    assert files_auth(other_port) == [("/files/b.whl", None)]


def test_origins_normalise_default_ports() -> None:
    from wheelhouse._base._http import origin_of

    assert origin_of("https://Example.org/simple/") == origin_of("https://example.org:443/x")
    assert origin_of("http://example.org/") == ("http", "example.org", 80)
    assert origin_of("http://example.org/") != origin_of("https://example.org/")
    assert origin_of("http://example.org/") != origin_of("http://example.org:8080/")
