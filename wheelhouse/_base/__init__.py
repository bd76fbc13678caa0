"""Fences around the outside world: pip, uv, HTTP, subprocesses; targets and tags."""
