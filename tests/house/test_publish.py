"""`wheelhouse publish`: a wheelhouse into a real S3 store (SeaweedFS) or a directory, in order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from tests.support.capabilities import find_uv
from tests.support.dists import DistFactory
from tests.support.fixtures import Cli, MakeVenv, Offline
from tests.support.nginx import Nginx, nginx_over_bucket
from tests.support.s3 import S3Server
from tests.support.server import IndexServer
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run
from wheelhouse._base.storage import LocalStore, ObjectInfo, S3Store, Store
from wheelhouse.errors import ExitCode, NetworkError
from wheelhouse.house.publish import content_type, publish

JSON = "application/vnd.pypi.simple.v1+json"
PREFIX = "team"


@pytest.fixture
def house(tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli) -> Path:
    """A real wheelhouse: alpha 1.0 (needs beta), beta 1.0."""
    dists.wheel("alpha", "1.0", requires=["beta>=1"])
    dists.wheel("beta", "1.0")
    return _build(tmp_path, index_server, cli, "alpha==1.0\nbeta==1.0\n")


def _build(tmp_path: Path, index_server: IndexServer, cli: Cli, pins: str) -> Path:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(pins)
    out = tmp_path / "house"
    result = cli("build", "-q", "-r", requirements, "-o", out, "--index-url", index_server.url)
    assert result.exit_code == 0, result.stderr
    return out


def _tree(house: Path) -> dict[str, bytes]:
    return {
        p.relative_to(house).as_posix(): p.read_bytes()
        for p in sorted(house.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _publish(cli: Cli, house: Path, url: str, *extra: str) -> dict[str, Any]:
    result = cli("publish", house, url, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


class Counting:
    """A store that records every call made to the real one under it."""

    def __init__(self, inner: Store, fail_after_puts: int | None = None) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: list[str] = []
        self.fail_after_puts = fail_after_puts

    def list(self) -> dict[str, ObjectInfo]:
        self.calls.append("list")
        return self.inner.list()

    def get(self, key: str) -> bytes | None:
        self.calls.append(f"get {key}")
        return self.inner.get(key)

    def put_file(self, key: str, path: Path, content_type: str) -> str | None:
        puts = sum(c.startswith("put ") for c in self.calls)
        if self.fail_after_puts is not None and puts >= self.fail_after_puts:
            raise KeyboardInterrupt  # the process dies here: nothing after it runs
        self.calls.append(f"put {key}")
        return self.inner.put_file(key, path, content_type)

    def put_bytes(
        self, key: str, data: bytes, content_type: str, *, if_absent: bool = False
    ) -> bool:
        self.calls.append(f"put {key}")
        return self.inner.put_bytes(key, data, content_type, if_absent=if_absent)

    def delete(self, key: str) -> None:
        self.calls.append(f"delete {key}")
        self.inner.delete(key)


def _s3(s3_server: S3Server, bucket: str) -> S3Store:
    return S3Store(bucket, PREFIX, endpoint_url=s3_server.endpoint)


def test_publish_to_s3_uploads_the_tree_with_its_content_types(
    cli: Cli, house: Path, s3_server: S3Server, bucket: str
) -> None:
    data = _publish(cli, house, f"s3://{bucket}/{PREFIX}", "--endpoint-url", s3_server.endpoint)
    local = _tree(house)
    assert sorted(data["uploaded"]) == sorted(local)
    assert (data["unchanged"], data["deleted"], data["dry-run"]) == (0, [], False)
    assert data["uploaded-bytes"] == sum(len(b) for b in local.values())
    for key, body in local.items():
        status, headers, served = s3_server.get(f"{bucket}/{PREFIX}/{key}")
        assert (status, served) == (200, body), key
        assert headers["Content-Type"] == content_type(key), key
    assert content_type("simple/alpha/index.json") == JSON
    assert content_type("beta-1.0.tar.gz") == "application/gzip"


def test_republish_without_change_only_lists(
    cli: Cli, house: Path, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    _publish(cli, house, f"s3://{bucket}/{PREFIX}", "--endpoint-url", s3_server.endpoint)
    store = Counting(_s3(s3_server, bucket))
    result = publish(house, store, state_dir=tmp_path / "state")
    assert store.calls == ["list"]
    assert (result.uploaded, result.deleted, result.plan.unchanged) == ([], [], len(_tree(house)))
    again = _publish(cli, house, f"s3://{bucket}/{PREFIX}", "--endpoint-url", s3_server.endpoint)
    assert (again["uploaded"], again["uploaded-bytes"]) == ([], 0)


def test_objects_go_up_in_ranks_and_old_files_go_last(
    cli: Cli,
    house: Path,
    dists: DistFactory,
    index_server: IndexServer,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
) -> None:
    store = Counting(_s3(s3_server, bucket))
    publish(house, store)
    store.inner.put_bytes("NOTES.txt", b"ours, not wheelhouse's\n", "text/plain")
    dists.wheel("beta", "2.0")
    dists.wheel("gamma", "1.0")
    _build(tmp_path, index_server, cli, "alpha==1.0\nbeta==2.0\ngamma==1.0\n")
    store.calls.clear()
    result = publish(house, store, jobs=1)
    puts = [c.removeprefix("put ") for c in store.calls if c.startswith("put ")]
    assert puts == [
        "beta-2.0-py3-none-any.whl",
        "gamma-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl.metadata",
        "gamma-1.0-py3-none-any.whl.metadata",
        "pylock.toml",
        "requirements.txt",
        "simple/beta/index.html",
        "simple/beta/index.json",
        "simple/gamma/index.html",
        "simple/gamma/index.json",
        "simple/index.html",
        "simple/index.json",
        "wheelhouse.json",
    ]
    # Deletions come after every upload, and only of what the old manifest recorded.
    assert store.calls[-2:] == [
        "delete beta-1.0-py3-none-any.whl",
        "delete beta-1.0-py3-none-any.whl.metadata",
    ]
    assert result.deleted == ["beta-1.0-py3-none-any.whl", "beta-1.0-py3-none-any.whl.metadata"]
    remote = store.inner.list()
    assert "NOTES.txt" in remote
    assert set(remote) == set(_tree(house)) | {"NOTES.txt"}


def _pages_resolve(store: Store) -> None:
    """Every file a JSON page in the store links is an object in the store."""
    remote = store.list()
    for key in remote:
        if not key.endswith("index.json") or key == "simple/index.json":
            continue
        page = json.loads(store.get(key) or b"{}")
        for file in page["files"]:
            target = urljoin(f"http://store/{key}", file["url"])
            linked = unquote(urlsplit(target).path).lstrip("/")
            assert linked in remote, f"{key} links {linked}, which is not in the store"
            if file.get("core-metadata"):
                assert f"{linked}.metadata" in remote


@pytest.mark.parametrize("crash_after", [0, 1, 2, 3, 5, 8, 11])
def test_a_publish_killed_anywhere_leaves_pages_that_resolve(
    cli: Cli,
    house: Path,
    dists: DistFactory,
    index_server: IndexServer,
    tmp_path: Path,
    crash_after: int,
) -> None:
    target = LocalStore(tmp_path / "published")
    publish(house, target)
    dists.wheel("beta", "2.0")
    dists.wheel("gamma", "1.0")
    _build(tmp_path, index_server, cli, "alpha==1.0\nbeta==2.0\ngamma==1.0\n")
    with pytest.raises(KeyboardInterrupt):
        publish(house, Counting(target, fail_after_puts=crash_after), jobs=1)
    _pages_resolve(target)
    publish(house, target)
    _pages_resolve(target)
    assert {k: (tmp_path / "published" / k).read_bytes() for k in target.list()} == _tree(house)


def test_dry_run_changes_nothing(cli: Cli, house: Path, tmp_path: Path) -> None:
    url = (tmp_path / "published").as_uri()
    data = _publish(cli, house, url, "--dry-run")
    assert data["dry-run"] is True
    assert sorted(data["uploaded"]) == sorted(_tree(house))
    assert not (tmp_path / "published").exists()


STRAYS = ("requirements.dev.txt", "pylock.old.toml")


def test_a_stray_requirements_file_is_not_published_as_a_lock(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    # Old code took any requirements.*.txt (and pylock.*.toml) beside the wheelhouse for one
    # of its locks, and uploaded a user's note with them.
    (house / "requirements.dev.txt").write_text("pytest\n")
    (house / "pylock.old.toml").write_text("lock-version = '1.0'\n")
    store = tmp_path / "store"
    data = _publish(cli, house, store.as_uri())
    published = {k: v for k, v in _tree(house).items() if k not in STRAYS}
    assert sorted(data["uploaded"]) == sorted(published)
    assert {"requirements.txt", "pylock.toml"} <= set(data["uploaded"])
    assert _tree(store) == published


def test_tampered_wheelhouse_is_not_published(cli: Cli, house: Path, tmp_path: Path) -> None:
    wheel = house / "beta-1.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    result = cli("publish", house, (tmp_path / "published").as_uri())
    assert result.exit_code == ExitCode.INTEGRITY
    assert result.stderr.splitlines()[0].startswith(
        f"error: {str(house)!r} does not verify, so it is not published: "
        "'beta-1.0-py3-none-any.whl'"
    )
    assert not (tmp_path / "published").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.invalid/x", "error: cannot publish to 'https://example.invalid/x': "),
        ("s3:///prefix", "error: 's3:///prefix' names no bucket"),
    ],
)
def test_bad_urls_are_usage_errors(cli: Cli, house: Path, url: str, message: str) -> None:
    result = cli("publish", house, url)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(message)


def test_not_a_wheelhouse(cli: Cli, tmp_path: Path) -> None:
    result = cli("publish", tmp_path, (tmp_path / "out").as_uri())
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.startswith(f"error: {str(tmp_path)!r} is not a wheelhouse")


def test_unreachable_store_is_a_network_error_without_secrets(
    cli: Cli, house: Path, monkeypatch: pytest.MonkeyPatch, bucket: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret-value")
    result = cli("publish", house, "s3://nowhere/x", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == ExitCode.NETWORK
    assert result.stderr.startswith("error: cannot list s3://nowhere/x: ")
    assert "secret-value" not in result.stderr
    assert "AKIDEXAMPLEKEY" not in result.stderr


def test_credentials_from_the_shared_files(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wheelhouse._base.storage import _aws_settings

    (tmp_path / "credentials").write_text(
        "[ci]\naws_access_key_id = AKIDFILE\naws_secret_access_key = from-file\n"
    )
    (tmp_path / "config").write_text(
        f"[profile ci]\nregion = eu-west-3\nendpoint_url = {s3_server.endpoint}\n"
    )
    env = {
        "AWS_PROFILE": "ci",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }
    settings = _aws_settings(env, None)
    assert settings == {
        "access_key_id": "AKIDFILE",
        "secret_access_key": "from-file",
        "region": "eu-west-3",
        "endpoint": s3_server.endpoint,
        "virtual_hosted_style_request": "false",
    }
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "AKIDENV", "from-env"
    assert _aws_settings(env, None)["access_key_id"] == "AKIDENV"


@pytest.mark.slow
def test_pip_installs_offline_from_a_file_publish(
    cli: Cli, house: Path, tmp_path: Path, offline: Offline, make_venv: MakeVenv
) -> None:
    published = tmp_path / "published"
    _publish(cli, house, published.as_uri())
    python = make_venv("old-pip")
    argv = [python, "-m", "pip", "install", "--no-cache-dir", "--index-url"]
    result = run(
        offline([*argv, (published / "simple").as_uri() + "/", "alpha"]), env=offline_env()
    )
    assert result.ok, result.stdout + result.stderr
    assert "Successfully installed alpha-1.0 beta-1.0" in result.stdout


@pytest.fixture
def nginx_over_s3(tmp_path: Path, s3_server: S3Server, bucket: str) -> Iterator[Nginx]:
    server = nginx_over_bucket(tmp_path / "nginx", s3_server.port, f"{bucket}/{PREFIX}")
    yield server
    server.stop()


def test_nginx_in_front_of_the_bucket_negotiates(
    cli: Cli, house: Path, s3_server: S3Server, bucket: str, nginx_over_s3: Nginx
) -> None:
    _publish(cli, house, f"s3://{bucket}/{PREFIX}", "--endpoint-url", s3_server.endpoint)
    status, headers, body = nginx_over_s3.get("/simple/alpha/", f"{JSON}, text/html;q=0.1")
    assert (status, headers["Content-Type"], headers["Vary"]) == (200, JSON, "Accept")
    assert body == (house / "simple" / "alpha" / "index.json").read_bytes()
    status, headers, body = nginx_over_s3.get("/simple/alpha/", "text/html")
    assert (status, body) == (200, (house / "simple" / "alpha" / "index.html").read_bytes())
    assert nginx_over_s3.get("/simple/alpha", JSON)[0] == 301
    assert nginx_over_s3.get("/simple/nope/", JSON)[0] == 404
    assert nginx_over_s3.get("/simple/alpha/", "application/xml")[0] == 406
    wheel = "beta-1.0-py3-none-any.whl"
    status, headers, body = nginx_over_s3.get(f"/{wheel}.metadata")
    assert (status, body) == (200, (house / f"{wheel}.metadata").read_bytes())


@pytest.mark.slow
def test_pip_and_uv_install_through_nginx_over_the_bucket(
    cli: Cli,
    house: Path,
    s3_server: S3Server,
    bucket: str,
    nginx_over_s3: Nginx,
    make_venv: MakeVenv,
    tmp_path: Path,
) -> None:
    _publish(cli, house, f"s3://{bucket}/{PREFIX}", "--endpoint-url", s3_server.endpoint)
    index = f"{nginx_over_s3.url}/simple/"
    python = make_venv("pip", with_pip=False)
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result = run([*pip, "--index-url", index, "alpha"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    assert "Successfully installed alpha-1.0 beta-1.0" in result.stdout
    uv = find_uv()
    python = make_venv("uv", with_pip=False)
    uv_argv = [*uv, "pip", "install", "--no-config", "--cache-dir", tmp_path / "uvc"]
    result = run([*uv_argv, "--python", python, "--index-url", index, "alpha"], env=offline_env())
    assert result.ok, result.stdout + result.stderr
    assert "+ alpha==1.0" in result.stderr


def test_quick_check_hashes_only_files_that_changed(
    cli: Cli, house: Path, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    target = LocalStore(tmp_path / "published")
    state = tmp_path / "state"
    publish(house, target, state_dir=state, quick_check=True)
    (memory,) = state.glob("hashes-*.json")
    wheel = house / "beta-1.0-py3-none-any.whl"
    assert json.loads(memory.read_text())[wheel.name]["sha256"]
    # Other bytes of the same size, the mtime put back, the same inode: the quick check
    # cannot see it (only a tree that nothing but wheelhouse writes may use it)...
    info = wheel.stat()
    data = wheel.read_bytes()
    with wheel.open("r+b") as handle:
        handle.write(bytes([data[0] ^ 1]))
    os.utime(wheel, ns=(info.st_atime_ns, info.st_mtime_ns))
    result = publish(house, target, state_dir=state, quick_check=True)
    assert result.uploaded == []  # nothing read again, nothing uploaded
    # ...while a full publish reads it, and refuses to publish it.
    assert cli("publish", house, target.url).exit_code == ExitCode.INTEGRITY
    wheel.write_bytes(data)  # restored
    # A file replaced by a new build (a new inode) is hashed again and published.
    dists.wheel("beta", "2.0")
    _build(tmp_path, index_server, cli, "alpha==1.0\nbeta==2.0\n")
    result = publish(house, target, state_dir=state, quick_check=True)
    assert "beta-2.0-py3-none-any.whl" in result.uploaded
    _pages_resolve(target)
    assert {k: (tmp_path / "published" / k).read_bytes() for k in target.list()} == _tree(house)


def _big_house(tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli) -> Path:
    """A wheelhouse of a few wheels of 8 MiB of incompressible bytes each: copying one into a
    file:// store takes long enough for two publishes to meet on it."""
    pins = []
    for number in range(6):
        name = f"heavy{number}"
        wheel = dists.wheel(name, "1.0")
        with zipfile.ZipFile(wheel, "a", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(f"{name}/blob.bin", os.urandom(8 << 20))
        pins.append(f"{name}==1.0")
    return _build(tmp_path, index_server, cli, "\n".join(pins) + "\n")


def test_two_publishes_to_one_directory_take_turns(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    """Issue 22 row 13: two runs shared one temp name per object, and one crashed with a
    traceback when the other renamed it away first."""
    house = _big_house(tmp_path, dists, index_server, cli)
    target = tmp_path / "published"
    argv = [sys.executable, "-m", "wheelhouse", "publish", str(house), target.as_uri()]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    # One went first; the other waited for it (saying so), then found everything in place.
    first, second = sorted((stderr for _, stderr in outputs), key=lambda e: "uploaded 0 " in e)
    done = re.fullmatch(
        rf"{re.escape(target.as_uri())}: uploaded (\d+) objects \([\d.]+ MB\), "
        "0 unchanged, 0 deleted",
        first.splitlines()[-1],
    )
    assert done is not None, outputs
    total = int(done[1])
    assert second.splitlines()[-1] == (
        f"{target.as_uri()}: uploaded 0 objects (0.0 MB), {total} unchanged, 0 deleted"
    ), outputs
    # Told once while it waited (unless the first was done before the second looked).
    waiting = f"wheelhouse: waiting for another publish to {str(target)!r} to finish"
    assert second.splitlines()[:-1] in ([], [waiting]), second
    assert first.splitlines()[:-1] == [], first
    assert _tree(target) == _tree(house)
    assert not [p for p in target.rglob("*") if p.name.endswith(".tmp")]


def test_a_killed_publishs_temp_files_are_removed_by_the_next_and_no_other(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    house = _big_house(tmp_path, dists, index_server, cli)
    target = tmp_path / "published"
    argv = [sys.executable, "-m", "wheelhouse", "publish", str(house), target.as_uri()]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(target.rglob(".*.publish.tmp")) and time.monotonic() < deadline:
            time.sleep(0.005)  # until it is copying a wheel into the store
    finally:
        proc.kill()
        proc.wait()
    left = list(target.rglob(".*.publish.tmp"))
    assert left, "the publish was not caught while it copied"
    foreign = target / ".notes.tmp"
    foreign.write_bytes(b"not wheelhouse's")

    _publish(cli, house, target.as_uri())

    assert not list(target.rglob(".*.publish.tmp"))
    assert foreign.read_bytes() == b"not wheelhouse's"
    assert {k: v for k, v in _tree(target).items() if k in _tree(house)} == _tree(house)


def test_a_directory_of_someone_elses_files_is_refused_as_build_refuses_it(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    """Issue 24 item 3: publish replaced TARGET/requirements.txt and exited 0."""
    target = tmp_path / "project"
    target.mkdir()
    (target / "requirements.txt").write_text("django>=5\n")
    (target / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    before = _tree(target)
    for extra in ([], ["--dry-run"]):
        result = cli("publish", house, target.as_uri(), *extra)
        assert result.exit_code == ExitCode.OUTPUT, result.stderr
        assert result.stderr.splitlines() == [
            f"error: {str(target)!r} is not empty and is not a published wheelhouse "
            "(it has no wheelhouse.json); refusing to write into it",
            "hint: publish to an empty or new directory, or to the one an earlier publish wrote",
        ]
        assert _tree(target) == before


def test_a_file_no_earlier_publish_wrote_is_never_replaced(
    cli: Cli, house: Path, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    target = tmp_path / "published"
    _publish(cli, house, target.as_uri())
    # Someone copies a wheel of their own into the published tree; the next wheelhouse has a
    # file of that very name.
    gamma = "gamma-1.0-py3-none-any.whl"
    (target / gamma).write_bytes(b"a hand-copied wheel")
    dists.wheel("gamma", "1.0")
    _build(tmp_path, index_server, cli, "alpha==1.0\nbeta==1.0\ngamma==1.0\n")
    before = _tree(target)
    result = cli("publish", house, target.as_uri())
    assert result.exit_code == ExitCode.OUTPUT, result.stderr
    assert result.stderr.splitlines() == [
        f"error: publishing to {target.as_uri()} would replace {gamma!r}, which no earlier "
        "publish wrote; refusing to write into it",
        "hint: move that file away, or publish to another place",
    ]
    assert _tree(target) == before
    # What an earlier publish wrote is replaced as before; the user's other files stay.
    (target / gamma).unlink()
    (target / "NOTES.txt").write_text("ours\n")
    data = _publish(cli, house, target.as_uri())
    assert gamma in data["uploaded"] and "requirements.txt" in data["uploaded"]
    assert _tree(target) == {**_tree(house), "NOTES.txt": b"ours\n"}


def test_a_killed_first_publish_is_finished_by_the_next(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    # No wheelhouse.json yet, but everything there is what this publish writes: ours.
    target = LocalStore(tmp_path / "published")
    with pytest.raises(KeyboardInterrupt):
        publish(house, Counting(target, fail_after_puts=4), jobs=1)
    assert target.list() and "wheelhouse.json" not in target.list()
    _publish(cli, house, target.root.as_uri())
    assert _tree(target.root) == _tree(house)


def test_a_missing_bucket_is_one_line_with_a_hint(
    cli: Cli, house: Path, s3_server: S3Server, bucket: str
) -> None:
    """Issue 24 item 14: the raw obstore error, a cut-off '<?xml ...?>', reached the user."""
    missing = f"{bucket}-nope"
    result = cli("publish", house, f"s3://{missing}/x", "--endpoint-url", s3_server.endpoint)
    assert result.exit_code == ExitCode.NETWORK
    assert result.stderr.splitlines() == [
        f"error: cannot list s3://{missing}/x: the bucket {missing!r} does not exist at "
        f"{s3_server.endpoint}",
        "hint: create it first, or check the bucket name and --endpoint-url (or AWS_ENDPOINT_URL)",
    ]


def test_an_endpoint_nobody_answers_is_one_line_with_a_hint(
    cli: Cli, house: Path, bucket: str
) -> None:
    result = cli("publish", house, "s3://nowhere/x", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == ExitCode.NETWORK
    assert result.stderr.splitlines() == [
        "error: cannot list s3://nowhere/x: cannot reach the endpoint http://127.0.0.1:9 "
        "(connection refused)",
        "hint: check --endpoint-url (or AWS_ENDPOINT_URL) and that the store is up and "
        "reachable from here",
    ]


def test_access_denied_is_one_line_with_a_hint(
    house: Path, s3_server: S3Server, bucket: str
) -> None:
    # SeaweedFS (anonymous here) answers an upload into a bucket that is not there with 403
    # AccessDenied and its XML document: what a store answers a key that may not write.
    store = S3Store(f"{bucket}-nope", PREFIX, endpoint_url=s3_server.endpoint)
    with pytest.raises(NetworkError) as caught:
        store.put_file("requirements.txt", house / "requirements.txt", "text/plain")
    assert caught.value.message == (
        f"cannot upload 'requirements.txt' to s3://{bucket}-nope/{PREFIX}: access denied by "
        f"{s3_server.endpoint} (AccessDenied): no credentials were found, so the request was "
        "anonymous"
    )
    assert caught.value.hint == (
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and that they may "
        f"read and write the bucket '{bucket}-nope'"
    )


def test_a_symbolic_link_in_the_target_is_not_followed(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    """A link planted in the target (``simple`` to another directory) made publish write the
    pages there: links are not files, so the target looked empty."""
    target = tmp_path / "published"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target.mkdir()
    (target / "simple").symlink_to(elsewhere)

    result = cli("publish", house, target.as_uri())

    assert result.exit_code == ExitCode.OUTPUT, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {str(target / 'simple')!r} is a symbolic link, which "), first
    assert first.endswith(f" out of {str(target)!r}; refusing to write through it"), first
    assert list(elsewhere.iterdir()) == []
