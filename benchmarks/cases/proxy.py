"""serve --upstream vs the index direct (pip, uv; cold, warm), its nginx floor, many clients."""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PIP,
    PYPI_SIMPLE,
    BenchError,
    Scratch,
    _direct_env,
    _direct_uv_env,
    _tree_rss,
    _uv_install,
    alternate,
    online_env,
    scrubbed_env,
    timed,
)
from benchmarks.report import Case
from tests.support.process import ServeProcess
from tests.support.venvs import make_venv

# Targets from issue 11, as proxy / pip straight from the index.
TARGET_PROXY_COLD = 1.5


TARGET_PROXY_WARM = 0.75


TARGET_PROXY_DRY_RUN = 1.0


# Issue 24: a cold proxy costs uv at most 1.5x going direct; a warm one is no slower than
# nginx serving the same pages and files from disk (the physical floor), for pip and uv.
TARGET_PROXY_COLD_UV = 1.5


TARGET_PROXY_FLOOR = 1.05


PROXY_CLIENTS = 20


PROXY_RSS_LIMIT = 100 * 2**20


def start_proxy(
    upstream: str, store: Path | str, env: Mapping[str, str], *extra: str
) -> ServeProcess:
    """`wheelhouse serve --upstream UPSTREAM --store STORE` in a subprocess (tests' own)."""
    return ServeProcess(["--upstream", upstream, "--store", str(store), *extra], env=dict(env))


def _top_level(requirements: Path) -> list[str]:
    """The names a pinned file was resolved from (its header comment), for unpinned runs."""
    names: list[str] = []
    lines = requirements.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# Resolved on") and "from:" in line:
            names = line.split("from:", 1)[1].split()
            for more in lines[i + 1 :]:
                if not more.startswith("#   "):
                    break
                names += more[1:].split()
    return names


