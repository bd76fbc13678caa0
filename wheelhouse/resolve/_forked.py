"""Calls run ahead in a forked child process, on another core, their results handed back pickled.

The pinned path reads and parses dozens of index pages (megabytes of HTML) while it
downloads the files those pages name; in one process the parses and the downloads share one
GIL. A child forked before any of that starts takes the pages; the parent keeps the
downloads and takes each page's few kept files when it needs them.

The child only computes: it never prints, and leaves with ``os._exit``. What a call logs
comes back with its answer and is logged by the parent when the answer is taken. What the
child does not answer (it died, went silent, or an answer did not pickle) is
:data:`MISSING`, and the caller makes that call itself, as it would without a child.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import pickle
import signal
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from typing import Final, Literal

__all__ = ["MISSING", "Ahead"]

MISSING: Final = object()
_HEADER = struct.Struct("!I")  # each answer: its pickle's length, then the pickle
_INTERRUPTED = 130  # the child's exit code for an interrupt it took as an exception
_State = Literal["running", "gone", "interrupted", "closed"]


class Ahead:
    """The results, by key, of calls a forked child runs on its own threads."""

    def __init__(self, pid: int, fd: int, keys: frozenset[str], idle: float) -> None:
        self._pid = pid
        self._keys = keys
        self._idle = idle
        self._heard = time.monotonic()
        self._answers: dict[str, tuple[bool, object]] = {}
        self._records: dict[str, list[logging.LogRecord]] = {}
        self._state: _State = "running"
        self._reaped = False
        self._changed = threading.Condition()
        reader = threading.Thread(target=self._read, args=(fd,), name="wheelhouse-ahead")
        reader.daemon = True
        reader.start()

    @classmethod
    def start(
        cls, calls: Mapping[str, Callable[[], object]], *, jobs: int, idle: float
    ) -> Ahead | None:
        """Fork a child that runs ``calls`` on up to ``jobs`` threads; None but on Linux.

        Call it before the caller starts threads of its own: the child is a copy of the
        process as it was, and runs nothing but ``calls``. A child that sends nothing for
        ``idle`` seconds is ended, and what it did not answer is MISSING.
        """
        # Linux only, where it was measured: on macOS a forked child of a process that has
        # used the system's frameworks (its proxy settings, say) may crash in them.
        if not calls or not sys.platform.startswith("linux"):
            return None
        read_fd, write_fd = os.pipe()
        # Objects the collector walks are written to: every page that holds one would be
        # copied (copy-on-write) in the child, and again in the parent. Frozen, they are not.
        gc.freeze()
        try:
            with warnings.catch_warnings():
                # Python 3.12 warns of fork with threads alive (a progress display's): the
                # child runs only ``calls``, which take no lock those threads hold.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the child: never returns
            code = 1
            try:
                gc.disable()  # short-lived: its garbage goes with it
                os.close(read_fd)
                waves = math.ceil(len(calls) / max(jobs, 1))
                _serve(write_fd, calls, jobs, limit=math.ceil(idle * waves))
                code = 0
            except KeyboardInterrupt:  # before _serve made SIGINT end it
                code = _INTERRUPTED
            finally:
                os._exit(code)
        gc.unfreeze()
        os.close(write_fd)
        return cls(pid, read_fd, frozenset(calls), idle)

    def get(self, key: str) -> object:
        """The result of ``key``'s call (raising what it raised), or MISSING.

        Raises ``KeyboardInterrupt`` when the child was interrupted (Ctrl-C reaches the
        process group), and ``CancelledError`` once the caller closed this.
        """
        if key not in self._keys:
            return MISSING
        with self._changed:
            while key not in self._answers and self._state == "running":
                left = self._heard + self._idle - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            answer = self._answers.get(key)
            state = self._state
            records = self._records.pop(key, [])
        for record in records:  # logged once, by the thread that takes the answer
            logging.getLogger(record.name).handle(record)
        if answer is not None:
            ok, value = answer
            if ok:
                return value
            assert isinstance(value, BaseException)
            raise value
        if state == "interrupted":
            raise KeyboardInterrupt
        if state == "closed":
            raise CancelledError
        self._end("gone")  # silent for too long: nothing more is waited for
        return MISSING

    def close(self) -> None:
        """End the child, if it still runs; a ``get`` waiting or to come is cancelled."""
        self._end("closed")

    def _end(self, state: _State) -> None:
        with self._changed:
            if self._state == "running" or state == "closed":
                self._state = state
            self._changed.notify_all()
            if not self._reaped:
                # Under the lock: the pid is ours until it is reaped, never after.
                with contextlib.suppress(OSError):
                    os.kill(self._pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.waitpid(self._pid, 0)
                self._reaped = True

    def _read(self, fd: int) -> None:
        # A buffered read of n bytes returns fewer only at the end of the pipe.
        with open(fd, "rb") as pipe, contextlib.suppress(OSError, struct.error):
            while header := pipe.read(_HEADER.size):
                (size,) = _HEADER.unpack(header)
                body = pipe.read(size)
                if len(body) < size:
                    break
                try:
                    key, ok, value, records = pickle.loads(body)
                except Exception:  # not unpickled here: MISSING, made again
                    continue
                with self._changed:
                    self._answers[key] = (ok, value)
                    self._records[key] = records
                    self._heard = time.monotonic()
                    self._changed.notify_all()
        # The pipe closed: the child is gone, or going.
        with self._changed:
            if not self._reaped:
                status = 0
                with contextlib.suppress(OSError):
                    _, status = os.waitpid(self._pid, 0)
                self._reaped = True
                stopped = (
                    os.WIFSIGNALED(status)
                    and os.WTERMSIG(status) in (signal.SIGINT, signal.SIGTERM)
                ) or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == _INTERRUPTED)
                if self._state == "running":
                    self._state = "interrupted" if stopped else "gone"
            self._changed.notify_all()


def _serve(fd: int, calls: Mapping[str, Callable[[], object]], jobs: int, *, limit: int) -> None:
    """The child's work: each call's result or exception, pickled onto ``fd`` as it comes."""
    # Ctrl-C reaches the whole process group: the child goes at once, the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Whatever happens to the parent, the child does not outlive its work's time limits.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(limit, 1))
    # Records are kept for the parent to log: a handler's console may be held by a thread
    # that was not copied here.
    collector = _Collector()
    root = logging.getLogger()
    loggers = logging.Logger.manager.loggerDict.values()
    for logger in (root, *(x for x in loggers if isinstance(x, logging.Logger))):
        if logger.handlers or logger is root:
            logger.handlers = [collector]
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - until os._exit

    def logged(call: Callable[[], object]) -> tuple[bool, object, list[logging.LogRecord]]:
        records: list[logging.LogRecord] = []
        collector.local.records = records
        try:
            return True, call(), records
        except Exception as exc:
            return False, exc, records

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(calls)))) as pool:
        futures = {pool.submit(logged, call): key for key, call in calls.items()}
        for future in as_completed(futures):
            answer = (futures[future], *future.result())
            try:
                body = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # not sent: MISSING, made again by the parent
                continue
            view = memoryview(_HEADER.pack(len(body)) + body)
            while view:
                view = view[os.write(fd, view) :]


class _Collector(logging.Handler):
    """The child's log records, each kept (as text) for the answer of the call that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        kept: list[logging.LogRecord] | None = getattr(self.local, "records", None)
        if kept is None or any(r is record for r in kept):  # a logger's and the root's
            return
        record.msg, record.args = record.getMessage(), None
        record.exc_info = record.exc_text = record.stack_info = None
        kept.append(record)
