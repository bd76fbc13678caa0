"""wheelhouse.house.directory: output checks, the lock, the atomic swap and crash recovery."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import wheelhouse.house.directory as wheelhouse_dir
from tests.support.capabilities import missing
from tests.support.dists import DistFactory
from tests.support.files import entries as snapshot
from tests.support.fixtures import Cli
from tests.support.graph import GRAPH_REQUIREMENTS, make_graph, wheels_in
from tests.support.process import wait_until
from tests.support.server import IndexServer
from tests.support.wheelhouses import make_wheelhouse
from wheelhouse.errors import OutputDirError
from wheelhouse.house.directory import (
    _recover,
    check_output_dir,
    generated_names,
    locked,
    put_in_place,
)
from wheelhouse.house.manifest import MANIFEST_NAME, Manifest, read_manifest


def staged(tmp_path: Path, dists: DistFactory, *specs: tuple[str, str]) -> Manifest:
    """A manifest of fresh wheels; the wheels sit in ``tmp_path / "src"`` (the sources)."""
    wheels = [dists.wheel(name, version) for name, version in specs]
    return make_wheelhouse(tmp_path / "src", wheels)


def sources(tmp_path: Path, manifest: Manifest) -> dict[str, Path]:
    return {r.filename: tmp_path / "src" / r.filename for r in manifest.files}


def siblings(out: Path) -> list[str]:
    """Entries beside ``out`` that wheelhouse names after it (staging, aside, lock)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.fixture
def old(tmp_path: Path, dists: DistFactory) -> tuple[Path, Manifest]:
    """A published wheelhouse ``tmp_path / "wh"`` holding alpha 1.0, plus a user's note."""
    out = tmp_path / "wh"
    manifest = staged(tmp_path, dists, ("alpha", "1.0"))
    put_in_place(out, manifest, sources(tmp_path, manifest))
    (out / "NOTES.txt").write_text("ours, not wheelhouse's\n", encoding="utf-8")
    return out, manifest


# -- publish ---------------------------------------------------------------------------------


def test_publish_into_a_new_dir(tmp_path: Path, dists: DistFactory) -> None:
    manifest = staged(tmp_path, dists, ("alpha", "1.0"), ("beta", "2.0"))
    out = tmp_path / "wh"
    seen: list[Path] = []

    def writer(root: Path, written: Manifest) -> None:
        assert written is manifest
        seen.append(root)
        (root / "extra.txt").write_text("written by a writer\n", encoding="utf-8")

    put_in_place(out, manifest, sources(tmp_path, manifest), writers=[writer])

    assert sorted(p.name for p in out.iterdir()) == [
        "alpha-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl",
        "extra.txt",
        MANIFEST_NAME,
    ]
    assert read_manifest(out) == manifest
    for record in manifest.files:
        assert (out / record.filename).read_bytes() == (
            tmp_path / "src" / record.filename
        ).read_bytes()
    # The writer wrote into a staging directory beside DIR, never into DIR itself.
    [root] = seen
    assert root.parent == out.parent and root.name.startswith(".wh.staging-")
    assert siblings(out) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_old_wheelhouse_is_visible_until_the_swap(
    tmp_path: Path,
    dists: DistFactory,
    old: tuple[Path, Manifest],
    monkeypatch: pytest.MonkeyPatch,
    exchange: bool,
) -> None:
    out, _ = old
    if not exchange:
        monkeypatch.setattr(wheelhouse_dir, "_exchange", lambda a, b: False)
    elif wheelhouse_dir._renameat2() is None:
        missing("renameat2(RENAME_EXCHANGE)", "this kernel or libc has none")
    moved_aside: list[str] = []
    rename = os.rename

    def recording_rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == out:
            moved_aside.append(Path(dst).name)
        rename(src, dst)

    monkeypatch.setattr(os, "rename", recording_rename)
    before = snapshot(out)
    new = staged(tmp_path, dists, ("beta", "2.0"))
    checked: list[bool] = []

    def writer(root: Path, manifest: Manifest) -> None:
        # Mid-publish, the new files are staged, and DIR is still exactly the old one.
        assert (root / "beta-2.0-py3-none-any.whl").is_file()
        assert snapshot(out) == before
        checked.append(True)

    put_in_place(out, new, sources(tmp_path, new), writers=[writer])

    assert checked == [True]
    # With renameat2, DIR is exchanged in one step and never missing; without it, it is
    # moved aside for an instant.
    if exchange:
        assert moved_aside == []
    else:
        assert [re.fullmatch(r"\.wh\.old-[0-9a-f]{12}", n) is not None for n in moved_aside] == [
            True
        ]
    assert sorted(p.name for p in out.iterdir()) == [
        "NOTES.txt",
        "beta-2.0-py3-none-any.whl",
        MANIFEST_NAME,
    ]
    assert read_manifest(out) == new
    assert (out / "NOTES.txt").read_text(encoding="utf-8") == "ours, not wheelhouse's\n"
    assert siblings(out) == []


