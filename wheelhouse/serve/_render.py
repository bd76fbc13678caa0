"""The proxy's project pages: PEP 503 HTML and PEP 691 JSON (api 1.1, PEP 700), with PEP 592
yanked, requires-python and PEP 658/714 metadata, every file URL pointing back at the proxy."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelhouse.house.index import API_VERSION, STATUS_API_VERSION
from wheelhouse.house.manifest import PROVENANCE_SUFFIX
from wheelhouse.serve._upstream import UpstreamFile

_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
# json.dumps with arguments makes a new encoder per call: one made once encodes 15,000 files
# a page without that cost. Same output as json.dumps(separators=..., ensure_ascii=False).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_string = json.encoder.encode_basestring  # how that encoder writes a str (C, when available)

__all__ = ["Listed", "file_path", "render_html", "render_json", "root_html", "root_json"]


class Listed(NamedTuple):
    """One file as the proxy lists it: upstream's description plus what the proxy knows.
    (A tuple: made 15,000 times a page, a frozen dataclass cost three times as much.)"""

    file: UpstreamFile
    sha256: str
    # PEP 658: the sha256 of the METADATA we serve when known, True when we serve it but do
    # not know its hash yet, False for sdists.
    metadata: str | bool


def file_path(project: str, sha256: str, filename: str) -> str:
    """The proxy path of a file: content-addressed, the filename last for clients' sake."""
    return f"/files/{_quoted(project)}/{sha256}/{_quoted(filename)}"


def _quoted(name: str) -> str:
    # quote() leaves these characters alone; most names have no other (15,000 calls a page).
    return name if _UNRESERVED.fullmatch(name) else quote(name)


def _href(project: str, listed: Listed) -> str:
    # Relative to /simple/<project>/; made absolute, by the host the client asked, as sent.
    return ".." + "/.." + file_path(project, listed.sha256, listed.file.filename)


def _hrefs(project: str) -> str:
    """What every file link of ``project``'s page starts with (``_href`` without the file)."""
    return f"../../files/{_quoted(project)}/"


# PEP 792: a status other than "active", and its reason (None when upstream gives none).
Status = tuple[str, str | None]


def render_json(
    project: str,
    files: Sequence[Listed],
    versions: Sequence[str] | None,
    status: Status | None = None,
) -> bytes:
    # Encoded one file at a time: a dict per file for pydantic-core's 15,000 files, then its
    # 6.5 MB dump and encoding, held 25 MB at once, and 20 cold clients asked for it together.
    head: dict[str, Any] = {
        "meta": {"api-version": API_VERSION if status is None else STATUS_API_VERSION},
        "name": project,
        "versions": list(versions) if versions is not None else _versions(files),
    }
    if status is not None:
        head["project-status"] = {"status": status[0]}
        if status[1]:
            head["project-status"]["reason"] = status[1]
    pieces = [b'%s,"files":[' % _dumps(head)[:-1]]
    links = _hrefs(project)
    for number, listed in enumerate(files):
        fast = _item_json(links, listed)
        if fast is not None:
            pieces.append(b"," + fast if number else fast)
            continue
        file = listed.file
        item: dict[str, Any] = {
            "filename": file.filename,
            "url": _href(project, listed),
            "hashes": {"sha256": listed.sha256},
        }
        if file.requires_python:
            item["requires-python"] = file.requires_python
        if file.yanked:
            item["yanked"] = file.yanked
        if file.size is not None:
            item["size"] = file.size
        if file.upload_time:
            item["upload-time"] = file.upload_time
        if file.provenance:  # PEP 740: the proxy's copy, beside the file
            item["provenance"] = _href(project, listed) + PROVENANCE_SUFFIX
        # Only the PEP 714 key: pip 22.3 to 23.1 crash on a JSON "dist-info-metadata" key.
        if isinstance(listed.metadata, str):
            item["core-metadata"] = {"sha256": listed.metadata}
        else:
            item["core-metadata"] = listed.metadata
        pieces.append(b"," + _dumps(item) if number else _dumps(item))
    pieces.append(b"]}")
    return b"".join(pieces)


