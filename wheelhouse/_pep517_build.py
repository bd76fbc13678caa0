"""Build one wheel from a source tree with ``build``, and record what the build required.

Run as ``python -m wheelhouse._pep517_build SRC OUTDIR RECORD``: in its own process so builds
run in parallel with their output captured. It does what ``python -m build --wheel`` does, and
also writes the build's requirements (PEP 518 ``build-system.requires`` plus PEP 517
``get_requires_for_build_wheel``), which ``--keep-sdists`` ships so that the sdist can be built
again offline.
"""

from __future__ import annotations

import json
import sys
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
    record.write_text(
        json.dumps({"wheel": wheel.name, "requires": sorted({*static, *dynamic})}),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
