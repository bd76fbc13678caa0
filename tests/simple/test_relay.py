"""simple.relay: which upstream pages a proxy may pass on by one replacement, and how."""

from __future__ import annotations

import json

import pytest

from wheelhouse.simple.parse import parse_json_page
from wheelhouse.simple.relay import find_relayed, relay_of, relink

JSON = "application/vnd.pypi.simple.v1+json"
ORIGIN = "https://files.example.org/"
SHA_A, SHA_B = "a" * 64, "b" * 64


def warehouse_page(*items: dict[str, object], **top: object) -> bytes:
    """A page as PyPI writes it: keys sorted, ", " and ": " separators, absolute links."""
    return json.dumps(
        {"files": list(items), "meta": {"api-version": "1.1"}, "name": "alpha", **top},
        sort_keys=True,
    ).encode()


def item(filename: str, sha256: str, **extra: object) -> dict[str, object]:
    return {
        "filename": filename,
        "hashes": {"sha256": sha256},
        "provenance": None,
        "requires-python": ">=3.8",
        "size": 1234,
        "upload-time": "2024-01-02T03:04:05.123456Z",
        "url": f"{ORIGIN}packages/ab/cd/{filename}",
        "yanked": False,
        **extra,
    }


WHEEL = item("alpha-1.0-py3-none-any.whl", SHA_A)
SDIST = item("alpha-1.0.tar.gz", SHA_B, yanked="broken build")


def test_a_pypi_page_is_relinked_to_the_same_files_with_the_proxys_links() -> None:
    body = warehouse_page(WHEEL, SDIST)
    relay = relay_of(body, JSON)
    assert relay is not None
    assert (relay.origin, relay.files, relay.offer_metadata) == (ORIGIN, 2, True)
    out = relink(body, relay, "../../files/alpha/via/")
    before = parse_json_page(body, "https://pypi.example.org/simple/alpha/", "alpha")
    after = parse_json_page(out, "http://proxy.test/simple/alpha/", "alpha")
    assert [f.url for f in after.files] == [
        "http://proxy.test/files/alpha/via/packages/ab/cd/alpha-1.0-py3-none-any.whl",
        "http://proxy.test/files/alpha/via/packages/ab/cd/alpha-1.0.tar.gz",
    ]
    # The proxy offers METADATA of the wheel (it reads it itself), none of the sdist.
    assert [f.core_metadata for f in after.files] == [True, False]
    for old, new in zip(before.files, after.files, strict=True):
        assert (new.filename, new.hashes, new.requires_python, new.size, new.upload_time) == (
            old.filename, old.hashes, old.requires_python, old.size, old.upload_time,
        )  # fmt: skip
        assert new.yanked == old.yanked
    assert b"files.example.org" not in out


def test_a_page_with_its_own_metadata_keeps_it() -> None:
    metadata = {"sha256": "c" * 64}
    body = warehouse_page(item("alpha-1.0-py3-none-any.whl", SHA_A, **{"core-metadata": metadata}))
    relay = relay_of(body, JSON)
    assert relay is not None and relay.offer_metadata is False
    out = json.loads(relink(body, relay, "../../files/alpha/via/"))
    assert out["files"][0]["core-metadata"] == metadata
    assert "core-metadata" not in json.dumps(out).replace('"core-metadata": {', "", 1)


@pytest.mark.parametrize(
    "page",
    [
        # an escaped slash: this link would keep upstream's host after the replacement
        warehouse_page(WHEEL).replace(b"https://files", b"https:\\/\\/files"),
        # a key written with an escape is still "url" to a client
        warehouse_page(WHEEL, SDIST).replace(
            b'"url": "https://files.example.org/packages/ab/cd/alpha-1.0.tar.gz"',
            b'"\\u0075rl": "https://evil.example/x.tar.gz"',
        ),
        # files on two hosts
        warehouse_page(WHEEL, item("alpha-1.0.tar.gz", SHA_B, url="https://other.example/alpha-1.0.tar.gz")),
        # credentials in the links
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url="https://user:secret@files.example.org/a.tar.gz")),
        # links that could be read two ways
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url=f"{ORIGIN}a%2Fb/alpha-1.0.tar.gz")),
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url=f"{ORIGIN}x/../alpha-1.0.tar.gz")),
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url=f"{ORIGIN}alpha-1.0.tar.gz/..")),
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url=f"{ORIGIN}a-1.0.tar.gz#sha256={SHA_B}")),
        # what the proxy must act on: a provenance URL, a project status, the old metadata key
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, provenance="https://pypi.example.org/p")),
        warehouse_page(WHEEL, **{"project-status": {"status": "quarantined"}}),
        warehouse_page(item("alpha-1.0-py3-none-any.whl", SHA_A, **{"dist-info-metadata": True})),
        # "url" as a value: a count of keys could not tell
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, yanked="url")),
        # a link a client would send percent-encoded
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url=f"{ORIGIN}ä/a-1.0.tar.gz")).replace(
            b"\\u00e4", "ä".encode()
        ),
        # relative links
        warehouse_page(item("alpha-1.0.tar.gz", SHA_B, url="../../packages/alpha-1.0.tar.gz")),
    ],
    ids=["escaped-slash", "escaped-key", "two-hosts", "credentials", "percent", "dot-segment",
         "dot-segment-last", "fragment", "provenance", "status", "old-metadata-key", "url-value",
         "non-ascii", "relative"],
)  # fmt: skip
def test_pages_a_replacement_cannot_relink_with_certainty_are_not_relayed(page: bytes) -> None:
    assert relay_of(page, JSON) is None


def test_a_reason_ending_in_a_dot_is_no_dot_segment() -> None:
    page = warehouse_page(item("alpha-1.0.tar.gz", SHA_B, yanked="Claims Python 3.5."))
    assert relay_of(page, JSON) is not None


def test_html_pages_are_not_relayed() -> None:
    assert relay_of(warehouse_page(WHEEL), "application/vnd.pypi.simple.v1+html") is None


def test_a_file_is_found_by_its_link_alone() -> None:
    other = item("alpha-2.0-py3-none-any.whl", "d" * 64, **{"core-metadata": {"sha256": "e" * 64}})
    body = warehouse_page(WHEEL, other, SDIST)
    relay = relay_of(body, JSON)
    assert relay is not None
    found = find_relayed(body, relay, "packages/ab/cd/alpha-2.0-py3-none-any.whl")
    assert found is not None and found["hashes"] == {"sha256": "d" * 64}
    assert find_relayed(body, relay, "packages/ab/cd/alpha-3.0-py3-none-any.whl") is None
    # A prefix of a link is not a link.
    assert find_relayed(body, relay, "packages/ab/cd/alpha-2.0") is None
