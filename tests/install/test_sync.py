"""``wheelhouse install --sync``: the environment ends holding exactly the lock, like pip-sync."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment

from tests.support.dists import DistFactory
from tests.support.fixtures import MakeVenv, Offline
from tests.support.process import run_command as run
from tests.support.process import wheelhouse_argv as wheelhouse
from tests.support.wheelhouses import make_wheelhouse
from wheelhouse.install._piptools import Installed, sync_diff

LOCK = {"alpha": "1.0", "beta": "2.0", "delta": "4.0"}


@pytest.fixture
def house(tmp_path: Path, dists: DistFactory) -> Path:
    """alpha needs beta; delta stands alone."""
    wheels = [
        dists.wheel("alpha", "1.0", requires=["beta>=1"]),
        dists.wheel("beta", "2.0"),
        dists.wheel("delta", "4.0"),
    ]
    make_wheelhouse(tmp_path / "wh", wheels, requested=["alpha", "delta"])
    return tmp_path / "wh"


def pip_list(python: Path) -> dict[str, str]:
    """What the environment's own pip lists, name -> version."""
    proc = run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"])
    assert proc.returncode == 0, proc.stderr
    return {item["name"]: item["version"] for item in json.loads(proc.stdout)}


def seed(python: Path, tmp_path: Path, dists: DistFactory, *wheels: tuple[str, str]) -> None:
    """Install these name/version wheels into python's environment, offline from a folder."""
    folder = tmp_path / "seed"
    folder.mkdir()
    made = [DistFactory(folder).wheel(name, version) for name, version in wheels]
    argv = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index"]
    proc = run([*argv, "--no-deps", *map(str, made)])
    assert proc.returncode == 0, proc.stderr


# -- the decision: pip-tools' diff ---------------------------------------------------------------


def test_diff_installs_missing_and_outdated_and_removes_what_the_lock_lacks() -> None:
    installed = [
        Installed("alpha", "1.0"),
        Installed("Beta", "1.0"),
        Installed("stray", "0.1"),
        Installed("pip", "26.0"),
        Installed("pip-tools", "7.4", ("click>=8",)),
        Installed("click", "8.1"),
        # wheelhouse keeps itself and what it needs in this environment, not what a marker
        # leaves out for the target.
        Installed("wheelhouse", "0.1", ("certifi", 'pywin32; sys_platform == "win32"')),
        Installed("certifi", "2024.1"),
        Installed("pywin32", "306"),
    ]
    diff = sync_diff(LOCK.items(), installed, default_environment())
    assert diff.install == ("beta", "delta")
    assert diff.uninstall == ("pywin32", "stray")


def test_diff_of_an_environment_that_holds_the_lock_is_empty() -> None:
    installed = [Installed(name, version) for name, version in LOCK.items()]
    diff = sync_diff(LOCK.items(), [*installed, Installed("pip", "23.2.1")], default_environment())
    assert (diff.install, diff.uninstall) == ((), ())


# -- the command, offline, into another interpreter ----------------------------------------------


@pytest.mark.slow
def test_sync_makes_another_venv_hold_exactly_the_lock_offline(
    house: Path, tmp_path: Path, dists: DistFactory, make_venv: MakeVenv, offline: Offline
) -> None:
    python = make_venv()
    seed(python, tmp_path, dists, ("beta", "1.0"), ("stray", "0.5"))

    proc = run(offline(wheelhouse("install", "--sync", "-w", house, "--python", python, "--json")))

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["sync"] is True
    assert summary["added"] == [
        {"name": "alpha", "version": "1.0", "previous": None},
        {"name": "beta", "version": "2.0", "previous": "1.0"},
        {"name": "delta", "version": "4.0", "previous": None},
    ]
    assert summary["removed"] == [{"name": "stray", "version": "0.5"}]
    assert summary["installed"] == [{"name": n, "version": v} for n, v in LOCK.items()]
    after = pip_list(python)
    # The venv's own pip (and setuptools, which venv seeds before Python 3.12) stay.
    assert {name: after.pop(name) for name in ("pip", "setuptools") if name in after}
    assert after == LOCK

    # Once in sync, a second sync changes nothing and runs no installer.
    again = run(offline(wheelhouse("install", "--sync", "-w", house, "--python", python, "-v")))
    assert again.returncode == 0, again.stderr
    synced = f"synced {python} to the 3 distributions of {house} with pip: 0 installed, 0 removed"
    assert synced in again.stderr


@pytest.mark.slow
def test_sync_with_uv_into_a_venv_without_pip(
    house: Path, tmp_path: Path, dists: DistFactory, make_venv: MakeVenv, offline: Offline
) -> None:
    from tests.support.capabilities import find_uv

    find_uv()
    python = make_venv(with_pip=False)
    seed(python, tmp_path, dists, ("delta", "3.0"), ("stray", "0.5"))

    args = ["install", "--sync", "--installer", "uv", "-w", house, "--python", python, "--json"]
    proc = run(offline(wheelhouse(*args)))

    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["installer"] == "uv"
    assert [(c["name"], c["previous"]) for c in summary["added"]] == [
        ("alpha", None),
        ("beta", None),
        ("delta", "3.0"),
    ]
    assert summary["removed"] == [{"name": "stray", "version": "0.5"}]
    assert pip_list_of(python) == LOCK


def pip_list_of(python: Path) -> dict[str, str]:
    """What our pip lists for an interpreter that has no pip of its own."""
    argv = [sys.executable, "-m", "pip", "--python", str(python), "list", "--format=json"]
    proc = run(argv)
    assert proc.returncode == 0, proc.stderr
    return {item["name"]: item["version"] for item in json.loads(proc.stdout)}


@pytest.mark.slow
def test_install_without_sync_reports_sync_false_and_removes_nothing(
    house: Path, tmp_path: Path, dists: DistFactory, make_venv: MakeVenv, cli
) -> None:  # type: ignore[no-untyped-def]
    python = make_venv(with_pip=False)
    seed(python, tmp_path, dists, ("stray", "0.5"))
    result = cli("install", "-w", house, "--python", python, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sync"] is False
    assert "added" not in summary and "removed" not in summary
    assert pip_list_of(python) == {**LOCK, "stray": "0.5"}


def test_an_install_without_sync_loads_neither_pip_tools_nor_pip(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from wheelhouse.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'pip', 'piptools'}))\n"
    )
    plain = run([sys.executable, "-c", code, "install", "-w", tmp_path / "nowhere"])
    assert plain.stdout == "3 []\n", plain.stderr
