"""The guard that keeps tests out of the machine's /tmp: every process a test starts, and every
temporary file or folder made in the test process, must be under pytest's basetemp.

What lands in /tmp cannot be told apart afterwards from what other processes put there (other
checkouts of this project run the same suite on the same machine), so the guard watches the
cause instead, through the interpreter's audit events: a process started with no TMPDIR, or
one outside basetemp (it would write to /tmp), and a temporary name made outside basetemp.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["TmpGuard"]

# Programs started with an environment of their caller's making that write nothing:
# ctypes.util.find_library's `ldconfig -p` (LC_ALL and LANG only).
_READ_ONLY = {"ldconfig"}


class TmpGuard:
    """Collects, per process, what escaped ``basetemp``; ``take()`` hands it over and forgets
    it (once per test). Audit hooks cannot be removed: ``install()`` once per process."""

    _installed: TmpGuard | None = None

    def __init__(self, basetemp: Path) -> None:
        self.basetemp = os.path.join(os.path.abspath(basetemp), "")
        self._strays: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def install(cls, basetemp: Path) -> TmpGuard:
        if cls._installed is None:
            cls._installed = cls(basetemp)
            sys.addaudithook(cls._installed._hook)
        return cls._installed

    def take(self) -> list[str]:
        with self._lock:
            strays, self._strays = self._strays, []
        return strays

    def _inside(self, path: str | None) -> bool:
        return path is not None and os.path.join(os.path.abspath(path), "").startswith(
            self.basetemp
        )

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        # Called for every audited event of the process (each open() too): cheap for the rest.
        if event == "subprocess.Popen":
            # Popen's executable (its argv[0] when not given), its argv as a list.
            executable, argv, _, env = args
            tmpdir = (os.environ if env is None else env).get("TMPDIR")
            if not self._inside(tmpdir) and os.path.basename(executable) not in _READ_ONLY:
                shown = " ".join(os.fsdecode(arg) for arg in argv)[:300]
                self._add(f"a process started with TMPDIR={tmpdir!r}: {shown}")
        elif event in ("tempfile.mkdtemp", "tempfile.mkstemp") and not self._inside(
            os.fsdecode(args[0])
        ):
            self._add(f"{event} made {os.fsdecode(args[0])!r}")

    def _add(self, stray: str) -> None:
        with self._lock:
            self._strays.append(stray)
