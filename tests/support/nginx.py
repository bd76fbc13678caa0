"""Real nginx (Debian's package) on a free loopback port, configured from the docs' own blocks."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.capabilities import missing
from tests.support.httpget import Response, get
from tests.support.process import free_ports

__all__ = ["Nginx", "docs_block", "find_nginx"]

REPO = Path(__file__).resolve().parents[2]


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def docs_block(doc: str, index: int = 0) -> str:
    """The ``index``-th ```nginx block of ``docs/<doc>``, verbatim: tests run what we document."""
    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"```nginx\n(.*?)```", text, flags=re.DOTALL)
    return blocks[index]


class Nginx:
    """nginx in the foreground with its prefix (pid, logs, temp dirs) under ``prefix``."""

    def __init__(self, binary: str, prefix: Path, http_block: str) -> None:
        self.binary = binary
        self.prefix = prefix
        (self.port,) = free_ports()
        self.http_block = http_block
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> Nginx:
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        # As root, nginx's workers would drop to `nobody`, who cannot read a pytest tmp dir.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = (
            f"{user}worker_processes 1;\n"
            f"pid {self.prefix / 'nginx.pid'};\n"
            f"error_log {self.prefix / 'logs' / 'error.log'} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"  access_log {self.prefix / 'logs' / 'access.log'};\n"
            + "".join(
                f"  {kind}_temp_path {self.prefix / kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + self.http_block.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
            + "\n}\n"
        )
        (self.prefix / "nginx.conf").write_text(conf, encoding="utf-8")
        argv = [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejects the configuration: {check.stderr}")
        self.process = subprocess.Popen(
            [*argv, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {err}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.port} within {timeout} s")

    def get(self, path: str, accept: str | None = None) -> Response:
        return get(self.url + path, accept, redirects=False, timeout=10)

    def access_log(self) -> list[str]:
        path = self.prefix / "logs" / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()


def nginx_over_bucket(directory: Path, s3_port: int, prefix: str) -> Nginx:
    """docs/scale.md's nginx configuration in front of ``prefix`` ("bucket/path") of the S3
    store on loopback port ``s3_port``, started; the caller stops it."""
    block = docs_block("scale.md")
    block = block.replace("server 127.0.0.1:9000;", f"server 127.0.0.1:{s3_port};")
    block = block.replace("/team-packages/wheelhouse", f"/{prefix}")
    return Nginx(require_nginx(), directory, block).start()


def require_nginx() -> str:
    binary = find_nginx()
    if binary is None:
        missing("nginx", "not installed (Debian: apt-get install nginx; .ci/run installs it)")
    return binary
