"""pack/unpack vs tar, and the size of a pack --since update."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    WHEELHOUSE,
    BenchError,
    Scratch,
    _tail,
    alternate,
    timed,
    timed_cpu,
)
from benchmarks.report import Case

# Issue 13 (bundles): pack and unpack within 2x of tar; an update after two pins move < 10%.
TARGET_BUNDLE = 2.0


TARGET_UPDATE_SIZE = 0.10


BUMPED = ("certifi", "idna")


def _lowered(requirements: Path, names: Sequence[str], scratch: Scratch) -> Path:
    """``requirements`` with the pins of ``names`` moved below their version (an older week)."""
    lines = []
    for line in requirements.read_text().splitlines():
        name, sep, version = line.partition("==")
        lines.append(f"{name}<{version}" if sep and name.strip().lower() in names else line)
    path = scratch.new("older-requirements") / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _build(requirements: Path, out: Path, work: Path) -> None:
    run = timed([*WHEELHOUSE, "build", "-r", str(requirements), "-o", str(out)], dict(os.environ))
    if not (out / "wheelhouse.json").is_file():
        raise BenchError(f"wheelhouse build of {requirements} failed:\n{_tail(run)}")
    del work


def bench_bundles(
    requirements: Path, house: Path | None, rounds: int, scratch: Scratch, log: Any
) -> tuple[list[Case], dict[str, Any]]:
    """pack/unpack vs tar on the same wheelhouse; the size of an update after two pins move."""
    if house is None:
        house = scratch.new("bundle-house") / "wheelhouse"
        log(f"  building the wheelhouse of {requirements.name}")
        _build(requirements, house, house.parent)
    env = dict(os.environ)
    cases = []
    # The machine is shared: wall time mostly measures the other engineers' load. The CPU time
    # (user + sys) each command used is recorded beside it, as its own case.
    flags = {".tar": [], ".tar.gz": ["-z"], ".tar.zst": ["--zstd"]}
    for suffix, flag in flags.items():
        cpu = {
            key: Case(f"{key} {suffix} (cpu)", requirements.name, ours_cmd, tar_cmd, TARGET_BUNDLE)
            for key, ours_cmd, tar_cmd in (
                ("pack", f"wheelhouse pack DIR -o B{suffix}", f"tar -c{suffix}"),
                ("unpack", f"wheelhouse unpack B{suffix} -o OUT", f"tar -x{suffix}"),
            )
        }
        pack_case = Case(
            f"pack {suffix}",
            requirements.name,
            f"wheelhouse pack DIR -o B{suffix}",
            f"tar {' '.join(flag)} -cf B{suffix} -C DIR .".replace("  ", " "),
            TARGET_BUNDLE,
        )
        unpack_case = Case(
            f"unpack {suffix}",
            requirements.name,
            f"wheelhouse unpack B{suffix} -o OUT",
            f"tar {' '.join(flag)} -xf B{suffix} -C OUT".replace("  ", " "),
            TARGET_BUNDLE,
        )
        bundles: dict[str, Path] = {}

        def ours(
            r: int,
            case: Case = pack_case,
            suffix: str = suffix,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            work = scratch.new("pack-wh")
            bundle = work / f"b{suffix}"
            run, used = timed_cpu([*WHEELHOUSE, "pack", str(house), "-o", str(bundle)], env)
            cpu["pack"].wheelhouse.append(used)
            if not bundle.is_file():
                raise BenchError(f"wheelhouse pack failed:\n{_tail(run)}")
            bundles["ours"] = bundle
            case.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse pack {suffix:<8} {run.seconds:6.2f} s")

        def theirs(
            r: int,
            case: Case = pack_case,
            suffix: str = suffix,
            flag: list[str] = flag,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            work = scratch.new("pack-tar")
            bundle = work / f"b{suffix}"
            run, used = timed_cpu(["tar", *flag, "-cf", str(bundle), "-C", str(house), "."], env)
            cpu["pack"].baseline.append(used)
            bundles["tar"] = bundle
            case.baseline.append(run.seconds)
            log(f"  round {r + 1}: tar -c {suffix:<8}          {run.seconds:6.2f} s")

        alternate(rounds, ours, theirs)

        def ours_x(
            r: int,
            case: Case = unpack_case,
            suffix: str = suffix,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            out = scratch.new("unpack-wh") / "wheelhouse"
            run, used = timed_cpu(
                [*WHEELHOUSE, "unpack", str(bundles["ours"]), "-o", str(out)], env
            )
            cpu["unpack"].wheelhouse.append(used)
            if not (out / "wheelhouse.json").is_file():
                raise BenchError(f"wheelhouse unpack failed:\n{_tail(run)}")
            case.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse unpack {suffix:<8} {run.seconds:6.2f} s")

        def theirs_x(
            r: int,
            case: Case = unpack_case,
            suffix: str = suffix,
            flag: list[str] = flag,
            bundles: dict[str, Path] = bundles,
            cpu: dict[str, Case] = cpu,
        ) -> None:
            out = scratch.new("unpack-tar")
            run, used = timed_cpu(["tar", *flag, "-xf", str(bundles["tar"]), "-C", str(out)], env)
            cpu["unpack"].baseline.append(used)
            case.baseline.append(run.seconds)
            log(f"  round {r + 1}: tar -x {suffix:<8}          {run.seconds:6.2f} s")

        alternate(rounds, ours_x, theirs_x)
        cases += [pack_case, unpack_case, cpu["pack"], cpu["unpack"]]

    log(f"  building the same wheelhouse with {' and '.join(BUMPED)} one release older")
    older = scratch.new("older-house") / "wheelhouse"
    _build(_lowered(requirements, BUMPED, scratch), older, older.parent)
    work = scratch.new("update")
    full, update = work / "full.tar.gz", work / "update.tar.gz"
    for argv in (
        [*WHEELHOUSE, "pack", str(house), "-o", str(full)],
        [*WHEELHOUSE, "pack", str(house), "-o", str(update), "--since", str(older)],
    ):
        run = timed(argv, env)
        if run.lines and "error:" in run.lines[-1][1]:
            raise BenchError(f"wheelhouse pack failed:\n{_tail(run)}")
    sizes = {
        "bumped": list(BUMPED),
        "full_bytes": full.stat().st_size,
        "update_bytes": update.stat().st_size,
        "ratio": update.stat().st_size / full.stat().st_size,
        "target": TARGET_UPDATE_SIZE,
    }
    sizes["status"] = "PASS" if sizes["ratio"] < TARGET_UPDATE_SIZE else "MISS"
    return cases, sizes