def bench_proxy(
    requirements: Path, rounds: int, scratch: Scratch, log: Any
) -> tuple[list[Case], dict[str, Any]]:
    """Installs through `wheelhouse serve --upstream` vs pip straight from the index."""
    label = requirements.name
    online = online_env(scratch.new("proxy-env"), scratch.new("proxy-pip-cache"))
    warm_store = scratch.new("proxy-warm-store")
    install = ["install", "--no-cache-dir", "--disable-pip-version-check", "-r", str(requirements)]
    direct_cmd = (
        f"PY -m pip install --no-cache-dir -r {label} (index {PYPI_SIMPLE}, config scrubbed)"
    )
    proxy_cmd = f"PY -m pip install --no-cache-dir -r {label} --index-url PROXY"
    cold = Case("proxy cold", label, proxy_cmd + " (empty store)", direct_cmd, TARGET_PROXY_COLD)
    warm = Case("proxy warm", label, proxy_cmd + " (warm store)", direct_cmd, TARGET_PROXY_WARM)

    # pip's own CPU seconds per run, by side: what no index or proxy can take off its time.
    cpu: dict[str, list[float]] = {"proxy warm": [], "direct": []}

    def direct(r: int, case: Case) -> None:
        work = scratch.new("proxy-direct")
        python = make_venv(work / "venv")
        argv = [str(python), "-m", "pip", *install, "--index-url", PYPI_SIMPLE]
        run = timed(argv, _direct_env(work), cwd=work)
        case.baseline.append(run.seconds)
        if case is warm:
            cpu["direct"].append(run.cpu)
        log(
            f"  round {r + 1}: pip straight from the index {run.seconds:6.2f} s "
            f"(pip's CPU {run.cpu:5.2f} s)"
        )

    def through(r: int, case: Case, store: Path) -> None:
        work = scratch.new("proxy-client")
        python = make_venv(work / "venv")
        server = start_proxy(PYPI_SIMPLE, store, online)
        try:
            argv = [str(python), "-m", "pip", *install, "--index-url", server.url]
            run = timed(argv, scrubbed_env(work), cwd=work)
        finally:
            server.stop()
        case.wheelhouse.append(run.seconds)
        if case is warm:
            cpu["proxy warm"].append(run.cpu)
        log(
            f"  round {r + 1}: pip through the proxy ({case.name}) {run.seconds:6.2f} s "
            f"(pip's CPU {run.cpu:5.2f} s)"
        )

    log(f"{label}: proxy cold (a new store each round) vs pip from the index")
    alternate(
        rounds,
        lambda r: through(r, cold, scratch.new("proxy-cold-store")),
        lambda r: direct(r, cold),
    )
    through(0, Case("warm-up", label, "", "", 0), warm_store)  # untimed: fills the store
    log(f"{label}: proxy warm vs pip from the index")
    alternate(rounds, lambda r: through(r, warm, warm_store), lambda r: direct(r, warm))
    # The floor of the warm ratio: pip's own CPU time through the proxy, over the direct
    # install's wall time. A proxy shortens pip's waits, not pip's work.
    floor = statistics.median(cpu["proxy warm"]) / statistics.median(warm.baseline)
    warm.note = (
        f"pip's own CPU (user+sys, medians): through the warm proxy "
        f"{statistics.median(cpu['proxy warm']):.2f} s, straight from the index "
        f"{statistics.median(cpu['direct']):.2f} s; the first alone is {floor:.2f}x of the "
        "direct install's time"
    )

    names = _top_level(requirements)
    dry = ["install", "--dry-run", "--no-cache-dir", "--disable-pip-version-check", *names]
    dry_run = Case(
        "proxy dry-run",
        label + " (unpinned)",
        "pip install --dry-run NAMES --index-url PROXY (warm)",
        f"pip install --dry-run NAMES (index {PYPI_SIMPLE})",
        TARGET_PROXY_DRY_RUN,
    )
    server = start_proxy(PYPI_SIMPLE, warm_store, online)
    try:
        warm_up = scratch.new("proxy-dry-warm")
        timed([*PIP, *dry, "--index-url", server.url], scrubbed_env(warm_up), cwd=warm_up)

        def dry_direct(r: int) -> None:
            work = scratch.new("proxy-dry-direct")
            run = timed([*PIP, *dry, "--index-url", PYPI_SIMPLE], _direct_env(work), cwd=work)
            dry_run.baseline.append(run.seconds)
            log(f"  round {r + 1}: dry-run against the index {run.seconds:6.2f} s")

        def dry_proxy(r: int) -> None:
            work = scratch.new("proxy-dry-proxy")
            run = timed([*PIP, *dry, "--index-url", server.url], scrubbed_env(work), cwd=work)
            dry_run.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: dry-run through the proxy {run.seconds:6.2f} s")

        log(f"{label}: unpinned pip install --dry-run, warm proxy vs the index")
        alternate(rounds, dry_proxy, dry_direct)
    finally:
        server.stop()

    cold_uv = bench_proxy_cold_uv(requirements, rounds, scratch, log)
    nginx_cases = bench_proxy_floor(requirements, rounds, scratch, log)
    log(f"{label}: {PROXY_CLIENTS} concurrent clients into an empty store")
    concurrent = _concurrent_clients(requirements, scratch, online, log)
    return [cold, warm, dry_run, cold_uv, *nginx_cases], concurrent


