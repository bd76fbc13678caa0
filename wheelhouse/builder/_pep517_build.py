"""Build one wheel from a source tree with ``build``, and record what the build required.

Run as ``python -m wheelhouse.builder._pep517_build [--installer pip|uv] [--env-dir DIR] SRC OUTDIR
RECORD``: in its own process so builds
run in parallel with their output captured. It does what ``python -m build --wheel`` does, and
also writes the build's requirements (PEP 518 ``build-system.requires`` plus PEP 517
``get_requires_for_build_wheel``), which ``--keep-sdists`` ships so that the sdist can be built
again offline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import build
import build.env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wheelhouse.builder._pep517_build")
    parser.add_argument("--installer", choices=build.env.INSTALLERS, default="pip")
    # Where the environment goes (default: a new temporary directory). Beside uv's cache, on
    # one file system, uv links the files instead of copying them.
    parser.add_argument("--env-dir", type=Path)
    parser.add_argument("source", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("record", type=Path)
    args = parser.parse_args(argv)
    try:
        return _build(args.source, args.outdir, args.record, args.installer, args.env_dir)
    except (build.BuildException, build.BuildBackendException) as exc:
        # The backend already printed its own output; a traceback of ours would bury it.
        print(f"wheelhouse: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        # The installer of the build requirements failed; build captured its output, which
        # says why (a certificate, an index, a name). Our traceback would say nothing.
        for output in (exc.stdout, exc.stderr):
            if output:
                text = output.decode(errors="replace") if isinstance(output, bytes) else output
                print(text.rstrip(), file=sys.stderr)
        installer = Path(str(exc.cmd[0])).name if exc.cmd else "the installer"
        print(
            f"wheelhouse: installing the build requirements with {installer} failed"
            f" (exit {exc.returncode})",
            file=sys.stderr,
        )
        return 1


def _build(
    source: Path, outdir: Path, record: Path, installer: build.env.Installer, env_dir: Path | None
) -> int:
    path = None if env_dir is None else str(env_dir)
    with build.env.DefaultIsolatedEnv(installer=installer, path=path) as env:
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
