"""_subprocess.run: the one way commands run; output kept, an abort or timeout stops them."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from wheelhouse._base._subprocess import masked, run

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


def test_the_logged_command_line_masks_every_urls_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """-v logs each command line: a URL's password in any argument form is not in it."""
    args = [
        "--index-url=https://alice:pw-one@index.example/simple/",
        "--extra-index-url",
        "http://bob:pw%40two@127.0.0.1:8080/simple/",
        "app @ https://tok:pw-three@files.example/app-1.0.whl",
    ]
    with caplog.at_level(logging.INFO, logger="wheelhouse._base._subprocess"):
        done = run([sys.executable, "-c", "import sys; print(len(sys.argv))", *args])
    assert done.stdout == "5\n"  # the command itself got every argument unchanged
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("running: ")]
    for secret in ("alice", "pw-one", "bob", "pw%40two", "tok", "pw-three"):
        assert secret not in line
    assert "--index-url=https://***@index.example/simple/" in line
    assert "http://***@127.0.0.1:8080/simple/" in line
    assert "'app @ https://***@files.example/app-1.0.whl'" in line


def test_masked_leaves_text_without_credentials_alone() -> None:
    for text in ("http://h/a@b", "/srv/a@b", "name@1.0", "file:///x"):
        assert masked(text) == text
