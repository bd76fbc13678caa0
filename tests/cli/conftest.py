"""Fixtures of the CLI tests: a real wheelhouse, built once per module and copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import built_wheelhouse


@pytest.fixture(scope="module")
def seeded_house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def make(dists: DistFactory) -> None:
        dists.wheel("alpha", "1.0", requires=["beta>=2"])
        dists.wheel("beta", "2.0")

    return built_wheelhouse(tmp_path_factory.mktemp("house-seed"), "alpha\n", make)


@pytest.fixture
def house(seeded_house: Path, tmp_path: Path) -> Path:
    """A copy of a wheelhouse of alpha 1.0 and beta 2.0 that the test may change."""
    out = tmp_path / "house"
    shutil.copytree(seeded_house, out, symlinks=True)
    return out
