"""The one renderer: what it writes parses back to the same page, in both forms."""

from __future__ import annotations

import json

import pytest
from packaging.utils import canonicalize_name

from wheelhouse.simple import (
    PageFile,
    ProjectPage,
    parse_html_page,
    parse_json_page,
    parse_root,
    render_html,
    render_json,
    root_html,
    root_json,
)
from wheelhouse.simple.render import _dumps, _item, _item_json

URL = "https://index.example/simple/demo/"
SHA = "0123456789abcdef" * 4

FILES = (
    PageFile(
        "demo-1.0-py3-none-any.whl",
        "https://files.example/a/demo-1.0-py3-none-any.whl",
        {"sha256": SHA},
        requires_python=">=3.8,<4",
        yanked='bad <build> & "more"',
        size=1234,
        upload_time="2026-01-02T03:04:05.000006Z",
        core_metadata={"sha256": "ab" * 32},
        provenance="https://index.example/integrity/demo/1.0/demo-1.0-py3-none-any.whl/prov",
    ),
    PageFile("demo-1.0.tar.gz", "https://files.example/b/demo-1.0.tar.gz", {"sha256": SHA}),
    PageFile(
        "demo-2.0rc1-py3-none-any.whl",
        "https://files.example/c/demo-2.0rc1-py3-none-any.whl",
        {"sha256": SHA},
        yanked=True,
        core_metadata=True,
    ),
    PageFile("démo-3.0.zip", "https://files.example/d/d%C3%A9mo-3.0.zip", {}),
)


def _page(**changes: object) -> ProjectPage:
    fields: dict[str, object] = {
        "name": canonicalize_name("demo"),
        "url": URL,
        "files": FILES,
        "api_version": "1.1",
    }
    fields.update(changes)
    return ProjectPage(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "status", [("active", None), ("deprecated", "use <other> & co"), ("quarantined", None)]
)
@pytest.mark.parametrize("indent", [None, 2])
def test_json_round_trip(status: tuple[str, str | None], indent: int | None) -> None:
    api = "1.1" if status[0] == "active" else "1.4"
    page = _page(
        versions=("1.0", "2.0rc1", "3.0"),
        status=status[0],
        status_reason=status[1],
        api_version=api,
    )
    assert parse_json_page(render_json(page, indent=indent), URL, "demo") == page


@pytest.mark.parametrize(
    "status", [("active", None), ("archived", "gone & done"), ("quarantined", None)]
)
def test_html_round_trip(status: tuple[str, str | None]) -> None:
    api = "1.1" if status[0] == "active" else "1.4"
    # HTML carries neither sizes, upload times nor versions (PEP 503), nor a hash but sha256.
    files = tuple(
        PageFile(
            f.filename,
            f.url,
            f.hashes,
            f.requires_python,
            f.yanked,
            core_metadata=f.core_metadata,
            provenance=f.provenance,
        )
        for f in FILES
    )
    page = _page(files=files, status=status[0], status_reason=status[1], api_version=api)
    assert parse_html_page(render_html(page), URL, "demo") == page


def test_versions_when_the_page_gives_none_are_those_of_its_file_names() -> None:
    data = json.loads(render_json(_page()))
    assert data["versions"] == ["1.0", "2.0rc1", "3.0"]
    assert data["meta"] == {"api-version": "1.1"}
    assert "project-status" not in data


def test_the_fast_json_writer_writes_what_json_dumps_writes() -> None:
    fast = [f for f in FILES if _item_json(f) is not None]
    assert [f.filename for f in fast] == [
        "demo-1.0.tar.gz",
        "demo-2.0rc1-py3-none-any.whl",
    ]
    for file in fast:
        assert _item_json(file) == _dumps(_item(file))
    text = render_json(_page()).decode()
    assert json.loads(text) == json.loads(render_json(_page(), indent=2))
    assert "\n" not in text


def test_html_escapes_every_value() -> None:
    text = render_html(_page(files=FILES[:1])).decode()
    assert 'data-yanked="bad &lt;build&gt; &amp; &quot;more&quot;"' in text
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in text
    assert f'href="https://files.example/a/demo-1.0-py3-none-any.whl#sha256={SHA}"' in text


def test_root_listing_round_trip() -> None:
    names = ["a", "b-c", "d.e"]
    assert parse_root(root_html(names), "text/html", URL) == names
    assert parse_root(root_json(names), "application/json", URL) == names
    assert root_json(names, indent=2).endswith(b"}\n")
    assert root_html(names).startswith(b"<!DOCTYPE html>\n")
