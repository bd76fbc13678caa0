"""wheelhouse install (pip, uv) into a fresh venv vs the same pip or uv command typed by hand."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    WHEELHOUSE,
    Scratch,
    alternate,
    scrubbed_env,
    timed,
)
from benchmarks.report import Case
from tests.support.venvs import make_venv
from wheelhouse.install.hermetic import find_uv

TARGET_INSTALL = 1.05


def install_command_available() -> bool:
    probe = subprocess.run(
        [*WHEELHOUSE, "install", "--help"],
        capture_output=True,
        check=False,
        env=scrubbed_env(Path(tempfile.gettempdir())),
    )
    return probe.returncode == 0


# The library route, for when the CLI does not wire `install` yet: same process shape (a fresh
# interpreter that imports wheelhouse), so the overhead measured is comparable.
_LIBRARY_INSTALL = (
    "import sys\n"
    "from pathlib import Path\n"
    "from wheelhouse.install.hermetic import InstallOptions, install\n"
    "install(InstallOptions(wheelhouse=Path(sys.argv[1]), python=Path(sys.argv[2]),"
    " installer=sys.argv[3]))\n"
)


def bench_installs(
    directory: Path, label: str, rounds: int, scratch: Scratch, log: Any, via_cli: bool
) -> list[Case]:
    """``wheelhouse install`` vs the same pip and uv commands by hand, into fresh venvs."""
    cases = []
    uv = str(find_uv())
    requirements = str(directory / "requirements.txt")
    hermetic = ["--no-index", "--find-links", str(directory)]
    for installer in ("pip", "uv"):
        if installer == "pip":
            by_hand = "PY -m pip install --no-index --find-links DIR --only-binary=:all: "
        else:
            by_hand = "uv pip install --offline --no-index --find-links DIR --python PY "
            by_hand += "--no-config --only-binary :all: "
        by_hand += "--require-hashes -r DIR/requirements.txt (no pip/uv config)"
        ours = "wheelhouse install -w DIR --python PY"
        ours += " --installer uv" if installer == "uv" else ""
        case = Case(
            f"install ({installer})",
            label,
            ours
            if via_cli
            else f"wheelhouse.install.hermetic.install() in a fresh interpreter ({ours})",
            by_hand,
            TARGET_INSTALL,
            note="" if via_cli else "'wheelhouse install' is not wired in the CLI: library used",
        )

        def venv(work: Path, installer: str = installer) -> Path:
            return make_venv(work / "venv", with_pip=installer == "pip")

        def ours_run(r: int, case: Case = case, installer: str = installer) -> None:
            work = scratch.new(f"install-wh-{installer}")
            python = venv(work)
            if via_cli:
                argv = [*WHEELHOUSE, "install", "-w", str(directory), "--python", str(python)]
                argv += ["--installer", installer]
            else:
                argv = [sys.executable, "-c", _LIBRARY_INSTALL, str(directory), str(python)]
                argv.append(installer)
            run = timed(argv, scrubbed_env(work), cwd=work)
            case.wheelhouse.append(run.seconds)
            log(f"  round {r + 1}: wheelhouse install ({installer}) {run.seconds:6.2f} s")

        def hand_run(r: int, case: Case = case, installer: str = installer) -> None:
            work = scratch.new(f"install-hand-{installer}")
            python = venv(work)
            if installer == "pip":
                argv = [str(python), "-m", "pip", "install", *hermetic, "--only-binary=:all:"]
            else:
                argv = [uv, "pip", "install", "--offline", *hermetic, "--python", str(python)]
                argv += ["--no-config", "--only-binary", ":all:"]
            argv += ["--require-hashes", "-r", requirements]
            run = timed(argv, scrubbed_env(work), cwd=work)
            case.baseline.append(run.seconds)
            log(f"  round {r + 1}: {installer} by hand            {run.seconds:6.2f} s")

        alternate(rounds, ours_run, hand_run)
        cases.append(case)
    return cases
