"""Fixtures of the CLI tests: a real wheelhouse, built once per module and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import isolate_environment
from tests.support.server import IndexServer
from wheelhouse._base.pip_settings import IndexOptions
from wheelhouse.pipeline.run import build_wheelhouse
from wheelhouse.pipeline.settings import BuildSettings


@pytest.fixture(scope="module")
def seeded_house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("house-seed")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_environment(monkeypatch, root)
        factory = DistFactory(root / "dists")
        factory.wheel("alpha", "1.0", requires=["beta>=2"])
        factory.wheel("beta", "2.0")
        requirements = root / "requirements.in"
        requirements.write_text("alpha\n", encoding="utf-8")
        with IndexServer(factory.root) as server:
            build_wheelhouse(
                BuildSettings(
                    requirements=(requirements,),
                    output=root / "wheelhouse",
                    index=IndexOptions(index_url=server.url),
                    jobs=1,
                )
            )
    return root / "wheelhouse"


@pytest.fixture
def house(seeded_house: Path, tmp_path: Path) -> Path:
    """A copy of a wheelhouse of alpha 1.0 and beta 2.0 that the test may change."""
    out = tmp_path / "house"
    shutil.copytree(seeded_house, out, symlinks=True)
    return out
