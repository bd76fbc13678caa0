"""pip's configuration read ahead, by pip's own loader, in a child that starts with the command.

Importing pip's configuration loader takes 0.1-0.15 s (rich and pip's vendored packaging
come with it). A child interpreter spends that beside wheelhouse's own start instead of
before the build can go on; ``_pip.pip_config()`` takes its answer. This module is what the
entry point imports before anything else, so it imports little.
"""

from __future__ import annotations

import os
import subprocess

__all__ = ["files_ignored", "start", "take"]

# pip's loader in the child: its ``section.option`` pairs, in load order, as JSON.
_READ = (
    "import json\n"
    "from pip._internal.configuration import Configuration\n"
    "configuration = Configuration(isolated=False)\n"
    "configuration.load()\n"
    "print(json.dumps([[k, v] for _, values in configuration.items() for k, v in values.items()]))"
)

# It takes a quarter of a second; past this, something is wrong and we read in-process.
_WAIT_SECONDS = 30.0

_Context = tuple[str, tuple[tuple[str, str], ...]]
# At most one child: the directory and environment it started in, and the child.
_started: list[tuple[_Context, subprocess.Popen[str]]] = []


def start(python: str) -> None:
    """Start reading pip's configuration with ``python`` (the interpreter running us)."""
    _forget()
    if files_ignored():
        return  # only pip's variables count: _pip reads them without pip
    # Popen itself, not _subprocess: this runs before anything else is imported, and the
    # logging and dataclasses that _subprocess brings would delay the child by 0.05 s.
    # -P: a "pip" folder in the current directory must not shadow pip.
    try:
        child = subprocess.Popen(
            [python, "-P", "-c", _READ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError:
        return
    _started.append((_context(), child))


def take() -> list[tuple[str, object]] | None:
    """The child's pairs, once, if it started in the present directory and environment (what
    pip's configuration depends on); None otherwise, or if it failed."""
    if not _started:
        return None
    context, child = _started[0]
    if context != _context():
        _forget()
        return None
    _started.clear()
    try:
        stdout, _ = child.communicate(timeout=_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return None
    import json  # here: see start()

    try:
        items = json.loads(stdout) if child.returncode == 0 else None
    except ValueError:
        return None
    if not isinstance(items, list) or not all(
        isinstance(i, list) and len(i) == 2 and isinstance(i[0], str) for i in items
    ):
        return None
    return [(key, value) for key, value in items]


def _forget() -> None:
    for _, child in _started:
        child.kill()
        child.communicate()
    _started.clear()


def _context() -> _Context:
    return os.getcwd(), tuple(sorted(os.environ.items()))


def files_ignored() -> bool:
    """True when ``PIP_CONFIG_FILE`` is ``os.devnull``: pip then reads no configuration file."""
    return os.environ.get("PIP_CONFIG_FILE") == os.devnull
