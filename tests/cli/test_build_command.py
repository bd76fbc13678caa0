"""``wheelhouse build`` as a user runs it: --json, -q, --pre, -f, pip's configuration, Ctrl-C."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import Cli
from tests.support.server import IndexServer
from wheelhouse.house.manifest import read_manifest

ALPHA = "alpha-1.0-py3-none-any.whl"
BETA = "beta-2.0-py3-none-any.whl"
SRCONLY = "srconly-1.0-py3-none-any.whl"


@pytest.fixture
def project(dists: DistFactory, tmp_path: Path) -> Path:
    """requirements.in asking for alpha (which needs beta) and srconly (an sdist only)."""
    dists.wheel("alpha", "1.0", requires=["beta>=2"])
    dists.wheel("beta", "2.0")
    dists.sdist("srconly", "1.0")
    reqs = tmp_path / "requirements.in"
    reqs.write_text("alpha\nsrconly\n", encoding="utf-8")
    return reqs


def size(path: Path) -> int:
    return path.stat().st_size


def test_build_json_has_every_documented_field(
    cli: Cli, project: Path, tmp_path: Path, index_server: IndexServer
) -> None:
    out = tmp_path / "wh"
    result = cli("build", "-r", project, "-o", out, "-i", index_server.url, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    seconds = summary.pop("seconds")
    assert isinstance(seconds, float) and 0 < seconds < 600
    packages = [
        {"name": "alpha", "version": "1.0", "files": [ALPHA]},
        {"name": "beta", "version": "2.0", "files": [BETA]},
        {"name": "srconly", "version": "1.0", "files": [SRCONLY]},
    ]
    assert summary == {
        "schema-version": 1,
        "output": str(out),
        "noop": False,
        "files": 3,
        "bytes": sum(size(out / name) for name in (ALPHA, BETA, SRCONLY)),
        "downloaded": 3,  # two wheels and the sdist
        "reused": 0,
        "built": 1,
        "targets": [{"target": "host", "requirements": "requirements.txt", "packages": packages}],
    }
    # Human output stays on stderr: it ends with the summary line.
    assert result.stderr.splitlines()[-1] == (
        f"{out}: 3 files, 0.0 MB (3 downloaded, 0 from cache, 1 built from sdists)"
    )

    again = cli("build", "-r", project, "-o", out, "-i", index_server.url, "--json")
    assert again.exit_code == 0, again.stderr
    noop = json.loads(again.stdout)
    assert (noop["noop"], noop["downloaded"], noop["reused"], noop["built"]) == (True, 0, 0, 0)
    assert noop["targets"] == summary["targets"]
    assert again.stderr == f"{out}: up to date (3 files)\n"


def test_quiet_prints_nothing_on_success_and_only_the_error_on_failure(
    cli: Cli, project: Path, tmp_path: Path, index_server: IndexServer
) -> None:
    out = tmp_path / "wh"
    result = cli("build", "-r", project, "-o", out, "-i", index_server.url, "-q")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert {ALPHA, BETA, SRCONLY} <= {p.name for p in out.iterdir()}

    missing = tmp_path / "missing.in"
    failed = cli("build", "-r", missing, "-o", tmp_path / "other", "-i", index_server.url, "-q")
    assert failed.exit_code == 3
    assert (
        failed.stderr.splitlines()[0] == f"error: requirements file {str(missing)!r} does not exist"
    )


def test_pre_lets_pip_choose_a_pre_release(
    cli: Cli, dists: DistFactory, tmp_path: Path, index_server: IndexServer
) -> None:
    dists.wheel("beta", "2.0")
    dists.wheel("beta", "3.0b1")
    reqs = tmp_path / "requirements.in"
    reqs.write_text("beta\n", encoding="utf-8")

    final = cli("build", "-r", reqs, "-o", tmp_path / "final", "-i", index_server.url)
    pre = cli("build", "-r", reqs, "-o", tmp_path / "pre", "-i", index_server.url, "--pre")

    assert (final.exit_code, pre.exit_code) == (0, 0), final.stderr + pre.stderr
    assert [(e.name, e.version) for e in read_manifest(tmp_path / "final").locks[0].entries] == [
        ("beta", "2.0")
    ]
    assert [(e.name, e.version) for e in read_manifest(tmp_path / "pre").locks[0].entries] == [
        ("beta", "3.0b1")
    ]


@pytest.mark.parametrize("flag", ["-f", "--find-links"])
def test_find_links_adds_a_folder_of_wheels(
    cli: Cli, flag: str, tmp_path: Path, index_server: IndexServer
) -> None:
    links = DistFactory(tmp_path / "links")
    links.root.mkdir()
    local = links.wheel("local", "1.0")
    reqs = tmp_path / "requirements.in"
    reqs.write_text("local\n", encoding="utf-8")

    without = cli("build", "-r", reqs, "-o", tmp_path / "without", "-i", index_server.url)
    assert without.exit_code == 4
    assert "error: no distribution found for 'local' on the configured indexes" in (
        without.stderr.splitlines()
    )

    result = cli(
        "build", "-r", reqs, "-o", tmp_path / "wh", "-i", index_server.url, flag, links.root
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "wh" / local.name).read_bytes() == local.read_bytes()


def test_a_changed_pip_configuration_ends_the_noop(
    cli: Cli,
    project: Path,
    tmp_path: Path,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index comes from pip.conf alone; changing pip.conf makes the next run resolve again."""
    project.write_text("alpha\n", encoding="utf-8")  # wheels only: no sdist to build three times
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {index_server.url}\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    out = tmp_path / "wh"
    assert cli("build", "-r", project, "-o", out).exit_code == 0
    assert cli("build", "-r", project, "-o", out).stderr == f"{out}: up to date (2 files)\n"

    conf.write_text(
        f"[global]\nindex-url = {index_server.url}\nextra-index-url = {index_server.base_url}x/\n",
        encoding="utf-8",
    )
    requests = len(index_server.requests)
    changed = cli("build", "-r", project, "-o", out, "--json")

    assert changed.exit_code == 0, changed.stderr
    assert json.loads(changed.stdout)["noop"] is False
    pip_version = importlib.metadata.version("pip")
    assert f"wheelhouse: resolving with pip {pip_version}" in changed.stderr.splitlines()
    assert "/x/alpha/" in index_server.requests[requests:]  # pip asked the new extra index


