"""`wheelhouse mirror` against a hostile index: names that are paths, another project's files,
`file://` URLs, gzip bombs, a tampered state and credentials that must not be written."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.dists import DistFactory
from tests.support.files import sha256_of as sha256
from tests.support.files import snapshot
from tests.support.hostile import gzip_bomb
from tests.support.process import wait_until
from tests.support.proxy import linked_files
from tests.support.server import Answer, IndexServer
from wheelhouse.errors import ExitCode

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
WHEEL = "x-1.0-py3-none-any.whl"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Listed:
    """One file a crafted page lists: its name, its URL (absolute or relative to the page)
    and the sha256 the page promises."""

    filename: str
    url: str
    sha256: str


def render(project: str, files: Iterable[Listed], kind: str) -> tuple[dict[str, str], bytes]:
    if kind == "json":
        document = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": [
                {"filename": f.filename, "url": f.url, "hashes": {"sha256": f.sha256}}
                for f in files
            ],
        }
        return {"Content-Type": JSON_TYPE}, json.dumps(document).encode()
    links = "".join(
        f'<a href="{html.escape(f.url)}#sha256={f.sha256}">{html.escape(f.filename)}</a>\n'
        for f in files
    )
    page = f"<!DOCTYPE html><html><body>{links}</body></html>"
    return {"Content-Type": "text/html"}, page.encode()


def serve_page(index: IndexServer, project: str, files: list[Listed], kind: str = "json") -> None:
    """The index answers the page of ``project`` with ``files`` (after clear_hooks: again)."""
    headers, body = render(project, files, kind)

    def hook(path: str, _: Any) -> Answer | None:
        if urlsplit(path).path == f"/simple/{project}/":
            return 200, headers, body
        return None

    index.intercept(hook)


def serve_bytes(index: IndexServer, path: str, data: bytes) -> str:
    """The index answers ``path`` with ``data``; the URL."""

    def hook(asked: str, _: Any) -> Answer | None:
        if urlsplit(asked).path == path:
            return 200, {"Content-Type": "application/octet-stream"}, data
        return None

    index.intercept(hook)
    return index.base_url + path.lstrip("/")


def good_wheel(dists: DistFactory, index: IndexServer) -> Listed:
    path = dists.wheel("x", "1.0")
    return Listed(WHEEL, f"{index.files_url}{WHEEL}", sha256(path.read_bytes()))


def outside(tmp_path: Path, out: Path) -> dict[str, bytes]:
    """Every file of the test outside the mirror (but for its lock file and the caches)."""
    lock = out.parent / f".{out.name}.lock"
    return snapshot(tmp_path, leave_out=[out, lock, tmp_path / "wh-cache", tmp_path / "xdg-cache"])


def mirror_argv(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "wheelhouse", "mirror", *map(os.fspath, args)]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes


# The run is measured from a small parent of its own: a child forked from the test's worker
# would start with the worker's resident pages, and ru_maxrss would count them.
_MEASURED = """
import resource, subprocess, sys
limit = int(sys.argv[2])
def cap():
    if limit:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
code = subprocess.run(sys.argv[3:], stdin=subprocess.DEVNULL, preexec_fn=cap).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_measured(argv: list[str], tmp_path: Path, *, max_file_bytes: int | None = None) -> Run:
    """``argv`` in a child process, with its own peak RSS and optionally a cap on the size of
    any file it writes (so that old code copying an endless file fails early instead of
    filling the disk)."""
    stdout, stderr, report = tmp_path / "run.stdout", tmp_path / "run.stderr", tmp_path / "rss"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    measured = [sys.executable, "-c", _MEASURED, str(report), str(max_file_bytes or 0), *argv]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.run(
            measured, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=300
        )
    return Run(
        process.returncode,
        stdout.read_text(errors="replace"),
        stderr.read_text(errors="replace"),
        int(report.read_text()) * 1024,
    )


# -- names from a page are data, never paths --------------------------------------------------


