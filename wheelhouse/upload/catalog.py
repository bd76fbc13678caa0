"""The private index's catalog for people: each project's summary and readme, searchable.

An SQLite database with an FTS5 table next to the index (``DIR/.catalog.sqlite``): search is
answered from disk, so memory does not grow with the number of projects. Written under the
index's lock, read by any number of workers.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CATALOG_NAME", "Catalog", "Entry", "fts_query"]

CATALOG_NAME = ".catalog.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS project (
    name TEXT PRIMARY KEY, summary TEXT, description TEXT, description_type TEXT
);
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(name, summary, tokenize = 'unicode61');
"""
_MAX_RESULTS = 200
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Entry:
    name: str
    summary: str
    description: str
    description_type: str


def fts_query(text: str) -> str | None:
    """The FTS5 query for what a person typed: each word a quoted prefix, all required.

    Operators, quotes and column filters in ``text`` are never FTS5 syntax (nor SQL: the query
    is a bound parameter); None when there is no word to look for.
    """
    words = _WORD.findall(text)[:16]
    return " ".join(f'"{w}"*' for w in words) if words else None


class Catalog:
    """The catalog in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / CATALOG_NAME

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            with connection:
                connection.executescript(_SCHEMA)
            yield connection
        finally:
            connection.close()

    def put(
        self,
        name: str,
        summary: str | None,
        description: str | None,
        description_type: str | None,
    ) -> None:
        """Record the project's latest summary and readme (the newest upload wins)."""
        with self._connect() as db, db:
            db.execute("DELETE FROM project WHERE name = ?", (name,))
            db.execute("DELETE FROM search WHERE name = ?", (name,))
            db.execute(
                "INSERT INTO project VALUES (?, ?, ?, ?)",
                (name, summary or "", description or "", description_type or ""),
            )
            db.execute("INSERT INTO search VALUES (?, ?)", (name, summary or ""))

    def get(self, name: str) -> Entry | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM project WHERE name = ?", (name,)).fetchone()
        return None if row is None else Entry(*row)

    def search(self, text: str) -> list[tuple[str, str]]:
        """(name, summary) of the projects matching ``text``, best first."""
        query = fts_query(text)
        if query is None:
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, summary FROM search WHERE search MATCH ? ORDER BY rank LIMIT ?",
                (query, _MAX_RESULTS),
            ).fetchall()
        return [(str(n), str(s)) for n, s in rows]

    def summaries(self) -> dict[str, str]:
        with self._connect() as db:
            rows = db.execute("SELECT name, summary FROM project").fetchall()
        return {str(n): str(s) for n, s in rows}
