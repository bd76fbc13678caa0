"""The one page parser: exact outcomes for HTML and JSON pages, and hostile pages refused or
read in bounded time."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from wheelhouse.errors import MalformedUploadTime, UpstreamError
from wheelhouse.simple import PageFile, parse_html_page, parse_json_page, parse_page, parse_root
from wheelhouse.simple.parse import MAX_FILES

PAGE = "https://user:secret@index.example/simple/demo/"
SHA = "a" * 64


def test_html_page_gives_every_field_it_can_carry() -> None:
    body = f"""<!DOCTYPE html><html><head>
      <meta name="pypi:repository-version" content="1.4">
      <meta name="pypi:project-status" content="deprecated">
      <meta name="pypi:project-status-reason" content="use &quot;other&quot;">
      <base href="https://files.example/pkgs/"></head><body>
      <!-- <a href="demo-0.1.tar.gz">commented out</a> -->
      <a href="a/demo-1.0-py3-none-any.whl#sha256={SHA.upper()}&amp;md5=X"
         data-requires-python="&gt;=3.8" data-core-metadata="sha256=BB"
         data-dist-info-metadata="sha256=cc" data-yanked=""
         data-provenance="https://user:secret@index.example/integrity/demo.prov"
         >demo-1.0-py3-none-any.whl</a><br>
      <A HREF='b/demo-1.0.tar.gz' data-yanked="bad build" DATA-DIST-INFO-METADATA=true
         data-provenance="https://elsewhere.example/p">  demo-1.0.tar.gz </A>
      <a href=c/demo-2.0.zip>demo-<b>2.0</b>.zip</a>
      <a>no href</a>
      <a href="ftp://files.example/demo-3.0.tar.gz">demo-3.0.tar.gz</a>
    </body></html>""".encode()

    page = parse_html_page(body, PAGE, "Demo")

    assert (page.name, page.url, page.api_version, page.versions) == ("demo", PAGE, "1.4", None)
    assert (page.status, page.status_reason) == ("deprecated", 'use "other"')
    assert page.files == (
        PageFile(
            filename="demo-1.0-py3-none-any.whl",
            url="https://files.example/pkgs/a/demo-1.0-py3-none-any.whl",
            hashes={"sha256": SHA, "md5": "x"},
            requires_python=">=3.8",
            yanked=True,
            core_metadata={"sha256": "bb"},
            provenance="https://user:secret@index.example/integrity/demo.prov",
        ),
        PageFile(
            filename="demo-1.0.tar.gz",
            url="https://files.example/pkgs/b/demo-1.0.tar.gz",
            yanked="bad build",
            core_metadata=True,
        ),
        PageFile("demo-2.0.zip", "https://files.example/pkgs/c/demo-2.0.zip"),
    )


def test_json_page_gives_every_field_it_can_carry() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.4"},
            "name": "Demo",
            "versions": ["1.0", "2.0"],
            "project-status": {"status": "archived", "reason": "done"},
            "files": [
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "../../files/demo-1.0-py3-none-any.whl#sha256=ignored",
                    "hashes": {"SHA256": SHA},
                    "requires-python": ">=3.8",
                    "yanked": "broken",
                    "size": 12,
                    "upload-time": "2026-01-01T00:00:00.000000Z",
                    "core-metadata": {"sha256": "BB"},
                    "provenance": "../../integrity/demo-1.0-py3-none-any.whl/provenance",
                },
                {
                    "filename": "demo-2.0.tar.gz",
                    "url": "https://files.example/demo-2.0.tar.gz#sha256=CD",
                    "hashes": {},
                    "yanked": False,
                    "dist-info-metadata": True,
                },
                {"filename": "evil-1.0.tar.gz", "url": "file:///etc/passwd", "hashes": {}},
            ],
        }
    ).encode()

    page = parse_json_page(body, PAGE, "demo")

    assert (page.name, page.api_version, page.versions) == ("demo", "1.4", ("1.0", "2.0"))
    assert (page.status, page.status_reason) == ("archived", "done")
    assert page.files == (
        PageFile(
            filename="demo-1.0-py3-none-any.whl",
            url="https://user:secret@index.example/files/demo-1.0-py3-none-any.whl",
            hashes={"sha256": SHA},
            requires_python=">=3.8",
            yanked="broken",
            size=12,
            upload_time="2026-01-01T00:00:00.000000Z",
            core_metadata={"sha256": "bb"},
            provenance=(
                "https://user:secret@index.example/integrity/demo-1.0-py3-none-any.whl/provenance"
            ),
        ),
        PageFile(
            filename="demo-2.0.tar.gz",
            url="https://files.example/demo-2.0.tar.gz",
            hashes={"sha256": "cd"},
            core_metadata=True,
        ),
    )


def test_parse_page_chooses_by_content_type_and_keep_filters_by_name() -> None:
    html = b'<a href="x/demo-1.0.tar.gz">demo-1.0.tar.gz</a><a href="demo-2.0.tar.gz">2</a>'
    wanted = parse_page(html, "text/html; charset=utf-8", PAGE, "demo", lambda n: "2.0" in n)
    assert [f.filename for f in wanted.files] == ["2"]  # kept by the URL's name, named by text
    as_json = json.dumps({"files": [{"filename": "demo-1.0.tar.gz", "url": "a"}]}).encode()
    parsed = parse_page(as_json, "application/vnd.pypi.simple.v1+json", PAGE, "demo")
    assert [f.url for f in parsed.files] == ["https://user:secret@index.example/simple/demo/a"]


def test_a_malformed_json_page_is_one_error_without_credentials() -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_json_page(b'{"files": [{"url": "x"}]}', PAGE, "demo")
    assert caught.value.message == (
        "https://index.example/simple/demo/ sent a malformed PEP 691 page: KeyError('filename')"
    )
    assert caught.value.url == "https://index.example/simple/demo/"


def test_a_malformed_upload_time_names_the_file_and_is_not_checked_for_files_left_out() -> None:
    body = json.dumps(
        {"files": [{"filename": "demo-1.0.tar.gz", "url": "a", "upload-time": "tuesday"}]}
    ).encode()
    with pytest.raises(MalformedUploadTime) as caught:
        parse_json_page(body, PAGE, "Demo")
    assert caught.value.message == (
        "https://index.example/simple/demo/ gives demo file 'demo-1.0.tar.gz' the upload-time "
        "'tuesday', which is not an ISO 8601 time; the page is not used"
    )
    assert (caught.value.filename, caught.value.value) == ("demo-1.0.tar.gz", "tuesday")
    assert parse_json_page(body, PAGE, "demo", lambda name: False).files == ()


@pytest.mark.parametrize("kind", ["html", "json"])
def test_a_page_of_more_files_than_any_project_has_is_refused(kind: str) -> None:
    if kind == "html":
        body = b'<a href="b">a</a>' * (MAX_FILES + 1)
    else:
        item = b'{"filename":"a","url":"b"},'
        body = b'{"files":[' + item * MAX_FILES + b'{"filename":"a","url":"b"}]}'
    with pytest.raises(UpstreamError) as caught:
        parse_page(body, "application/json" if kind == "json" else "text/html", PAGE, "x")
    assert caught.value.message == (
        "https://index.example/simple/demo/ sent a page of more than 100000 files, more than "
        "any real project has"
    )


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b"<a " * 2_000_000, False),  # tags that never close
        (b"<!--" * 1_500_000, False),  # comments that never close
        (b"<a href='" * 600_000, False),  # quotes that never close
        (b'<a href="x">' * 500_000, True),  # anchors that never close
        (b"<" * 6_000_000, False),
        (b'<a href="x">' + b"<" * 3_000_000 + b"</a>", False),  # in an anchor's text
        (b'<a href="x">' + b"<!--" * 1_000_000 + b"</a>", False),
    ],
    ids=["open-tags", "open-comments", "open-quotes", "open-anchors", "angles", "text", "text-2"],
)
def test_hostile_html_is_read_in_bounded_time(body: bytes, refused: bool) -> None:
    started = time.monotonic()
    try:
        files = parse_html_page(body, PAGE, "x").files
    except UpstreamError as exc:
        files = ()
        assert refused and "more than 100000 files" in exc.message
    else:
        assert not refused
    assert files in ((), (PageFile("x", "https://user:secret@index.example/simple/demo/x"),))
    assert time.monotonic() - started < 5


def test_deeply_nested_json_is_a_malformed_page() -> None:
    with pytest.raises(UpstreamError, match="malformed PEP 691 page"):
        parse_json_page(b"[" * 1_000_000 + b"]" * 1_000_000, PAGE, "x")


def test_names_are_data_a_file_name_is_never_resolved() -> None:
    body = b'<a href="../../x/evil-1.0.tar.gz">../../../etc/passwd</a>'
    (file,) = parse_html_page(body, "https://index.example/simple/evil/", "evil").files
    assert file.filename == "../../../etc/passwd"
    assert file.url == "https://index.example/x/evil-1.0.tar.gz"


def test_root_listing_in_both_forms() -> None:
    html = b'<a href="a/">A_b</a>\n<a href="c/"> ../c </a><a href="d/"></a>'
    assert parse_root(html, "text/html", PAGE) == ["A_b", "../c"]
    body = json.dumps({"projects": [{"name": "A_b"}, {"name": "../c"}]}).encode()
    assert parse_root(body, "application/vnd.pypi.simple.v1+json", PAGE) == ["A_b", "../c"]
    with pytest.raises(UpstreamError) as caught:
        parse_root(b'{"projects": 3}', "application/json", PAGE)
    assert caught.value.message == (
        "https://index.example/simple/demo/ sent a malformed PEP 691 root page: "
        "object of type 'int' has no len()"
    )


class _Reference(HTMLParser):
    """The anchors as html.parser reads them: the parser this package replaced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str], str]] = []
        self._current: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current, self._text = {k: v or "" for k, v in attrs}, []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.links.append((self._current, "".join(self._text)))
            self._current = None


