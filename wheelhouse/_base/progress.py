"""How the library reports progress: one reporter object, provided by the caller."""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["NullReporter", "PipWatcher", "Reporter"]


class Reporter(Protocol):
    """Receives progress events; the library never prints."""

    def stage(self, text: str) -> None:
        """A step of the pipeline starts (resolving, fetching, building, writing)."""

    def note(self, text: str) -> None:
        """Something a user should know that is not an error."""

    def downloaded(self, filename: str, nbytes: int) -> None:
        """``nbytes`` more bytes of ``filename`` arrived."""

    def build_event(self, filename: str, status: str) -> None:
        """An sdist build started (``building``) or finished (``built``)."""


class NullReporter:
    """Reports nothing: the default for library callers."""

    def stage(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def downloaded(self, filename: str, nbytes: int) -> None:
        pass

    def build_event(self, filename: str, status: str) -> None:
        pass


# pip's progress lines (its stdout, with --progress-bar off), as pip 23 to 26 write them.
_DOWNLOADING = re.compile(
    r"\s*Downloading (?P<file>\S+) \((?P<size>[\d.]+) (?P<unit>bytes|kB|MB|GB)\)"
)
_UNITS = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
_BUILDING = re.compile(
    r"\s*(Installing build dependencies|Getting requirements to build \w+|"
    r"Preparing (editable )?metadata \([^)]*\)): started"
)
_COLLECTING = re.compile(r"\s*(Collecting|Saved) ")


class PipWatcher:
    """pip's output turned into progress while it resolves: the bytes of each file it
    downloads, and the step it is on when it builds an sdist to read its metadata (seconds,
    sometimes a minute), so the display does not say "resolving" all along."""

    def __init__(self, report: Reporter, resolving: str) -> None:
        self.report = report
        self.resolving = resolving
        self._last = ""  # the last file pip downloaded: the sdist it builds, if it builds
        self._building = False

    def __call__(self, line: str) -> None:
        if (found := _DOWNLOADING.match(line)) is not None:
            self._last = found["file"]
            size = int(float(found["size"]) * _UNITS[found["unit"]])
            self.report.downloaded(found["file"], size)
        elif _BUILDING.match(line) is not None:
            if not self._building and self._last:
                self._building = True
                self.report.stage(f"{self.resolving}: reading the metadata of {self._last}")
        elif _COLLECTING.match(line) is not None and self._building:
            self._building = False
            self.report.stage(self.resolving)
