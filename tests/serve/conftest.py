"""Fixtures for the proxy tests: the real `wheelhouse serve --upstream` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


class ProxyProcess:
    """`wheelhouse serve ...` running in a subprocess; its stderr is collected in ``log``."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wheelhouse", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                if line.startswith("proxying at ") and not ready.is_set():
                    self.url = line.split()[2]
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            pytest.fail(f"the proxy did not start:\n{self.log}", pytrace=False)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def base(self) -> str:
        return self.url.removesuffix("simple/")

    def get(self, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path.lstrip("/"))
        if accept is not None:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

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


StartProxy = Callable[..., ProxyProcess]


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[StartProxy]:
    """``start_proxy(*args) -> ProxyProcess``: `wheelhouse serve --port 0 *args`, stopped after
    the test. The store defaults to ``tmp_path / "store"`` unless ``--store`` is given."""
    started: list[ProxyProcess] = []

    def start(*args: str | os.PathLike[str]) -> ProxyProcess:
        argv = [os.fspath(a) for a in args]
        if "--store" not in argv:
            argv += ["--store", str(tmp_path / "store")]
        proxy = ProxyProcess(argv, dict(os.environ))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop(signal.SIGKILL)


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
