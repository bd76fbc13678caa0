"""A cold build of pinned wheels vs uv's own cold `uv pip install` of the same pins (issue 23).

Both sides start with empty caches and read the same index with no other configuration: the
real index when it answers, else (or with ``--pinned-uv-wheels DIR``) a loopback index serving
the wheels in DIR. uv installs into a fresh venv made before the clock starts; wheelhouse only
fetches and indexes, so the target is to be no slower: <= 1.0x.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import ssl
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PYPI_SIMPLE,
    WHEELHOUSE,
    BenchError,
    Scratch,
    _direct_uv_env,
    alternate,
    built_from_sdists,
    manifest_files,
    phases,
    timed,
)
from benchmarks.report import Case
from wheelhouse.install.hermetic import find_uv

TARGET_PINNED_UV = 1.0


def _index_answers(index: str, env: dict[str, str]) -> str | None:
    """None if ``index`` serves a project page within 10 s, else why not."""
    context = ssl.create_default_context(cafile=env.get("SSL_CERT_FILE") or None)
    try:  # a project page: the root listing of this index is slow (FACTS.md)
        with urllib.request.urlopen(index + "pip/", timeout=10, context=context):
            return None
    except (OSError, http.client.HTTPException) as exc:
        return str(exc)


@contextlib.contextmanager
def _the_index(wheels: Path | None, env: dict[str, str], log: Any) -> Iterator[tuple[str, str]]:
    """(URL, label) of the index both sides read: the real one, or the wheels on loopback."""
    if wheels is None:
        why = _index_answers(PYPI_SIMPLE, env)
        if why is None:
            yield PYPI_SIMPLE, "the real index"
            return
        raise BenchError(
            f"{PYPI_SIMPLE} does not answer ({why}); pass --pinned-uv-wheels DIR (the pinned "
            "wheels, e.g. a wheelhouse built earlier) to serve them on loopback instead"
        )
    from tests.support.server import IndexServer

    with IndexServer(wheels) as server:
        server.json_pages = True  # uv and wheelhouse both ask for PEP 691 JSON
        log(f"pinned-uv: {wheels} served on loopback at {server.url}")
        yield server.url, f"loopback ({wheels.name})"


def bench_pinned_uv(
    requirements: Path, rounds: int, scratch: Scratch, log: Any, wheels: Path | None = None
) -> list[Case]:
    """Cold ``wheelhouse build -r PINS`` vs cold ``uv pip install -r PINS`` into a fresh venv."""
    label = requirements.name
    req = str(requirements)
    uv = str(find_uv())
    probe = _direct_uv_env(scratch.new("pinned-uv-probe"))
    case = Case(
        "cold pinned vs uv",
        label,
        "wheelhouse build -v -r X -o DIR --cache-dir FRESH --index-url I (empty caches)",
        "uv pip install -r X --python FRESH_VENV --index-url I (empty UV_CACHE_DIR)",
        TARGET_PINNED_UV,
    )
    cpu: dict[str, list[float]] = {"wheelhouse": [], "uv": []}
    shipped: list[int] = []
    with _the_index(wheels, probe, log) as (index, where):

        def wheelhouse(r: int) -> None:
            work = scratch.new(f"pinned-wh-{label}")
            env = _cold_env(work)
            out = work / "out"
            argv = [*WHEELHOUSE, "build", "-v", "-r", req, "-o", str(out)]
            argv += ["--cache-dir", str(work / "cache"), "--index-url", index]
            run = timed(argv, env, cwd=work)
            if built_from_sdists(out):
                raise BenchError(f"{label} is not all wheels: the build made some from sdists")
            shipped.append(len(manifest_files(out)))
            case.wheelhouse.append(run.seconds)
            case.phases.append(phases(run))
            cpu["wheelhouse"].append(run.cpu)
            log(
                f"  round {r + 1}: wheelhouse build cold  {run.seconds:6.2f} s, cpu {run.cpu:.2f} s"
            )

        def uv_install(r: int) -> None:
            work = scratch.new(f"pinned-uv-{label}")
            env = _cold_env(work)
            venv = work / "venv"
            argv = [uv, "venv", "-q", "--python", sys.executable, str(venv)]
            subprocess.run(argv, env=env, check=True)  # before the clock: only the install counts
            argv = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
            argv += ["-r", req, "--index-url", index]
            run = timed(argv, env, cwd=work)
            case.baseline.append(run.seconds)
            cpu["uv"].append(run.cpu)
            log(
                f"  round {r + 1}: uv pip install cold    {run.seconds:6.2f} s, cpu {run.cpu:.2f} s"
            )

        alternate(rounds, wheelhouse, uv_install)
    case.note = (
        f"{where}; {shipped[0]} wheels; CPU (user+system) medians: wheelhouse "
        f"{statistics.median(cpu['wheelhouse']):.2f} s, uv {statistics.median(cpu['uv']):.2f} s; "
        "load average at the end " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    return [case]


def _cold_env(work: Path) -> dict[str, str]:
    """No pip or uv configuration, the index's CA bundle, and every cache empty under ``work``."""
    env = _direct_uv_env(work)
    env["PIP_CACHE_DIR"] = str(work / "pip-cache")
    env["UV_CACHE_DIR"] = str(work / "uv-cache")
    return env
