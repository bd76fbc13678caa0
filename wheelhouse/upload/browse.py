"""Pages for people: the private index's projects with a search box, and a page per project
(versions, files, sizes, sha256, Requires-Python, yanks, the readme, how to install it).

Server-rendered HTML without scripts; every value from an upload is escaped, and the readme,
rendered from Markdown, is sanitised with nh3 before it reaches a page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from urllib.parse import quote

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelhouse.house.manifest import FileRecord
from wheelhouse.upload.catalog import Catalog, Entry

__all__ = ["PROJECT_PREFIX", "project_page", "root_page"]

PROJECT_PREFIX = "/-/project/"
_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:left}"
    "code,pre{background:#f4f4f4}pre{padding:.6rem;overflow:auto}.yanked{color:#a00}"
)


def _page(title: str, body: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    ).encode()


def _search_form(query: str, prefix: str) -> str:
    return (
        f'<form method="get" action="{prefix}/" role="search">'
        f'<input type="search" name="q" value="{html.escape(query)}" '
        'placeholder="Search projects" aria-label="Search projects">'
        '<button type="submit">Search</button></form>\n'
    )


def root_page(
    index_name: str, names: Iterable[str], catalog: Catalog, query: str, prefix: str = ""
) -> bytes:
    """The root: the index, its projects (or those matching ``query``), a search box.

    ``prefix`` is where the index is mounted (``/<name>`` on a server of several), or "".
    """
    if query.strip():
        found = catalog.search(query)
        heading = f"{len(found)} project{'s' if len(found) != 1 else ''} matching"
        heading += f" “{html.escape(query)}”"
    else:
        summaries = catalog.summaries()
        found = [(n, summaries.get(n, "")) for n in sorted(names)]
        heading = f"{len(found)} project{'s' if len(found) != 1 else ''}"
    rows = "".join(
        f'<li><a href="{prefix}{PROJECT_PREFIX}{quote(name)}/">{html.escape(name)}</a>'
        + (f" — {html.escape(summary)}" if summary else "")
        + "</li>\n"
        for name, summary in found
    )
    body = (
        f"<h1>Index {html.escape(index_name)}</h1>\n{_search_form(query, prefix)}"
        f'<p>{heading}. pip and uv read it at <a href="{prefix}/simple/">{prefix}/simple/</a>.'
        "</p>\n"
        f'<ul id="projects">\n{rows}</ul>\n'
    )
    return _page(f"Index {index_name}", body)


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return str(size)  # pragma: no cover


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _readme(entry: Entry | None) -> str:
    if entry is None or not entry.description.strip():
        return "<p>No description.</p>\n"
    if entry.description_type.lower().startswith("text/markdown"):
        import nh3
        from markdown_it import MarkdownIt

        rendered = MarkdownIt("commonmark").render(entry.description)
        return nh3.clean(rendered, link_rel="nofollow noopener noreferrer") + "\n"
    return f"<pre>{html.escape(entry.description)}</pre>\n"


def project_page(
    index_name: str,
    base_url: str,
    name: str,
    files: list[FileRecord],
    catalog: Catalog,
    prefix: str = "",
) -> bytes:
    """A project's page; ``base_url`` is the server's root as the browser reached it, and
    ``prefix`` where the index is mounted on it (``/<name>``, or "")."""
    entry = catalog.get(name)
    by_version: dict[str, list[FileRecord]] = {}
    for record in files:
        by_version.setdefault(record.version, []).append(record)
    versions = sorted(by_version, key=_version_key, reverse=True)
    sections = []
    for version in versions:
        rows = []
        for record in sorted(by_version[version], key=lambda r: r.filename):
            yanked = ""
            if record.yanked is not None:
                reason = f": {html.escape(record.yanked)}" if record.yanked else ""
                yanked = f'<span class="yanked">yanked{reason}</span>'
            rows.append(
                f"<tr><td>{html.escape(record.filename)}</td>"
                f'<td title="{record.size} bytes">{_size(record.size)}</td>'
                f"<td><code>{html.escape(record.sha256)}</code></td>"
                f"<td>{html.escape(record.requires_python or '')}</td><td>{yanked}</td></tr>\n"
            )
        sections.append(
            f'<h3 id="v{html.escape(version)}">{html.escape(version)}</h3>\n<table>\n'
            "<tr><th>File</th><th>Size</th><th>sha256</th><th>Requires-Python</th>"
            f"<th></th></tr>\n{''.join(rows)}</table>\n"
        )
    simple = f"{base_url.rstrip('/')}{prefix}/simple/"
    summary = f"<p>{html.escape(entry.summary)}</p>\n" if entry and entry.summary else ""
    latest = versions[0] if versions else ""
    body = (
        f'<p><a href="{prefix}/">Index {html.escape(index_name)}</a></p>\n'
        f"<h1>{html.escape(name)} {html.escape(latest)}</h1>\n{summary}"
        '<h2>Install</h2>\n<pre id="install">'
        f"pip install --index-url {html.escape(simple)} {html.escape(name)}\n"
        f"uv pip install --index-url {html.escape(simple)} {html.escape(name)}</pre>\n"
        f'<p>The index page pip reads: <a id="simple-page" href="{prefix}/simple/{quote(name)}/">'
        f"{prefix}/simple/{html.escape(name)}/</a></p>\n"
        f'<h2>Description</h2>\n<div id="description">\n{_readme(entry)}</div>\n'
        f"<h2>Versions and files</h2>\n{''.join(sections)}"
    )
    return _page(f"{name} — {index_name}", body)


def project_name(path: str) -> str | None:
    """The project a ``/-/project/NAME/`` path names (normalised), or None."""
    rest = path.removeprefix(PROJECT_PREFIX).rstrip("/")
    if not rest or "/" in rest or len(rest) > 200:
        return None
    return canonicalize_name(rest)
