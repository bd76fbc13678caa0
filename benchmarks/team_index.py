"""The figures of a team's own index (issue 25): concurrent `twine upload`s, a 50 MB upload
against curl posting the same form, and the pages for people over a store of 5,000 projects.

Each case runs against `wheelhouse serve DIR --upload --users FILE` in a subprocess on
loopback, with real `twine` and `curl` as the clients; the server's RSS is read from /proc.

    python -m benchmarks.team_index [--rounds 3] [--projects 5000] [--requests 200]
    python -m benchmarks --team-index          # the same, from the bench entry point
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.process import ServeProcess
from tests.support.upload import users_cli

USER, PASSWORD = "bench", "bench-password-not-secret"
MB = 1024 * 1024
WORDS = [
    *("async", "cache", "client", "config", "crypto", "data", "event", "file", "graph", "http"),
    *("image", "json", "log", "math", "model", "network", "parse", "queue", "render", "schema"),
    *("server", "sql", "stream", "task", "test", "text", "time", "token", "web", "xml"),
]
TARGETS = {
    "upload_speed_ratio": 0.5,  # twine's speed at least half curl's
    "upload_rss_growth_bytes": 20 * MB,
    "page_median_seconds": 0.050,
    "server_rss_bytes": 150 * MB,
}


def _load() -> str:
    with open("/proc/loadavg") as load:
        return " ".join(load.read().split()[:3])


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    directory: Path, name: str, version: str, summary: str = "", payload: bytes = b""
) -> Path:
    """A small real wheel (with ``payload`` stored uncompressed as one module's data)."""
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files = {
        f"{name.replace('-', '_')}/__init__.py": b"",
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
            "Requires-Python: >=3.8\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    if payload:
        files[f"{name.replace('-', '_')}/data.bin"] = payload
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = directory / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for member, data in files.items():
            archive.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), data)
    return path


