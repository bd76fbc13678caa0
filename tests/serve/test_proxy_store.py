"""The proxy's store on disk: what it keeps in memory, and what it reads again."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from wheelhouse._base._http import HttpClient
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.serve import _store
from wheelhouse.serve._store import PageRecord, Stats, Store
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
    real = PageRecord.from_json.__func__  # type: ignore[attr-defined]

    def counting(cls: type[PageRecord], data: dict[str, object]) -> PageRecord:
        parsed.append(data["project"])
        time.sleep(0.2)  # the others arrive while the first parse runs
        result: PageRecord = real(cls, data)
        return result

    monkeypatch.setattr(PageRecord, "from_json", classmethod(counting))
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
