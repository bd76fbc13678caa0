"""Build a self-contained, hash-locked wheelhouse and install from it offline."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