def _fetch(
    server: ServeProcess, path: str, connection: http.client.HTTPConnection | None = None
) -> bytes:
    """``path``'s body (on ``connection``, kept open, when given); anything but 200 ends the run."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
    if connection is None:
        conn.close()
    return body


class Sink:
    """An HTTP server on loopback that reads a request's body and discards it: what a client
    takes to send a form when the server costs nothing (the client's own floor)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            got = len(rest)
            while got < length:
                chunk = client.recv(MB)
                if not chunk:
                    return
                got += len(chunk)
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nOK\n")

    def close(self) -> None:
        self.sock.close()


def _users(directory: Path) -> Path:
    path = directory / "users.htpasswd"
    users_cli(
        "add", USER, "--users", path, "--password-stdin", stdin=PASSWORD + "\n"
    ).check_returncode()
    return path


def _twine_env() -> dict[str, str]:
    return {
        **os.environ,
        "TWINE_USERNAME": USER,
        "TWINE_PASSWORD": PASSWORD,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }


def twine_upload(server: ServeProcess | Sink, path: Path) -> tuple[int, float, str]:
    """(exit code, seconds, output) of one `twine upload` of ``path``."""
    argv = [sys.executable, "-m", "twine", "upload", "--non-interactive"]
    argv += ["--disable-progress-bar", "--verbose", "--repository-url", server.base, str(path)]
    start = time.perf_counter()
    result = subprocess.run(
        argv, capture_output=True, text=True, env=_twine_env(), stdin=subprocess.DEVNULL
    )
    return result.returncode, time.perf_counter() - start, result.stdout + result.stderr


def curl_upload(server: ServeProcess | Sink, path: Path) -> tuple[int, float]:
    """(HTTP status, seconds) of curl posting twine's form for ``path`` (file streamed)."""
    name, version = path.name.split("-")[:2]
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"]
    argv += ["-u", f"{USER}:{PASSWORD}", "-H", "Expect:"]
    for key, value in fields.items():
        argv += ["--form-string", f"{key}={value}"]
    argv += ["-F", f"content=@{path};type=application/octet-stream", server.base]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def _names_on_page(server: ServeProcess, project: str) -> set[str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request(
        "GET", f"/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        return set()
    return {f["filename"] for f in json.loads(body)["files"]}


def bench_concurrent(scratch: Path, users: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """20 concurrent uploads of distinct files; then two of the same file, at once."""
    dists = scratch / "dists"
    dists.mkdir()
    wheels = [make_wheel(dists, f"team-{i:02d}", "1.0", f"package {i}") for i in range(20)]
    twice = make_wheel(dists, "team-twice", "1.0", "uploaded twice at once")
    server = ServeProcess([str(scratch / "index"), "--upload", "--users", str(users)])
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda w: twine_upload(server, w), wheels))
        wall = time.perf_counter() - start
        ok = sum(1 for code, _, _ in results if code == 0)
        shown = sum(
            1 for i, w in enumerate(wheels) if w.name in _names_on_page(server, f"team-{i:02d}")
        )
        browse = _fetch(server, "/").decode()
        browsed = sum(1 for i in range(20) if f"/-/project/team-{i:02d}/" in browse)
        with ThreadPoolExecutor(2) as pool:
            pair = list(pool.map(lambda w: twine_upload(server, w), [twice, twice]))
        codes = sorted(code for code, _, _ in pair)
        conflict = sum(1 for code, _, out in pair if code != 0 and "409" in out)
    finally:
        server.stop()
    result = {
        "uploads": len(wheels),
        "succeeded": ok,
        "on_simple_pages": shown,
        "on_browse_page": browsed,
        "wall_seconds": round(wall, 3),
        "median_twine_seconds": round(statistics.median(r[1] for r in results), 3),
        "same_file_exit_codes": codes,
        "same_file_409": conflict,
        "status": "PASS" if ok == shown == browsed == 20 and codes[0] == 0 and conflict == 1
        else "MISS",
    }  # fmt: skip
    log(
        f"20 concurrent twine uploads: {ok}/20 succeeded in {wall:.1f} s, {shown}/20 on the "
        f"simple pages, {browsed}/20 on the browse page; the same file twice at once: exit "
        f"codes {codes}, {conflict} answered 409 [{result['status']}]"
    )
    return result


def bench_big_upload(
    scratch: Path, users: Path, rounds: int, size: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """A ``size``-byte wheel by twine and by curl (the same form, the same size), alternating,
    with the server's RSS sampled every 10 ms; each client also sends the same wheel to a sink
    that discards it, which is what the client alone costs."""
    dists = scratch / "big"
    dists.mkdir()
    server = ServeProcess([str(scratch / "big-index"), "--upload", "--users", str(users)])
    sink = Sink()
    seconds: dict[str, list[float]] = {"twine": [], "curl": [], "twine_sink": [], "curl_sink": []}
    growth: list[int] = []
    try:
        _fetch(server, "/")  # the app and its imports are loaded before the baseline
        for number in range(rounds):
            for client in ("twine", "curl") if number % 2 == 0 else ("curl", "twine"):
                payload = random.randbytes(size)
                version = f"1.{number}.{client == 'curl':d}"
                wheel = make_wheel(dists, "team-big", version, "", payload)
                before = _rss(server.proc.pid)
                peak = [before]
                done = threading.Event()

                def sample(peak: list[int] = peak, done: threading.Event = done) -> None:
                    while not done.wait(0.01):
                        peak[0] = max(peak[0], _rss(server.proc.pid))

                sampler = threading.Thread(target=sample)
                sampler.start()
                try:
                    seconds[client].append(_send(client, server, wheel))
                finally:
                    done.set()
                    sampler.join()
                growth.append(max(peak[0], _rss(server.proc.pid)) - before)
                seconds[f"{client}_sink"].append(_send(client, sink, wheel))
                wheel.unlink()
    finally:
        server.stop()
        sink.close()
    median = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = median["curl"] / median["twine"]  # twine's speed over curl's
    result: dict[str, Any] = {
        "bytes": size,
        "seconds": {k: [round(x, 3) for x in v] for k, v in seconds.items()},
        "mb_per_s": {k: round(size / MB / m, 1) for k, m in median.items()},
        "speed_ratio": round(ratio, 3),
        # What the server adds to each client's time: the same for both when it keeps up.
        "server_seconds": {
            "twine": round(median["twine"] - median["twine_sink"], 3),
            "curl": round(median["curl"] - median["curl_sink"], 3),
        },
        "max_rss_growth_bytes": max(growth),
    }
    result["status"] = (
        "PASS"
        if ratio >= TARGETS["upload_speed_ratio"]
        and max(growth) < TARGETS["upload_rss_growth_bytes"]
        else "MISS"
    )
    speed = result["mb_per_s"]
    log(
        f"{size // MB} MB wheel: twine {speed['twine']} MB/s, curl {speed['curl']} MB/s "
        f"(medians of {rounds}): ratio {ratio:.2f} (target >= 0.5); to a sink that discards "
        f"the body: twine {speed['twine_sink']} MB/s, curl {speed['curl_sink']} MB/s; the "
        f"server adds {result['server_seconds']['twine']:.2f} s to twine and "
        f"{result['server_seconds']['curl']:.2f} s to curl; server RSS growth at most "
        f"{max(growth) / MB:.1f} MB (target < 20) [{result['status']}]"
    )
    return result


def _send(client: str, server: ServeProcess | Sink, wheel: Path) -> float:
    if client == "twine":
        code, took, out = twine_upload(server, wheel)
        if code != 0:
            raise SystemExit(f"twine failed:\n{out}")
        return took
    status, took = curl_upload(server, wheel)
    if status != 200:
        raise SystemExit(f"curl got {status}")
    return took


def seed(root: Path, projects: int) -> list[str]:
    """A private index of ``projects`` one-wheel projects, written through the library (the
    files, the manifest and the index, then the catalog from the wheels' METADATA)."""
    from wheelhouse._base.files import write_atomic
    from wheelhouse.house.index import write_index
    from wheelhouse.house.manifest import (
        GENERATOR,
        MANIFEST_NAME,
        Downloaded,
        FileRecord,
        Inputs,
        Manifest,
        Sha256,
    )
    from wheelhouse.upload.store import UPLOAD_SOURCE, PrivateIndex

    root.mkdir(parents=True)
    rng = random.Random(25)
    names = []
    records = []
    for i in range(projects):
        words = rng.sample(WORDS, 3)
        name = f"{words[0]}-{words[1]}-{i}"
        wheel = make_wheel(root, name, "1.0", f"Tools for {words[1]} and {words[2]}")
        data = wheel.read_bytes()
        names.append(name)
        records.append(
            FileRecord(
                name=name,  # type: ignore[arg-type]  # canonical by construction
                version="1.0",
                filename=wheel.name,
                sha256=Sha256(hashlib.sha256(data).hexdigest()),
                size=len(data),
                kind="wheel",
                origin=Downloaded(url="", source=UPLOAD_SOURCE),
                requires_python=">=3.8",
            )
        )
    manifest = Manifest(
        generator=GENERATOR,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=Inputs(files=()),
        files=tuple(records),
        locks=(),
        kind="mirror",
    )
    write_index(root, manifest, verify=False)
    write_atomic(root / MANIFEST_NAME, manifest.to_json().encode())
    PrivateIndex(root)  # fills the catalog of an index that has none
    return names


def bench_pages(
    scratch: Path, users: Path, projects: int, requests: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """A project page and a search, one request at a time on a kept-alive connection."""
    root = scratch / "many"
    start = time.perf_counter()
    names = seed(root, projects)
    log(f"seeded {projects} projects in {time.perf_counter() - start:.1f} s")
    server = ServeProcess([str(root), "--upload", "--users", str(users)])
    rng = random.Random(7)
    timings: dict[str, list[float]] = {"project": [], "search": [], "simple": []}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for _ in range(5):  # warm: imports, the first renderings
            _fetch(server, f"/-/project/{names[0]}/", conn)
            _fetch(server, "/?q=http", conn)
        for _ in range(requests):
            name = rng.choice(names)
            for case, path in (
                ("project", f"/-/project/{name}/"),
                ("search", f"/?q={rng.choice(WORDS)}"),
                ("simple", f"/simple/{name}/"),
            ):
                took = time.perf_counter()
                body = _fetch(server, path, conn)
                timings[case].append(time.perf_counter() - took)
                if case == "project" and name.encode() not in body:
                    raise SystemExit(f"the page of {name} does not name it")
        conn.close()
        rss = _rss(server.proc.pid)
        # One more upload into the big store: the pages of that project and the root only.
        wheel = make_wheel(scratch, "late-arrival", "1.0", "uploaded last")
        code, upload_s, out = twine_upload(server, wheel)
        if code != 0 or wheel.name not in _names_on_page(server, "late-arrival"):
            raise SystemExit(f"the upload into the big store failed:\n{out}")
        tiny_s = twine_upload(server, make_wheel(scratch, "late-arrival", "1.1", ""))[1]
    finally:
        server.stop()
    medians = {case: statistics.median(t) for case, t in timings.items()}
    result = {
        "projects": projects,
        "requests": requests,
        "median_seconds": {c: round(m, 5) for c, m in medians.items()},
        "p90_seconds": {c: round(statistics.quantiles(t, n=10)[-1], 5) for c, t in timings.items()},
        "server_rss_bytes": rss,
        "twine_upload_seconds": [round(upload_s, 3), round(tiny_s, 3)],
        "status": "PASS"
        if medians["project"] < TARGETS["page_median_seconds"]
        and medians["search"] < TARGETS["page_median_seconds"]
        and rss < TARGETS["server_rss_bytes"]
        else "MISS",
    }
    log(
        f"{projects} projects: project page {medians['project'] * 1e3:.1f} ms, search "
        f"{medians['search'] * 1e3:.1f} ms, /simple/ page {medians['simple'] * 1e3:.1f} ms "
        f"(medians of {requests}; target < 50 ms); server RSS {rss / MB:.0f} MB (target < 150) "
        f"[{result['status']}]; a twine upload into it: {upload_s:.2f} s, {tiny_s:.2f} s"
    )
    return result


def run(
    rounds: int, projects: int, requests: int, size: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Every case, in a temporary directory; the figures as JSON-ready data."""
    for tool in ("curl",):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    result: dict[str, Any] = {"load_average_start": _load()}
    with tempfile.TemporaryDirectory(prefix="team-index-bench-") as tmp:
        scratch = Path(tmp)
        users = _users(scratch)
        result["concurrent"] = bench_concurrent(scratch, users, log)
        result["big_upload"] = bench_big_upload(scratch, users, rounds, size, log)
        result["pages"] = bench_pages(scratch, users, projects, requests, log)
    result["load_average_end"] = _load()
    start, end = result["load_average_start"], result["load_average_end"]
    log(f"load average: {start} at start, {end} at end")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="50 MB uploads per client")
    parser.add_argument("--projects", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200, help="per page kind")
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    options = parser.parse_args(argv)
    figures = run(options.rounds, options.projects, options.requests, options.size_mb * MB, print)
    if options.json is not None:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
