"""Build one wheel from a source tree with ``build``, and record what the build required.

Run as ``python -m wheelhouse.build._pep517_build SRC OUTDIR RECORD``: in its own process so builds
run in parallel with their output captured. It does what ``python -m build --wheel`` does, and
also writes the build's requirements (PEP 518 ``build-system.requires`` plus PEP 517
``get_requires_for_build_wheel``), which ``--keep-sdists`` ships so that the sdist can be built
again offline.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import build
import build.env


def main(argv: list[str]) -> int:
    source, outdir, record = (Path(a) for a in argv)
    try:
        return _build(source, outdir, record)
    except (build.BuildException, build.BuildBackendException) as exc:
        # The backend already printed its own output; a traceback of ours would bury it.
        print(f"wheelhouse: {exc}", file=sys.stderr)
        return 1


def _build(source: Path, outdir: Path, record: Path) -> int:
    with build.env.DefaultIsolatedEnv() as env:
        builder = build.ProjectBuilder.from_isolated_env(env, source)
        static = sorted(builder.build_system_requires)
        env.install(set(static))
        dynamic = sorted(builder.get_requires_for_build("wheel"))
        env.install(set(dynamic))
        wheel = Path(builder.build("wheel", outdir))
    requires = {*static, *dynamic}
    if not _declares_build_system(source):
        # Without a [build-system] table, build assumes setuptools alone, but pip before 24.1
        # (23.2 is what a fresh venv bundles) assumes "setuptools>=40.8.0" and "wheel": ship
        # wheel too, or that pip cannot build the shipped sdist offline.
        requires.add("wheel")
    record.write_text(
        json.dumps({"wheel": wheel.name, "requires": sorted(requires)}),
        encoding="utf-8",
    )
    return 0


def _declares_build_system(source: Path) -> bool:
    try:
        data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "requires" in data.get("build-system", {})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
