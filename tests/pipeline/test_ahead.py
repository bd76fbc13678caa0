"""Downloads made while uv resolves (``AheadOfUv``), on their own."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

from tests.support.dists import DistFactory
from tests.support.files import sha256_of
from tests.support.server import IndexServer
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.download.cache import Cache
from wheelhouse.resolve._uv_ahead import AheadOfUv
from wheelhouse.resolve.from_pins import Metadata


def test_uvs_files_are_stored_by_sha256_with_their_metadata_read(
    dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    app = dists.wheel("app", "1.0", requires=["lib>=1"], requires_python=">=3.8")
    cache = Cache(tmp_path / "cache")

    with AheadOfUv(cache, pip=PipSettings(), jobs=2) as early:
        early(index_server.files_url + app.name)
        early(index_server.files_url + app.name)  # uv may name a file twice

    digest = sha256_of(app)
    assert early.downloaded == {digest}
    assert cache.lookup(digest, app.name) is not None
    # The check of uv's graph takes this instead of opening the file again.
    assert early.read == {digest: Metadata("1.0", (Requirement("lib>=1"),), ">=3.8")}
    assert index_server.count(f"/files/{app.name}") == 1
