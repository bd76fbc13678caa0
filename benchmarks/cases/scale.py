"""wheelhouse build of generated graphs as they grow: time and peak memory."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    WHEELHOUSE,
    BenchError,
    Run,
    Scratch,
    manifest_files,
    measure,
    phases,
    scrubbed_env,
)


def scale_sizes(limit: int) -> list[int]:
    sizes = [n for n in (50, 100, 200, 400, 800, 1600) if n < limit]
    return [*sizes, limit]


def make_graph(root: Path, count: int) -> None:
    """``count`` tiny wheels: a binary tree with an extra chain edge, so many share dependents."""
    from tests.support.dists import make_wheel

    for i in range(count):
        children = sorted({c for c in (2 * i + 1, 2 * i + 2, i + 1) if c < count})
        requires = [f"scale-{c:04d}>=1.0" for c in children]
        make_wheel(root, f"scale-{i:04d}", "1.0", requires=requires)


def marginal_costs(sizes: Sequence[int], values: Sequence[float]) -> list[float]:
    """Seconds per added dist between consecutive sizes: flat for linear growth."""
    return [(values[i] - values[i - 1]) / (sizes[i] - sizes[i - 1]) for i in range(1, len(sizes))]


def doubling_factor(sizes: Sequence[int], values: Sequence[float]) -> float:
    """How much the value grows from the largest size's half to the largest size.

    At most 2 for linear growth (less with a fixed start-up cost), towards 4 for quadratic.
    Judged at the top end, where the per-dist work outweighs start-up and noise; a log-log slope
    over all sizes would be flattered by the start-up cost.
    """
    largest = max(sizes)
    half = max((n for n in sizes if n <= largest // 2), default=None)
    if half is None:
        return 1.0
    ratio = largest / half
    grown = values[sizes.index(largest)] / values[sizes.index(half)]
    return float(grown ** (math.log(2) / math.log(ratio)))  # normalised to a doubling


def grows_linearly(sizes: Sequence[int], values: Sequence[float]) -> bool:
    """No worse than linear: doubling N at the top end at most doubles the value (10% slack)."""
    return doubling_factor(sizes, values) <= 2.2


def growth_exponent(sizes: Sequence[int], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) over log(size): 1.0 is linear, 2.0 quadratic."""
    xs = [math.log(n) for n in sizes]
    ys = [math.log(v) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def bench_scale(limit: int, rounds: int, scratch: Scratch, log: Any) -> dict[str, Any]:
    from tests.support.server import IndexServer

    rows: list[dict[str, Any]] = []
    for count in scale_sizes(limit):
        dists = scratch.new(f"scale-{count}-dists")
        make_graph(dists, count)
        with IndexServer(dists) as server:
            # The tree is frozen once made: list it once, instead of the test server's rescan of
            # the directory on every request (that rescan would bill the server's O(N) per
            # request to wheelhouse's figures, on the same two cores).
            listing = server.dists()

            def frozen(listing: dict[str, Any] = listing) -> dict[str, Any]:
                return listing

            server.dists = frozen  # type: ignore[method-assign]
            runs = []
            for r in range(rounds):
                work = scratch.new(f"scale-{count}-run")
                req = work / "requirements.txt"
                req.write_text("scale-0000\n")
                argv = [*WHEELHOUSE, "build", "-v", "-r", str(req), "-o", str(work / "out")]
                argv += ["--cache-dir", str(work / "cache"), "--index-url", server.url]
                measured = measure(argv, scrubbed_env(work), work)
                shipped = len(manifest_files(work / "out"))
                if shipped != count:
                    raise BenchError(f"the scale build shipped {shipped} files, not {count}")
                runs.append(measured)
                log(
                    f"  N={count:4d} round {r + 1}: {measured.seconds:6.2f} s, "
                    f"max process {measured.max_rss / 2**20:5.0f} MiB, "
                    f"tree {measured.tree_rss / 2**20:5.0f} MiB"
                )
        split = [_pip_share(m.run) for m in runs]
        rows.append(
            {
                "dists": count,
                "seconds": [m.seconds for m in runs],
                "median_seconds": statistics.median(m.seconds for m in runs),
                # pip's resolution (the pip commands wheelhouse ran) and everything else.
                "median_pip_seconds": statistics.median(p for p, _ in split),
                "median_own_seconds": statistics.median(o for _, o in split),
                "max_process_rss_bytes": max(m.max_rss for m in runs),
                "peak_tree_rss_bytes": max(m.tree_rss for m in runs),
            }
        )
    sizes = [row["dists"] for row in rows]
    total = [row["median_seconds"] for row in rows]
    own = [row["median_own_seconds"] for row in rows]
    memory = [row["peak_tree_rss_bytes"] for row in rows]
    peak = max(memory)
    return {
        "graph": "scale-i requires scale-(2i+1), scale-(2i+2), scale-(i+1); top level: scale-0000",
        "command": "wheelhouse build -v -r X -o DIR --cache-dir FRESH --index-url LOOPBACK "
        "(PIP_CONFIG_FILE=/dev/null, no PIP_*)",
        "rows": rows,
        "time_exponent": growth_exponent(sizes, total),
        "rss_exponent": growth_exponent(sizes, memory),
        "marginal_seconds_per_dist": marginal_costs(sizes, total),
        "doubling_factor": {
            "time": doubling_factor(sizes, total),
            "time_in_pip": doubling_factor(sizes, [r["median_pip_seconds"] for r in rows]),
            "time_rest": doubling_factor(sizes, own),
            "peak_tree_rss": doubling_factor(sizes, memory),
        },
        "linear": grows_linearly(sizes, total) and grows_linearly(sizes, memory),
        "own_linear": grows_linearly(sizes, own),
        "peak_rss_bytes": peak,
        "rss_target_bytes": 200 * 2**20,
        "rss_status": "PASS" if peak <= 200 * 2**20 else "MISS",
    }


def _pip_share(run: Run) -> tuple[float, float]:
    """(seconds in pip/uv commands, seconds in everything else) of one ``build -v``."""
    spent = phases(run)
    tools = sum(v for k, v in spent.items() if k.startswith(("pip ", "uv pip")))
    return tools, run.seconds - tools


def print_scale(scale: dict[str, Any]) -> None:
    print(f"\nscale: {scale['command']}")
    print(
        f"{'dists':>6} {'median':>8} {'per dist':>9} {'marginal':>9} {'in pip':>7} "
        f"{'the rest':>9} {'max process':>12} {'tree peak':>10}"
    )
    previous: dict[str, Any] | None = None
    for row in scale["rows"]:
        marginal = "-"
        if previous is not None:
            extra = row["median_seconds"] - previous["median_seconds"]
            marginal = f"{1000 * extra / (row['dists'] - previous['dists']):.1f}ms"
        print(
            f"{row['dists']:6d} {row['median_seconds']:7.2f}s "
            f"{1000 * row['median_seconds'] / row['dists']:7.1f}ms {marginal:>9} "
            f"{row['median_pip_seconds']:6.2f}s {row['median_own_seconds']:8.2f}s "
            f"{row['max_process_rss_bytes'] / 2**20:8.0f} MiB "
            f"{row['peak_tree_rss_bytes'] / 2**20:6.0f} MiB"
        )
        previous = row
    print(
        f"growth: log-log slope time {scale['time_exponent']:.2f}, memory "
        f"{scale['rss_exponent']:.2f}; marginal cost per dist "
        + " -> ".join(f"{1000 * c:.1f}ms" for c in scale["marginal_seconds_per_dist"])
        + "; doubling N at the top: time x{time:.2f} (pip x{time_in_pip:.2f}, the rest "
        "x{time_rest:.2f}), peak memory x{peak_tree_rss:.2f}".format(**scale["doubling_factor"])
        + f": {'no worse than linear' if scale['linear'] else 'WORSE THAN LINEAR'} "
        f"(outside pip: {'linear' if scale['own_linear'] else 'WORSE THAN LINEAR'}); "
        f"peak RSS {scale['peak_rss_bytes'] / 2**20:.0f} MiB <= 200 MiB {scale['rss_status']}"
    )
