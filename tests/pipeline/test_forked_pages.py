"""The pinned path's index pages, read and parsed by a forked child: the same answers as
in-process, and no child that outlives the build, however it ends."""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.pinned import chosen, run
from tests.support.process import clean_env, wait_until, wheelhouse_argv
from tests.support.server import IndexServer
from wheelhouse._base import _dns, _http
from wheelhouse._base.pip_settings import IndexOptions, PipSettings
from wheelhouse._base.targets import HOST
from wheelhouse.download.cache import Cache
from wheelhouse.inputs.requirements import read_inputs
from wheelhouse.resolve import _forked, from_pins
from wheelhouse.resolve._forked import MISSING, Ahead
from wheelhouse.resolve._pagetap import Page
from wheelhouse.resolve.from_pins import resolve_pinned
from wheelhouse.resolve.fully_pinned import Fallback, Ineligible

PINS = "app==1.0\nlib==2.0\n"
# Where the pinned path reads its pages in a child at all.
needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="pages are read in a child on Linux only"
)
CHOSEN = {"app": "app-1.0-py3-none-any.whl", "lib": "lib-2.0-py3-none-any.whl"}


@pytest.fixture
def two_projects(dists: DistFactory) -> None:
    dists.wheel("app", "1.0", requires=["lib>=2"])
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "2.0")


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children the pinned path forks (the fork itself is the real one)."""
    made: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(_forked.os, "fork", fork)
    return made


def read_in_parent(monkeypatch: pytest.MonkeyPatch, child: Callable[[], None]) -> list[str]:
    """The pages read in this process, by URL; ``child()`` runs first where a child reads."""
    parent, read = os.getpid(), []
    original = from_pins._Index.read

    def recorded(client: object, page: str, *args: object) -> object:
        if os.getpid() != parent:
            child()
        else:
            read.append(page)
        return original(client, page, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(from_pins._Index, "read", staticmethod(recorded))
    return read


def gone(pid: int) -> bool:
    """Whether ``pid`` is reaped (no process, not even a zombie, left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- the same answers ----------------------------------------------------------------------------


@needs_fork
@pytest.mark.usefixtures("two_projects")
def test_the_child_reads_every_page_and_the_parent_none(
    tmp_path: Path, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    in_parent = read_in_parent(monkeypatch, lambda: None)

    assert chosen(run(tmp_path, PINS, index_server.url)) == CHOSEN
    assert in_parent == []
    assert len(forks) == 1
    assert gone(forks[0])
    paths = sorted(p for p, _ in index_server.received if p.startswith("/simple/"))
    assert paths == ["/simple/app/", "/simple/lib/"]


@needs_fork
@pytest.mark.usefixtures("two_projects")
def test_a_child_that_dies_leaves_its_pages_to_the_parent(
    tmp_path: Path, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    in_parent = read_in_parent(monkeypatch, lambda: os._exit(3))
    started = time.monotonic()

    assert chosen(run(tmp_path, PINS, index_server.url)) == CHOSEN
    assert time.monotonic() - started < 10  # not the idle limit (pip's timeout, 15 s, x4)
    assert sorted(in_parent) == [f"{index_server.url}app/", f"{index_server.url}lib/"]
    assert len(forks) == 1
    assert gone(forks[0])


@needs_fork
@pytest.mark.usefixtures("two_projects")
def test_a_page_error_in_the_child_is_the_one_in_process(
    tmp_path: Path, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    in_parent = read_in_parent(monkeypatch, lambda: None)
    index_server.intercept(
        lambda path, headers: (503, {}, b"down") if path == "/simple/lib/" else None
    )
    config = {"retries": "0"}

    result = run(tmp_path, PINS, index_server.url, config=config)
    assert in_parent == []
    assert len(forks) == 1
    monkeypatch.setattr(from_pins.Ahead, "start", lambda *args, **kwargs: None)
    (tmp_path / "in-process").mkdir()
    in_process = run(tmp_path / "in-process", PINS, index_server.url, config=config)

    # The child's Ineligible, pickled: the same fallback, for the same reason, as in-process.
    assert isinstance(result, Fallback)
    assert result == in_process
    assert result.reason == f"{index_server.url}lib/ answered HTTP 503"
    assert in_parent == [f"{index_server.url}app/", f"{index_server.url}lib/"]


def test_a_malformed_page_in_the_child_is_one_line_from_the_command(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    # Run as a user runs it: the child's NetworkError crosses the pipe and is the
    # command's one error line and exit code.
    dists.wheel("lib", "1.0")
    index_server.json_pages = True
    index_server.upload_times["lib-1.0-py3-none-any.whl"] = "last tuesday"
    (tmp_path / "r.txt").write_text("lib==1.0\n")
    argv = wheelhouse_argv(
        "build", "-r", tmp_path / "r.txt", "-o", tmp_path / "wh", "-i", index_server.url,
        "--exclude-newer", "7d", "--cache-dir", tmp_path / "cache",
    )  # fmt: skip

    done = subprocess.run(
        argv, env=clean_env(cache=tmp_path / "xdg"), capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 5, done.stderr
    assert done.stderr.splitlines()[-2:] == [
        f"error: {index_server.url}lib/ gives 'lib-1.0-py3-none-any.whl' the upload-time "
        "'last tuesday', which is not an ISO 8601 time; the page is not used",
        "hint: the index is broken or hostile; ask its operator, or use another index",
    ]
    assert not (tmp_path / "wh").exists()


# -- no child where none is needed ---------------------------------------------------------------


@pytest.mark.usefixtures("two_projects")
def test_no_child_when_the_tap_gave_the_pages(
    tmp_path: Path, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = {}
    for name in ("app", "lib"):
        url = f"{index_server.url}{name}/"
        with urllib.request.urlopen(url) as answer:
            pages[url] = Page(200, url, answer.headers["Content-Type"], answer.read())
    asked = len(index_server.received)
    monkeypatch.setattr(_forked.os, "fork", lambda: pytest.fail("forked for pages already read"))
    (tmp_path / "r.txt").write_text(PINS)

    result = resolve_pinned(
        read_inputs((tmp_path / "r.txt",), ()),
        PipSettings.parse({}, IndexOptions(index_url=index_server.url)),
        HOST,
        Cache(tmp_path / "cache"),
        jobs=4,
        pages=pages,
    )

    assert chosen(result) == CHOSEN
    assert all(not p.startswith("/simple/") for p, _ in index_server.received[asked:])


def test_no_child_for_a_local_index(tmp_path: Path, dists: DistFactory) -> None:
    dists.wheel("lib", "1.0")
    index = tmp_path / "simple" / "lib"
    index.mkdir(parents=True)
    wheel = "lib-1.0-py3-none-any.whl"
    (index / "index.html").write_text(f'<a href="{(dists.root / wheel).as_uri()}">{wheel}</a>')

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_forked.os, "fork", lambda: pytest.fail("forked for a file: index"))
        result = run(tmp_path, "lib==1.0\n", (tmp_path / "simple").as_uri())
    assert chosen(result) == {"lib": wheel}


@pytest.mark.usefixtures("two_projects")
def test_no_child_but_on_linux(
    tmp_path: Path, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_forked.sys, "platform", "darwin")
    monkeypatch.setattr(_forked.os, "fork", lambda: pytest.fail("forked on macOS"))

    assert chosen(run(tmp_path, PINS, index_server.url)) == CHOSEN


# -- the child itself ----------------------------------------------------------------------------


def _sleep() -> object:
    time.sleep(3600)
    return None


@needs_fork
def test_answers_and_exceptions_come_back_by_key() -> None:
    ahead = Ahead.start(
        {"a": lambda: [1, 2], "b": lambda: _raise(Ineligible("no file fits"))}, jobs=2, idle=30
    )
    assert ahead is not None
    try:
        assert ahead.get("a") == [1, 2]
        with pytest.raises(Ineligible, match=r"^no file fits$"):
            ahead.get("b")
        assert ahead.get("c") is MISSING  # never asked of the child
    finally:
        ahead.close()
    assert gone(ahead._pid)


def _raise(exc: BaseException) -> object:
    raise exc


def _warn_then(result: object, name: str) -> object:
    logging.getLogger("wheelhouse.simple.parse").warning("%s: %d odd links", name, 2)
    if isinstance(result, BaseException):
        raise result
    return result


@needs_fork
def test_what_a_call_logs_in_the_child_is_logged_once_by_the_parent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = {
        "a": lambda: _warn_then(1, "a"),
        "b": lambda: _warn_then(Ineligible("b is broken"), "b"),
    }
    ahead = Ahead.start(calls, jobs=2, idle=30)
    assert ahead is not None
    with caplog.at_level(logging.WARNING):
        assert ahead.get("a") == 1
        assert ahead.get("a") == 1  # taken twice, logged once
        with pytest.raises(Ineligible, match=r"^b is broken$"):
            ahead.get("b")
    ahead.close()

    logged = [(r.name, r.levelno, r.getMessage(), r.process) for r in caplog.records]
    assert logged == [
        ("wheelhouse.simple.parse", logging.WARNING, "a: 2 odd links", ahead._pid),
        ("wheelhouse.simple.parse", logging.WARNING, "b: 2 odd links", ahead._pid),
    ]


@needs_fork
def test_locks_held_at_the_fork_do_not_hold_the_child() -> None:
    # Held by this thread, which the child does not have: the DNS lookups and the deadlines
    # there take locks of their own.
    def look_up_within_a_deadline() -> object:
        _http._reaper.add(_http.Deadline(0.01))
        return len(_dns._getaddrinfo_once("127.0.0.1", 80)) > 0

    with _dns._lookup_lock, _http._reaper._wake:
        ahead = Ahead.start({"a": look_up_within_a_deadline}, jobs=1, idle=10)
        assert ahead is not None
        assert ahead.get("a") is True
    ahead.close()


@needs_fork
def test_a_silent_child_is_ended_after_its_idle_limit() -> None:
    ahead = Ahead.start({"a": _sleep, "b": lambda: 1}, jobs=2, idle=0.5)
    assert ahead is not None
    started = time.monotonic()

    assert ahead.get("b") == 1
    assert ahead.get("a") is MISSING
    assert 0.4 < time.monotonic() - started < 5
    assert gone(ahead._pid)


@needs_fork
def test_an_answer_that_does_not_pickle_is_missing() -> None:
    ahead = Ahead.start({"a": lambda: lambda: None, "b": lambda: 2}, jobs=1, idle=30)
    assert ahead is not None
    assert ahead.get("a") is MISSING
    assert ahead.get("b") == 2  # the child went on
    ahead.close()


@needs_fork
def test_a_child_interrupted_interrupts_the_caller_and_a_closed_one_cancels(
    tmp_path: Path,
) -> None:
    started = tmp_path / "started"

    def wait() -> object:
        started.touch()  # the child's own signal handling is in place
        return _sleep()

    ahead = Ahead.start({"a": wait}, jobs=1, idle=30)
    assert ahead is not None
    assert wait_until(started.exists)
    os.kill(ahead._pid, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        ahead.get("a")
    assert gone(ahead._pid)

    ahead = Ahead.start({"a": _sleep}, jobs=1, idle=30)
    assert ahead is not None
    ahead.close()
    with pytest.raises(CancelledError):
        ahead.get("a")
    assert gone(ahead._pid)


# -- Ctrl-C --------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@needs_fork  # and reads /proc
@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c", "the-build-alone"])
def test_an_interrupt_while_the_child_waits_on_pages_exits_130_at_once_and_no_child_is_left(
    tmp_path: Path, stalled_index: socket.socket, to_group: bool
) -> None:
    (tmp_path / "r.txt").write_text(PINS)
    url = f"http://127.0.0.1:{stalled_index.getsockname()[1]}/simple/"
    argv = wheelhouse_argv("build", "-r", tmp_path / "r.txt", "-o", tmp_path / "wh", "-i", url)
    proc = subprocess.Popen(
        argv,
        env=clean_env(cache=tmp_path / "xdg"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        readable, _, _ = select.select([stalled_index], [], [], 120)
        assert readable, "the build never asked for a page"
        children = _children(proc.pid)
        assert len(children) == 1  # the page reader
        started = time.monotonic()
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the foreground group
        else:
            os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in stderr
    assert took < 5  # the page reads are not waited for (their limit is a minute)
    assert not Path(f"/proc/{children[0]}").exists()
