"""Benchmark wheelhouse against pip and uv on the same inputs, alternating, in one run.

Cases (each run ``--rounds`` times, wheelhouse and the baseline alternating which goes first):

- cold build: ``wheelhouse build`` with a fresh cache vs ``pip wheel -r`` with a fresh pip cache;
- no-op rebuild: a second ``wheelhouse build`` of the same DIR vs a warm second ``pip download``;
- install: ``wheelhouse install`` (pip, then ``--installer uv``) vs the same pip or uv command
  typed by hand, each into a fresh venv.
- ``--bundle``: ``wheelhouse pack`` (.tar, .tar.gz, .tar.zst) vs ``tar -c`` of the same wheelhouse
  and ``wheelhouse unpack`` vs ``tar -x`` of the same bundle; and the size of a ``pack --since``
  update after two pins move, against the full bundle.
- ``--mirror``: ``wheelhouse mirror -r`` of the web-service set for ``host`` and
  ``cp312-manylinux_2_28_aarch64``: bytes on disk against the bytes of the files those targets
  can install (recomputed here with ``packaging.tags``), ``--dry-run`` bytes against the run's,
  and the time and requests of a rerun with nothing changed. No baseline runs: bandersnatch, the
  tool people use, cannot mirror this index (it needs XML-RPC or PyPI's serial header).
- ``--pinned-uv``: a cold ``wheelhouse build`` of pinned wheels vs uv's cold ``uv pip install``
  of the same pins into a fresh venv, both with empty caches and the same index (issue 23).
- ``--scale-out``: three ``serve --upstream`` instances over one SeaweedFS bucket (started here,
  on loopback) in front of the real index, 30 cold clients at once spread over them (3 pip, 27
  uv) on the web-service set: successes, identical bytes, upstream fetches per file, time. No
  baseline runs: no tool people use shares one cache between proxy instances.

The online cases use this machine's real pip configuration, as users run it (only the caches are
pointed at fresh temporary directories). ``--scale N`` times ``wheelhouse build`` of a generated
dependency graph served from a loopback index, with pip's configuration scrubbed, and reports wall
time and peak memory as the graph grows. Nothing is written outside the temporary directories and
the JSON file. Not a test: the figures depend on the machine and the index.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.cases.builds import bench_builds
from benchmarks.cases.bundles import TARGET_UPDATE_SIZE, bench_bundles
from benchmarks.cases.installs import bench_installs, install_command_available
from benchmarks.cases.locks import bench_locks
from benchmarks.cases.loose import CountingTunnel, bench_loose
from benchmarks.cases.mirror import bench_mirror, print_mirror
from benchmarks.cases.pinned_uv import bench_pinned_uv
from benchmarks.cases.proxy import (
    bench_proxy,
    bench_proxy_cold_uv,
    bench_proxy_floor,
    print_concurrent,
)
from benchmarks.cases.scale import bench_scale, print_scale
from benchmarks.cases.scale_out import (
    SCALE_OUT_CLIENTS,
    SCALE_OUT_PROXIES,
    bench_scale_out,
    print_scale_out,
)
from benchmarks.harness import (
    DEFAULT_INPUTS,
    DEFAULT_JSON,
    LOOSE_INPUTS,
    BenchError,
    Scratch,
    machine,
    scratch_root,
)
from benchmarks.report import Case, print_cases

SCHEMA = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument(
        "--input",
        action="append",
        type=Path,
        metavar="FILE",
        help="requirements file to benchmark against the configured index (repeatable; "
        "default: benchmarks/inputs/webservice.txt and sdists.txt)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, metavar="PATH", help="where to write results"
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=0,
        metavar="N",
        help="only the scale run: generated graphs of 50, 100, 200, ... up to N dists",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="skip the install cases (builds only)"
    )
    parser.add_argument(
        "--bundle",
        action="store_true",
        help="only the bundle cases: pack/unpack vs tar, and the size of a --since update",
    )
    parser.add_argument(
        "--bundle-house",
        type=Path,
        metavar="DIR",
        help="with --bundle: use this wheelhouse of the first --input instead of building it",
    )
    parser.add_argument(
        "--loose",
        action="store_true",
        help="only the loose-input cases: cold builds, default and --resolver uv, against pip "
        "wheel (default inputs: benchmarks/inputs/webservice.in and datascience.in)",
    )
    parser.add_argument(
        "--count-bytes",
        action="store_true",
        help="with --loose: run every build through a counting HTTPS proxy on loopback and "
        "report the bytes each side fetched over the network",
    )
    parser.add_argument(
        "--proxy",
        action="store_true",
        help="only the proxy cases: `serve --upstream` vs pip from the index (first --input)",
    )
    parser.add_argument(
        "--proxy-floor",
        action="store_true",
        help="only uv through a cold proxy vs uv from the index, and the warm proxy vs nginx "
        "serving its pages and store from disk, pip and uv (first --input)",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="only the mirror case: the web-service closure for host + "
        "cp312-manylinux_2_28_aarch64",
    )
    parser.add_argument(
        "--locks",
        action="store_true",
        help="only the lock case: each input as a pylock.toml (pip lock) vs as requirements",
    )
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help=f"only the scale-out case: {SCALE_OUT_PROXIES} `serve --upstream` over one "
        f"SeaweedFS bucket, {SCALE_OUT_CLIENTS} cold concurrent clients (first --input, "
        "default webservice.txt)",
    )
    parser.add_argument(
        "--pinned-uv",
        action="store_true",
        help="only the issue 23 figure: a cold wheelhouse build of pinned wheels vs uv's cold "
        "`uv pip install` of the same pins into a fresh venv (first --input, default "
        "webservice.txt; the real index)",
    )
    parser.add_argument(
        "--pinned-uv-wheels",
        type=Path,
        metavar="DIR",
        help="with --pinned-uv: serve the wheels in DIR on loopback as the index of both sides "
        "(needed when the real index does not answer)",
    )
    parser.add_argument(
        "--team-index",
        action="store_true",
        help="only the private index's figures (issue 25): 20 concurrent twine uploads, a "
        "50 MB upload by twine vs curl, pages over 5,000 projects (benchmarks/team_index.py)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result: dict[str, Any] = {"schema": SCHEMA, "machine": machine(), "rounds": args.rounds}
    log("machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()))
    if not result["machine"]["wheelhouse_bytecode"]:
        log(
            "warning: the wheelhouse under test has no compiled bytecode, so each command "
            "compiles its modules first (0.1-0.15 s a start); `nox -s bench` installs it as "
            "users do"
        )
    with scratch_root(args.keep) as root:
        scratch = Scratch(root)
        try:
            if args.team_index:
                from benchmarks import team_index

                result["team_index"] = team_index.run(
                    args.rounds, projects=5000, requests=200, size=50 * team_index.MB, log=log
                )
            elif args.scale_out:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                result["scale_out"] = bench_scale_out(requirements, scratch, log)
                print_scale_out(result["scale_out"])
            elif args.mirror:
                result["mirror"] = bench_mirror(args.rounds, scratch, log)
                print_mirror(result["mirror"])
            elif args.scale:
                result["scale"] = bench_scale(args.scale, args.rounds, scratch, log)
            elif args.bundle:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                log(f"{requirements.name}: bundles ({args.rounds} rounds, alternating)")
                cases, sizes = bench_bundles(
                    requirements, args.bundle_house, args.rounds, scratch, log
                )
                print_cases(cases)
                print(
                    f"update after moving {', '.join(sizes['bumped'])}: "
                    f"{sizes['update_bytes']} of {sizes['full_bytes']} bytes "
                    f"({sizes['ratio']:.1%}, target < {TARGET_UPDATE_SIZE:.0%}) {sizes['status']}"
                )
                result["cases"] = [c.as_json() for c in cases]
                result["update_size"] = sizes
            elif args.proxy_floor:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                cases = [bench_proxy_cold_uv(requirements, args.rounds, scratch, log)]
                cases += bench_proxy_floor(requirements, args.rounds, scratch, log)
                result["cases"] = [c.as_json() for c in cases]
                print_cases(cases)
            elif args.proxy:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                cases, concurrent = bench_proxy(requirements, args.rounds, scratch, log)
                result["cases"] = [c.as_json() for c in cases]
                result["proxy_concurrent"] = concurrent
                print_cases(cases)
                print_concurrent(concurrent)
            elif args.pinned_uv:
                requirements = (args.input or DEFAULT_INPUTS)[0].resolve()
                log(f"{requirements.name}: cold pinned build vs uv ({args.rounds} rounds)")
                wheels = args.pinned_uv_wheels.resolve() if args.pinned_uv_wheels else None
                cases = bench_pinned_uv(requirements, args.rounds, scratch, log, wheels)
                result["cases"] = [c.as_json() for c in cases]
                print_cases(cases)
            elif args.locks:
                result["cases"] = run_lock_cases(args, scratch, log)
            else:
                result["cases"] = run_cases(args, scratch, log)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    if "scale" in result:
        print_scale(result["scale"])
    print(f"\nwrote {args.json}")
    return 0


def run_cases(args: argparse.Namespace, scratch: Scratch, log: Any) -> list[dict[str, Any]]:
    cases: list[Case] = []
    if args.loose:
        tunnel = CountingTunnel() if args.count_bytes else None
        try:
            for requirements in args.input or LOOSE_INPUTS:
                requirements = requirements.resolve()
                log(f"{requirements.name}: loose cold builds ({args.rounds} rounds, rotating)")
                cases += bench_loose(requirements, args.rounds, scratch, log, tunnel)
        finally:
            if tunnel is not None:
                tunnel.stop()
        print_cases(cases)
        return [c.as_json() for c in cases]
    via_cli = install_command_available()
    for requirements in args.input or DEFAULT_INPUTS:
        requirements = requirements.resolve()
        log(f"{requirements.name}: builds ({args.rounds} rounds, alternating)")
        built, directory = bench_builds(requirements, args.rounds, scratch, log)
        cases += built
        if not args.no_install:
            log(f"{requirements.name}: installs into fresh venvs")
            cases += bench_installs(
                directory, requirements.name, args.rounds, scratch, log, via_cli
            )
    print_cases(cases)
    return [c.as_json() for c in cases]


def run_lock_cases(args: argparse.Namespace, scratch: Scratch, log: Any) -> list[dict[str, Any]]:
    cases: list[Case] = []
    for requirements in args.input or DEFAULT_INPUTS[:1]:
        requirements = requirements.resolve()
        log(f"{requirements.name}: lock vs requirements ({args.rounds} rounds, alternating)")
        cases += bench_locks(requirements, args.rounds, scratch, log)
    print_cases(cases)
    return [c.as_json() for c in cases]
