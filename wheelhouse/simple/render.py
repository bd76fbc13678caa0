"""Write a project page or the root listing as PEP 503 HTML or PEP 691 JSON (PEP 592, 658/714,
700, 740, 792), from the page model: the static index and the proxy both write theirs here."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse.simple.media import API_VERSION, STATUS_API_VERSION
from wheelhouse.simple.model import PageFile, ProjectPage

__all__ = ["render_html", "render_json", "root_html", "root_json"]

# json.dumps with arguments makes a new encoder per call: one made once encodes 15,000 files
# a page without that cost. Same output as json.dumps(separators=..., ensure_ascii=False).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_string = json.encoder.encode_basestring  # how that encoder writes a str (C, when available)


def render_json(page: ProjectPage, *, indent: int | None = None) -> bytes:
    """The PEP 691 JSON form of ``page``: compact (one line), or indented and ending in a
    newline (the static index's files, for people reading them). ``versions`` are the page's,
    else those its file names give."""
    head: dict[str, Any] = {
        "meta": {"api-version": _api_version(page)},
        "name": page.name,
        "versions": list(page.versions) if page.versions is not None else _versions(page.files),
    }
    status = _status(page)
    if indent is not None:
        document = {**head, "files": [_item(f) for f in page.files]}
        if status is not None:
            document["project-status"] = status
        return (json.dumps(document, indent=indent, ensure_ascii=False) + "\n").encode()
    # Encoded one file at a time: a dict per file for pydantic-core's 15,000 files, then its
    # 6.5 MB dump and encoding, held 25 MB at once, and 20 cold clients asked for it together.
    pieces = [_dumps(head)[:-1] + b',"files":[']
    for number, file in enumerate(page.files):
        item = _item_json(file) or _dumps(_item(file))
        pieces.append(b"," + item if number else item)
    pieces.append(b"]" + (b',"project-status":' + _dumps(status) if status else b"") + b"}")
    return b"".join(pieces)


def render_html(page: ProjectPage) -> bytes:
    """The PEP 503 HTML form of ``page``: a link per file, the sha256 in its fragment."""
    links = []
    for file in page.files:
        href = file.url if file.sha256 is None else f"{file.url}#sha256={file.sha256}"
        attrs = [f'href="{html.escape(href)}"']
        if file.requires_python:
            attrs.append(f'data-requires-python="{html.escape(file.requires_python)}"')
        if file.core_metadata:
            value = html.escape(_core_metadata_attr(file.core_metadata))
            # PEP 714 renamed the attribute; the old name is kept for pip < 23.2 and friends.
            attrs.append(f'data-core-metadata="{value}"')
            attrs.append(f'data-dist-info-metadata="{value}"')
        if file.yanked is not False:
            reason = file.yanked if isinstance(file.yanked, str) else ""
            attrs.append(f'data-yanked="{html.escape(reason)}"')
        if file.provenance:
            attrs.append(f'data-provenance="{html.escape(file.provenance)}"')
        links.append(f"    <a {' '.join(attrs)}>{html.escape(file.filename)}</a><br>\n")
    head = ""
    if page.status != "active":
        head = f'    <meta name="pypi:project-status" content="{html.escape(page.status)}">\n'
        if page.status_reason:
            reason = html.escape(page.status_reason)
            head += f'    <meta name="pypi:project-status-reason" content="{reason}">\n'
    return _html(f"Links for {page.name}", "".join(links), _api_version(page), head)


def root_html(names: Iterable[str]) -> bytes:
    """The PEP 503 root listing: a link per project name."""
    links = "".join(
        f'    <a href="{html.escape(quote(name) + "/")}">{html.escape(name)}</a><br>\n'
        for name in names
    )
    return _html("Simple index", links, API_VERSION)


def root_json(names: Iterable[str], *, indent: int | None = None) -> bytes:
    """The PEP 691 root listing, compact or indented (as ``render_json``)."""
    document = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
    if indent is not None:
        return (json.dumps(document, indent=indent, ensure_ascii=False) + "\n").encode()
    return _dumps(document)


def _api_version(page: ProjectPage) -> str:
    # The version the page's content needs: a status is PEP 792's (api 1.4).
    return API_VERSION if page.status == "active" else STATUS_API_VERSION


def _status(page: ProjectPage) -> dict[str, str] | None:
    if page.status == "active":
        return None
    status: dict[str, str] = {"status": page.status}
    if page.status_reason:
        status["reason"] = page.status_reason
    return status


def _item(file: PageFile) -> dict[str, Any]:
    """One file's JSON object; its keys in the order every page of ours writes them."""
    item: dict[str, Any] = {"filename": file.filename, "url": file.url, "hashes": file.hashes}
    if file.requires_python:
        item["requires-python"] = file.requires_python
    # Only the PEP 714 key: pip 22.3 to 23.1 crash on a JSON "dist-info-metadata" key.
    item["core-metadata"] = file.core_metadata
    if file.size is not None:
        item["size"] = file.size
    if file.yanked is not False:
        item["yanked"] = file.yanked or True  # PEP 592/691: the reason, or true
    if file.upload_time:
        item["upload-time"] = file.upload_time
    if file.provenance:
        item["provenance"] = file.provenance
    return item


def _item_json(file: PageFile) -> bytes | None:
    """``_dumps(_item(file))`` written directly (a third of the time, for pages of 15,000
    files); None when a value is not of the usual type."""
    filename, url, hashes, requires = file.filename, file.url, file.hashes, file.requires_python
    yanked, size, uploaded, metadata = file.yanked, file.size, file.upload_time, file.core_metadata
    sha256 = hashes.get("sha256")
    if not (
        type(filename) is str
        and type(url) is str
        and len(hashes) == 1
        and type(sha256) is str
        and (not requires or type(requires) is str)
        and (yanked is False or yanked is True or (type(yanked) is str and yanked))
        and (size is None or type(size) is int)
        and (not uploaded or type(uploaded) is str)
        and (
            type(metadata) is bool
            or (
                type(metadata) is dict
                and len(metadata) == 1
                and type(metadata.get("sha256")) is str
            )
        )
        and not file.provenance
    ):
        return None
    text = f'{{"filename":{_string(filename)},"url":{_string(url)}'
    text += f',"hashes":{{"sha256":{_string(sha256)}}}'
    if requires:
        text += f',"requires-python":{_string(requires)}'
    if isinstance(metadata, dict):
        text += f',"core-metadata":{{"sha256":{_string(metadata["sha256"])}}}'
    else:
        text += ',"core-metadata":' + ("true" if metadata else "false")
    if size is not None:
        text += f',"size":{int.__repr__(size)}'
    if yanked:
        text += ',"yanked":' + ("true" if yanked is True else _string(yanked))
    if uploaded:
        text += f',"upload-time":{_string(uploaded)}'
    return (text + "}").encode()


def _is_str(metadata: dict[str, str]) -> bool:
    return type(metadata["sha256"]) is str


def _core_metadata_attr(value: bool | dict[str, str]) -> str:
    if isinstance(value, dict):
        algo = "sha256" if "sha256" in value else next(iter(value))
        return f"{algo}={value[algo]}"
    return "true"


def _dumps(value: object) -> bytes:
    return _ENCODER.encode(value).encode()


def _html(title: str, body: str, version: str, head: str = "") -> bytes:
    title = html.escape(title)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{version}">\n'
        f"{head}    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
        f"{body}  </body>\n</html>\n"
    ).encode()


def _versions(files: Iterable[PageFile]) -> list[str]:
    found: set[Version] = set()
    for file in files:
        name = file.filename
        try:
            if name.endswith(".whl"):
                found.add(parse_wheel_filename(name)[1])
            else:
                found.add(parse_sdist_filename(name)[1])
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
    return [str(v) for v in sorted(found)]
