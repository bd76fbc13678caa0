"""The one way wheelhouse runs a command, and turns a failure into something readable."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Completed", "masked", "run", "stop_all", "tail"]

logger = logging.getLogger(__name__)

# The commands running now, each the leader of a process group of its own (pip's build
# backends and their compilers are in it too): what stop_all() stops.
_running: set[subprocess.Popen[str]] = set()
_running_lock = threading.Lock()

# The user-information part of any URL in a text ("scheme://user:password@"): up to the last
# "@" before the host's end, as urllib.parse splits a netloc.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def masked(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: for an argument
    in any form (``URL``, ``--index-url=URL``, ``name @ URL``) or a whole command line."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


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
    abort: threading.Event | None = None,
    on_stderr: Callable[[str], None] | None = None,
    on_stdout: Callable[[str], None] | None = None,
) -> Completed:
    """Run ``args`` without a shell, capturing text output; never raises for a non-zero exit.

    A missing program is the one failure raised (``FileNotFoundError``), because callers
    turn it into an error naming the program. Setting ``abort`` kills the command (a result
    that is already known to be useless need not be waited for). ``on_stderr`` is given each
    line of the command's standard error as it comes (without ``timeout`` or ``abort``);
    ``on_stdout`` each line of its standard output (with ``abort`` too).
    """
    argv = tuple(str(a) for a in args)
    # The command line, never the environment (where credentials are passed), and no URL's
    # credentials (a user's own --index-url, say).
    logger.info("running: %s", masked(shlex.join(argv)))
    if on_stderr is not None:
        return _run_watched(argv, env, cwd, on_stderr)
    if on_stdout is not None and timeout is None:
        return _run_reading(argv, env, cwd, on_stdout, abort)
    with _popen(argv, env, cwd) as proc, _stopped_on_interrupt(proc):
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = None if abort is None and timeout is None else 0.1
        while True:
            try:
                # Retrying communicate() after a timeout loses no output (its documentation).
                stdout, stderr = proc.communicate(timeout=poll)
                break
            except subprocess.TimeoutExpired:
                if abort is not None and abort.is_set():
                    logger.info("stopped: %s", argv[0])
                    _signal_group(proc, signal.SIGKILL)
                elif deadline is not None and time.monotonic() > deadline:
                    _signal_group(proc, signal.SIGKILL)
                    proc.communicate()
                    raise
    logger.debug("exit %d: %s", proc.returncode, argv[0])
    return Completed(argv, proc.returncode, stdout, stderr)


@contextlib.contextmanager
def _popen(
    argv: tuple[str, ...], env: Mapping[str, str] | None, cwd: Path | None
) -> Iterator[subprocess.Popen[str]]:
    """The command with its output as text on pipes and no input, in a process group of its
    own (so that it, and what it starts, can be stopped as one), known to stop_all()."""
    with subprocess.Popen(
        argv,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
        process_group=0,
    ) as proc:
        with _running_lock:
            _running.add(proc)
        try:
            yield proc
        finally:
            with _running_lock:
                _running.discard(proc)


@contextlib.contextmanager
def _stopped_on_interrupt(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Stop the command (its process group) if this thread is interrupted while it runs:
    Ctrl-C reaches only our process group, not the command's."""
    try:
        yield
    except BaseException:
        if proc.poll() is None:
            _stop([proc], signal.SIGINT, grace=2.0)
        raise


def stop_all(signum: int = signal.SIGINT, grace: float = 2.0) -> None:
    """Stop every command still running, and what each started: ``signum`` to each one's
    process group, then SIGKILL to the groups still there after ``grace`` seconds.

    For an interrupted command line: its commands may run in other threads, which an
    interrupt does not reach, and an exit does not wait for them. SIGINT, as Ctrl-C: pip,
    its build backends and uv then remove their temporary folders (pip-unpack-*,
    pip-build-env-*, ...) from the user's TMPDIR, which SIGTERM or SIGKILL leave behind.
    """
    with _running_lock:
        running = [proc for proc in _running if proc.poll() is None]
    if running:
        _stop(running, signum, grace)


def _stop(procs: list[subprocess.Popen[str]], signum: int, grace: float) -> None:
    for proc in procs:
        logger.info("stopping process group %d", proc.pid)
        _signal_group(proc, signum)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        # The group may outlive its leader (a backend's compiler): end what is left of it.
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _run_watched(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    cwd: Path | None,
    on_stderr: Callable[[str], None],
) -> Completed:
    with _popen(argv, env, cwd) as proc, _stopped_on_interrupt(proc):
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[str] = []
        stderr = proc.stderr

        def watch() -> None:
            for line in stderr:
                lines.append(line)
                on_stderr(line.rstrip("\n"))

        # Standard error in a thread of its own, so a full stdout pipe never blocks the command.
        watcher = threading.Thread(target=watch, name=f"stderr of {argv[0]}", daemon=True)
        watcher.start()
        stdout = proc.stdout.read()
        proc.wait()
        watcher.join()
    logger.debug("exit %d: %s", proc.returncode, argv[0])
    return Completed(argv, proc.returncode, stdout, "".join(lines))


def _run_reading(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    cwd: Path | None,
    on_stdout: Callable[[str], None],
    abort: threading.Event | None,
) -> Completed:
    with _popen(argv, env, cwd) as proc, _stopped_on_interrupt(proc):
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[str] = []
        errors: list[str] = []
        stdout, stderr = proc.stdout, proc.stderr

        def watch() -> None:
            for line in stdout:
                lines.append(line)
                on_stdout(line.rstrip("\n"))

        def drain() -> None:
            errors.append(stderr.read())

        threads = [
            threading.Thread(target=watch, name=f"stdout of {argv[0]}", daemon=True),
            threading.Thread(target=drain, name=f"stderr of {argv[0]}", daemon=True),
        ]
        for thread in threads:
            thread.start()
        while True:
            try:
                proc.wait(timeout=None if abort is None else 0.1)
                break
            except subprocess.TimeoutExpired:
                if abort is not None and abort.is_set():
                    logger.info("stopped: %s", argv[0])
                    _signal_group(proc, signal.SIGKILL)
        for thread in threads:
            thread.join()
    logger.debug("exit %d: %s", proc.returncode, argv[0])
    return Completed(argv, proc.returncode, "".join(lines), "".join(errors))


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` non-empty lines of ``text``: the part of a log that explains a failure."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
