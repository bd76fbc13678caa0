"""The pinned path's schedule: every page asked before any file, results and failures in order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.dists import DistFactory
from tests.support.pinned import ok, run
from tests.support.server import IndexServer
from wheelhouse._base._http import HttpClient
from wheelhouse.download.fetch import Fetched
from wheelhouse.download.pins import Pin
from wheelhouse.house.manifest import Sha256
from wheelhouse.resolve.from_pins import Metadata, _pipelined
from wheelhouse.resolve.fully_pinned import Ineligible, Wanted


def wanted(name: str) -> Wanted:
    return Wanted(canonicalize_name(name), Version("1.0"), Requirement(f"{name}==1.0"))


def pin_of(item: Wanted) -> Pin:
    filename = f"{item.name}-1.0-py3-none-any.whl"
    url = f"http://index.invalid/{filename}"
    return Pin(item.name, "1.0", url, filename, "wheel", None, None, requested=True)


def fetched(pin: Pin) -> tuple[Fetched, Metadata | None]:
    return Fetched(pin, Path(pin.filename), Sha256("0" * 64), 1), None


NAMES = [f"p{i:02d}" for i in range(12)]


def test_every_page_is_asked_before_any_file_and_results_keep_the_input_order() -> None:
    events: list[str] = []
    lock = threading.Lock()

    def choose(item: Wanted) -> Pin:
        with lock:
            events.append(f"page {item.name}")
        time.sleep(0.01 if item.name != "p00" else 0.05)  # the first page is the largest
        return pin_of(item)

    def fetch(pin: Pin) -> tuple[Fetched, Metadata | None]:
        with lock:
            events.append(f"file {pin.name}")
        return fetched(pin)

    results = _pipelined([wanted(n) for n in NAMES], choose, fetch, jobs=3)

    assert [item.pin.name for item, _ in results] == NAMES
    first_file = next(i for i, e in enumerate(events) if e.startswith("file"))
    assert sorted(e for e in events[:first_file]) == sorted(f"page {n}" for n in NAMES)
    assert sorted(events[first_file:]) == sorted(f"file {n}" for n in NAMES)


def test_the_first_failure_in_input_order_is_raised_whatever_failed_first() -> None:
    fetched_names: list[str] = []
    release = threading.Event()

    def choose(item: Wanted) -> Pin:
        if item.name == "p01":
            release.wait(5)  # fails after p05 has failed: the order, not the time, decides
            raise Ineligible("p01 has no file")
        if item.name == "p05":
            try:
                raise Ineligible("p05 has no file")
            finally:
                release.set()
        return pin_of(item)

    def fetch(pin: Pin) -> tuple[Fetched, Metadata | None]:
        fetched_names.append(pin.name)
        return fetched(pin)

    with pytest.raises(Ineligible, match="p01 has no file"):
        _pipelined([wanted(n) for n in NAMES], choose, fetch, jobs=2)
    assert "p01" not in fetched_names and "p05" not in fetched_names


def test_a_failed_download_raises_as_its_page_would() -> None:
    def fetch(pin: Pin) -> tuple[Fetched, Metadata | None]:
        if pin.name == "p03":
            raise Ineligible("cannot fetch p03")
        return fetched(pin)

    with pytest.raises(Ineligible, match="cannot fetch p03"):
        _pipelined([wanted(n) for n in NAMES], pin_of, fetch, jobs=4)


def test_the_calling_thread_does_its_own_work_while_pages_are_asked() -> None:
    seen: list[str] = []
    results = _pipelined(
        [wanted(n) for n in NAMES[:2]],
        pin_of,
        fetched,
        jobs=2,
        meanwhile=lambda: seen.append(threading.current_thread().name),
    )
    assert [item.pin.name for item, _ in results] == NAMES[:2]
    assert seen == [threading.current_thread().name]


def test_files_are_downloaded_over_the_page_clients_pools(
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loopback index serves pages and files from one host: one client, one pool.
    dists.wheel("alpha", "1.0")
    dists.wheel("beta", "2.0")
    clients: list[HttpClient] = []
    real_init = HttpClient.__init__

    def counting_init(self: HttpClient, *args: Any, **kwargs: Any) -> None:
        clients.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(HttpClient, "__init__", counting_init)
    result = ok(run(tmp_path, "alpha==1.0\nbeta==2.0\n", index_server.url))

    assert sorted(item.pin.name for item in result.fetched) == ["alpha", "beta"]
    assert all(item.downloaded for item in result.fetched)
    assert len(clients) == 1
