"""Asking a target interpreter for its tags: answers are kept per venv until it changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import wheelhouse.install._interpreter as interpreter
from tests.support.capabilities import missing
from tests.support.fixtures import MakeVenv


def _forget_in_process_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interpreter, "_cache", {})


@pytest.mark.slow
def test_a_venvs_answer_is_kept_on_disk_until_its_packages_change(
    make_venv: MakeVenv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    python = make_venv(with_pip=False)
    # A venv of the interpreter running the tests would be answered without asking at all.
    monkeypatch.setattr(interpreter, "_venv_of_our_interpreter", lambda path: None)
    asked: list[Path] = []
    real_ask = interpreter._ask

    def counting_ask(path: Path) -> interpreter.InterpreterInfo:
        asked.append(path)
        return real_ask(path)

    monkeypatch.setattr(interpreter, "_ask", counting_ask)

    first = interpreter.describe(python)
    _forget_in_process_answers(monkeypatch)
    again = interpreter.describe(python)

    assert asked == [python.absolute()]
    assert again == first
    assert first.has_pip is False
    assert len(list((tmp_path / "wh-cache" / "interpreters").glob("*.json"))) == 1

    # pip arriving in the venv changes the answer, so the kept one must not be used.
    [site] = (python.parent.parent / "lib").glob("python*/site-packages")
    (site / "pip").mkdir()
    (site / "pip" / "__init__.py").write_text("", encoding="utf-8")
    _forget_in_process_answers(monkeypatch)
    changed = interpreter.describe(python)

    assert len(asked) == 2
    assert changed.has_pip is True
    shutil.rmtree(site / "pip")


def test_an_interpreter_outside_a_venv_is_not_kept(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    fake.write_text("", encoding="utf-8")
    assert interpreter._answer_file(fake) is None


@pytest.mark.slow
@pytest.mark.parametrize("with_pip", [True, False])
def test_a_venv_of_our_own_interpreter_is_answered_without_starting_it(
    make_venv: MakeVenv, monkeypatch: pytest.MonkeyPatch, with_pip: bool
) -> None:
    python = make_venv(with_pip=with_pip)
    asked = interpreter._ask(python.absolute())

    def must_not_run(path: Path) -> interpreter.InterpreterInfo:
        raise AssertionError(f"{path} was started")

    monkeypatch.setattr(interpreter, "_ask", must_not_run)
    _forget_in_process_answers(monkeypatch)

    assert interpreter.describe(python) == asked
    assert asked.has_pip is with_pip


def _old_python() -> Path | None:
    """A Python 3.8 or 3.9 on this machine (PATH or pyenv), which our packaging cannot run on."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (9, 8)]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.[89].*/bin/python3"))
    for candidate in filter(None, candidates):
        done = subprocess.run(
            [candidate, "-c", "import pip, sys; assert sys.version_info < (3, 10)"],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return Path(candidate)
    return None


def test_an_interpreter_too_old_for_our_packaging_is_asked_with_its_own_pips() -> None:
    python = _old_python()
    if python is None:
        missing("a Python 3.8 or 3.9 with pip", "none on PATH or under ~/.pyenv/versions")
    info = interpreter._ask(python)
    minor = info.version.split(".")[1]
    assert info.version.startswith("3.")
    assert int(minor) < 10
    assert info.tags[0].startswith(f"cp3{minor}-cp3{minor}-")
    assert info.environment["python_version"] == f"3.{minor}"
    assert info.has_pip


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_a_pyenv_shim_stands_for_the_newest_version_that_has_the_command(tmp_path: Path) -> None:
    from wheelhouse.install._interpreter import find_python

    pyenv = tmp_path / "pyenv"
    _executable(pyenv / "shims" / "python3.12")
    _executable(pyenv / "versions" / "3.12.1" / "bin" / "python3.12")
    newest = _executable(pyenv / "versions" / "3.12.10" / "bin" / "python3.12")
    _executable(pyenv / "versions" / "myenv" / "bin" / "python3.12")  # a pyenv virtualenv
    env = {"PATH": str(pyenv / "shims"), "PYENV_ROOT": str(pyenv)}
    assert find_python("3.12", env) == newest
    assert find_python("python3.12", env) == newest
    # Without pyenv on PATH, its versions are still looked in; PATH comes first.
    assert find_python("3.12", {"PATH": "", "PYENV_ROOT": str(pyenv)}) == newest
    first = _executable(tmp_path / "bin" / "python3.12")
    assert find_python("3.12", {"PATH": str(first.parent), "PYENV_ROOT": str(pyenv)}) == first