@pytest.mark.parametrize("error", [RuntimeError("writer broke"), KeyboardInterrupt()])
def test_a_failing_writer_leaves_the_old_dir_byte_identical(
    tmp_path: Path,
    dists: DistFactory,
    old: tuple[Path, Manifest],
    error: BaseException,
) -> None:
    out, _ = old
    before = snapshot(out)
    new = staged(tmp_path, dists, ("beta", "2.0"))

    def writer(root: Path, manifest: Manifest) -> None:
        (root / "half-written.txt").write_text("half", encoding="utf-8")
        raise error

    with pytest.raises(type(error)):
        put_in_place(out, new, sources(tmp_path, new), writers=[writer])

    assert snapshot(out) == before
    assert siblings(out) == []


def test_a_missing_source_leaves_no_dir_and_no_staging(tmp_path: Path, dists: DistFactory) -> None:
    manifest = staged(tmp_path, dists, ("alpha", "1.0"))
    (tmp_path / "src" / "alpha-1.0-py3-none-any.whl").unlink()
    out = tmp_path / "wh"

    with pytest.raises(FileNotFoundError):
        put_in_place(out, manifest, sources(tmp_path, manifest))

    assert not out.exists()
    assert siblings(out) == []


def test_generated_names_cover_what_a_build_writes(old: tuple[Path, Manifest]) -> None:
    _, manifest = old
    assert generated_names(manifest) == {
        MANIFEST_NAME,
        "requirements.txt",
        "requirements.host.txt",
        "pylock.toml",
        "simple",
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.0-py3-none-any.whl.metadata",
    }


# -- recovery --------------------------------------------------------------------------------


def test_recover_restores_a_dir_moved_aside_by_an_interrupted_swap(
    old: tuple[Path, Manifest],
) -> None:
    out, _ = old
    before = snapshot(out)
    # Killed between "move DIR aside" and "move staging in": DIR is gone, both are beside it.
    out.rename(out.parent / ".wh.old-0123456789ab")
    staging = out.parent / ".wh.staging-ba9876543210"
    staging.mkdir()
    (staging / "partial.whl").write_bytes(b"PK\x03\x04 half")

    _recover(out)

    assert snapshot(out) == before
    assert siblings(out) == []


def test_recover_keeps_a_swapped_in_dir_and_drops_the_old_one(
    tmp_path: Path, old: tuple[Path, Manifest]
) -> None:
    out, _ = old
    before = snapshot(out)
    # Killed after the swap, before the old one was deleted.
    aside = out.parent / ".wh.old-0123456789ab"
    aside.mkdir()
    (aside / "stale.whl").write_bytes(b"old")
    # Entries that are not ours stay, even with similar names.
    (tmp_path / ".wh.oldnotes").write_text("mine\n", encoding="utf-8")
    (tmp_path / ".other.staging-0123").mkdir()
    (tmp_path / "wh.staging-0123").mkdir()

    _recover(out)

    assert snapshot(out) == before
    assert not aside.exists()
    assert (tmp_path / ".wh.oldnotes").read_text(encoding="utf-8") == "mine\n"
    assert (tmp_path / ".other.staging-0123").is_dir()
    assert (tmp_path / "wh.staging-0123").is_dir()


def test_taking_the_lock_recovers(old: tuple[Path, Manifest]) -> None:
    out, _ = old
    before = snapshot(out)
    out.rename(out.parent / ".wh.old-0123456789ab")

    with locked(out):
        assert snapshot(out) == before
    assert siblings(out) == []


