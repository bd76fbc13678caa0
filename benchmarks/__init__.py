"""Benchmarks of wheelhouse against pip and uv: run as `python -m benchmarks` (see README.md)."""