@pytest.mark.parametrize("kind", ["json", "html"])
def test_names_that_are_paths_or_another_projects_are_never_written(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "a" / "b" / "mirror"
    wheel = good_wheel(dists, index_server)
    assert cli("mirror", "x", "-o", out, "-i", index_server.url).exit_code == 0
    (tmp_path / "abs").mkdir()
    # A file the operator keeps next to the mirror, and one inside it the mirror did not write.
    (tmp_path / "a" / "b" / "x-3.0.tar.gz").write_bytes(b"the neighbour's file\n")
    (out / "x-5.0.tar.gz").write_bytes(b"the operator's file\n")
    evil = b"written by a hostile index\n"
    url = serve_bytes(index_server, "/evil", evil)
    absolute = str(tmp_path / "abs" / "x-4.0.tar.gz")
    hostile = [
        Listed("../../x-2.0.tar.gz", url, sha256(evil)),  # would be tmp_path/a/x-2.0.tar.gz
        Listed("../x-3.0.tar.gz", url, sha256(evil)),  # the neighbour's file
        Listed(absolute, url, sha256(evil)),
        Listed("..\\x-6.0.tar.gz", url, sha256(evil)),
        Listed("y-1.0.tar.gz", url, sha256(evil)),  # another project's
        Listed("x-5.0.tar.gz", url, sha256(evil)),  # the operator's file in the mirror
    ]
    serve_page(index_server, "x", [wheel, *hostile], kind)
    before = outside(tmp_path, out)

    first = cli("mirror", "x", "-o", out, "-i", index_server.url)

    assert first.exit_code == ExitCode.PARTIAL, first.stderr
    warnings = [line for line in first.stderr.splitlines() if line.startswith("warning:")]
    prefix = "warning: x:"
    assert warnings == [
        f"{prefix} '../../x-2.0.tar.gz' is a path or not a file name; skipped",
        f"{prefix} '../x-3.0.tar.gz' is a path or not a file name; skipped",
        f"{prefix} {absolute!r} is a path or not a file name; skipped",
        f"{prefix} '..\\\\x-6.0.tar.gz' is a path or not a file name; skipped",
        f"{prefix} 'y-1.0.tar.gz' is a file of 'y', not of 'x'; skipped",
    ]
    assert (
        f"error: x: {str(out / 'x-5.0.tar.gz')!r} exists, was not written by the mirror, and "
        f"is not the file the index lists (sha256 {sha256(evil)}); left alone"
    ) in first.stderr.splitlines()
    assert set(linked_files(out)) == {WHEEL}
    assert outside(tmp_path, out) == before
    assert not (tmp_path / "a" / "x-2.0.tar.gz").exists()
    assert not Path(absolute).exists()
    assert not (out / "y-1.0.tar.gz").exists()
    assert (out / "x-5.0.tar.gz").read_bytes() == b"the operator's file\n"
    state = json.loads((out / ".mirror/projects/x.json").read_text())
    assert state["owned"] == [WHEEL]

    # The page drops them all: what the mirror did not write is neither deleted nor replaced.
    index_server.clear_hooks()
    serve_page(index_server, "x", [wheel], kind)
    second = cli("mirror", "x", "-o", out, "-i", index_server.url)
    assert second.exit_code == 0, second.stderr
    assert outside(tmp_path, out) == before
    assert (out / "x-5.0.tar.gz").read_bytes() == b"the operator's file\n"
    assert set(linked_files(out)) == {WHEEL}


def test_a_page_whose_every_file_is_refused_fails_the_project_and_keeps_its_files(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    wheel = good_wheel(dists, index_server)
    serve_page(index_server, "x", [wheel])
    assert cli("mirror", "x", "-o", out, "-i", index_server.url).exit_code == 0
    index_server.clear_hooks()
    serve_page(index_server, "x", [Listed("../x-2.0.tar.gz", wheel.url, wheel.sha256)])
    result = cli("mirror", "x", "-o", out, "-i", index_server.url, "--json")
    assert result.exit_code == ExitCode.PARTIAL
    assert (
        "error: x: the index lists 1 file for x and every one was refused (see the "
        "warnings); the mirror keeps what it had of the project"
    ) in result.stderr.splitlines()
    assert set(linked_files(out)) == {WHEEL}
    (project,) = json.loads(result.stdout)["project-results"]
    assert project["status"] == "failed"
    assert project["warnings"] == ["'../x-2.0.tar.gz' is a path or not a file name"]


def test_a_tampered_state_never_deletes_what_it_names(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "a" / "mirror"
    wheel = good_wheel(dists, index_server)
    assert cli("mirror", "x", "-o", out, "-i", index_server.url).exit_code == 0
    victims = {
        "neighbour": tmp_path / "a" / "x-9.0.tar.gz",
        "absolute": tmp_path / "abs" / "victim.txt",
        "other": tmp_path / "abs" / "other.txt",
        "linked": tmp_path / "abs" / "x-8.0.tar.gz",
    }
    for path in victims.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{path.name} is not the mirror's\n".encode())
    # As an older (or edited) run could have left it: names that are paths.
    state_path = out / ".mirror/projects/x.json"
    state = json.loads(state_path.read_text())
    state["owned"] += ["../x-9.0.tar.gz", str(victims["absolute"])]
    record = dict(state["files"][0])
    linked = victims["linked"]
    data = linked.read_bytes()
    record.update(filename=str(linked), sha256=sha256(data), size=len(data), kind="sdist")
    record.update(version="8.0", url=wheel.url, **{"metadata-sha256": None})
    state["files"].append(record)
    state_path.write_text(json.dumps(state))
    (out / ".mirror/projects/x.owned").write_text("../x-9.0.tar.gz\nx-1.0-py3-none-any.whl\n")
    # A project no longer asked for, whose files the run would delete.
    evil = {"state-version": 1, "name": "evil", "listings": [], "selection": "", "files": []}
    evil["owned"] = [str(victims["other"])]
    (out / ".mirror/projects/evil.json").write_text(json.dumps(evil))
    before = outside(tmp_path, out)

    result = cli("mirror", "x", "-o", out, "-i", index_server.url)

    assert result.exit_code == 0, result.stderr
    assert outside(tmp_path, out) == before
    assert set(linked_files(out)) == {WHEEL}
    warned = "\n".join(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    for name in ("../x-9.0.tar.gz", str(victims["absolute"]), str(linked), str(victims["other"])):
        assert f"records {name!r}, which is a path or not a file name; it is never used as a " in (
            warned
        )
    # Written again without them.
    cleaned = json.loads(state_path.read_text())
    assert cleaned["owned"] == [WHEEL]
    assert [f["filename"] for f in cleaned["files"]] == [WHEEL]
    assert not (out / ".mirror/projects/x.owned").exists()


# -- file:// URLs ------------------------------------------------------------------------------


def test_file_urls_in_a_remote_page_are_never_followed(
    index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    secret = tmp_path / "secret" / "x-2.0.tar.gz"
    secret.parent.mkdir()
    secret.write_bytes(b"the private key of the build user\n")
    other = tmp_path / "secret" / "shadow"
    other.write_bytes(b"root:$6$hash\n")
    wheel = good_wheel(dists, index_server)
    serve_page(
        index_server,
        "x",
        [
            wheel,
            Listed("x-2.0.tar.gz", secret.as_uri(), sha256(secret.read_bytes())),
            Listed("x-3.0.tar.gz", other.as_uri(), "0" * 64),  # a wrong hash
            Listed("x-4.0.tar.gz", "file:///dev/zero", "0" * 64),
        ],
    )
    out = tmp_path / "mirror"
    argv = mirror_argv("x", "-o", out, "-i", index_server.url, "--max-file-size", "1MB")
    # Old code copied /dev/zero until the disk was full: here until 16 MiB, then failed.
    run = run_measured(argv, tmp_path, max_file_bytes=16 * MiB)

    assert run.code == 0, run.stderr
    assert set(linked_files(out)) == {WHEEL}
    # The one page parser drops them, with one line for the page (the mirror's own check of
    # a candidate's URL stays behind it).
    assert (
        f"warning: {index_server.url}x/ links 3 file: URL(s); only http(s) links are followed: "
        "they are ignored"
    ) in run.stderr.splitlines()
    mirrored = b"".join(snapshot(out).values())
    assert secret.read_bytes() not in mirrored
    for digest in (sha256(secret.read_bytes()), sha256(other.read_bytes())):
        assert digest not in run.stderr + run.stdout
        assert digest.encode() not in mirrored


def test_a_local_index_copies_regular_files_only_and_at_most_max_file_size(
    tmp_path: Path,
) -> None:
    index = tmp_path / "local"
    (index / "x").mkdir(parents=True)
    big = tmp_path / "big" / "x-2.0.tar.gz"
    big.parent.mkdir()
    with big.open("wb") as handle:
        handle.truncate(1024 * MiB)  # sparse: costs nothing unless copied
    files = [
        Listed("x-1.0.tar.gz", "file:///dev/zero", "0" * 64),
        Listed("x-2.0.tar.gz", big.as_uri(), "0" * 64),
    ]
    (index / "x" / "index.html").write_bytes(render("x", files, "html")[1])
    out = tmp_path / "mirror"
    argv = mirror_argv("x", "-o", out, "-i", index.as_uri(), "--max-file-size", "1MB")
    # Old code copied both whole (and checked the size after): here until 16 MiB, then failed.
    run = run_measured(argv, tmp_path, max_file_bytes=16 * MiB)

    assert run.code == ExitCode.PARTIAL, run.stderr
    errors = sorted(line for line in run.stderr.splitlines() if line.startswith("error:"))
    assert errors == [
        "error: x: '/dev/zero' is listed as x-1.0.tar.gz but is not a regular file; not mirrored",
        "error: x: x-2.0.tar.gz is larger than --max-file-size (1000000 bytes); not mirrored",
    ]
    assert not list(out.glob("x-*"))
    assert not list((out / ".mirror").glob("tmp/*"))


def test_a_wrong_hash_for_a_local_file_does_not_print_its_digest(cli: Any, tmp_path: Path) -> None:
    index = tmp_path / "local"
    (index / "x").mkdir(parents=True)
    source = tmp_path / "files" / "x-1.0.tar.gz"
    source.parent.mkdir()
    source.write_bytes(b"local bytes\n")
    files = [Listed("x-1.0.tar.gz", source.as_uri(), "0" * 64)]
    (index / "x" / "index.html").write_bytes(render("x", files, "html")[1])
    result = cli("mirror", "x", "-o", tmp_path / "mirror", "-i", index.as_uri())
    assert result.exit_code == ExitCode.PARTIAL
    assert (
        f"error: x: x-1.0.tar.gz from {source.as_uri()} does not have the sha256 the index "
        f"promised ({'0' * 64}); not mirrored"
    ) in result.stderr.splitlines()
    assert sha256(source.read_bytes()) not in result.stderr


# -- bombs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["project", "root"])
def test_a_gzip_bomb_page_costs_a_bounded_read(
    index_server: IndexServer, dists: DistFactory, tmp_path: Path, where: str
) -> None:
    bomb = gzip_bomb(512 * MiB, member=64 * MiB)
    path = "/simple/x/" if where == "project" else "/simple/"

    def hook(asked: str, _: Any) -> Answer | None:
        if urlsplit(asked).path == path:
            headers = {"Content-Type": JSON_TYPE, "Content-Encoding": "gzip"}
            return 200, headers, bomb
        return None

    index_server.intercept(hook)
    dists.wheel("x", "1.0")
    out = tmp_path / "mirror"
    which = ["x"] if where == "project" else ["--all"]
    run = run_measured(mirror_argv(*which, "-o", out, "-i", index_server.url), tmp_path)

    shown = f"{index_server.url}{'x/' if where == 'project' else ''}"
    if where == "project":
        assert run.code == ExitCode.PARTIAL, run.stderr
        limit = 32 * MiB  # the one page reader's cap (serve/_upstream.py)
        expected = f"error: x: {shown} sent more than {limit} bytes"
    else:
        assert run.code == ExitCode.NETWORK, run.stderr
        limit = 96 * MiB
        expected = f"error: {shown} sent more than {limit} bytes"
    assert expected in run.stderr.splitlines()
    # Old code read the whole 512 MiB (1.1 GB peak); here about 45 MB plus the limit's worth.
    assert run.peak_rss < limit + 80 * MiB, run.peak_rss
    assert not (out / "simple" / "x").exists()


def test_an_unreadable_wheel_is_one_failed_file(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    # A wheel whose METADATA is not a valid deflate stream (its hash on the page is right).
    path = dists.wheel("x", "1.0")
    with zipfile.ZipFile(path) as archive:
        members = {info: archive.read(info) for info in archive.infolist()}
    broken = tmp_path / WHEEL
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members.items():
            archive.writestr(info.filename, data)
    raw = bytearray(broken.read_bytes())
    with zipfile.ZipFile(broken) as archive:
        info = archive.getinfo("x-1.0.dist-info/METADATA")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start : start + 4] = b"\xff\xff\xff\xff"
    url = serve_bytes(index_server, f"/bad/{WHEEL}", bytes(raw))
    other = dists.wheel("x", "2.0")
    good = Listed(other.name, index_server.files_url + other.name, sha256(other.read_bytes()))
    serve_page(index_server, "x", [Listed(WHEEL, url, sha256(bytes(raw))), good])
    out = tmp_path / "mirror"
    result = cli("mirror", "x", "-o", out, "-i", index_server.url)
    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: x: {WHEEL} is not a readable wheel: ")
    assert errors[0].endswith("; not mirrored")
    assert set(linked_files(out)) == {good.filename}
    assert not (out / WHEEL).exists()


def test_a_metadata_bomb_is_one_failed_file(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    from wheelhouse._base import wheels

    limit = getattr(wheels, "MAX_METADATA", None)
    if limit is None:
        pytest.skip("read_wheel_metadata has no size bound yet (it comes with issue 22 row 5)")
    bomb = tmp_path / WHEEL
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        metadata = b"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n\n"
        archive.writestr("x-1.0.dist-info/METADATA", metadata + bytes(limit * 4))
        archive.writestr("x-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n")
        archive.writestr("x-1.0.dist-info/RECORD", b"")
    data = bomb.read_bytes()
    url = serve_bytes(index_server, f"/bomb/{WHEEL}", data)
    serve_page(index_server, "x", [Listed(WHEEL, url, sha256(data))])
    out = tmp_path / "mirror"
    result = cli("mirror", "x", "-o", out, "-i", index_server.url)
    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: x: {WHEEL} is not a readable wheel")
    assert not (out / f"{WHEEL}.metadata").exists()
    assert not (out / WHEEL).exists()


# -- credentials ------------------------------------------------------------------------------


def test_no_file_of_the_mirror_holds_the_index_password(
    cli: Any, upstream: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    dists.wheel("alpha", "1.0")
    dists.sdist("alpha", "1.0")
    password = "s3cret-Pa55"
    index = upstream.url.replace("http://", f"http://mirror-user:{password}@")
    out = tmp_path / "mirror"
    args = ["mirror", "alpha", "-o", out, "-i", index, "--extra-index-url", index, "--json"]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    # The credentials were used...
    assert any("Authorization" in headers for _, headers in upstream.received)
    # ...and are in no file of the tree, nor in the lock file next to it, nor in the output.

    def leaks() -> list[str]:
        files = snapshot(out) | snapshot(out.parent, leave_out=[out, tmp_path / "dists"])
        return sorted(name for name, data in files.items() if password.encode() in data)

    assert leaks() == []
    assert password not in result.stdout + result.stderr
    # What the mirror remembers names the indexes without the credentials.
    remembered = json.loads((out / ".mirror/selection.json").read_text())["filters"]
    assert (remembered["index-url"], remembered["extra-index-urls"]) == (
        upstream.url,
        [upstream.url],
    )
    manifest = json.loads((out / "wheelhouse.json").read_text())
    assert manifest["inputs"]["options"]["mirror"]["index"] == {
        "index-url": upstream.url,
        "extra-index-urls": [upstream.url],
    }
    # A state an older run wrote with the credentials is written again without them.
    state_path = out / ".mirror/projects/alpha.json"
    state = json.loads(state_path.read_text())
    for listing in state["listings"]:
        listing["url"] = listing["url"].replace("http://", f"http://mirror-user:{password}@")
    state_path.write_text(json.dumps(state))
    again = cli(*args)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["fetched"] == 0  # the validators still served
    assert leaks() == []


def test_a_file_the_mirror_did_not_write_is_never_claimed(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    wheel = good_wheel(dists, index_server)
    serve_page(index_server, "x", [wheel])
    assert cli("mirror", "x", "-o", out, "-i", index_server.url).exit_code == 0
    mine = b"the operator's notes, under a name the index will list\n"
    (out / "x-2.0.tar.gz").write_bytes(mine)
    sdist = b"the index's x 2.0\n"
    url = serve_bytes(index_server, "/x-2.0.tar.gz", sdist)
    index_server.clear_hooks()
    serve_bytes(index_server, "/x-2.0.tar.gz", sdist)
    serve_page(index_server, "x", [wheel, Listed("x-2.0.tar.gz", url, sha256(sdist))])
    # Old code recorded the name as the mirror's before it looked, then replaced the file on
    # the next run and deleted it once the page dropped it.
    for _ in range(2):
        result = cli("mirror", "x", "-o", out, "-i", index_server.url)
        assert result.exit_code == ExitCode.PARTIAL
        assert (
            f"error: x: {str(out / 'x-2.0.tar.gz')!r} exists, was not written by the mirror, "
            "and is not the file the index lists (sha256 "
        ) in result.stderr
        assert (out / "x-2.0.tar.gz").read_bytes() == mine
        state = json.loads((out / ".mirror/projects/x.json").read_text())
        assert state["owned"] == [WHEEL]
    index_server.clear_hooks()
    serve_page(index_server, "x", [wheel])
    assert cli("mirror", "x", "-o", out, "-i", index_server.url).exit_code == 0
    assert (out / "x-2.0.tar.gz").read_bytes() == mine


def test_files_a_killed_run_placed_are_claimed_and_go_when_the_page_drops_them(
    index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    for version in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
        dists.wheel("slow", version)
    out = tmp_path / "mirror"
    argv = mirror_argv("slow", "-o", out, "-i", index_server.url, "-j", "1")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    index_server.delay("/files/", 0.4)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(list(out.glob("*.whl"))) >= 2, 60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    placed = {p.name for p in out.glob("*.whl")}
    assert 2 <= len(placed) < 6
    # Each file in place was claimed before it was put there (no state file was written yet).
    journal = out / ".mirror/projects/slow.owned"
    assert placed <= set(journal.read_text().splitlines())
    # The index drops them: the rerun deletes them, although no state recorded them.
    for name in placed:
        (dists.root / name).unlink()
    index_server.clear_hooks()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    remaining = {p.name for p in out.glob("*.whl")}
    assert remaining == {p.name for p in dists.root.glob("slow-*.whl")}
    assert not remaining & placed
    assert not journal.exists()
    state = json.loads((out / ".mirror/projects/slow.json").read_text())
    assert set(state["owned"]) == remaining


def test_a_download_stops_past_the_size_the_page_gives(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    wheel = good_wheel(dists, index_server)
    url = serve_bytes(index_server, "/x-2.0.tar.gz", bytes(8 * MiB))
    document = {
        "meta": {"api-version": "1.1"},
        "name": "x",
        "files": [
            {"filename": WHEEL, "url": wheel.url, "hashes": {"sha256": wheel.sha256}},
            {"filename": "x-2.0.tar.gz", "url": url, "hashes": {"sha256": "0" * 64}, "size": 1000},
        ],
    }
    body = json.dumps(document).encode()
    index_server.intercept(
        lambda path, _: (200, {"Content-Type": JSON_TYPE}, body) if path == "/simple/x/" else None
    )
    out = tmp_path / "mirror"
    result = cli("mirror", "x", "-o", out, "-i", index_server.url)
    assert result.exit_code == ExitCode.PARTIAL
    # Old code read all 8 MiB, then found the wrong sha256.
    assert (
        "error: x: x-2.0.tar.gz is larger than the 1000 bytes the index gives for it; not mirrored"
    ) in result.stderr.splitlines()
    assert set(linked_files(out)) == {WHEEL}


def test_an_edited_selection_file_names_no_paths(
    cli: Any, index_server: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    dists.wheel("x", "1.0")
    out = tmp_path / "a" / "mirror"
    assert cli("mirror", "x", "-o", out, "-i", index_server.url).exit_code == 0
    selection = out / ".mirror/selection.json"
    data = json.loads(selection.read_text())
    data["projects"] = {"x": "", "../../victim": "", "/etc": "", "y": "not a specifier"}
    selection.write_text(json.dumps(data))
    (tmp_path / "victim").mkdir()
    before = outside(tmp_path, out)
    first = len(index_server.requests)
    result = cli("mirror", "-o", out, "-i", index_server.url)
    assert result.exit_code == 0, result.stderr
    assert outside(tmp_path, out) == before
    assert "'../../victim' '', not a project and specifier; ignored" in result.stderr
    # Requests only for x's page: a name from the file is never a URL path either.
    asked = [p for p in index_server.requests[first:] if p.startswith("/simple/")]
    assert asked == ["/simple/x/"]
    # Written again without what was ignored.
    assert json.loads(selection.read_text())["projects"] == {"x": ""}