def _requirement_names(requirements: Path) -> list[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(str(canonicalize_name(Requirement(line.split(";")[0]).name)))
    return names


def bench_proxy_cold_uv(requirements: Path, rounds: int, scratch: Scratch, log: Any) -> Case:
    """uv through a cold proxy (a new store each round) vs uv straight from the index."""
    label = requirements.name
    online = online_env(scratch.new("proxy-uv-env"), scratch.new("proxy-uv-pip-cache"))
    case = Case(
        "proxy cold uv",
        label,
        f"uv pip install --no-cache -r {label} --index-url PROXY (empty store)",
        f"uv pip install --no-cache -r {label} (index {PYPI_SIMPLE}, no uv config)",
        TARGET_PROXY_COLD_UV,
    )

    def direct(r: int) -> None:
        work = scratch.new("proxy-uv-direct")
        python = make_venv(work / "venv", uv=True)
        run = timed(_uv_install(python, requirements, PYPI_SIMPLE), _direct_uv_env(work))
        case.baseline.append(run.seconds)
        log(f"  round {r + 1}: uv straight from the index {run.seconds:6.2f} s")

    def through(r: int) -> None:
        work = scratch.new("proxy-uv-client")
        python = make_venv(work / "venv", uv=True)
        server = start_proxy(PYPI_SIMPLE, scratch.new("proxy-uv-cold-store"), online)
        try:
            run = timed(_uv_install(python, requirements, server.url), scrubbed_env(work))
        finally:
            server.stop()
        full = sum(1 for line in server.lines if "Connection pool is full" in line)
        case.wheelhouse.append(run.seconds)
        log(f"  round {r + 1}: uv through a cold proxy {run.seconds:6.2f} s "
            f"({full} upstream connections discarded)")  # fmt: skip

    log(f"{label}: uv through a cold proxy vs uv from the index")
    alternate(rounds, through, direct)
    return case


NGINX_FLOOR = """
server {
  listen 127.0.0.1:8080;
  types { }
  default_type application/octet-stream;
  location /simple/ {
    root TREE;
    index index.json;
    default_type application/vnd.pypi.simple.v1+json;
  }
  location ~ "^/files/[^/]+/(([0-9a-f]{2})[0-9a-f]{62})/[^/]+[.]metadata$" {
    alias METADATA/$2/$1;
    default_type "text/plain; charset=utf-8";
  }
  location ~ "^/files/[^/]+/(([0-9a-f]{2})[0-9a-f]{62})/[^/]+$" {
    alias FILES/$2/$1;
  }
}
"""


def bench_proxy_floor(requirements: Path, rounds: int, scratch: Scratch, log: Any) -> list[Case]:
    """The warm proxy vs its physical floor: nginx serving the same pages (the proxy's own,
    file links absolute to nginx) and the same files and METADATA from the same store on
    disk. pip and uv clients, alternating, in one run."""
    import urllib.request

    from tests.support.nginx import Nginx, find_nginx

    binary = find_nginx()
    if binary is None:
        raise BenchError("nginx is not installed (Debian: apt-get install nginx-light)")
    label = requirements.name
    online = online_env(scratch.new("proxy-floor-env"), scratch.new("proxy-floor-pip-cache"))
    store = scratch.new("proxy-floor-store")
    install = ["install", "--no-cache-dir", "--disable-pip-version-check", "-r", str(requirements)]
    pip_case = Case(
        "proxy warm / nginx",
        label + " pip",
        f"PY -m pip install --no-cache-dir -r {label} --index-url PROXY (warm store)",
        "the same through nginx serving the proxy's pages and store from disk",
        TARGET_PROXY_FLOOR,
    )
    uv_case = Case(
        "proxy warm / nginx",
        label + " uv",
        f"uv pip install --no-cache -r {label} --index-url PROXY (warm store)",
        "the same through nginx serving the proxy's pages and store from disk",
        TARGET_PROXY_FLOOR,
    )

    server = start_proxy(PYPI_SIMPLE, store, online)
    nginx = None
    try:
        log(f"{label}: warming the proxy (pip, then uv)")
        work = scratch.new("proxy-floor-warm")
        timed([str(make_venv(work / "venv")), "-m", "pip", *install, "--index-url", server.url],
              scrubbed_env(work))  # fmt: skip
        work = scratch.new("proxy-floor-warm-uv")
        timed(
            _uv_install(make_venv(work / "venv", uv=True), requirements, server.url),
            scrubbed_env(work),
        )
        time.sleep(5)  # pages that gained METADATA hashes are rendered again behind (2 s on)
        (metadata,) = (store / "upstream-metadata").iterdir()  # one upstream list
        tree = scratch.new("proxy-floor-tree")
        nginx = Nginx(binary, scratch.new("proxy-floor-nginx"), "")
        nginx.http_block = (
            NGINX_FLOOR.replace("TREE", str(tree))
            .replace("METADATA", str(metadata))
            .replace("FILES", str(store / "files"))
        )
        for name in _requirement_names(requirements):
            request = urllib.request.Request(
                f"{server.url}{name}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json",
                         "Host": f"127.0.0.1:{nginx.port}"},
            )  # fmt: skip
            with urllib.request.urlopen(request) as response:
                page = _by_sha256(response.read(), name)
            (tree / "simple" / name).mkdir(parents=True)
            (tree / "simple" / name / "index.json").write_bytes(page)
        nginx.start()
        floor_url = f"{nginx.url}/simple/"

        def pip_run(r: int, index: str, into: list[float], what: str) -> None:
            work = scratch.new("proxy-floor-pip")
            python = make_venv(work / "venv")
            argv = [str(python), "-m", "pip", *install, "--index-url", index]
            run = timed(argv, scrubbed_env(work), cwd=work)
            into.append(run.seconds)
            log(f"  round {r + 1}: pip through {what} {run.seconds:6.2f} s")

        def uv_run(r: int, index: str, into: list[float], what: str) -> None:
            work = scratch.new("proxy-floor-uv")
            python = make_venv(work / "venv", uv=True)
            run = timed(_uv_install(python, requirements, index), scrubbed_env(work), cwd=work)
            into.append(run.seconds)
            log(f"  round {r + 1}: uv through {what} {run.seconds:6.2f} s")

        log(f"{label}: pip, warm proxy vs nginx")
        alternate(
            rounds,
            lambda r: pip_run(r, server.url, pip_case.wheelhouse, "the warm proxy"),
            lambda r: pip_run(r, floor_url, pip_case.baseline, "nginx"),
        )
        log(f"{label}: uv, warm proxy vs nginx")
        alternate(
            rounds,
            lambda r: uv_run(r, server.url, uv_case.wheelhouse, "the warm proxy"),
            lambda r: uv_run(r, floor_url, uv_case.baseline, "nginx"),
        )
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()
    return [pip_case, uv_case]


