"""A ``--find-links`` directory given relative to the current directory, as pip takes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dists import make_wheel
from tests.support.fixtures import Cli


def test_a_relative_find_links_directory_builds(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was a traceback (``ValueError: relative path can't be expressed as a file URI``)
    from the pinned resolver, which names each file by its file: URL."""
    (tmp_path / "dists").mkdir()
    wheel = make_wheel(tmp_path / "dists", "solo", "1.0")
    (tmp_path / "requirements.in").write_text("solo\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    index = (tmp_path / "no-index").as_uri()
    (tmp_path / "no-index").mkdir()

    result = cli(
        "build", "-r", "requirements.in", "--index-url", index, "--find-links", "dists", "-o", "wh"
    )

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "wh" / wheel.name).read_bytes() == wheel.read_bytes()
