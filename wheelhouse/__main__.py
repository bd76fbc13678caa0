"""``python -m wheelhouse``."""

from __future__ import annotations

from wheelhouse.cli import run

if __name__ == "__main__":
    run()
