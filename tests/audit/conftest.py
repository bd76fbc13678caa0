"""Fixtures of the audit tests: real OSV records zipped like the export, a real wheelhouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.fixtures import isolate_environment
from tests.support.osv import PINS, real_members, write_zip
from tests.support.server import IndexServer
from wheelhouse._base.pip_settings import IndexOptions
from wheelhouse.pipeline.run import build_wheelhouse
from wheelhouse.pipeline.settings import BuildSettings


@pytest.fixture
def real_snapshot(tmp_path: Path) -> Path:
    return write_zip(tmp_path / "snapshot" / "all.zip", real_members())


@pytest.fixture(scope="module")
def seeded_house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit-house-seed")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_environment(monkeypatch, root)
        factory = DistFactory(root / "dists")
        for name, version in PINS.items():
            factory.wheel(name, version)
        requirements = root / "requirements.txt"
        requirements.write_text(
            "".join(f"{name}=={version}\n" for name, version in PINS.items()), encoding="utf-8"
        )
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
    """A copy of a wheelhouse of requests 2.31.0, urllib3 2.2.1, Jinja2 3.1.3 and idna 3.7."""
    out = tmp_path / "house"
    shutil.copytree(seeded_house, out, symlinks=True)
    return out
