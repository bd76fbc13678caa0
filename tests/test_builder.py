"""builder.build_all: sdist -> wheel with PEP 517 (`build`), cached by sdist hash and target."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import wheelhouse.builder as builder_module
from tests._dists import BUILD_FAILURE_LINE, DistFactory
from wheelhouse.builder import build_all
from wheelhouse.cache import Cache
from wheelhouse.errors import BuildError, ExitCode
from wheelhouse.fetch import Fetched
from wheelhouse.manifest import Sha256
from wheelhouse.resolve import Pin
from wheelhouse.targets import HOST


def _sha256(path: Path) -> Sha256:
    return Sha256(hashlib.sha256(path.read_bytes()).hexdigest())


def _fetched(sdist: Path, name: str, version: str) -> Fetched:
    """The sdist as fetch hands it over (the builder only reads ``path``)."""
    pin = Pin(
        name=canonicalize_name(name),
        version=version,
        url=sdist.as_uri(),
        filename=sdist.name,
        kind="sdist",
        sha256=_sha256(sdist),
        requires_python=None,
        requested=True,
    )
    return Fetched(pin, sdist, _sha256(sdist), sdist.stat().st_size)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


class Events:
    """Collects build_all's notifications (they come from worker threads)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, fetched: Fetched, status: str) -> None:
        with self._lock:
            self.seen.append((fetched.pin.filename, status))


def test_builds_a_wheel_from_the_sdist_into_the_cache(dists: DistFactory, cache: Cache) -> None:
    sdist = _fetched(dists.sdist("tiny", "1.0"), "tiny", "1.0")
    events = Events()

    (built,) = build_all([sdist], cache, HOST, jobs=1, notify=events)

    assert built.filename == "tiny-1.0-py3-none-any.whl"
    assert built.path.parent == cache.built_dir(sdist.sha256, HOST.key)
    assert built.sha256 == _sha256(built.path)
    assert built.size == built.path.stat().st_size
    assert (built.backend, built.cached, built.sdist) == ("tiny_backend", False, sdist)
    with zipfile.ZipFile(built.path) as wheel:
        assert wheel.read("tiny/__init__.py") == b'__version__ = "1.0"\n'
        assert b"Name: tiny" in wheel.read("tiny-1.0.dist-info/METADATA")
    assert events.seen == [(sdist.pin.filename, "building"), (sdist.pin.filename, "built")]
    assert list(cache.tmp.iterdir()) == []  # the work directory is gone


def test_second_build_is_a_cache_hit(
    dists: DistFactory, cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdist = _fetched(dists.sdist("tiny", "1.0"), "tiny", "1.0")
    (first,) = build_all([sdist], cache, HOST, jobs=1)

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached build ran a command")

    monkeypatch.setattr(builder_module, "run", no_build)
    events = Events()
    (again,) = build_all([sdist], cache, HOST, jobs=1, notify=events)

    assert again.cached is True
    assert (again.path, again.sha256, again.size, again.backend) == (
        first.path,
        first.sha256,
        first.size,
        first.backend,
    )
    assert events.seen == []


def test_builds_several_sdists_in_order(dists: DistFactory, cache: Cache) -> None:
    sdists = [
        _fetched(dists.sdist("one", "1.0"), "one", "1.0"),
        _fetched(dists.sdist("Two.Pkg", "2.0"), "two-pkg", "2.0"),
    ]

    built = build_all(sdists, cache, HOST, jobs=2)

    assert [b.filename for b in built] == [
        "one-1.0-py3-none-any.whl",
        "two_pkg-2.0-py3-none-any.whl",
    ]
    assert [b.sdist for b in built] == sdists


def test_no_sdists_is_nothing_to_do(cache: Cache) -> None:
    assert build_all([], cache, HOST, jobs=4) == []
    assert not cache.root.exists()


def test_failed_build_is_a_build_error_with_the_log_tail(dists: DistFactory, cache: Cache) -> None:
    sdist = _fetched(dists.sdist("broken", "1.0", fail=True), "broken", "1.0")

    with pytest.raises(BuildError) as info:
        build_all([sdist], cache, HOST, jobs=1)

    err = info.value
    assert err.exit_code == ExitCode.BUILD
    assert (err.name, err.version) == ("broken", "1.0")
    assert err.message == "building a wheel from broken-1.0.tar.gz (broken 1.0) failed"
    assert BUILD_FAILURE_LINE in err.log_tail.splitlines()
    assert "RuntimeError: tiny_backend: simulated build failure" in err.log_tail
    # The failure line mentions gcc, so the hint is about compilers and headers.
    assert err.hint is not None and err.hint.startswith("the build needs a C compiler")
    assert not cache.built_dir(sdist.sha256, HOST.key).exists()
    assert list(cache.tmp.iterdir()) == []


def test_failed_build_is_not_cached(dists: DistFactory, cache: Cache) -> None:
    sdist = _fetched(dists.sdist("broken", "1.0", fail=True), "broken", "1.0")
    for _ in range(2):
        with pytest.raises(BuildError):
            build_all([sdist], cache, HOST, jobs=1)


def test_damaged_sdist_is_a_build_error(tmp_path: Path, cache: Cache) -> None:
    bogus = tmp_path / "bogus-1.0.tar.gz"
    bogus.write_bytes(b"this is not a tarball")
    sdist = _fetched(bogus, "bogus", "1.0")

    with pytest.raises(BuildError) as info:
        build_all([sdist], cache, HOST, jobs=1)

    assert info.value.message.startswith("cannot unpack bogus-1.0.tar.gz: ")
    assert info.value.hint == "the sdist is damaged or not a standard sdist"


def test_wheel_of_another_project_is_refused(dists: DistFactory, cache: Cache) -> None:
    # An sdist whose metadata says "other" although the index listed it as "tiny".
    other = dists.sdist("other", "1.0")
    renamed = other.with_name("tiny-1.0.tar.gz")
    other.rename(renamed)
    sdist = _fetched(renamed, "tiny", "1.0")

    with pytest.raises(BuildError) as info:
        build_all([sdist], cache, HOST, jobs=1)

    assert info.value.message == (
        "building tiny-1.0.tar.gz produced other-1.0-py3-none-any.whl, which is not tiny 1.0"
    )
