"""``python -m wheelhouse``."""

from __future__ import annotations

from wheelhouse.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
