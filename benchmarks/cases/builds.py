"""Cold build vs pip wheel, and a no-op rebuild vs a warm pip download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PIP,
    WHEELHOUSE,
    BenchError,
    Scratch,
    _tail,
    alternate,
    built_from_sdists,
    online_env,
    phases,
    timed,
)
from benchmarks.report import Case

# Targets from issue 7 (builds), as wheelhouse / baseline.
TARGET_COLD_PINNED = 0.33


TARGET_COLD_SDISTS = 0.6


TARGET_NOOP = 0.3


def bench_builds(
    requirements: Path, rounds: int, scratch: Scratch, log: Any
) -> tuple[list[Case], Path]:
    """Cold build vs ``pip wheel``, and no-op rebuild vs warm ``pip download``."""
    label = requirements.name
    req = str(requirements)
    cold = Case(
        "cold build",
        label,
        "wheelhouse build -v -r X -o DIR --cache-dir FRESH (fresh pip cache too)",
        "pip wheel -r X -w DIR (fresh PIP_CACHE_DIR)",
        TARGET_COLD_PINNED,
    )
    noop = Case(
        "no-op rebuild",
        label,
        "wheelhouse build -r X -o DIR (second run, same DIR and cache)",
        "pip download -r X -d DIR (second run, warm cache)",
        TARGET_NOOP,
    )
    outputs: list[Path] = []

    def wheelhouse(r: int) -> None:
        work = scratch.new(f"wh-{label}")
        env = online_env(work, work / "pip-cache")
        out, cache = work / "out", work / "cache"
        argv = [*WHEELHOUSE, "build", "-v", "-r", req, "-o", str(out), "--cache-dir", str(cache)]
        run = timed(argv, env, cwd=work)
        cold.wheelhouse.append(run.seconds)
        cold.phases.append(phases(run))
        log(f"  round {r + 1}: wheelhouse cold build {run.seconds:6.2f} s")
        again = timed(argv[:4] + argv[5:], env, cwd=work)
        if not any("up to date" in text for _, text in again.lines):
            raise BenchError("the second wheelhouse build was not a no-op:\n" + _tail(again))
        noop.wheelhouse.append(again.seconds)
        log(f"  round {r + 1}: wheelhouse no-op      {again.seconds:6.2f} s")
        outputs.append(out)

    def pip(r: int) -> None:
        work = scratch.new(f"pip-{label}")
        env = online_env(work, work / "pip-cache")
        run = timed([*PIP, "wheel", "-q", "-r", req, "-w", str(work / "wheels")], env, cwd=work)
        cold.baseline.append(run.seconds)
        log(f"  round {r + 1}: pip wheel cold        {run.seconds:6.2f} s")
        env = online_env(work, work / "pip-cache-download")
        argv = [*PIP, "download", "-q", "-r", req, "-d", str(work / "downloads")]
        timed(argv, env, cwd=work)  # warms the cache and fills the directory
        run = timed(argv, env, cwd=work)
        noop.baseline.append(run.seconds)
        log(f"  round {r + 1}: pip download warm     {run.seconds:6.2f} s")

    alternate(rounds, wheelhouse, pip)
    built = built_from_sdists(outputs[0])
    if built:
        cold.target = TARGET_COLD_SDISTS
        cold.note = f"{built} wheels built from sdists: target {TARGET_COLD_SDISTS}x"
    return [cold, noop], outputs[0]
