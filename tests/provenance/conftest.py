"""Wheelhouses that carry real PEP 740 provenance, made from the files in tests/provenance/data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.provenance import (
    DATA,
    GITLAB_SDIST,
    SDIST,
    TRUST_ROOT,
    MakeHouse,
    gitlab_provenance,
)
from tests.support.wheelhouses import make_wheelhouse, write_manifest


@pytest.fixture
def make_house(tmp_path: Path) -> MakeHouse:
    """``make_house(gitlab=False, trust_root=True) -> DIR``: a wheelhouse with real provenance."""

    def make(*, gitlab: bool = False, trust_root: bool = True, name: str = "house") -> Path:
        house = tmp_path / name
        files = [DATA / SDIST] + ([DATA / GITLAB_SDIST] if gitlab else [])
        make_wheelhouse(house, files, writes=[write_manifest])
        shutil.copyfile(DATA / f"{SDIST}.provenance", house / f"{SDIST}.provenance")
        if gitlab:
            (house / f"{GITLAB_SDIST}.provenance").write_bytes(gitlab_provenance())
        if trust_root:
            (house / "sigstore").mkdir()
            shutil.copyfile(TRUST_ROOT, house / "sigstore" / "trusted_root.json")
        return house

    return make
