"""Reporters the command line hands to the library: rich on a terminal, plain lines otherwise."""

import sys
import threading
from typing import TYPE_CHECKING, TextIO

# The one helper for counted nouns; the command line takes it from here.
from wheelhouse._base.words import count

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["InstallDisplay", "PlainReporter", "RichReporter", "count", "make_reporter", "mb"]


def mb(size: int) -> str:
    """A size in megabytes, as the command line prints them: "12.3 MB"."""
    return f"{size / 1e6:.1f} MB"


class PlainReporter:
    """One line per step on stderr; quiet (-1) hides it, verbose (1+) adds every file."""

    def __init__(self, verbosity: int, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream
        self._lock = threading.Lock()
        self._stages: set[str] = set()

    def _say(self, text: str, level: int = 0) -> None:
        if self.verbosity >= level:
            # Builds report from worker threads: print() writes text and newline separately,
            # so two threads' lines could run together.
            stream = self.stream or sys.stderr
            with self._lock:
                stream.write(text + "\n")
                stream.flush()

    def stage(self, text: str) -> None:
        # A return to an earlier step (pip resolving again once an sdist's metadata is read)
        # moves a live display back; in a log it would only say the same line twice.
        with self._lock:
            if text in self._stages:
                return
            self._stages.add(text)
        self._say(f"wheelhouse: {text}")

    def note(self, text: str) -> None:
        self._say(f"wheelhouse: {text}")

    def downloaded(self, filename: str, nbytes: int) -> None:
        pass

    def build_event(self, filename: str, status: str) -> None:
        self._say(f"wheelhouse: {status} {filename}")

    def close(self) -> None:
        pass


class RichReporter:
    """A live progress display on one line: the current step, the bytes downloaded and their
    speed (once some are known), and the time so far; the step is cut short (…) rather
    than the line wrapped."""

    def __init__(self, verbosity: int, console: "Console | None" = None) -> None:
        # rich costs 20 ms to import: only a terminal gets it.
        from rich.console import Console
        from rich.filesize import decimal
        from rich.progress import (
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Task as RichTask
        from rich.table import Column
        from rich.text import Text

        class Transferred(ProgressColumn):
            """ "12.3 MB 4.5 MB/s" for the bytes so far; nothing before the first byte."""

            def render(self, task: RichTask) -> Text:
                if not task.completed:
                    return Text("")
                speed = task.finished_speed or task.speed
                rate = f" {decimal(int(speed))}/s" if speed else ""
                return Text(f"{decimal(int(task.completed))}{rate}", style="progress.download")

        self.verbosity = verbosity
        self.console = console if console is not None else Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            # The one column that gives way when the line is too long for the terminal.
            TextColumn(
                "{task.description}",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
            ),
            Transferred(table_column=Column(no_wrap=True, justify="right")),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            expand=True,
        )
        self._lock = threading.Lock()
        self._task = self.progress.add_task("starting", total=None)
        self.progress.start()

    def stage(self, text: str) -> None:
        with self._lock:
            self.progress.update(self._task, description=text)
        if self.verbosity > 0:
            self.console.print(f"wheelhouse: {text}")

    def note(self, text: str) -> None:
        self.console.print(f"wheelhouse: {text}")

    def downloaded(self, filename: str, nbytes: int) -> None:
        with self._lock:
            self.progress.advance(self._task, nbytes)

    def build_event(self, filename: str, status: str) -> None:
        self.console.print(f"wheelhouse: {status} {filename}")

    def close(self) -> None:
        self.progress.stop()


def make_reporter(verbosity: int) -> PlainReporter | RichReporter:
    """Rich progress when stderr is a terminal and not quiet; plain lines otherwise."""
    if verbosity >= 0 and sys.stderr.isatty():
        return RichReporter(verbosity)
    return PlainReporter(verbosity)


class InstallDisplay:
    """The installer's progress on a terminal: "pip: reading wheels 12/55", then "pip:
    installing 55 distributions" with a bar and the time so far; gone when it ends."""

    def __init__(self, installer: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.installer = installer
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self.progress.add_task(f"{installer}: starting", total=None)
        self.progress.start()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase == "starting":
            text = f"{self.installer}: starting, {count(total, 'distribution')} to install"
            self.progress.update(self._task, description=text)
        elif phase == "reading":
            text = f"{self.installer}: reading wheels {done}/{total}"
            self.progress.update(self._task, description=text, completed=done, total=total)
        elif done < total:  # pip unpacks them all without a word per package: a pulsing bar
            text = f"{self.installer}: installing {count(total, 'distribution')}"
            self.progress.update(self._task, description=text, completed=0, total=None)
        else:
            self.progress.update(self._task, completed=total, total=total)

    def close(self) -> None:
        self.progress.stop()
