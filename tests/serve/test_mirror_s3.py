"""`wheelhouse mirror -o s3://...`: a mirror kept in a real S3 store (SeaweedFS) on loopback."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import pytest

from tests.support.capabilities import find_uv
from tests.support.dists import DistFactory
from tests.support.fixtures import Cli, MakeVenv
from tests.support.nginx import Nginx, nginx_over_bucket
from tests.support.s3 import S3Server
from tests.support.server import IndexServer
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run
from wheelhouse._base.pip_settings import IndexOptions
from wheelhouse._base.storage import ObjectInfo, S3Store, Store
from wheelhouse.house.manifest import read_manifest
from wheelhouse.house.publish import content_type
from wheelhouse.mirror.run import MirrorSettings
from wheelhouse.mirror.store import mirror_to_store, working_tree

PREFIX = "mirror"


@pytest.fixture
def projects(dists: DistFactory) -> DistFactory:
    """alpha 1.0 (yanked) and 2.0 (needs beta, with an sdist), beta 1.0 (two platform
    wheels), gamma 1.0."""
    dists.wheel("alpha", "1.0")
    dists.wheel("alpha", "2.0", requires=["beta"])
    dists.sdist("alpha", "2.0", requires=["beta"])
    dists.wheel("beta", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    dists.wheel("beta", "1.0", tag="cp312-cp312-win_amd64")
    dists.wheel("gamma", "1.0")
    return dists


def _store(s3_server: S3Server, bucket: str) -> S3Store:
    return S3Store(bucket, PREFIX, endpoint_url=s3_server.endpoint)


def _mirror(cli: Cli, s3_server: S3Server, bucket: str, *args: object) -> dict[str, Any]:
    result = cli(
        "mirror", *args, "-o", f"s3://{bucket}/{PREFIX}", "--endpoint-url", s3_server.endpoint,
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _local_tree(work: Path) -> dict[str, bytes]:
    """What a static host must serve: the tree without the mirror's state and lock files."""
    return {
        p.relative_to(work).as_posix(): p.read_bytes()
        for p in sorted(work.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(work).parts)
    }


def _bucket_links(store: Store) -> dict[str, str]:
    """Every object the bucket's pages link, key -> promised sha256, read from the stored JSON
    and HTML pages without the code under test; fails when a link misses its object."""
    listing = store.list()
    linked: dict[str, str] = {}
    for key in sorted(k for k in listing if k.startswith("simple/") and k.endswith("/index.json")):
        if key == "simple/index.json":
            continue
        body = store.get(key)
        assert body is not None
        page = json.loads(body)
        html = (store.get(key.replace("index.json", "index.html")) or b"").decode()
        base = f"https://host/{key}"
        for item in page["files"]:
            target = unquote(urljoin(base, item["url"]).removeprefix("https://host/"))
            target = target.split("#", 1)[0]
            assert target in listing, f"{key} links {target}, which is not in the bucket"
            data = store.get(target)
            assert data is not None
            assert hashlib.sha256(data).hexdigest() == item["hashes"]["sha256"], target
            if target.endswith(".whl"):
                assert f"{target}.metadata" in listing, target
            assert item["filename"] in html, f"{key}'s HTML page lacks {item['filename']}"
            linked[target] = item["hashes"]["sha256"]
    root = json.loads(store.get("simple/index.json") or b"{}")
    for project in root["projects"]:
        assert f"simple/{project['name']}/index.json" in listing, project
    return linked


