"""How the library reports progress: one reporter object, provided by the caller."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullReporter", "Reporter"]


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