@pytest.mark.parametrize(
    "page",
    [
        '<a href="x.whl#sha256=AB" data-requires-python="&gt;=3.8">x.whl</a>',
        "<A HREF='y.tar.gz' DATA-YANKED>  y.tar.gz\n</A>",
        '<a href=z.zip data-yanked="">z&amp;.zip</a><a href="w">w<br>x</a>',
        '<a href="1">one<a href="2">two</a>',
        '<a href="q" data-requires-python=">=3.8">q > r</a>',
        '<a data-x="1" href="first" href="second">dup</a>',
        '<a href="s"/><a href="t">t</a>',
        '<a data-href="u" href="v">v<!-- c -->w</a><a href="x">x<br/></a>',
    ],
)
def test_html_anchors_read_as_html_parser_reads_them(page: str) -> None:
    reference = _Reference()
    reference.feed(page)
    reference.close()
    expected = [
        (a.get("href"), label.strip(), a.get("data-requires-python"), a.get("data-yanked"))
        for a, label in reference.links
        if a.get("href")
    ]

    parsed = parse_html_page(page.encode(), "https://i.example/simple/x/", "x")

    got = [
        (
            f.url.rsplit("/", 1)[-1] + ("#sha256=AB" if f.sha256 else ""),
            f.filename,
            f.requires_python,
            None if f.yanked is False else "" if f.yanked is True else f.yanked,
        )
        for f in parsed.files
    ]
    assert [(h.lower() if h else h, *rest) for h, *rest in got] == [
        (h.lower() if h else h, label or h.rsplit("/", 1)[-1], *rest)
        for h, label, *rest in expected
    ]


@pytest.mark.parametrize(
    "anchor",
    [
        '<a href="https://f.example/p/demo-1.0-py3-none-any.whl#sha256=ab">x</a>',
        "<a href='../demo-1.0.tar.gz'>x</a>",
        '<A HREF="demo-1.0.zip">x</A>',
        '<a\thref="demo%2Bx-1.0.tar.gz">x</a>',
        '<a href="demo-1.0.tar.gz?a=1&amp;b=2#md5=0">x</a>',
        '<a data-requires-python="&gt;=3" href="demo-1.0.tar.gz">x</a>',
        '<a href="demo-1.0.tar.gz>x</a>',
    ],
)
def test_the_keep_filter_is_asked_the_name_a_full_read_gives(anchor: str) -> None:
    asked: list[str] = []
    parse_html_page(anchor.encode(), PAGE, "demo", lambda name: asked.append(name) or True)
    full = parse_html_page(anchor.encode(), PAGE, "demo")
    assert asked == [unquote(f.url.rsplit("/", 1)[-1]) for f in full.files]
