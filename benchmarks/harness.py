"""The harness: timed commands, environments, scratch directories, the machine and its load."""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.process import clean_env
from wheelhouse.house.manifest import BuiltFrom, FileRecord, read_manifest
from wheelhouse.install.hermetic import find_uv

HERE = Path(__file__).resolve().parent


ROOT = HERE.parent


DEFAULT_INPUTS = (HERE / "inputs" / "webservice.txt", HERE / "inputs" / "sdists.txt")


LOOSE_INPUTS = (HERE / "inputs" / "webservice.in", HERE / "inputs" / "datascience.in")


DEFAULT_JSON = ROOT / "bench-results" / "bench.json"


WHEELHOUSE = [sys.executable, "-m", "wheelhouse"]


PIP = [sys.executable, "-m", "pip"]


class BenchError(Exception):
    """A command the benchmark runs failed; the message carries its output."""


@dataclass(frozen=True)
class Run:
    """One timed command."""

    seconds: float
    lines: list[tuple[float, str]]  # (seconds since start, line) of its merged output
    cpu: float = 0.0  # user + system CPU seconds of the command and what it waited for


def timed(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Run:
    """Run argv, stamping each output line with the time it arrived; fail loudly on error."""
    lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    with subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
        # wait4, not wait: the child's own resource usage comes back with its status.
        _, status, usage = os.wait4(proc.pid, 0)
        code = proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if code != 0:
        tail = "\n".join(text for _, text in lines[-25:])
        raise BenchError(f"exit {code}: {' '.join(argv)}\n{tail}")
    return Run(seconds, lines, usage.ru_utime + usage.ru_stime)


# The stage lines of `wheelhouse build` (not the per-sdist "building NAME" lines) and the
# commands it runs, as `-v` shows them.
_STAGE = re.compile(
    r"^wheelhouse: (?P<label>reading|checking the pins|resolving (?:with \w+|build requirements)"
    r"|fetching(?= \d)|building(?= \d)|writing)"
)


_COMMAND = re.compile(
    r"running: (?:\S+(?: -[A-Za-z]+)* -m (?P<pip>pip)|\S*/(?P<uv>uv) pip) (?P<sub>[\w-]+)"
)


def phases(run: Run) -> dict[str, float]:
    """Where a ``wheelhouse build -v`` spent its time, from the stamped stage and command lines."""
    marks: list[tuple[float, str]] = [(0.0, "startup")]
    for stamp, text in run.lines:
        command = _COMMAND.search(text)
        stage = _STAGE.match(text)
        if command:
            tool = "pip" if command["pip"] else "uv pip"
            marks.append((stamp, f"{tool} {command['sub']}"))
        elif stage:
            marks.append((stamp, stage["label"]))
    marks.append((run.seconds, "end"))
    spent: dict[str, float] = {}
    for (begin, label), (end, _) in itertools.pairwise(marks):
        spent[label] = spent.get(label, 0.0) + end - begin
    return spent


def online_env(scratch: Path, pip_cache: Path) -> dict[str, str]:
    """The user's environment and pip configuration, with every cache under ``scratch``."""
    env = dict(os.environ)
    env["PIP_CACHE_DIR"] = str(pip_cache)
    env["XDG_CACHE_HOME"] = str(scratch / "xdg-cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def scrubbed_env(scratch: Path) -> dict[str, str]:
    """No pip or uv configuration at all: what an offline install (and the scale run) uses."""
    return clean_env(cache=scratch / "xdg-cache")


class Scratch:
    """Fresh directories under one temporary root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0

    def new(self, label: str) -> Path:
        self._count += 1
        path = self.root / f"{self._count:03d}-{label}"
        path.mkdir(parents=True)
        return path


def alternate(rounds: int, first: Any, second: Any) -> None:
    """Call first(r) and second(r) each round, swapping which goes first every round."""
    for r in range(rounds):
        order = (first, second) if r % 2 == 0 else (second, first)
        for step in order:
            step(r)


def manifest_files(directory: Path) -> list[FileRecord]:
    manifest = read_manifest(directory)
    if manifest is None:
        raise BenchError(f"the build left no manifest in {directory}")
    return list(manifest.files)


def built_from_sdists(directory: Path) -> int:
    return sum(isinstance(f.origin, BuiltFrom) for f in manifest_files(directory))


def _tail(run: Run, count: int = 20) -> str:
    return "\n".join(text for _, text in run.lines[-count:])


PYPI_SIMPLE = "https://pypi.org/simple/"


def _direct_env(scratch: Path) -> dict[str, str]:
    """pip configuration scrubbed, except the CA bundle the index's TLS proxy needs."""
    env = scrubbed_env(scratch)
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if not cert:
        probe = subprocess.run(
            [*PIP, "config", "get", "global.cert"], capture_output=True, text=True, check=False
        )
        cert = probe.stdout.strip()
    if cert:
        env["PIP_CERT"] = cert
    return env


def _direct_uv_env(work: Path) -> dict[str, str]:
    """uv straight from the index: no configuration, the CA bundle the index's TLS proxy needs."""
    env = _direct_env(work)
    if env.get("PIP_CERT"):
        env["SSL_CERT_FILE"] = env["PIP_CERT"]
    return env


def _uv_install(python: Path, requirements: Path, index: str) -> list[str]:
    return [str(find_uv()), "pip", "install", "--no-cache", "--python", str(python),
            "-r", str(requirements), "--index-url", index]  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_rss(root_pid: int) -> int:
    """Resident bytes of root_pid and every descendant, from /proc (0 where /proc is absent)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm", encoding="ascii") as f:
                resident = int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = resident * page
    tree = {root_pid}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in tree)


@dataclass(frozen=True)
class Measured:
    seconds: float
    max_rss: int  # the largest single process of the tree (getrusage of the waited child)
    tree_rss: int  # the largest sum over the live tree, sampled every 20 ms
    run: Run


def measure(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Measured:
    """Wall time, stamped output and peak memory of a command and its whole process tree."""
    lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if os.path.isdir("/proc"):
            peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    reader.join()
    assert proc.stdout is not None
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    run = Run(seconds, lines)
    if proc.returncode != 0:
        raise BenchError(f"exit {proc.returncode}: {' '.join(argv)}\n{_tail(run, 25)}")
    # ru_maxrss is in KiB on Linux.
    return Measured(seconds, usage.ru_maxrss * 1024, max(peak, usage.ru_maxrss * 1024), run)


_WHERE = (
    "import importlib.util, os, wheelhouse; f = wheelhouse.__file__; "
    "print(f, 'compiled' if os.path.exists(importlib.util.cache_from_source(f)) else 'source')"
)


def tool_version(argv: Sequence[str], cwd: str | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, check=False, timeout=60, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    if done.returncode != 0:
        return "?"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine() -> dict[str, Any]:
    from wheelhouse import __version__

    try:
        uv = tool_version([str(find_uv()), "--version"])
    except Exception as exc:  # a missing uv is reported, not fatal here
        uv = f"unavailable ({exc})"
    # The wheelhouse the commands run: they start in scratch folders, so not the checkout in
    # the current directory but the installed one (PYTHONPATH may point at another checkout).
    where = tool_version([sys.executable, "-c", _WHERE], cwd=tempfile.gettempdir())
    source = Path(where.split(" ")[0]).parent.parent
    commit = tool_version(["git", "-C", str(source), "rev-parse", "--short", "HEAD"])
    dirty = tool_version(["git", "-C", str(source), "status", "--porcelain", "--", "wheelhouse"])
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pip": tool_version([*PIP, "--version"]).split(" from ")[0],
        "uv": uv,
        "wheelhouse": __version__,
        # Other work on the machine skews the figures; alternating rounds only spreads it evenly.
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "wheelhouse_source": str(source),
        "wheelhouse_commit": commit + (" (uncommitted changes)" if dirty not in ("", "?") else ""),
        # An editable checkout run with PYTHONDONTWRITEBYTECODE compiles every module at every
        # start (0.1-0.15 s here); `pip install` compiles them once, as `nox -s bench` does.
        "wheelhouse_bytecode": where.endswith(" compiled"),
    }


def timed_cpu(argv: Sequence[str], env: Mapping[str, str]) -> tuple[Run, float]:
    """``timed``, and the CPU time (user + sys) the command and its children used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = timed(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return run, used


@contextlib.contextmanager
def scratch_root(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wheelhouse-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)
