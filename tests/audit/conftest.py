"""Fixtures of the audit tests: real OSV records zipped like the export, a real wheelhouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import built_wheelhouse
from tests.support.osv import PINS, real_members, write_zip


@pytest.fixture
def real_snapshot(tmp_path: Path) -> Path:
    return write_zip(tmp_path / "snapshot" / "all.zip", real_members())


@pytest.fixture(scope="module")
def seeded_house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def make(dists: DistFactory) -> None:
        for name, version in PINS.items():
            dists.wheel(name, version)

    requirements = "".join(f"{name}=={version}\n" for name, version in PINS.items())
    return built_wheelhouse(tmp_path_factory.mktemp("audit-house-seed"), requirements, make)


@pytest.fixture
def house(seeded_house: Path, tmp_path: Path) -> Path:
    """A copy of a wheelhouse of requests 2.31.0, urllib3 2.2.1, Jinja2 3.1.3 and idna 3.7."""
    out = tmp_path / "house"
    shutil.copytree(seeded_house, out, symlinks=True)
    return out
