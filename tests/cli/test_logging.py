"""What reaches a person from logging and Python warnings: ``warning: ...`` lines, no logger
names, no urllib3 retry chatter without -v, no library warnings without --debug."""

from __future__ import annotations

import warnings
from pathlib import Path

import platformdirs
import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import Cli
from tests.support.process import clean_env, free_ports, run_command, wheelhouse_argv
from tests.support.server import IndexServer


def test_urllib3_retries_are_silent_without_v_and_plain_with_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip's retries, honoured: one retry, then the error
    url = f"http://127.0.0.1:{free_ports()[0]}/simple/"  # nothing listens there
    quiet = cli("mirror", "six", "-o", tmp_path / "m", "-i", url)
    assert quiet.exit_code == 10, quiet.stderr
    assert [line for line in quiet.stderr.splitlines() if "Retrying" in line] == []
    assert "urllib3." not in quiet.stderr
    assert f"error: six: {url}six/ cannot be reached: " in quiet.stderr

    verbose = cli("mirror", "six", "-o", tmp_path / "m", "-i", url, "-v")
    assert verbose.exit_code == 10, verbose.stderr
    [retried] = [line for line in verbose.stderr.splitlines() if "Retrying" in line]
    assert retried.startswith("warning: Retrying (_Retry(total=None, connect=0, read=1, ")
    assert retried.endswith(": /simple/six/")


@pytest.mark.filterwarnings("always::FutureWarning")
def test_a_library_warning_is_shown_only_with_debug(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WHEELHOUSE_CACHE_DIR")
    real = platformdirs.user_cache_dir

    def deprecated(*args: str, **kwargs: bool) -> str:
        warnings.warn("this call changes in the next major version", FutureWarning, stacklevel=2)
        return str(tmp_path / "platform-cache")

    monkeypatch.setattr(platformdirs, "user_cache_dir", deprecated)
    result = cli("cache", "dir")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"{tmp_path / 'platform-cache'}\n",
        "",
    )
    debug = cli("--debug", "cache", "dir")
    assert debug.exit_code == 0
    [line] = [line for line in debug.stderr.splitlines() if "FutureWarning" in line]
    assert line.startswith("WARNING py.warnings: ")
    assert line.endswith("FutureWarning: this call changes in the next major version")
    assert real is not deprecated


def test_counts_in_v_lines_agree_with_their_nouns(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    # -v said "resolved 1 pins without pip's resolver"; --debug "wrote the index of 1 projects".
    dists.wheel("alpha", "1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==1.0\n", encoding="utf-8")
    out = tmp_path / "wh"
    env = clean_env(tmp_path / "home")
    built = run_command(
        wheelhouse_argv("build", "-v", "-r", req, "-o", out, "-i", index_server.url), env=env
    )
    assert built.returncode == 0, built.stderr
    assert "wheelhouse: resolved 1 pin without pip's resolver" in built.stderr.splitlines()
    indexed = run_command(wheelhouse_argv("--debug", "index", out), env=env)
    assert indexed.returncode == 0, indexed.stderr
    assert f"wrote the index of 1 project in {out / 'simple'}" in indexed.stderr