def test_mirror_into_a_bucket_serves_the_working_tree_byte_for_byte(
    cli: Cli, upstream: IndexServer, projects: DistFactory, s3_server: S3Server, bucket: str
) -> None:
    upstream.metadata_files = True
    upstream.yank("alpha-1.0-py3-none-any.whl", "broken import")
    data = _mirror(cli, s3_server, bucket, "alpha", "beta", "gamma", "-i", upstream.url)
    assert (data["output"], data["failed"], data["fetched"]) == (f"s3://{bucket}/{PREFIX}", 0, 6)
    work = Path(data["work-dir"])
    manifest = read_manifest(work)
    assert manifest is not None and manifest.kind == "mirror"
    local = _local_tree(work)
    store = _store(s3_server, bucket)
    listing = store.list()
    # Everything the tree serves is in the bucket, and nothing else (no .mirror/ state).
    assert sorted(listing) == sorted(local) == sorted(data["published"]["uploaded"])
    assert (data["published"]["deleted"], data["published"]["unchanged"]) == ([], 0)
    for key, body in local.items():
        status, headers, served = s3_server.get(f"{bucket}/{PREFIX}/{key}")
        assert (status, served) == (200, body), key
        assert headers["Content-Type"] == content_type(key), key
    assert set(_bucket_links(store)) == {p.name for p in projects.root.iterdir()}
    page = json.loads(store.get("simple/alpha/index.json") or b"")
    yanked = {f["filename"]: f.get("yanked") for f in page["files"]}
    assert yanked["alpha-1.0-py3-none-any.whl"] == "broken import"
    # A rerun with no change fetches nothing and uploads nothing.
    again = _mirror(cli, s3_server, bucket, "alpha", "beta", "gamma", "-i", upstream.url)
    assert (again["fetched"], again["removed"]) == (0, 0)
    assert again["published"] == {
        "url": f"s3://{bucket}/{PREFIX}",
        "uploaded": [],
        "uploaded-bytes": 0,
        "unchanged": len(local),
        "deleted": [],
    }