def _by_sha256(page: bytes, project: str) -> bytes:
    """A proxy page with a relayed page's links (``/files/<project>/via/<upstream path>``)
    made the sha256 links nginx's locations map onto the store: the same files, linked so."""
    document = json.loads(page)
    for file in document["files"]:
        root, via, _ = file["url"].partition(f"/files/{project}/via/")
        if via:
            file["url"] = f"{root}/files/{project}/{file['hashes']['sha256']}/{file['filename']}"
    return json.dumps(document).encode()


def _concurrent_clients(
    requirements: Path, scratch: Scratch, online: Mapping[str, str], log: Any
) -> dict[str, Any]:
    store = scratch.new("proxy-concurrent-store")
    server = start_proxy(PYPI_SIMPLE, store, online)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(server.proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    work = scratch.new("proxy-concurrent")

    def client(i: int) -> tuple[int, dict[str, str]]:
        target, report = work / f"t{i}", work / f"report{i}.json"
        argv = [*PIP, "install", "--no-cache-dir", "--disable-pip-version-check", "--target"]
        argv += [str(target), "--report", str(report), "-r", str(requirements)]
        argv += ["--index-url", server.url]
        proc = subprocess.run(
            argv, env=scrubbed_env(work), capture_output=True, text=True, check=False
        )
        hashes: dict[str, str] = {}
        if proc.returncode == 0:
            for item in json.loads(report.read_text())["install"]:
                info = item["download_info"]
                hashes[info["url"].rsplit("/", 1)[-1]] = info["archive_info"]["hashes"]["sha256"]
        return proc.returncode, hashes

    start = time.perf_counter()
    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(PROXY_CLIENTS) as pool:
            results = list(pool.map(client, range(PROXY_CLIENTS)))
        seconds = time.perf_counter() - start
        stats = server.stats()
    finally:
        done.set()
        sampler.join()
        server.stop()
    succeeded = [h for code, h in results if code == 0]
    identical = all(h == succeeded[0] for h in succeeded) if succeeded else False
    stored = [line.split()[-5] for line in server.lines if " stored " in line]
    fetches: dict[str, int] = {}
    for name in stored:
        fetches[name] = fetches.get(name, 0) + 1
    files = len(succeeded[0]) if succeeded else 0
    result = {
        "clients": PROXY_CLIENTS,
        "succeeded": len(succeeded),
        "identical_hashes": identical,
        "seconds": seconds,
        "files": files,
        "files_stored": len(fetches),
        "max_fetches_per_file": max(fetches.values(), default=0),
        "download_failures": sum(1 for line in server.lines if "download of" in line),
        "upstream_requests": stats["upstream_requests"],
        "peak_rss_bytes": peak,
        "rss_limit_bytes": PROXY_RSS_LIMIT,
    }
    result["status"] = (
        "PASS"
        if result["succeeded"] == PROXY_CLIENTS
        and identical
        and result["max_fetches_per_file"] == 1
        and len(fetches) == files
        and peak < PROXY_RSS_LIMIT
        else "MISS"
    )
    log(
        f"  {len(succeeded)}/{PROXY_CLIENTS} succeeded in {seconds:.1f} s, identical hashes: "
        f"{identical}, {len(fetches)} files stored (of {files}), at most "
        f"{result['max_fetches_per_file']} upstream fetch per file, peak RSS "
        f"{peak / 2**20:.0f} MiB"
    )
    return result


def print_concurrent(result: dict[str, Any]) -> None:
    print(
        f"\nproxy, {result['clients']} concurrent cold clients: {result['succeeded']}/"
        f"{result['clients']} succeeded, identical hashes {result['identical_hashes']}, "
        f"{result['files_stored']} of {result['files']} files each fetched at most "
        f"{result['max_fetches_per_file']}x, peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB "
        f"(< {result['rss_limit_bytes'] / 2**20:.0f} MiB) {result['status']}"
    )