def test_a_build_after_an_interrupted_swap_finds_the_old_wheelhouse(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    make_graph(dists)
    reqs = tmp_path / "requirements.in"
    reqs.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    out = tmp_path / "wh"
    args = ("build", "--index-url", index_server.url, "-o", out, "-r", reqs)
    assert cli(*args).exit_code == 0
    before = snapshot(out)
    out.rename(tmp_path / ".wh.old-0123456789ab")
    (tmp_path / ".wh.staging-0123456789ab").mkdir()
    requests = len(index_server.requests)

    result = cli(*args)

    # The restored wheelhouse is up to date, so nothing is asked of the index either.
    assert result.exit_code == 0, result.stderr
    assert f"{out}: up to date (5 files)" in result.stderr.splitlines()
    assert len(index_server.requests) == requests
    assert snapshot(out) == before
    assert siblings(out) == []


# -- the lock --------------------------------------------------------------------------------

_HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wheelhouse.house.directory import locked

    with locked(Path(sys.argv[1])):
        print("holding", flush=True)
        sys.stdin.readline()
    """
)


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``tmp_path / "wh"`` until its stdin is closed."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path / "wh")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "holding\n"
            yield proc
        finally:
            proc.kill()


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def test_a_second_locker_waits_and_says_so(
    tmp_path: Path, lock_holder: subprocess.Popen[str]
) -> None:
    out = tmp_path / "wh"
    messages: list[str] = []
    acquired = threading.Event()

    def take() -> None:
        with locked(out, on_wait=messages.append):
            acquired.set()

    thread = threading.Thread(target=take)
    thread.start()
    try:
        wait_until(lambda: bool(messages), 10)
        assert messages == [f"waiting for another wheelhouse run on {str(out)!r} to finish"]
        time.sleep(0.3)
        assert not acquired.is_set()
    finally:
        release(lock_holder)
        thread.join(timeout=30)
    assert acquired.is_set()
    assert messages == [f"waiting for another wheelhouse run on {str(out)!r} to finish"]


_CHURN_LOCK = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from wheelhouse.house.directory import locked

    out, inside = Path(sys.argv[1]), sys.argv[2]
    for _ in range(int(sys.argv[3])):
        with locked(out):
            # Fails when another process holds the lock at the same time.
            fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            os.unlink(inside)
    """
)


def test_the_lock_file_is_gone_after_each_run_and_still_excludes_under_churn(
    tmp_path: Path,
) -> None:
    out = tmp_path / "wh"
    with locked(out):
        assert siblings(out) == [".wh.lock"]
    assert os.listdir(tmp_path) == []
    # Each holder removes the file before letting go; a waiter that then gets the lock on the
    # removed file must start again, or two processes would hold "the" lock at once.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHURN_LOCK, str(out), str(tmp_path / "inside"), "200"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    assert os.listdir(tmp_path) == []


def test_a_free_lock_is_taken_without_a_word(tmp_path: Path) -> None:
    messages: list[str] = []
    with locked(tmp_path / "wh", on_wait=messages.append):
        pass
    assert messages == []