def _item_json(links: str, listed: Listed) -> bytes | None:
    """One file's JSON as ``_dumps`` of its dict would give it, written directly (a third of
    the time, for pages of 15,000 files); None when a value is not of the usual type."""
    file = listed.file
    requires, yanked, size, uploaded = (
        file.requires_python,
        file.yanked,
        file.size,
        file.upload_time,
    )
    metadata = listed.metadata
    if not (
        type(file.filename) is str
        and (not requires or type(requires) is str)
        and (yanked is False or yanked is True or type(yanked) is str)
        and (size is None or type(size) is int)
        and (not uploaded or type(uploaded) is str)
        and (type(metadata) is bool or type(metadata) is str)
    ):
        return None
    url = f"{links}{listed.sha256}/{_quoted(file.filename)}"
    text = f'{{"filename":{_string(file.filename)},"url":{_string(url)}'
    text += f',"hashes":{{"sha256":{_string(listed.sha256)}}}'
    if requires:
        text += f',"requires-python":{_string(requires)}'
    if yanked:
        text += ',"yanked":' + ("true" if yanked is True else _string(yanked))
    if size is not None:
        text += f',"size":{int.__repr__(size)}'
    if uploaded:
        text += f',"upload-time":{_string(uploaded)}'
    if file.provenance:
        text += f',"provenance":{_string(url + PROVENANCE_SUFFIX)}'
    if isinstance(metadata, str):
        text += f',"core-metadata":{{"sha256":{_string(metadata)}}}}}'
    else:
        text += ',"core-metadata":' + ("true" if metadata else "false") + "}"
    return text.encode()


def _dumps(value: object) -> bytes:
    return _ENCODER.encode(value).encode()


def render_html(project: str, files: Sequence[Listed], status: Status | None = None) -> bytes:
    links = []
    for listed in files:
        file = listed.file
        href = f"{_href(project, listed)}#sha256={listed.sha256}"
        attrs = [f'href="{html.escape(href)}"']
        if file.requires_python:
            attrs.append(f'data-requires-python="{html.escape(file.requires_python)}"')
        if file.yanked:
            reason = file.yanked if isinstance(file.yanked, str) else ""
            attrs.append(f'data-yanked="{html.escape(reason)}"')
        if listed.metadata:
            value = f"sha256={listed.metadata}" if isinstance(listed.metadata, str) else "true"
            # PEP 714 renamed the attribute; the old name is kept for pip < 23.2.
            attrs.append(f'data-core-metadata="{value}"')
            attrs.append(f'data-dist-info-metadata="{value}"')
        if file.provenance:
            href = html.escape(_href(project, listed) + PROVENANCE_SUFFIX)
            attrs.append(f'data-provenance="{href}"')
        links.append(f"    <a {' '.join(attrs)}>{html.escape(file.filename)}</a><br>\n")
    head = ""
    if status is not None:
        head = f'    <meta name="pypi:project-status" content="{html.escape(status[0])}">\n'
        if status[1]:
            reason = html.escape(status[1])
            head += f'    <meta name="pypi:project-status-reason" content="{reason}">\n'
    return _page(f"Links for {project}", "".join(links), head)


def root_html(names: Iterable[str]) -> bytes:
    links = "".join(
        f'    <a href="{html.escape(quote(n))}/">{html.escape(n)}</a><br>\n' for n in names
    )
    return _page("Simple index", links)


def root_json(names: Iterable[str]) -> bytes:
    document = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
    return json.dumps(document, separators=(",", ":")).encode()


def _page(title: str, body: str, head: str = "") -> bytes:
    title = html.escape(title)
    version = STATUS_API_VERSION if head else API_VERSION
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{version}">\n{head}'
        f"    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n"
        f"{body}  </body>\n</html>\n"
    ).encode()


def _versions(files: Iterable[Listed]) -> list[str]:
    found: set[Version] = set()
    for listed in files:
        name = listed.file.filename
        try:
            if name.endswith(".whl"):
                found.add(parse_wheel_filename(name)[1])
            else:
                found.add(parse_sdist_filename(name)[1])
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
    return [str(v) for v in sorted(found)]
