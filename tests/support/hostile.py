"""A hostile upstream index for the tests of the shared readers: bombs, drips and pages
served by real loopback servers, and the memory a process peaked at, read from the kernel."""

from __future__ import annotations

import json
import re
import socketserver
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.server import Answer, IndexServer

MiB = 1024 * 1024
BOMB = 256 * MiB  # inflated METADATA: far past the limit, and fast enough to build
# The figure: a hostile upstream costs less than 100 MB of extra memory.
EXTRA = 100 * 1000 * 1000


def bomb_wheel(dest: Path, inflated: int = BOMB, name: str = "bomb") -> Path:
    """A well-formed wheel whose METADATA inflates to ``inflated`` bytes (mostly zeros)."""
    path = dest / f"{name}-1.0-py3-none-any.whl"
    dist_info = f"{name}-1.0.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}/__init__.py", "")
        info = zipfile.ZipInfo(f"{dist_info}/METADATA")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n".encode())
            zeros = bytes(MiB)
            for _ in range(inflated // MiB):
                member.write(zeros)
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr(f"{dist_info}/RECORD", "")
    return path


def json_page(
    project: str, files: Mapping[str, str] | Sequence[Mapping[str, Any]], **extra: Any
) -> bytes:
    """A PEP 691 page listing ``files``: filename -> url (with the given extra keys each), or
    the file items as they are."""
    if isinstance(files, Mapping):
        listed = [{"filename": f, "url": u, "hashes": {}, **extra} for f, u in files.items()]
    else:
        listed = [dict(item) for item in files]
    return json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": listed}).encode()


def serve(
    server: IndexServer,
    pages: Mapping[str, tuple[dict[str, str], bytes]],
    files: Mapping[str, bytes] = {},
) -> None:
    """Make ``server`` answer ``/simple/<project>/`` with ``pages`` (headers, body) and
    ``/files/<name>`` with ``files``, honouring ``Range: bytes=`` on files when asked."""

    def hook(path: str, headers: Mapping[str, str]) -> Answer | None:
        for project, (page_headers, body) in pages.items():
            if path.startswith(f"/simple/{project}/"):
                return 200, page_headers, body
        name = path.removeprefix("/files/")
        if name not in files:
            return None
        data = files[name]
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", (headers.get("Range") or "").strip())
        if match is None or not server.ranges:
            return 200, {}, data
        first, last = match.groups()
        start = len(data) - int(last) if not first else int(first)
        stop = len(data) if (not first or not last) else int(last) + 1
        start, stop = max(start, 0), min(stop, len(data))
        return 206, {"Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"}, data[start:stop]

    server.intercept(hook)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None, status
    return int(match.group(1)) * 1024


def gzip_bomb(inflated: int, *, member: int | None = None) -> bytes:
    """A gzip body of ``inflated`` zero bytes, about a thousandth of that on the wire: one
    stream, or copies of one ``member`` (its inflated size) concatenated, as HTTP clients
    read them (cheaper to make for a large ``inflated``)."""
    size = inflated if member is None else member
    assert inflated % size == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    one = b"".join(compressor.compress(zeros) for _ in range(size // MiB)) + compressor.flush()
    return one * (inflated // size)


# mirror's run, measured from a parent of its own: ru_maxrss of RUSAGE_CHILDREN is the peak
# of the one child this parent waited for.
_MEASURED = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_measured(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``argv`` in a subprocess: what it did, and its peak resident memory in bytes."""
    report = tmp_path / "maxrss"
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(report), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, int(report.read_text()) * 1024


class Dripper(socketserver.ThreadingTCPServer):
    """A loopback HTTP server that answers every request a byte every ``pause`` seconds:
    the whole response (``headers=True``), or only its body after prompt headers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, headers: bool, pause: float = 0.2, length: int = 10_000) -> None:
        self.drip_headers = headers
        self.pause = pause
        self.length = length
        self.stopping = threading.Event()
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _DripHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/simple/"

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _DripHandler(socketserver.BaseRequestHandler):
    server: Dripper

    def handle(self) -> None:
        self.server.connections += 1
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            received += chunk
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
            f"Content-Length: {self.server.length}\r\n\r\n"
        ).encode()
        body = b"<!-- " + b"x" * (self.server.length - 5)
        if self.server.drip_headers:
            body = head + body
        else:
            self.request.sendall(head)
        try:
            for byte in body:
                if self.server.stopping.wait(self.server.pause):
                    return
                self.request.sendall(bytes([byte]))
        except OSError:
            return


def within(seconds: float, call: Callable[[], object]) -> tuple[BaseException | None, float]:
    """Run ``call`` in a thread: what it raised and how long it took; fails the test (rather
    than hang it) when it takes longer than ``seconds``."""
    outcome: list[BaseException | None] = []
    started = time.monotonic()

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds} s"
    return outcome[0], time.monotonic() - started
