"""Reading a wheel's METADATA: once per sha256."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.dists import DistFactory
from wheelhouse._base.wheels import read_wheel_metadata


def test_metadata_read_by_sha256_is_not_read_from_the_file_again(dists: DistFactory) -> None:
    wheel = dists.wheel("remembered", "1.0", requires=["lib>=1"])
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    name, version = canonicalize_name("remembered"), Version("1.0")

    first = read_wheel_metadata(wheel, name, version, sha256=sha256)
    assert first is not None and b"Requires-Dist: lib>=1" in first
    # The same bytes (a copy elsewhere, here the same path emptied) answer from memory.
    wheel.write_bytes(b"")
    assert read_wheel_metadata(wheel, name, version, sha256=sha256) == first
    # Without a sha256 the file is read: an empty file is not a zip.
    with pytest.raises(zipfile.BadZipFile):
        read_wheel_metadata(wheel, name, version)
