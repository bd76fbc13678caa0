"""Processes a test starts: a command run to its end, `wheelhouse serve ...` run as users run
it (static, proxy or upload index) and what tests ask of it, and waiting for what they do."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.httpget import Response, get


def free_ports(count: int = 1) -> list[int]:
    """``count`` loopback ports free a moment ago (bound together, then closed): for a server
    to take, or for a client to find nothing listening on."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def clean_env(home: Path | None = None, *, cache: Path | None = None) -> dict[str, str]:
    """``os.environ`` with no pip, uv or other lock tool's configuration: a command run with it
    reads only what it is given. ``cache`` moves the XDG cache; with ``home``, HOME, the XDG
    folders and uv's cache are under it and no venv is active."""
    tools = ("PIP_", "UV_", "POETRY_", "PDM_", "PIPENV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(tools)}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_NO_CONFIG="1",
    )
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    if home is not None:
        env = {k: v for k, v in env.items() if not k.startswith("VIRTUAL_ENV")}
        env.update(
            HOME=str(home),
            XDG_CACHE_HOME=str(home / "cache"),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_DATA_HOME=str(home / "data"),
            UV_CACHE_DIR=str(home / "uv-cache"),
            UV_PYTHON_DOWNLOADS="never",
            NO_COLOR="1",
        )
    return env


def wheelhouse_argv(*args: str | os.PathLike[str]) -> list[str]:
    """The installed command, the way a user runs it: ``python -m wheelhouse ARGS``."""
    return [sys.executable, "-m", "wheelhouse", *(str(arg) for arg in args)]


def run_command(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end (no stdin, bounded): its exit code and output, to assert on."""
    return subprocess.run(
        [os.fspath(arg) for arg in argv],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``check()`` comes true within ``timeout`` seconds (asked every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


class ServeProcess:
    """`wheelhouse serve ...` in a subprocess; its stderr is drained into ``log`` all along (a
    server blocked on a full stderr pipe would prove nothing). ``nofile`` lowers its open-file
    limit."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, *, nofile: int | None = None
    ) -> None:
        def lower_limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=dict(os.environ) if env is None else env,
            preexec_fn=lower_limit if nofile is not None else None,
        )
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                # "proxying WHAT (store S) at URL (Ctrl-C to stop)", "serving DIR at URL (...)"
                if line.endswith("(Ctrl-C to stop)\n") and not ready.is_set():
                    self.url = line.split(" at ")[-1].split()[0]
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise AssertionError(f"the server did not start:\n{self.log}")

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def logged(self, text: str, timeout: float = 30.0) -> bool:
        """Whether ``text`` reaches the log within ``timeout`` seconds (it is read by a
        thread, so a line the server wrote may not be here yet)."""
        return wait_until(lambda: text in self.log, timeout)

    @property
    def base(self) -> str:
        """The server's root URL, where clients upload."""
        return self.url.removesuffix("simple/")

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def get(self, path: str, accept: str | None = None, **headers: str) -> Response:
        # A page's file URLs are absolute (by the Host asked): taken as they are.
        absolute = path.startswith(("http://", "https://"))
        return get(path if absolute else self.base + path.lstrip("/"), accept, **headers)

    def stats(self) -> dict[str, Any]:
        status, _, body = self.get("/-/stats")
        assert status == 200
        data: dict[str, Any] = json.loads(body)
        return data

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode
