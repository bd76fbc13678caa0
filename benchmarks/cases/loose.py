"""Loose input (resolved here) built cold, default resolver and --resolver uv, vs pip wheel."""

from __future__ import annotations

import contextlib
import statistics
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PIP,
    WHEELHOUSE,
    Scratch,
    online_env,
    phases,
    timed,
)
from benchmarks.report import Case

# Issue 16 (loose input, cold, against `pip wheel` of the newest pip): the default resolver,
# and --resolver uv on the web-service set and on larger sets.
TARGET_LOOSE = 1.0


TARGET_LOOSE_UV = {"webservice.in": 0.2}


TARGET_LOOSE_UV_LARGE = 0.3


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
