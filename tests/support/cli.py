"""What the CLI tests share: the two wheels of the seeded wheelhouse, a terminal to run in,
the `error:` lines of a run."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Sequence

import pytest

# alpha needs beta: two projects, two wheels, one host lock.
ALPHA = "alpha-1.0-py3-none-any.whl"


BETA = "beta-2.0-py3-none-any.whl"


def error_lines(stderr: str) -> list[str]:
    """The `error:` lines a run printed, in order."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def error_line(stderr: str) -> str:
    """The one `error:` line a run printed (the test fails when there are more or none)."""
    (line,) = error_lines(stderr)
    return line


def on_a_terminal(
    argv: Sequence[str | os.PathLike[str]],
    *,
    answer: str | None = None,
    prompt: bytes = b"[y/N]: ",
    timeout: float = 180,
) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdin, stdout and stderr, as a person runs it;
    type ``answer`` at ``prompt``. Returns the exit code and what the terminal showed."""
    master, slave = pty.openpty()
    with subprocess.Popen([str(a) for a in argv], stdin=slave, stdout=slave, stderr=slave) as proc:
        os.close(slave)
        shown = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal's other side has closed it
                    break
                if not chunk:
                    break
                shown += chunk
                if answer is not None and shown.endswith(prompt):
                    os.write(master, answer.encode() + b"\n")
                    answer = None
            else:
                pytest.fail(f"{argv} did not finish in {timeout} s; it showed {shown!r}")
            code = proc.wait(timeout=timeout)
        finally:
            proc.kill()
            os.close(master)
    return code, shown.decode("utf-8", "replace").replace("\r\n", "\n")
