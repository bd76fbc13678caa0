"""Read a project page (PEP 503 HTML, PEP 691 JSON) or the root listing into the page model.

Pages are untrusted input: the caller bounds their bytes (``client.MAX_PAGE``), and here
the count of files (``MAX_FILES``) and the work per byte are bounded; file URLs keep only
the schemes the page may link, and a provenance URL only the page's own origin.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import canonicalize_name

from wheelhouse._base.cooldown import parse_upload_time
from wheelhouse._base.urls import origin_of, strip_credentials
from wheelhouse.errors import MalformedUploadTime, UpstreamError
from wheelhouse.simple.media import form_of
from wheelhouse.simple.model import (
    PROJECT_STATUSES,
    CoreMetadata,
    PageFile,
    ProjectPage,
    ProjectStatus,
)

__all__ = [
    "MAX_FILES",
    "Keep",
    "parse_html_page",
    "parse_json_page",
    "parse_page",
    "parse_root",
]

logger = logging.getLogger(__name__)

# A file name filter: only the files it keeps are built (and their upload times checked).
# It is asked the name pip reads: a JSON page's filename, an HTML link's last path segment.
Keep = Callable[[str], bool]

# The most files a page may list. A real page of MAX_PAGE bytes lists about 78,000 (430 bytes
# a file; pydantic-core's 15,000 files make 6.5 MB); a hostile one of tiny entries would list
# millions, and parsing a million cost 550 MB and minutes of CPU.
MAX_FILES = 100_000
# JSON separators per file in a real page (about a dozen): a bound, known before parsing, on
# how many values json.loads would build.
_COMMAS_PER_FILE = 16
_MAX_REASON = 1024  # a status reason is a line for people, never a payload
# The schemes a page fetched over HTTP may link files by; a file: URL on a remote page would
# make us read (or leak the hash of) a local file, so only a file: index may link file: URLs.
_REMOTE_SCHEMES = frozenset({"http", "https"})
_LOCAL_SCHEMES = _REMOTE_SCHEMES | {"file"}
# An absolute http(s) URL that urljoin and urldefrag would give back unchanged (no userinfo,
# params or query): most links of a real page. Taken as it is, it skips three urlsplit calls,
# which were two thirds of the CPU of parsing pydantic-core's page of 15,000 files.
_PLAIN_URL = re.compile(
    r"(?P<url>https?://[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9._~%!$&'()*+,=:@/-]*)"
    r"(?:#(?P<fragment>[A-Za-z0-9_=&-]*))?"
)

# HTML is read by a tokenizer of the few tags a page means (html.parser, pure Python, took
# 0.5 s for a 1.2 MB page): a tag's start, then its attributes with quoted values (which may
# hold ">"). Each search starts where the last ended and an unclosed tag or comment ends the
# read, so the work stays linear in the page, whatever it holds.
_TAG = re.compile(
    r"<(?:(!--)|([aA]|[bB][aA][sS][eE]|[mM][eE][tT][aA])(?=[\s/>])"
    r"""(?:((?:[^>"']++|"[^"]*+"|'[^']*+')*+)>|()))"""
)
# Where an anchor's text ends: its </a>, or another anchor (which replaces it).
_ANCHOR_END = re.compile(r"<(/?)[aA](?=[\s/>])")
_ATTR = re.compile(r"""([^\s/>="']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']*)))?""")
_HREF = re.compile(r"""(?:^|\s)href\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def parse_page(
    body: bytes, content_type: str, url: str, name: str, keep: Keep | None = None
) -> ProjectPage:
    """A project page by its content type: JSON when it says JSON, else HTML."""
    if form_of(content_type) == "json":
        return parse_json_page(body, url, name, keep)
    return parse_html_page(body, url, name, keep)


def parse_json_page(data: bytes, url: str, name: str, keep: Keep | None = None) -> ProjectPage:
    """A PEP 691 JSON project page; relative file URLs are resolved against ``url``.

    Files linked by a URL that is not http(s) are left out (``file:`` ones too, unless the
    page itself is a ``file:`` URL). Raises ``UpstreamError`` for a malformed page,
    ``MalformedUploadTime`` for a kept file whose upload-time is not a time.
    """
    links = _Links(url)
    if data.count(b",") > MAX_FILES * _COMMAS_PER_FILE:
        raise _too_many(url)
    try:
        document = json.loads(data)
        if len(document["files"]) > MAX_FILES:
            raise _too_many(url)
        meta = document.get("meta") or {}
        files = []
        plain = _PLAIN_URL.fullmatch
        for item in document["files"]:
            filename = str(item["filename"])
            if keep is not None and not keep(filename):
                continue
            href = item["url"]
            # Most links are absolute http(s) URLs: one match resolves and splits them.
            match = plain(href) if type(href) is str else None
            if match is not None:
                file_url, fragment = match["url"], match["fragment"]
            else:
                resolved = links.resolve(url, href)
                if resolved is None:
                    continue
                file_url, fragment = urldefrag(resolved)
            given = item.get("hashes")
            if type(given) is dict and len(given) == 1 and type(given.get("sha256")) is str:
                hashes = {"sha256": given["sha256"]}  # what nearly every page gives
            else:
                hashes = {str(k).lower(): str(v) for k, v in (given or {}).items()}
            if not hashes and fragment:
                hashes = _fragment_hashes(fragment)
            core = item.get("core-metadata", item.get("dist-info-metadata", False))
            size = item.get("size")
            uploaded = item.get("upload-time")
            provenance = item.get("provenance")
            files.append(
                PageFile(
                    filename,
                    file_url,
                    hashes,
                    item.get("requires-python") or None,
                    _yanked_json(item.get("yanked", False)),
                    int(size) if size is not None else None,
                    None if uploaded is None else _upload_time(uploaded, url, name, filename),
                    _core_metadata_json(core) if core is not False else False,
                    None if provenance is None else links.provenance(url, provenance),
                )
            )
        versions = document.get("versions")
        status, reason = _project_status(document.get("project-status"), url)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise UpstreamError(
            f"{strip_credentials(url)} sent a malformed PEP 691 page: {exc!r}",
            url=strip_credentials(url),
        ) from exc
    links.warn()
    return ProjectPage(
        name=canonicalize_name(str(document.get("name") or name)),
        url=url,
        files=tuple(files),
        versions=tuple(str(v) for v in versions) if isinstance(versions, list) else None,
        api_version=str(meta.get("api-version") or "1.0"),
        status=status,
        status_reason=reason,
    )


def parse_html_page(data: bytes, url: str, name: str, keep: Keep | None = None) -> ProjectPage:
    """A PEP 503 HTML project page (with PEP 592/658/714/740/792 attributes and tags).

    A file is named by its anchor's text (PEP 503), else by its URL; files linked by a URL
    that is not http(s) are left out (``file:`` ones too, unless the page is a ``file:`` URL).
    """
    text = data.decode("utf-8", errors="replace")
    anchors, base, meta = _read_html(text, url, keep)
    base_url = urljoin(url, base) if base else url
    links = _Links(url)
    files = []
    for attrs, label in anchors:
        href = attrs.get("href")
        if not href:
            continue
        resolved = links.resolve(base_url, href)
        if resolved is None:
            continue
        file_url, hashes = _split_url(resolved)
        yanked_attr = attrs.get("data-yanked")
        core = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        files.append(
            PageFile(
                filename=label.strip() or file_url.rsplit("/", 1)[-1],
                url=file_url,
                hashes=hashes,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=False if yanked_attr is None else (yanked_attr or True),
                core_metadata=_core_metadata_html(core),
                provenance=links.provenance(base_url, attrs.get("data-provenance")),
            )
        )
    links.warn()
    status_value = meta.get("pypi:project-status")
    status, reason = _project_status(
        None
        if status_value is None
        else {"status": status_value, "reason": meta.get("pypi:project-status-reason")},
        url,
    )
    return ProjectPage(
        name=canonicalize_name(name),
        url=url,
        files=tuple(files),
        api_version=meta.get("pypi:repository-version") or "1.0",
        status=status,
        status_reason=reason,
    )


def parse_root(body: bytes, content_type: str, url: str) -> list[str]:
    """The project names a root listing gives, as written (PEP 691 JSON, else PEP 503 HTML:
    each anchor's text). Names are data: the caller checks each before using it."""
    if form_of(content_type) == "json":
        try:
            document = json.loads(body)
            if len(document["projects"]) > MAX_FILES * 10:
                raise ValueError("too many projects")
            return [str(p["name"]) for p in document["projects"]]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            shown = strip_credentials(url)
            raise UpstreamError(f"{shown} sent a malformed PEP 691 root page: {exc}") from exc
    anchors, _, _ = _read_html(body.decode("utf-8", errors="replace"), url, None, MAX_FILES * 10)
    return [label.strip() for _, label in anchors if label.strip()]


def _read_html(
    text: str, url: str, keep: Keep | None, limit: int = MAX_FILES
) -> tuple[list[tuple[dict[str, str], str]], str | None, dict[str, str]]:
    """The anchors (attributes, text) in order, the first <base> href, and the <meta> tags
    (name -> content) of an HTML page; anchors ``keep`` refuses by their href are skipped."""
    anchors: list[tuple[dict[str, str], str]] = []
    base: str | None = None
    meta: dict[str, str] = {}
    opened = 0
    position = 0
    while (tag := _TAG.search(text, position)) is not None:
        comment, name, inner, unclosed = tag.groups()
        if comment:  # up to its end, or the page's
            end = text.find("-->", tag.end())
            if end < 0:
                break
            position = end + 3
            continue
        if unclosed is not None:
            break  # a tag that never closes: what follows is inside it
        position = tag.end()
        name = name.lower()
        if name == "a":
            if keep is not None and not _kept(inner, keep):
                continue
            opened += 1  # unclosed ones too: each costs a search for its end
            if opened > limit:
                raise _too_many(url)
            if inner.endswith("/"):
                anchors.append((_attributes(inner[:-1]), ""))
                continue
            end_tag = _ANCHOR_END.search(text, position)
            if end_tag is not None and end_tag.group(1):
                label = _label(text[position : end_tag.start()])
                anchors.append((_attributes(inner), label))
            # else never closed, or another anchor opens first and replaces it
        elif name == "base":
            href = _attributes(inner).get("href")
            if base is None and href:
                base = href
        else:
            attrs = _attributes(inner)
            if "name" in attrs:
                meta[attrs["name"]] = attrs.get("content", "")
    return anchors, base, meta


def _kept(inner: str, keep: Keep) -> bool:
    # Most anchors open with the href (every PyPI page's do): two finds take the link the
    # search below gives them (13% fewer instructions to read the web-service set's pages).
    end = inner.find('"', 7) if inner.startswith(' href="') else -1
    if end >= 0:
        link = inner[7:end]
    else:
        href = _HREF.search(inner)
        if href is None:
            return True  # an href this cannot read: the full read decides
        link = href.group(1) if href.group(1) is not None else href.group(2)
    if "&" in link:
        link = html.unescape(link)
    link = link.split("#", 1)[0].rsplit("/", 1)[-1]
    return keep(unquote(link) if "%" in link else link)


def _attributes(inner: str) -> dict[str, str]:
    # The last of a repeated attribute wins, as html.parser's dict of them gave.
    found = {}
    for match in _ATTR.finditer(inner):
        quoted, single, bare = match.group(2, 3, 4)
        value = quoted if quoted is not None else single if single is not None else bare
        value = value or ""
        found[match.group(1).lower()] = html.unescape(value) if "&" in value else value
    return found


def _label(raw: str) -> str:
    """An anchor's text without the markup inside it (by find, not a regex: a regex for a tag
    searched again at every "<" of a text without ">" costs the square of its length)."""
    if "<" in raw:
        kept, start = [], 0
        while (opened := raw.find("<", start)) >= 0:
            kept.append(raw[start:opened])
            start = raw.find(">", opened) + 1
            if start == 0:
                break  # inside a tag that never closes
        else:
            kept.append(raw[start:])
        raw = "".join(kept)
    return html.unescape(raw) if "&" in raw else raw


def _upload_time(value: object, url: str, name: str, filename: str) -> str | None:
    """The file's PEP 700 upload time, checked: a cooldown compares it, and a value that is
    not a time would let a file through (or hold every file back) without a word."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        parse_upload_time(value)
    except ValueError:
        shown = strip_credentials(url)
        raise MalformedUploadTime(
            f"{shown} gives {canonicalize_name(name)} file {filename!r} the "
            f"upload-time {value!r}, which is not an ISO 8601 time; the page is not used",
            url=shown,
            filename=filename,
            value=value,
        ) from None
    return value


def _project_status(value: object, url: str) -> tuple[ProjectStatus, str | None]:
    """PEP 792's ``project-status`` (``{"status": ..., "reason": ...}``): a status this does
    not know is read as "active" (the PEP's default), with a warning."""
    if value is None:
        return "active", None
    if not isinstance(value, Mapping):
        raise TypeError(f"project-status {value!r} is not an object")
    status = value.get("status")
    reason = value.get("reason")
    reason = str(reason)[:_MAX_REASON] if isinstance(reason, str) and reason else None
    if status is None:
        return "active", reason
    for known in PROJECT_STATUSES:
        if status == known:
            return known, reason
    logger.warning(
        "%s gives the unknown project status %r; read as 'active'",
        strip_credentials(url),
        str(status)[:64],
    )
    return "active", reason


def _too_many(url: str) -> UpstreamError:
    shown = strip_credentials(url)
    return UpstreamError(
        f"{shown} sent a page of more than {MAX_FILES} files, more than any real project has",
        url=shown,
    )


class _Links:
    """Resolves a page's links, leaving out those whose scheme the page may not link."""

    def __init__(self, page_url: str) -> None:
        self._page = page_url
        local = urlsplit(page_url).scheme.lower() == "file"
        self._allowed = _LOCAL_SCHEMES if local else _REMOTE_SCHEMES
        self._dropped: dict[str, int] = {}
        self._foreign = 0

    def resolve(self, base: str, href: str) -> str | None:
        if _PLAIN_URL.fullmatch(href):
            return href  # what urljoin would give, http(s) by construction
        resolved = urljoin(base, href)
        scheme = urlsplit(resolved).scheme.lower()
        if scheme in self._allowed:
            return resolved
        self._dropped[scheme] = self._dropped.get(scheme, 0) + 1
        return None

    def provenance(self, base: str, value: object) -> str | None:
        """A file's PEP 740 provenance URL, resolved; None when there is none or it is
        not http(s) (a file: one only on a file: page). Fragments are not part of it."""
        if not isinstance(value, str) or not value:
            return None
        resolved = self.resolve(base, value)
        if resolved is None:
            return None
        if origin_of(resolved) != origin_of(self._page):
            # The integrity API is the index's own: a page naming provenance elsewhere would
            # have us fetch (and vouch for) whatever that host says.
            self._foreign += 1
            return None
        return urldefrag(resolved)[0]

    def warn(self) -> None:
        # Once per page: a hostile page may link thousands.
        if self._dropped:
            logger.warning(
                "%s links %s; only http(s) links are followed%s: they are ignored",
                strip_credentials(self._page),
                ", ".join(f"{n} {s or 'scheme-less'}: URL(s)" for s, n in self._dropped.items()),
                "" if self._allowed is _REMOTE_SCHEMES else " (and file: ones on a local index)",
            )
        if self._foreign:
            logger.warning(
                "%s names %d provenance URL(s) on another origin than its own; they are ignored",
                strip_credentials(self._page),
                self._foreign,
            )


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its fragment, and the hashes its ``#<algo>=<hex>[&...]`` names."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:  # what urldefrag would give
        bare, fragment = plain["url"], plain["fragment"]
    else:
        bare, fragment = urldefrag(url)
    return bare, _fragment_hashes(fragment)


def _fragment_hashes(fragment: str | None) -> dict[str, str]:
    hashes = {}
    for pair in (fragment or "").split("&"):
        algo, eq, value = pair.partition("=")
        if eq and algo and value:
            hashes[algo.lower()] = value.lower()
    return hashes


def _yanked_json(value: object) -> bool | str:
    if isinstance(value, str):
        return value or True
    return bool(value)


def _core_metadata_json(value: object) -> CoreMetadata:
    if isinstance(value, dict):
        return {str(k).lower(): str(v).lower() for k, v in value.items()} or True
    return bool(value)


def _core_metadata_html(value: str | None) -> CoreMetadata:
    if value is None:
        return False
    algo, eq, digest = value.partition("=")
    if eq and algo and digest:
        return {algo.lower(): digest.lower()}
    return value.strip().lower() == "true"
