"""`wheelhouse build` keeps the PEP 740 provenance an index page names for a file it takes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.dists import DistFactory
from tests.support.provenance import DATA, SDIST
from tests.support.server import IndexServer

REAL = json.loads((DATA / f"{SDIST}.provenance").read_bytes())
WHEEL = "lib-1.0-py3-none-any.whl"


def provenance_for(filename: str, sha256: str) -> bytes:
    """The real provenance object with its statement naming ``filename`` and ``sha256``: a
    structurally sound provenance (its signature no longer verifies; build does not check
    signatures, `verify --provenance` does)."""
    document = json.loads(json.dumps(REAL))
    attestation = document["attestation_bundles"][0]["attestations"][0]
    statement = json.loads(base64.b64decode(attestation["envelope"]["statement"]))
    statement["subject"] = [{"name": filename, "digest": {"sha256": sha256}}]
    attestation["envelope"]["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(document).encode()


@pytest.fixture
def served(dists: DistFactory, index_server: IndexServer) -> tuple[IndexServer, bytes]:
    dists.wheel("lib", "1.0")
    digest = hashlib.sha256((dists.root / WHEEL).read_bytes()).hexdigest()
    provenance = provenance_for(WHEEL, digest)
    index_server.provenance[WHEEL] = provenance
    return index_server, provenance


def build(cli: Any, tmp_path: Path, url: str, *extra: str, loose: bool = False) -> Any:
    requirements = tmp_path / "requirements.txt"
    # Pinned: wheelhouse reads the pages; loose: pip resolves, through the page tap.
    requirements.write_text("lib>=1\n" if loose else "lib==1.0\n")
    return cli("build", "-r", requirements, "-o", tmp_path / "wh", "-i", url, *extra)


@pytest.mark.parametrize(("pages", "loose"), [("html", False), ("json", False), ("html", True)])
def test_build_keeps_the_provenance_the_page_names_and_links_it(
    cli: Any, tmp_path: Path, served: tuple[IndexServer, bytes], pages: str, loose: bool
) -> None:
    index, provenance = served
    index.json_pages = pages == "json"
    result = build(cli, tmp_path, index.url, loose=loose)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "wh"
    assert (out / f"{WHEEL}.provenance").read_bytes() == provenance
    page = json.loads((out / "simple/lib/index.json").read_text())
    assert page["files"][0]["provenance"] == f"../../{WHEEL}.provenance"
    assert (
        f'data-provenance="../../{WHEEL}.provenance"' in (out / "simple/lib/index.html").read_text()
    )
    # The pages are the ones verify renders; a rebuild keeps the provenance and the links.
    assert cli("verify", out).exit_code == 0
    again = build(cli, tmp_path, index.url, "--refresh", "--no-provenance", loose=loose)
    assert again.exit_code == 0, again.stderr
    assert (out / f"{WHEEL}.provenance").read_bytes() == provenance
    assert json.loads((out / "simple/lib/index.json").read_text())["files"][0]["provenance"]
    assert cli("verify", out).exit_code == 0


def test_no_provenance_asks_for_none(
    cli: Any, tmp_path: Path, served: tuple[IndexServer, bytes]
) -> None:
    index, _ = served
    result = build(cli, tmp_path, index.url, "--no-provenance")
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "wh" / f"{WHEEL}.provenance").exists()
    assert not [p for p in index.requests if p.startswith("/integrity/")]


@pytest.mark.parametrize("attack", ["other-file", "other-origin", "too-big"])
def test_a_hostile_provenance_is_one_warning_and_nothing_kept(
    cli: Any, tmp_path: Path, served: tuple[IndexServer, bytes], attack: str
) -> None:
    index, _ = served
    actual = hashlib.sha256((index.root / WHEEL).read_bytes()).hexdigest()
    shown = f"{index.base_url}integrity/lib/1.0/{WHEEL}/provenance"
    if attack == "other-file":
        digest = hashlib.sha256(b"other").hexdigest()
        index.provenance[WHEEL] = provenance_for("lib-1.0-py3-none-any.whl", digest)
        why = (
            f"{shown} is not the provenance of {WHEEL!r}: an attestation is for sha256 "
            f"{digest}, not {actual}"
        )
    elif attack == "too-big":
        index.provenance[WHEEL] = b" " * (3 * 1024 * 1024)
        why = f"{shown} sent more than {2 * 1024 * 1024} bytes"
    else:
        # Another port: never asked (the index's credentials would go there); the page
        # parser says so once.
        index.provenance_urls[WHEEL] = f"http://127.0.0.1:{index.port + 1}/p"
        why = ""
    result = build(cli, tmp_path, index.url)
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "wh"
    assert (out / WHEEL).is_file()
    assert not (out / f"{WHEEL}.provenance").exists()
    assert "provenance" not in json.loads((out / "simple/lib/index.json").read_text())["files"][0]
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    if why:
        assert warned == [f"warning: {WHEEL}: its provenance is not kept: {why}"]
    else:
        assert warned == [
            f"warning: {index.url}lib/ names 1 provenance URL(s) on another origin than its "
            "own; they are ignored"
        ]