def test_a_second_build_waits_for_the_first_then_succeeds(
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
    lock_holder: subprocess.Popen[str],
) -> None:
    make_graph(dists)
    reqs = tmp_path / "requirements.in"
    reqs.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    out = tmp_path / "wh"
    argv = [sys.executable, "-m", "wheelhouse", "build", "--index-url", index_server.url]
    with subprocess.Popen(
        [*argv, "-o", str(out), "-r", str(reqs)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as build:
        # A build that never says it waits would block the readline below forever.
        watchdog = threading.Timer(60, build.kill)
        watchdog.start()
        try:
            assert build.stderr is not None
            assert build.stderr.readline() == (
                f"wheelhouse: waiting for another wheelhouse run on {str(out)!r} to finish\n"
            )
            time.sleep(0.3)
            assert build.poll() is None
            assert not out.exists()
            assert index_server.requests == []
            release(lock_holder)
            _, stderr = build.communicate(timeout=120)
        finally:
            watchdog.cancel()
            build.kill()
    assert build.returncode == 0, stderr
    assert len(wheels_in(out)) == 5


# -- check_output_dir ------------------------------------------------------------------------


def test_a_new_or_empty_dir_or_a_wheelhouse_is_accepted(
    tmp_path: Path, old: tuple[Path, Manifest]
) -> None:
    out, _ = old
    check_output_dir(out)
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")
    check_output_dir(tmp_path / "new" / "deeper" / "wh")
    # The parent is made, so the lock file can sit beside DIR; DIR itself is not.
    assert (tmp_path / "new" / "deeper").is_dir()
    assert not (tmp_path / "new" / "deeper" / "wh").exists()


def test_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "wh"
    out.write_text("not a directory\n", encoding="utf-8")
    with pytest.raises(OutputDirError) as info:
        check_output_dir(out)
    assert info.value.message == f"output {str(out)!r} exists and is not a directory"
    assert info.value.hint == "choose another path with -o"


def test_a_dir_that_is_not_a_wheelhouse_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "src"
    out.mkdir()
    (out / "main.py").write_text("print('hi')\n", encoding="utf-8")
    with pytest.raises(OutputDirError) as info:
        check_output_dir(out)
    assert info.value.message == (
        f"output directory {str(out)!r} is not empty and is not a wheelhouse "
        f"(it has no {MANIFEST_NAME}); refusing to write into it"
    )
    assert info.value.hint == "choose an empty or new directory with -o"


def test_a_parent_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n", encoding="utf-8")
    out = blocker / "sub" / "wh"
    with pytest.raises(OutputDirError) as info:
        check_output_dir(out)
    assert info.value.message == (
        f"cannot create {str(out)!r}: {str(blocker)!r} is a file, not a directory"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_parent_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(OutputDirError) as info:
            check_output_dir(parent / "wh")
    finally:
        parent.chmod(0o755)
    assert info.value.message == f"cannot write to {str(parent / 'wh')!r} (permission denied)"


def test_the_cli_refuses_a_foreign_dir_and_leaves_it_alone(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    make_graph(dists)
    reqs = tmp_path / "requirements.in"
    reqs.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    out = tmp_path / "src"
    out.mkdir()
    (out / "main.py").write_text("print('hi')\n", encoding="utf-8")
    before = snapshot(tmp_path / "src")

    result = cli("build", "--index-url", index_server.url, "-o", out, "-r", reqs)

    assert result.exit_code == 8
    assert result.stderr.splitlines() == [
        f"error: output directory {str(out)!r} is not empty and is not a wheelhouse "
        f"(it has no {MANIFEST_NAME}); refusing to write into it",
        "hint: choose an empty or new directory with -o",
    ]
    assert snapshot(out) == before
    assert index_server.requests == []
    assert siblings(out) == []


# -- SIGKILL at each step of a publish -------------------------------------------------------

# Runs put_in_place() in a child that SIGKILLs itself at one chosen step.
_PUBLISH_AND_DIE = textwrap.dedent(
    """
    import os, shutil, signal, sys
    from pathlib import Path

    import wheelhouse.house.directory as w
    from wheelhouse.house.export import write_requirements
    from wheelhouse.house.manifest import Manifest

    out, manifest_path, src = map(Path, sys.argv[1:4])
    step = sys.argv[4]
    manifest = Manifest.from_json(manifest_path.read_text())
    sources = {r.filename: src / r.filename for r in manifest.files}

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def on_call(function, n):
        calls = []
        def wrapper(*args, **kwargs):
            calls.append(args)
            if len(calls) == n:
                die()
            return function(*args, **kwargs)
        return wrapper

    writers = [write_requirements]
    if step == "copying":
        w.shutil.copyfile = on_call(shutil.copyfile, 2)
    elif step == "writing":
        writers.append(die)
    elif step == "before-swap":
        w._swap_in = die
    elif step == "after-exchange":
        w.shutil.rmtree = die
    elif step == "between-renames":
        w._exchange = lambda a, b: False
        w.os.rename = on_call(os.rename, 2)
    elif step == "after-renames":
        w._exchange = lambda a, b: False
        w.shutil.rmtree = die
    with w.locked(out):
        w.put_in_place(out, manifest, sources, writers)
    """
)


@pytest.mark.parametrize(
    ("step", "visible", "after_recovery"),
    [
        ("copying", "old", "old"),
        ("writing", "old", "old"),
        ("before-swap", "old", "old"),
        ("after-exchange", "new", "new"),
        # Without renameat2 there is an instant with no DIR; the next run puts the old one back.
        ("between-renames", None, "old"),
        ("after-renames", "new", "new"),
    ],
)
def test_sigkill_at_each_step_of_publish(
    tmp_path: Path,
    dists: DistFactory,
    old: tuple[Path, Manifest],
    step: str,
    visible: str | None,
    after_recovery: str,
) -> None:
    out, _ = old
    before = snapshot(out)
    new = staged(tmp_path, dists, ("beta", "2.0"), ("gamma", "3.0"))
    manifest_path = tmp_path / "new.json"
    manifest_path.write_text(new.to_json(), encoding="utf-8")
    argv = [sys.executable, "-c", _PUBLISH_AND_DIE, out, manifest_path, tmp_path / "src", step]

    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)

    assert proc.returncode == -9, proc.stderr

    def state() -> str | None:
        if not out.exists():
            return None
        if {path: e[:2] for path, e in snapshot(out).items()} == {
            path: e[:2] for path, e in before.items()
        }:
            return "old"
        assert sorted(p.name for p in out.iterdir()) == [
            "NOTES.txt",
            "beta-2.0-py3-none-any.whl",
            "gamma-3.0-py3-none-any.whl",
            "requirements.txt",
            MANIFEST_NAME,
        ]
        assert read_manifest(out) == new
        return "new"

    assert state() == visible
    assert siblings(out) != [".wh.lock"]  # the kill left a staging or aside directory

    with locked(out):
        assert state() == after_recovery
    assert siblings(out) == []
    if after_recovery == "old":
        assert snapshot(out) == before
