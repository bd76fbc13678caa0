"""The pinned path's index pages: asked as plain PEP 503 HTML (the smallest answer), read fast."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packaging.version import Version

from tests.support.dists import DistFactory
from tests.support.pinned import chosen, run
from tests.support.server import Answer, IndexServer
from wheelhouse.resolve.from_pins import _parse_page, _same_version


def accepts(index: IndexServer, project: str) -> list[str]:
    return [h.get("Accept", "") for p, h in index.received if p == f"/simple/{project}/"]


def test_pages_are_asked_as_plain_html(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    index_server.json_pages = True  # the index could answer JSON; HTML is smaller

    assert chosen(run(tmp_path, "lib==1.0\n", index_server.url)) == {
        "lib": "lib-1.0-py3-none-any.whl"
    }
    assert accepts(index_server, "lib") == ["text/html"]


def test_an_index_that_refuses_html_is_asked_with_pips_accept_header(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    index_server.json_pages = True

    def json_only(path: str, headers: Mapping[str, str]) -> Answer | None:
        if path.startswith("/simple/") and headers.get("Accept") == "text/html":
            return 406, {"Content-Type": "text/plain"}, b"not acceptable"
        return None

    index_server.intercept(json_only)

    assert chosen(run(tmp_path, "lib==1.0\n", index_server.url)) == {
        "lib": "lib-1.0-py3-none-any.whl"
    }
    sent = accepts(index_server, "lib")
    assert sent[0] == "text/html"
    assert sent[1].startswith("application/vnd.pypi.simple.v1+json")
    assert len(sent) == 2


PAGE = """<!DOCTYPE html><html><head><base href="https://files.example/pkgs/">
<meta name="pypi:repository-version" content="1.1"></head><body>
<!-- <a href="lib-1.0-py3-none-any.whl#sha256=00">commented out</a> -->
<a href="lib-0.9-py3-none-any.whl#sha256=99">lib-0.9-py3-none-any.whl</a>
<a href="a/lib-1.0-py3-none-any.whl#sha256=AB&amp;md5=x" data-requires-python="&gt;=3.8"
   >lib-1.0-py3-none-any.whl</a>
<A HREF='b/lib-1.0.tar.gz#sha256=cd' data-yanked="">lib-1.0.tar.gz</A>
<a href="c/lib%2D1.0-cp311-none-any.whl">quoted</a>
<a href=d/lib-1.0-py2-none-any.whl>unquoted attribute</a>
<a>no href</a>
</body></html>
"""


def test_html_pages_parse_as_the_full_parser_does() -> None:
    keep = _same_version(Version("1.0"))

    fast = _parse_page(PAGE.encode(), "text/html", "https://index.example/simple/lib/", "lib", keep)

    assert [(c.filename, c.url, c.sha256, c.requires_python, c.yanked) for c in fast] == [
        (
            "lib-1.0-py3-none-any.whl",
            "https://files.example/pkgs/a/lib-1.0-py3-none-any.whl",
            "ab",
            ">=3.8",
            False,
        ),
        ("lib-1.0.tar.gz", "https://files.example/pkgs/b/lib-1.0.tar.gz", "cd", None, True),
        (
            "lib-1.0-cp311-none-any.whl",
            "https://files.example/pkgs/c/lib%2D1.0-cp311-none-any.whl",
            None,
            None,
            False,
        ),
        (
            "lib-1.0-py2-none-any.whl",
            "https://files.example/pkgs/d/lib-1.0-py2-none-any.whl",
            None,
            None,
            False,
        ),
    ]