# -- Ctrl-C ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _stalled_build(
    tmp_path: Path, stalled_index: socket.socket, out: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`wheelhouse build` of one loose requirement from an index that never answers, in a
    process group of its own (a terminal's foreground job); the caller stops it, and the
    group is killed on the way out if it did not."""
    reqs = tmp_path / "requirements.in"
    reqs.write_text("alpha\n", encoding="utf-8")
    url = f"http://127.0.0.1:{stalled_index.getsockname()[1]}/simple/"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelhouse", "build", "-r", reqs, "-o", out, "-i", url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_sigint_to_a_running_build_exits_130_and_leaves_no_output(
    tmp_path: Path, stalled_index: socket.socket
) -> None:
    out = tmp_path / "wh"
    with _stalled_build(tmp_path, stalled_index, out) as proc:
        # pip has connected to the index and waits for an answer that never comes.
        readable, _, _ = select.select([stalled_index], [], [], 120)
        assert readable, "the build never reached the index"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert stderr.splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in stderr
    assert not out.exists()
    # Nothing half-written beside DIR (the lock file may stay).
    assert {p.name for p in tmp_path.iterdir() if p.name.startswith(".")} <= {".wh.lock"}


def _descendants(root: int) -> dict[int, str]:
    """The processes below ``root`` now, each pid with its start time (a pid may be reused)."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)], started[int(entry.name)] = int(fields[1]), fields[19]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = started[child]
                frontier.append(child)
    return found


def _runs_pip(processes: dict[int, str]) -> bool:
    for pid in processes:
        with contextlib.suppress(OSError):
            if b"pip" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return True
    return False


def _still_running(processes: dict[int, str]) -> list[int]:
    alive = []
    for pid, started in processes.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[19] == started and fields[0] != "Z":
            alive.append(pid)
    return alive


def _kill_all(processes: dict[int, str]) -> None:
    for pid in _still_running(processes):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_build_alone_stops_the_pip_it_runs(
    tmp_path: Path, stalled_index: socket.socket, signum: signal.Signals
) -> None:
    # Sent to the build's process only (kill PID, a supervisor's stop), not to its group as
    # a terminal's Ctrl-C is: pip, which waits on an index that never answers, must not
    # outlive the build.
    out = tmp_path / "wh"
    children: dict[int, str] = {}
    with contextlib.ExitStack() as stack:
        proc = stack.enter_context(_stalled_build(tmp_path, stalled_index, out))
        stack.callback(lambda: _kill_all(children))  # the last list of them, when it ends
        deadline = time.monotonic() + 120
        while not _runs_pip(children := _descendants(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, "pip never started"
            time.sleep(0.1)
        os.kill(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=60)
        # Within a second of the build's exit, nothing it started is left.
        deadline = time.monotonic() + 1.0
        while _still_running(children) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _still_running(children)
    assert left == [], f"still running after the build exited: {left}"
    assert proc.returncode == 130, stderr
    assert stdout == ""
    assert stderr.splitlines()[-1] == "error: interrupted"
    assert not out.exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_leaves_nothing_in_its_temporary_directory(
    tmp_path: Path, stalled_index: socket.socket, signum: signal.Signals
) -> None:
    # pip has made its temporary folders (pip-build-tracker-*, pip-unpack-*, ...) beside ours
    # and waits on an index that never answers; the build is stopped. Ours are removed as the
    # build unwinds; pip removes its own only if it is stopped as Ctrl-C stops it (SIGTERM
    # ends a Python process where it stands).
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    with _stalled_build(tmp_path, stalled_index, tmp_path / "wh", env) as proc:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith("pip-") for p in temp.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "pip never started"
            time.sleep(0.05)
        made = sorted(p.name for p in temp.iterdir())
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert any(name.startswith("wheelhouse-") for name in made), made
    assert sorted(p.name for p in temp.iterdir()) == []


def test_each_stage_of_a_loose_build_is_said_once(
    cli: Cli, project: Path, tmp_path: Path, index_server: IndexServer
) -> None:
    # Loose requirements: pip resolves, then the pins it chose are checked, once.
    out = tmp_path / "wh"
    result = cli("build", "-v", "-r", project, "-o", out, "-i", index_server.url)
    assert result.exit_code == 0, result.stderr
    stages = [line for line in result.stderr.splitlines() if line.startswith("wheelhouse: ")]
    assert stages.count("wheelhouse: checking the pins") == 1, stages
    # While pip builds the sdist to read its metadata, the step says so (issue 24: 22).
    resolving = next(line for line in stages if line.startswith("wheelhouse: resolving with pip "))
    assert f"{resolving}: reading the metadata of srconly-1.0.tar.gz" in stages, stages
    # Back to resolving once it is read: the live display's step, not a second line.
    assert stages.count(resolving) == 1, stages
