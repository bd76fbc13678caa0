"""20 cold pip clients at once through `wheelhouse serve --upstream` and through proxpi, in turns.

    python -m benchmarks.peers --proxpi /tmp/proxpi-venv [--rounds 1] [--clients 20]

proxpi (https://github.com/EpicWink/proxpi) runs from its own venv (``pip install proxpi
gunicorn`` there) under gunicorn, one process with a thread per client, the real index
upstream; each round starts both with an empty cache. Printed per side and round: wall time,
clients that succeeded, and the clients' own CPU seconds (user + system, summed), which is
where a page that costs pip more work shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.cases.proxy import start_proxy
from benchmarks.harness import HERE, PIP, PYPI_SIMPLE, _direct_env, online_env, scrubbed_env
from tests.support.process import ServeProcess, free_ports


class Proxpi:
    def __init__(self, venv: Path, cache: Path, clients: int, env: dict[str, str]) -> None:
        (self.port,) = free_ports()
        env = dict(env)
        env["PROXPI_INDEX_URL"] = PYPI_SIMPLE
        env["PROXPI_CACHE_DIR"] = str(cache)
        cert = env.get("PIP_CERT")
        if cert:
            env["REQUESTS_CA_BUNDLE"] = cert
        argv = [str(venv / "bin" / "gunicorn"), "--preload", "--threads", str(clients)]
        argv += ["--bind", f"127.0.0.1:{self.port}", "--timeout", "300", "proxpi.server:app"]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/index/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("proxpi did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def clients(url: str, requirements: Path, count: int, work: Path) -> tuple[float, int, float]:
    """(wall seconds, clients that succeeded, the clients' CPU seconds) of ``count`` pips."""

    def one(i: int) -> tuple[int, float]:
        argv = [*PIP, "install", "--no-cache-dir", "--disable-pip-version-check", "--target",
                str(work / f"t{i}"), "-r", str(requirements), "--index-url", url]  # fmt: skip
        proc = subprocess.Popen(argv, env=scrubbed_env(work), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, usage.ru_utime + usage.ru_stime

    start = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, range(count)))
    seconds = time.perf_counter() - start
    return seconds, sum(1 for code, _ in results if code == 0), sum(cpu for _, cpu in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxpi", type=Path, required=True, help="a venv with proxpi, gunicorn")
    parser.add_argument("--input", type=Path, default=HERE / "inputs" / "webservice.txt")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wheelhouse-peers-"))
    figures: dict[str, list[tuple[float, int, float]]] = {"wheelhouse": [], "proxpi": []}
    try:
        env = online_env(root / "env", root / "pip-cache")
        for r in range(args.rounds):
            order = ["wheelhouse", "proxpi"] if r % 2 == 0 else ["proxpi", "wheelhouse"]
            for side in order:
                work = root / f"{side}-{r}"
                work.mkdir()
                server: ServeProcess | Proxpi
                if side == "wheelhouse":
                    server = start_proxy(PYPI_SIMPLE, work / "store", env)
                else:
                    server = Proxpi(args.proxpi, work / "cache", args.clients, _direct_env(work))
                try:
                    result = clients(server.url, args.input.resolve(), args.clients, work)
                finally:
                    server.stop()
                figures[side].append(result)
                seconds, ok, cpu = result
                load = os.getloadavg()[0]
                line = f"round {r + 1} {side:<10} {seconds:6.1f} s, {ok}/{args.clients} "
                line += f"succeeded, clients' CPU {cpu:6.1f} s (load {load:.1f})"
                print(line, flush=True)
                shutil.rmtree(work, ignore_errors=True)
        for side, runs in figures.items():
            print(f"{side:<10} median {statistics.median(s for s, _, _ in runs):6.1f} s, "
                  f"clients' CPU {statistics.median(c for _, _, c in runs):6.1f} s")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
