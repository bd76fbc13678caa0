"""The one way wheelhouse runs a command, and turns a failure into something readable."""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Completed", "run", "tail"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completed:
    """A finished command: its arguments, exit code and captured output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run ``args`` without a shell, capturing text output; never raises for a non-zero exit.

    A missing program is the one failure raised (``FileNotFoundError``), because callers
    turn it into an error naming the program.
    """
    argv = tuple(str(a) for a in args)
    logger.info("running: %s", shlex.join(argv))
    proc = subprocess.run(
        argv,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    logger.debug("exit %d: %s", proc.returncode, argv[0])
    return Completed(argv, proc.returncode, proc.stdout, proc.stderr)


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` non-empty lines of ``text``: the part of a log that explains a failure."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
