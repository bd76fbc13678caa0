"""``python -m wheelhouse``."""

from __future__ import annotations

from wheelhouse._main import run

if __name__ == "__main__":
    run()