def test_a_project_removed_upstream_leaves_the_bucket(
    cli: Cli, upstream: IndexServer, projects: DistFactory, s3_server: S3Server, bucket: str
) -> None:
    args = ("alpha", "beta", "gamma", "-i", upstream.url)
    _mirror(cli, s3_server, bucket, *args)
    for path in projects.root.glob("gamma-*"):
        path.unlink()
    data = _mirror(cli, s3_server, bucket, *args)
    assert {p["name"]: p["status"] for p in data["project-results"]}["gamma"] == "removed"
    assert sorted(data["published"]["deleted"]) == [
        "gamma-1.0-py3-none-any.whl",
        "gamma-1.0-py3-none-any.whl.metadata",
        "simple/gamma/index.html",
        "simple/gamma/index.json",
    ]
    store = _store(s3_server, bucket)
    assert not any("gamma" in key for key in store.list())
    root = json.loads(store.get("simple/index.json") or b"")
    assert [p["name"] for p in root["projects"]] == ["alpha", "beta"]
    assert "gamma" not in (store.get("simple/index.html") or b"").decode()
    _bucket_links(store)
    # A filter replaced later converges too: the win_amd64 wheel goes, its page first.
    narrowed = _mirror(
        cli, s3_server, bucket, "alpha", "beta", "-i", upstream.url,
        "--target", "cp311-manylinux_2_17_x86_64", "--replace-filters",
    )  # fmt: skip
    assert "beta-1.0-cp312-cp312-win_amd64.whl" in narrowed["published"]["deleted"]
    assert set(_bucket_links(store)) == {
        "alpha-1.0-py3-none-any.whl",
        "alpha-2.0-py3-none-any.whl",
        "alpha-2.0.tar.gz",
        "beta-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    }


class _DiesAfter:
    """A store whose process dies (KeyboardInterrupt) after ``puts`` uploads."""

    def __init__(self, inner: Store, puts: int) -> None:
        self.inner, self.url, self.left, self.puts = inner, inner.url, puts, 0

    def list(self) -> dict[str, ObjectInfo]:
        return self.inner.list()

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def put_file(self, key: str, path: Path, content_type: str) -> str | None:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        self.puts += 1
        return self.inner.put_file(key, path, content_type)

    def put_bytes(
        self, key: str, data: bytes, content_type: str, *, if_absent: bool = False
    ) -> bool:
        raise AssertionError("publish uploads files")

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def test_a_run_killed_mid_publish_is_completed_by_the_rerun(
    cli: Cli,
    upstream: IndexServer,
    projects: DistFactory,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    args = ("alpha", "beta", "gamma", "-i", upstream.url)
    _mirror(cli, s3_server, bucket, *args)
    projects.wheel("gamma", "2.0")
    projects.wheel("delta", "1.0")
    store = _store(s3_server, bucket)
    before = store.list()
    linked_before = _bucket_links(store)
    settings = MirrorSettings(
        output=tmp_path / "ignored",
        projects=("alpha", "beta", "gamma", "delta"),
        index=IndexOptions(index_url=upstream.url),
        jobs=1,
    )
    dying = _DiesAfter(store, puts=3)
    with pytest.raises(KeyboardInterrupt):
        mirror_to_store(settings, dying, endpoint_url=s3_server.endpoint)
    assert dying.puts == 3
    # Two new wheels and a .metadata went up, no page: every page still links only objects
    # that exist, and the same ones as before.
    assert set(before) < set(store.list())
    assert _bucket_links(store) == linked_before
    assert not (tmp_path / "ignored").exists()
    data = _mirror(cli, s3_server, bucket, *args, "delta")
    assert data["fetched"] == 0  # the working tree kept what the killed run verified
    assert len(data["published"]["uploaded"]) > 0
    assert "gamma-2.0-py3-none-any.whl" not in data["published"]["uploaded"]
    work = Path(data["work-dir"])
    assert work == working_tree(store, endpoint_url=s3_server.endpoint)
    assert sorted(store.list()) == sorted(_local_tree(work))
    assert {"gamma-2.0-py3-none-any.whl", "delta-1.0-py3-none-any.whl"} <= set(_bucket_links(store))


def test_dry_run_into_a_bucket_touches_nothing(
    cli: Cli, upstream: IndexServer, projects: DistFactory, s3_server: S3Server, bucket: str
) -> None:
    data = _mirror(cli, s3_server, bucket, "alpha", "-i", upstream.url, "--dry-run")
    assert (data["dry-run"], data["published"], data["fetched"]) == (True, None, 3)
    assert data["output"] == f"s3://{bucket}/{PREFIX}"
    assert _store(s3_server, bucket).list() == {}


def test_endpoint_url_without_a_bucket_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("mirror", "alpha", "-o", tmp_path / "m", "--endpoint-url", "http://127.0.0.1:1")
    assert result.exit_code == 2
    assert "error: --endpoint-url is for a mirror in object storage" in result.stderr
    result = cli("mirror", "alpha", "-o", "ftp://host/x")
    assert result.exit_code == 2
    assert "must start with s3:// or file://" in result.stderr


@pytest.fixture
def nginx_over_s3(tmp_path: Path, s3_server: S3Server, bucket: str) -> Iterator[Nginx]:
    """docs/scale.md's nginx configuration in front of the bucket's mirror prefix."""
    server = nginx_over_bucket(tmp_path / "nginx", s3_server.port, f"{bucket}/{PREFIX}")
    yield server
    server.stop()


@pytest.mark.slow
def test_pip_and_uv_install_from_the_mirror_through_nginx_over_the_bucket(
    cli: Cli,
    upstream: IndexServer,
    projects: DistFactory,
    s3_server: S3Server,
    bucket: str,
    nginx_over_s3: Nginx,
    make_venv: MakeVenv,
    tmp_path: Path,
) -> None:
    upstream.yank("alpha-1.0-py3-none-any.whl", "broken import")
    _mirror(cli, s3_server, bucket, "alpha", "gamma", "-i", upstream.url)
    index = f"{nginx_over_s3.url}/simple/"
    python = make_venv("pip", with_pip=False)
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result = run([*pip, "--no-deps", "--index-url", index, "alpha", "gamma"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    assert "Successfully installed alpha-2.0 gamma-1.0" in result.stdout
    uv = find_uv()
    python = make_venv("uv", with_pip=False)
    uv_argv = [*uv, "pip", "install", "--no-config", "--no-deps", "--cache-dir", tmp_path / "uvc"]
    # The yanked release is still installable when pinned, as on PyPI.
    result = run(
        [*uv_argv, "--python", python, "--index-url", index, "alpha==1.0"], env=offline_env()
    )
    assert result.ok, result.stdout + result.stderr
    assert "+ alpha==1.0" in result.stderr


def test_a_lost_working_tree_deletes_nothing_from_the_bucket(
    cli: Cli, upstream: IndexServer, projects: DistFactory, s3_server: S3Server, bucket: str
) -> None:
    import shutil

    first = _mirror(cli, s3_server, bucket, "alpha", "beta", "-i", upstream.url, "--no-sdists")
    store = _store(s3_server, bucket)
    before = _bucket_links(store)
    # A new machine, a cleared cache: the working tree and its memory are gone.
    shutil.rmtree(first["work-dir"])
    data = _mirror(cli, s3_server, bucket, "gamma", "-i", upstream.url)
    # Before, the publish deleted every object of alpha and beta (not named in this run).
    assert data["published"]["deleted"] == []
    assert data["adopted"] == ["alpha", "beta"]
    links = _bucket_links(store)
    assert before.items() <= links.items()
    assert set(links) - set(before) == {"gamma-1.0-py3-none-any.whl"}
    # The filters came from the bucket's manifest too: no sdist went up.
    assert "alpha-2.0.tar.gz" not in store.list()
