"""_pip's view of pip's configuration, held to what pip itself makes of the same files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from wheelhouse._base import _pip, _pip_ahead
from wheelhouse._base._pip import pip_config
from wheelhouse._base.pip_settings import PYPI_SIMPLE, config_flag, index_urls


def _pip_parses(command: str, option: str) -> object:
    """The value pip's own option parser gives ``option`` for ``pip <command>`` (no arguments)."""
    from pip._internal.commands import create_command

    options, _ = create_command(command).parse_args([])
    return getattr(options, option)


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pip.conf"
    monkeypatch.setenv("PIP_CONFIG_FILE", str(path))
    return path


def test_the_commands_section_overrides_global_and_other_commands_do_not(
    config_file: Path,
) -> None:
    config_file.write_text(
        "[global]\ntimeout = 10\n[install]\ntimeout = 20\n"
        "[download]\ntimeout = 30\n[wheel]\ntimeout = 40\n"
    )

    assert pip_config()["timeout"] == "20"  # the resolver runs `pip install`
    assert pip_config("download")["timeout"] == "30"
    assert pip_config("list")["timeout"] == "10"
    for command in ("install", "download", "wheel"):
        assert float(pip_config(command)["timeout"]) == _pip_parses(command, "timeout")


def test_environment_overrides_every_section(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[global]\ntimeout = 10\n[install]\ntimeout = 20\n")
    monkeypatch.setenv("PIP_TIMEOUT", "50")

    assert pip_config()["timeout"] == "50"
    assert _pip_parses("install", "timeout") == 50.0


def test_an_empty_value_is_ignored_as_pip_ignores_it(config_file: Path) -> None:
    config_file.write_text(
        "[global]\nindex-url = http://127.0.0.1:9/simple/\n[install]\nindex-url =\n"
    )

    assert pip_config()["index-url"] == "http://127.0.0.1:9/simple/"
    assert _pip_parses("install", "index_url") == "http://127.0.0.1:9/simple/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(value, True) for value in ("1", "true", "Yes", "on", "y", "T")],
        *[(value, False) for value in ("0", "false", "no", "off", "n")],
    ],
)
def test_booleans_are_read_by_pips_rule(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    config_file.write_text("")
    monkeypatch.setenv("PIP_NO_INDEX", value)

    assert config_flag(pip_config(), "no-index") is expected
    assert bool(_pip_parses("install", "no_index")) is expected
    assert index_urls(pip_config()) == ([] if expected else [PYPI_SIMPLE])


def test_a_value_pip_would_refuse_is_not_true() -> None:
    assert config_flag({"no-index": "maybe"}, "no-index") is False
    assert config_flag({}, "no-index") is False


def test_the_fingerprint_covers_every_file_pip_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from pip._internal.configuration import get_configuration_files

    env = {"PIP_CONFIG_FILE": "/somewhere/pip.conf", "VIRTUAL_ENV": "/venv"}
    ours = {str(p) for p in _pip._config_files(env)}
    pips = {path for paths in get_configuration_files().values() for path in paths}

    assert pips <= ours
    assert ours - pips == {"/somewhere/pip.conf", os.path.join("/venv", "pip.conf")}


def test_the_fingerprint_changes_with_a_configuration_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[global]\ntimeout = 10\n")
    before = _pip.config_fingerprint()
    config_file.write_text("[install]\ntimeout = 10\n")

    assert _pip.config_fingerprint() != before


def test_a_reading_started_ahead_is_taken_once_and_only_where_it_started(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[global]\ntimeout = 10\n")
    _pip_ahead.start(sys.executable)
    _pip_ahead._started[0][1].wait(timeout=60)  # the child has read the file
    config_file.write_text("[global]\ntimeout = 20\n")

    # The child's answer is taken (it read the file before the change), once.
    assert pip_config()["timeout"] == "10"
    assert pip_config()["timeout"] == "20"

    _pip_ahead.start(sys.executable)
    monkeypatch.setenv("PIP_TIMEOUT", "30")
    # Started in another environment: read again here, and the child is stopped.
    child = _pip_ahead._started[0][1]
    assert pip_config()["timeout"] == "30"
    assert child.returncode is not None
    assert _pip_ahead._started == []


def test_with_config_file_devnull_only_pips_variables_count_as_pip_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pip._internal.configuration import Configuration

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_TIMEOUT", "30")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.setenv("PIP_NO_BINARY", ":all:")
    monkeypatch.setenv("PIP_Prefer_Binary", "1")
    monkeypatch.setenv("PIP_VERSION", "1")  # pip ignores these two
    monkeypatch.setenv("PIP_HELP", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    pip = Configuration(isolated=False)
    pip.load()

    _pip_ahead.start(sys.executable)
    assert _pip_ahead._started == []  # nothing to read ahead: no child started
    assert _pip._config_items() == [(k, v) for _, kv in pip.items() for k, v in kv.items()]
    assert pip_config()["timeout"] == "30"
    assert pip_config()["no-binary"] == ":all:"
    assert "find-links" not in pip_config()
    assert _pip_parses("install", "timeout") == 30.0


def test_files_are_read_unless_config_file_is_devnull(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[global]\ntimeout = 10\n")
    assert pip_config()["timeout"] == "10"
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    assert "timeout" not in pip_config()
