"""The proxy's store on disk: what it keeps in memory, and what it reads again."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.serve import _store
from wheelhouse.serve._store import PageHead, PageRecord, Stats, Store
from wheelhouse.simple import PageFile, ProjectPage


def _record(project: str, files: int) -> PageRecord:
    listed = tuple(
        PageFile(f"{project}-1.{i}-py3-none-any.whl", f"https://files.example/{i}.whl",
                     {"sha256": f"{i:064x}"})
        for i in range(files)
    )  # fmt: skip
    return PageRecord(project, 0, time.time(), ProjectPage(project, "https://x/", listed))  # type: ignore[arg-type]


def _store_at(root: Path) -> Store:
    return Store(root, "key", HttpClient(PipSettings()), Stats(), 5.0)


def test_a_page_read_by_many_threads_at_once_is_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_at(tmp_path).write_page(_record("big", 2000))
    store = _store_at(tmp_path)  # another process: nothing parsed in memory yet
    parsed = []
    real = PageRecord.from_bytes.__func__  # type: ignore[attr-defined]

    def counting(cls: type[PageRecord], data: bytes) -> PageRecord:
        time.sleep(0.2)  # the others arrive while the first parse runs
        result: PageRecord = real(cls, data)
        parsed.append(result.project)
        return result

    monkeypatch.setattr(PageRecord, "from_bytes", classmethod(counting))
    got: list[PageRecord | None] = []
    threads = [
        threading.Thread(target=lambda: got.append(store.read_page("big"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert parsed == ["big"]
    assert len(got) == 8 and all(r is not None and len(r.page.files) == 2000 for r in got)


def test_parsed_pages_in_memory_are_bounded_by_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "_PARSED_FILES", 2500)
    store = _store_at(tmp_path)
    for name in ("one", "two", "three"):
        store.write_page(_record(name, 1000))
    assert sorted(store._parsed) == ["three", "two"]  # the oldest went first
    assert store.read_page("one") is not None  # read again from disk
    assert sorted(store._parsed) == ["one", "three"]


def test_names_without_a_page_leave_nothing_in_memory(tmp_path: Path) -> None:
    """Every name a client sends is looked up: one that has no page must not leave a lock (or
    anything else) behind, or a client could grow the proxy's memory name by name."""
    store = _store_at(tmp_path)
    assert all(store.read_page(f"no-such-{i}") is None for i in range(1000))
    assert store._parse_locks == {} and store._parsed == {}


def _never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cls: type[PageRecord], data: bytes) -> PageRecord:
        raise AssertionError("the whole page was parsed")

    monkeypatch.setattr(PageRecord, "from_bytes", classmethod(refuse))


def test_a_file_and_the_status_of_an_unparsed_page_are_read_without_parsing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold uv run asks for one wheel's METADATA of each of 41 pages (43,000 files) at once:
    the file is found, and the status read, from the stored bytes without a parse of all."""
    record = _record("big", 3000)
    record = PageRecord(
        "big", 0, record.fetched,
        dataclasses.replace(record.page, status="deprecated", status_reason="use small"),
    )  # fmt: skip
    _store_at(tmp_path).write_page(record)
    store = _store_at(tmp_path)  # another process: nothing parsed in memory yet
    _never_parsed(monkeypatch)
    found = store.find_file("big", f"{2999:064x}", "big-1.2999-py3-none-any.whl")
    assert found == record.page.files[2999]
    assert store.find_file("big", f"{2999:064x}", "big-1.2998-py3-none-any.whl") is None
    assert store.find_file("big", f"{5000:064x}", "big-1.5000-py3-none-any.whl") is None
    assert store.page_head("big") == PageHead("deprecated", "use small")
    assert store.page_head("none") is None
    assert store._parsed == {}


def test_a_filename_made_to_look_like_another_file_does_not_mislead_the_search(
    tmp_path: Path,
) -> None:
    """Names come from upstream: one holding the text of another file's object (escaped in
    the stored JSON) cannot make the search return the wrong file."""
    sha = "a" * 64
    forged = f'x","hashes":{{"sha256":"{sha}"}}}},{{"filename":"evil.whl'
    files = (
        PageFile(forged, "https://files.example/forged.whl", {"sha256": "b" * 64}),
        PageFile("good-1.0-py3-none-any.whl", "https://files.example/good.whl", {"sha256": sha}),
    )
    page = ProjectPage("p", "https://x/", files)  # type: ignore[arg-type]
    _store_at(tmp_path).write_page(PageRecord("p", 0, time.time(), page))
    store = _store_at(tmp_path)
    assert store.find_file("p", sha, "good-1.0-py3-none-any.whl") == files[1]
    assert store.find_file("p", sha, "evil.whl") is None
    assert store.find_file("p", "b" * 64, forged) == files[0]


def test_pages_stored_before_in_one_line_are_still_read(tmp_path: Path) -> None:
    """Stores written by earlier versions kept a page as one JSON object."""
    file = {"filename": "old-1.0.tar.gz", "url": "https://files.example/old.tar.gz",
            "hashes": {"sha256": "c" * 64}}  # fmt: skip
    one_line = {"project": "old", "upstream": 0, "fetched": 1.0, "url": "https://x/",
                "status": "archived", "files": [file]}  # fmt: skip
    store = _store_at(tmp_path)
    (tmp_path / "pages" / "key" / "old.json").write_text(json.dumps(one_line))
    assert store.page_head("old") == PageHead("archived", None)
    assert store.find_file("old", "c" * 64, "old-1.0.tar.gz") == PageFile.from_json(file)
    record = store.read_page("old")
    assert record is not None and record.page.status == "archived"
    assert [f.filename for f in record.page.files] == ["old-1.0.tar.gz"]
