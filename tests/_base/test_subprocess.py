"""_subprocess.run: the one way commands run; output kept, an abort or timeout stops them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from wheelhouse._base._subprocess import run

SLOW = [sys.executable, "-c", "import sys, time; print('started', flush=True); time.sleep(30)"]


def test_output_and_exit_code_are_kept() -> None:
    done = run(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        ]
    )
    assert (done.returncode, done.stdout, done.stderr, done.ok) == (3, "out\n", "err\n", False)


def test_abort_stops_the_command_and_keeps_what_it_printed() -> None:
    abort = threading.Event()
    threading.Timer(0.5, abort.set).start()
    started = time.monotonic()
    done = run(SLOW, abort=abort)
    assert time.monotonic() - started < 10
    assert not done.ok
    assert done.stdout == "started\n"


def test_timeout_kills_and_raises() -> None:
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run(SLOW, timeout=0.5)
    assert time.monotonic() - started < 10
