"""The installed command: exit codes and output survive its fast exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from wheelhouse._main import _command


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wheelhouse", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_exit_code_and_error_line_of_a_user_mistake(tmp_path: Path) -> None:
    result = _run("build", "-r", "missing.txt", "-o", "out", cwd=tmp_path)
    assert result.returncode == 3
    assert "error: requirements file 'missing.txt' does not exist" in result.stderr.splitlines()
    assert not (tmp_path / "out").exists()


def test_all_of_stdout_arrives_before_the_exit(tmp_path: Path) -> None:
    result = _run("cache", "info", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["schema-version"] == 1
    assert info["files"] == 0


def test_the_subcommand_is_found_after_global_options() -> None:
    # `build` reads pip's configuration ahead, while the command line loads.
    assert _command(["--debug", "build", "-r", "x.txt"]) == "build"
    assert _command(["install", "build"]) == "install"
    assert _command(["--version"]) is None


def test_every_usage_line_names_its_arguments_in_capitals(tmp_path: Path) -> None:
    # `yank --help` said "Usage: wheelhouse yank [OPTIONS] {filename}", `users add` "{name}",
    # where every other command writes DIR, FILE, NAME...
    commands = ["yank", "users add", "users remove", "users token", "reserve", "merge"]
    for command in commands:
        result = _run(*command.split(), "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        usage = result.stdout.splitlines()[0]
        assert usage.startswith(f"Usage: wheelhouse {command} [OPTIONS] "), usage
        arguments = usage.removeprefix(f"Usage: wheelhouse {command} [OPTIONS] ")
        assert arguments == arguments.upper(), usage
