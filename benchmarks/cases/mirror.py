"""mirror -r of the web-service set for two targets: bytes, dry-run, a no-change rerun."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    HERE,
    WHEELHOUSE,
    Run,
    Scratch,
    manifest_files,
    online_env,
    timed,
)

MIRROR_TARGETS = ("host", "cp312-manylinux_2_28_aarch64")


TARGET_MIRROR_DISK = 1.05  # bytes on disk / bytes the targets can install


TARGET_MIRROR_DRY = 0.01  # |dry-run bytes - run bytes| / run bytes


TARGET_MIRROR_RERUN_SECONDS = 1.0


def _installable_bytes(directory: Path) -> tuple[int, int]:
    """Files of the mirror that one of MIRROR_TARGETS can install (wheels by tag, checked
    here with packaging.tags rather than wheelhouse's own code), and their bytes."""
    from packaging import tags
    from packaging.utils import parse_wheel_filename

    accepted = set(tags.sys_tags())
    aarch64 = [f"manylinux_2_{m}_aarch64" for m in range(28, 16, -1)] + ["manylinux2014_aarch64"]
    accepted |= set(tags.cpython_tags((3, 12), abis=["cp312"], platforms=aarch64))
    accepted |= set(tags.compatible_tags((3, 12), interpreter="cp312", platforms=aarch64))
    count = size = 0
    for record in manifest_files(directory):
        if record.kind != "wheel" or parse_wheel_filename(record.filename)[3] & accepted:
            count += 1
            size += (directory / record.filename).stat().st_size
    return count, size


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def bench_mirror(rounds: int, scratch: Scratch, log: Any) -> dict[str, Any]:
    """The mirror figures of issue 12 on this machine's index and pip configuration."""
    requirements = HERE / "inputs" / "webservice.txt"
    work = scratch.new("mirror")
    env = online_env(work, work / "pip-cache")
    out = work / "mirror"
    argv = [*WHEELHOUSE, "mirror", "-r", str(requirements), "-o", str(out), "--no-sdists"]
    for target in MIRROR_TARGETS:
        argv += ["--target", target]
    argv += ["--json", "-q"]

    def summary(run: Run) -> dict[str, Any]:
        text = "\n".join(line for _, line in run.lines)
        data: dict[str, Any] = json.loads(text[text.index("{") : text.rindex("}") + 1])
        return data

    log("mirror: --dry-run")
    dry = timed([*argv, "--dry-run"], env)
    log("mirror: first run")
    first = timed(argv, env)
    reruns: list[tuple[float, float, int]] = []
    for r in range(rounds):
        log(f"mirror: rerun {r + 1} with nothing changed")
        run = timed(argv, env)
        data = summary(run)
        reruns.append((run.seconds, float(data["seconds"]), int(data["requests"])))
    files, installable = _installable_bytes(out)
    first_data, dry_data = summary(first), summary(dry)
    return {
        "input": requirements.name,
        "targets": list(MIRROR_TARGETS),
        "projects": first_data["projects"],
        "files": first_data["files"],
        "installable_files": files,
        "file_bytes": first_data["bytes"],
        "installable_bytes": installable,
        "disk_bytes": _disk_bytes(out),
        "dry_run_bytes": dry_data["fetched-bytes"],
        "dry_run_seconds": dry.seconds,
        "first_run_seconds": first.seconds,
        "first_run_requests": first_data["requests"],
        "rerun_seconds": [r[0] for r in reruns],
        "rerun_library_seconds": [r[1] for r in reruns],
        "rerun_requests": [r[2] for r in reruns],
    }


def print_mirror(figures: dict[str, Any]) -> None:
    disk = figures["disk_bytes"] / figures["installable_bytes"]
    dry = abs(figures["dry_run_bytes"] - figures["file_bytes"]) / figures["file_bytes"]
    rerun = statistics.median(figures["rerun_seconds"])
    inside = statistics.median(figures["rerun_library_seconds"])
    requests = max(figures["rerun_requests"])
    rows = [
        ("disk / installable bytes", f"{disk:.3f}", f"<= {TARGET_MIRROR_DISK}", disk),
        ("|dry-run - run| / run bytes", f"{dry:.4f}", f"<= {TARGET_MIRROR_DRY}", dry),
        ("no-change rerun, s (command)", f"{rerun:.2f}", "", None),
        ("no-change rerun, s (library)", f"{inside:.2f}", f"< {TARGET_MIRROR_RERUN_SECONDS}", None),
        ("rerun requests / projects", f"{requests}/{figures['projects']}", "<= 1 each", None),
    ]
    print(
        f"\nmirror of {figures['input']} for {', '.join(figures['targets'])}: "
        f"{figures['files']} files, {figures['file_bytes'] / 1e6:.1f} MB in "
        f"{figures['first_run_seconds']:.1f} s ({figures['first_run_requests']} requests); "
        f"{figures['disk_bytes'] / 1e6:.1f} MB on disk"
    )
    for label, value, target, _ in rows:
        print(f"  {label:32} {value:>10} {target}")
    passed = (
        disk <= TARGET_MIRROR_DISK
        and dry <= TARGET_MIRROR_DRY
        and inside < TARGET_MIRROR_RERUN_SECONDS
        and requests <= figures["projects"]
    )
    print("  " + ("PASS" if passed else "MISS"))
