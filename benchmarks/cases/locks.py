"""A lock of the same pins built vs the pins as a requirements file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PIP,
    WHEELHOUSE,
    BenchError,
    Scratch,
    _tail,
    alternate,
    online_env,
    timed,
)
from benchmarks.report import Case

# Issue 14: a lock of the same pins builds within 1.1x of the pins as a requirements file.
TARGET_LOCK = 1.1


def bench_locks(requirements: Path, rounds: int, scratch: Scratch, log: Any) -> list[Case]:
    """Cold build from a pylock.toml of the pins vs the same pins as a requirements file.

    Both take the pinned path (no resolver): the lock's files come from the URLs it records,
    the requirements file's from the index pages. ``pip lock`` writes the lock once, first.
    """
    label = requirements.name
    work = scratch.new(f"lock-{label}")
    lock = work / "pylock.toml"
    env = online_env(work, work / "pip-cache")
    timed([*PIP, "lock", "-q", "-r", str(requirements), "-o", str(lock)], env, cwd=work)
    case = Case(
        "lock cold build",
        label,
        "wheelhouse build -r pylock.toml -o DIR --cache-dir FRESH (written by pip lock)",
        "wheelhouse build -r X -o DIR --cache-dir FRESH (the same pins)",
        TARGET_LOCK,
    )

    def build(source: Path, record: list[float], what: str) -> Callable[[int], None]:
        def step(r: int) -> None:
            out = scratch.new(f"lock-{what}")
            argv = [*WHEELHOUSE, "build", "-v", "-r", str(source), "-o", str(out / "out"),
                    "--cache-dir", str(out / "cache")]  # fmt: skip
            run = timed(argv, online_env(out, out / "pip-cache"), cwd=out)
            if any("resolving with" in text for _, text in run.lines):
                raise BenchError(f"{source.name} was resolved, not taken as pins:\n{_tail(run)}")
            record.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse from {what:<12} {run.seconds:6.2f} s")

        return step

    alternate(
        rounds,
        build(lock, case.wheelhouse, "pylock.toml"),
        build(requirements, case.baseline, label),
    )
    return [case]
