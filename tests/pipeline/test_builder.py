"""builder.build_all: sdist -> wheel with PEP 517 (`build`), cached by sdist hash and target."""

from __future__ import annotations

import os
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

import wheelhouse.builder._pep517_build as _pep517_build
import wheelhouse.builder.from_sdist as builder_module
from tests.support.dists import BUILD_FAILURE_LINE, DistFactory
from tests.support.files import sha256_of as _sha256
from wheelhouse._base.targets import HOST
from wheelhouse.builder.from_sdist import build_all, sdist_build_hint
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched
from wheelhouse.download.pins import Pin
from wheelhouse.errors import BuildError, ExitCode


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


def _recording_run(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    envs: list[dict[str, str]] = []
    real_run = builder_module.run

    def recording(argv: Any, *, env: dict[str, str], **kwargs: Any) -> Any:
        envs.append(dict(env))
        return real_run(argv, env=env, **kwargs)

    monkeypatch.setattr(builder_module, "run", recording)
    return envs


def test_builds_get_the_sdists_own_date_for_reproducible_wheels(
    dists: DistFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same sdist built on two machines must give the same bytes, or 'wheelhouse merge'
    # of a CI matrix sees two different wheels of one filename.
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    envs = _recording_run(monkeypatch)
    sdist = _fetched(dists.sdist("tiny", "1.0"), "tiny", "1.0")

    build_all([sdist], Cache(tmp_path / "one"), HOST, jobs=1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build_all([sdist], Cache(tmp_path / "two"), HOST, jobs=1)

    with tarfile.open(sdist.path) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/PKG-INFO"))
    assert [env["SOURCE_DATE_EPOCH"] for env in envs] == [
        str(max(315532800, int(member.mtime))),
        "1700000000",  # the user's own choice is kept
    ]


def test_source_epoch_is_pkg_info_mtime_and_never_before_1980(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_text("Name: x\n", encoding="utf-8")
    os.utime(tmp_path / "PKG-INFO", (1_750_000_000, 1_750_000_000))
    assert builder_module._source_epoch(tmp_path) == 1_750_000_000
    os.utime(tmp_path / "PKG-INFO", (0, 0))
    assert builder_module._source_epoch(tmp_path) == 315532800  # zip cannot store earlier
    assert builder_module._source_epoch(tmp_path / "missing") == 315532800


@pytest.mark.parametrize(
    ("pyproject", "declared"),
    [
        (None, False),
        ('[project]\nname = "x"\n', False),
        ('[build-system]\nbuild-backend = "setuptools.build_meta"\n', False),
        ('[build-system]\nrequires = ["setuptools"]\n', True),
        ("not toml [", False),
    ],
)
def test_legacy_sdists_are_told_apart(
    tmp_path: Path, pyproject: str | None, declared: bool
) -> None:
    # Without build-system.requires, pip < 24.1 also needs 'wheel' to build the sdist:
    # --keep-sdists ships it for them.
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    assert _pep517_build._declares_build_system(tmp_path) is declared


def test_build_environments_come_from_uv_with_pips_index_and_its_cache_under_ours(
    dists: DistFactory, cache: Cache, tmp_path: Path
) -> None:
    """Each sdist needs buildhelper: uv installs it from pip's index (the loopback one, given as
    pip's own index_url: there is no other), and keeps its wheel in a cache under ours."""
    from tests.support.server import IndexServer
    from wheelhouse._base.pip_settings import IndexOptions, PipSettings

    helper_dir = tmp_path / "helpers"
    helpers = DistFactory(helper_dir)
    helpers.wheel("buildhelper", "2.1")
    sdists = [
        _fetched(dists.sdist(name, "1.0", build_requires=["buildhelper>=2"]), name, "1.0")
        for name in ("alpha", "beta")
    ]
    later = _fetched(dists.sdist("gamma", "1.0", build_requires=["buildhelper>=2"]), "gamma", "1.0")
    with IndexServer(helper_dir) as index:
        config = {"index-url": index.url}
        built = build_all(sdists, cache, HOST, jobs=2, pip=PipSettings.parse(config))
        build_all(
            [later], cache, HOST, jobs=1, pip=PipSettings.read(IndexOptions(index_url=index.url))
        )
        asked = set(index.requests)
    assert [b.filename for b in built] == [
        "alpha-1.0-py3-none-any.whl",
        "beta-1.0-py3-none-any.whl",
    ]
    assert [b.requires for b in built] == [("buildhelper>=2",), ("buildhelper>=2",)]
    assert asked == {"/simple/buildhelper/", "/files/buildhelper-2.1-py3-none-any.whl"}
    # (This server sends no Cache-Control, so uv asks again; a real index's files it reuses.)
    assert [p.name for p in cache.uv_dir.rglob("buildhelper-2.1*.dist-info")]
    # Nothing of uv's configuration is left in the cache's temporary directory.
    assert list(cache.tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("log", "compiler"),
    [
        ("x86_64-linux-gnu-gcc: error: unrecognized option", True),
        ("error: command 'gcc' failed with exit code 1", True),
        ("cc1: fatal error: Python.h: No such file or directory", True),
        ("error: Microsoft C compiler not found", True),
        # pip's temporary folders end in random letters: "gcc" or "cc1" among them is no
        # compiler (a build that compiled nothing once got the compiler hint this way).
        ("Preparing metadata in /tmp/pip-modern-metadata-k9gcc1_x failed", False),
        ("ModuleNotFoundError: No module named 'nometa_backend'", False),
    ],
)
def test_the_compiler_hint_is_given_for_compiler_words_only(log: str, compiler: bool) -> None:
    hint = sdist_build_hint(log)
    assert hint.startswith("the build needs a C compiler") is compiler, hint
