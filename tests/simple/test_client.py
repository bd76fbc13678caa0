"""The one page client: credentials stay on the index's origin across redirects, a refused
Accept is asked again, and a body past its limit is refused; against loopback servers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from tests.support.credentials import basic
from tests.support.server import Answer, IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.errors import UpstreamError
from wheelhouse.simple import fetch_page, fetch_project_page
from wheelhouse.simple.media import HTML_ONLY, PIP_ACCEPT

PAGE = b'<a href="/files/demo-1.0.tar.gz#sha256=' + b"a" * 64 + b'">demo-1.0.tar.gz</a>'


def pages_auth(server: IndexServer) -> list[tuple[str, str | None]]:
    return [(p, h.get("Authorization")) for p, h in server.received if p.startswith("/simple/")]


def answer(routes: Mapping[str, Answer]) -> Callable[[str, Mapping[str, str]], Answer | None]:
    def hook(path: str, headers: Mapping[str, str]) -> Answer | None:
        return routes.get(path)

    return hook


def test_credentials_follow_a_redirect_on_the_same_origin_only(
    index_server: IndexServer, other_port: IndexServer
) -> None:
    index_server.intercept(
        answer(
            {
                "/simple/demo/": (301, {"Location": "/simple/moved/"}, b""),
                "/simple/moved/": (302, {"Location": f"{other_port.url}demo/"}, b""),
            }
        )
    )
    other_port.intercept(answer({"/simple/demo/": (200, {"Content-Type": "text/html"}, PAGE)}))
    index_url = index_server.url.replace("//", "//u:s3cret@", 1)

    result = fetch_project_page(HttpClient(PipSettings()), index_url, "demo")

    assert result.status == "ok" and result.page is not None
    assert result.page.url == f"{other_port.url}demo/"
    assert [f.url for f in result.page.files] == [f"{other_port.base_url}files/demo-1.0.tar.gz"]
    secret = basic("u", "s3cret")
    assert pages_auth(index_server) == [("/simple/demo/", secret), ("/simple/moved/", secret)]
    assert pages_auth(other_port) == [("/simple/demo/", None)]


def test_configured_credentials_of_another_index_go_to_that_index_only(
    index_server: IndexServer, other_port: IndexServer
) -> None:
    index_server.intercept(
        answer({"/simple/demo/": (302, {"Location": f"{other_port.url}demo/"}, b"")})
    )
    other_port.intercept(answer({"/simple/demo/": (200, {"Content-Type": "text/html"}, PAGE)}))
    other_index = other_port.url.replace("//", "//o:th3rs@", 1)
    client = HttpClient(
        PipSettings.parse({"index-url": index_server.url, "extra-index-url": other_index})
    )

    answered = fetch_page(client, index_server.project_url("demo"))

    assert answered.status == 200 and answered.body == PAGE
    assert pages_auth(index_server) == [("/simple/demo/", None)]
    assert pages_auth(other_port) == [("/simple/demo/", basic("o", "th3rs"))]


def test_a_redirect_to_a_file_url_is_refused_naming_the_url_without_credentials(
    index_server: IndexServer,
) -> None:
    index_server.intercept(
        answer({"/simple/demo/": (302, {"Location": "file:///etc/passwd"}, b"")})
    )
    url = index_server.project_url("demo").replace("//", "//u:s3cret@", 1)

    with pytest.raises(UpstreamError) as caught:
        fetch_page(HttpClient(PipSettings()), url)

    assert caught.value.message == (
        f"{index_server.project_url('demo')} redirects to a file: URL; only http(s) is followed"
    )


def test_an_index_refusing_the_accept_header_is_asked_once_more_with_the_other(
    index_server: IndexServer,
) -> None:
    def refuse_html(path: str, headers: Mapping[str, str]) -> Answer | None:
        if path == "/simple/demo/" and headers.get("Accept") == HTML_ONLY:
            return 406, {"Content-Type": "text/plain"}, b"not acceptable"
        if path == "/simple/demo/":
            return 200, {"Content-Type": "text/html"}, PAGE
        return None

    index_server.intercept(refuse_html)

    answered = fetch_page(
        HttpClient(PipSettings()),
        index_server.project_url("demo"),
        accept=HTML_ONLY,
        if_refused=PIP_ACCEPT,
    )

    assert (answered.status, answered.body) == (200, PAGE)
    sent = [h.get("Accept") for p, h in index_server.received if p == "/simple/demo/"]
    assert sent == [HTML_ONLY, PIP_ACCEPT]


def test_validators_are_sent_and_a_304_reads_no_body(index_server: IndexServer) -> None:
    def revalidate(path: str, headers: Mapping[str, str]) -> Answer | None:
        if headers.get("If-None-Match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return 200, {"Content-Type": "text/html", "ETag": '"v1"'}, PAGE

    index_server.intercept(revalidate)
    client = HttpClient(PipSettings())

    first = fetch_project_page(client, index_server.url, "demo")
    again = fetch_project_page(client, index_server.url, "demo", etag=first.etag)

    assert (first.status, first.etag) == ("ok", '"v1"')
    assert (again.status, again.etag, again.page) == ("not-modified", '"v1"', None)


def test_a_page_past_the_limit_is_refused(index_server: IndexServer) -> None:
    index_server.intercept(answer({"/simple/demo/": (200, {"Content-Type": "text/html"}, PAGE)}))
    with pytest.raises(UpstreamError) as caught:
        fetch_page(HttpClient(PipSettings()), index_server.project_url("demo"), limit=len(PAGE) - 1)
    assert caught.value.message == (
        f"{index_server.project_url('demo')} sent more than {len(PAGE) - 1} bytes"
    )
