"""Loose input (names and ranges): pip's files are downloaded once, and --resolver uv."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from tests.support.capabilities import need_uv
from tests.support.dists import DistFactory
from tests.support.files import sha256_of
from tests.support.fixtures import Cli
from tests.support.graph import GRAPH_REQUIREMENTS, GRAPH_WHEELS, build
from tests.support.server import Answer, IndexServer
from wheelhouse._base._uv import find_uv
from wheelhouse.errors import ExitCode
from wheelhouse.simple.media import PIP_ACCEPT

# Every file of the graph that is on the index and in the lock (srconly as its sdist).
INDEX_FILES = {"srconly-1.0.tar.gz"} | (GRAPH_WHEELS - {"srconly-1.0-py3-none-any.whl"})


def file_requests(index: IndexServer, start: int = 0) -> Counter[str]:
    return Counter(
        p.removeprefix("/files/") for p in index.requests[start:] if p.startswith("/files/")
    )


def locks(out: Path) -> list[dict[str, object]]:
    manifest = json.loads((out / "wheelhouse.json").read_text(encoding="utf-8"))
    return list(manifest["targets"])


def pylock_lines(out: Path) -> set[str]:
    return set((out / "pylock.toml").read_text(encoding="utf-8").splitlines())


def test_files_pip_downloads_while_resolving_are_not_fetched_again(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    stderr = build(cli, index_server, graph, tmp_path / "wh")

    # The index has no PEP 658 metadata, so pip reads every file to resolve; each is
    # requested exactly once in the whole build.
    assert file_requests(index_server) == dict.fromkeys(INDEX_FILES, 1)
    # Each page too: read through the tap with pip's Accept header (by the prefetcher or by
    # pip, whichever asks first, for both), and the pins are checked against what pip read.
    # The only other page request is the reachability probe of the first project, a HEAD.
    pages = [(p, h) for p, h in index_server.received if p.startswith("/simple/")]
    as_pip = [(p, h) for p, h in pages if h.get("Accept") == PIP_ACCEPT]
    assert Counter(p for p, _ in as_pip) == {
        f"/simple/{name}/": 1 for name in ("app", "lib", "modern", "speedup", "srconly")
    }
    assert [p for p, h in pages if (p, h) not in as_pip] == ["/simple/app/"]
    assert stderr.splitlines()[-1].endswith(
        f"{len(GRAPH_WHEELS)} files, 0.0 MB (5 downloaded, 0 from cache, 1 built from sdists)"
    )
    for filename in GRAPH_WHEELS:
        assert (tmp_path / "wh" / filename).is_file()


def test_files_linked_absolutely_reach_pip_through_the_tap_each_fetched_once(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    # PyPI's pages link files by absolute URL (on another host there). The tap points those
    # links at itself, and pip gets each file from the download made ahead of it.
    index_server.absolute_links = True
    index_server.json_pages = True

    build(cli, index_server, graph, tmp_path / "wh")

    files = [(p, h) for p, h in index_server.received if p.startswith("/files/")]
    assert Counter(p.removeprefix("/files/") for p, _ in files) == dict.fromkeys(INDEX_FILES, 1)
    # Every file was downloaded by wheelhouse (ahead of pip), none by pip itself.
    assert not [p for p, h in files if h.get("User-Agent", "").startswith("pip/")]
    # Pages too are read once, whether the prefetcher or pip asked first.
    pages = Counter(p for p, h in index_server.received if p.startswith("/simple/"))
    assert all(count == 1 for page, count in pages.items() if page != "/simple/app/"), pages
    for filename in GRAPH_WHEELS:
        assert (tmp_path / "wh" / filename).is_file()


def test_guesses_pass_over_newest_releases_that_want_another_python(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    # The four newest releases want a Python that does not exist yet; pip takes lib 1.0,
    # and so does the guess, which the prefetcher then downloads instead of pip.
    index_server.absolute_links = True
    index_server.json_pages = True
    dists.wheel("lib", "1.0")
    for version in ("2.0", "3.0", "4.0", "5.0"):
        dists.wheel("lib", version, requires_python=">=3.99")
    requirements = tmp_path / "requirements.in"
    requirements.write_text("lib\n", encoding="utf-8")

    build(cli, index_server, requirements, tmp_path / "wh")

    files = [(p, h.get("User-Agent", "")) for p, h in index_server.received if "/files/" in p]
    assert [p for p, _ in files] == ["/files/lib-1.0-py3-none-any.whl"]
    assert not files[0][1].startswith("pip/")
    assert (tmp_path / "wh" / "lib-1.0-py3-none-any.whl").is_file()


def test_a_guess_pip_does_not_take_changes_nothing_in_the_wheelhouse(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    # Guessed first: the newest lib, which app allows; pip, having read tool's metadata as
    # well, takes lib 1.0. The wheelhouse holds what pip chose and nothing guessed.
    dists.wheel("app", "1.0", requires=["lib"])
    dists.wheel("tool", "1.0", requires=["lib<2"])
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "2.0")
    requirements = tmp_path / "requirements.in"
    requirements.write_text("app\ntool\n", encoding="utf-8")

    build(cli, index_server, requirements, tmp_path / "wh")

    assert sorted(p.name for p in (tmp_path / "wh").glob("*.whl")) == [
        "app-1.0-py3-none-any.whl",
        "lib-1.0-py3-none-any.whl",
        "tool-1.0-py3-none-any.whl",
    ]
    assert file_requests(index_server)["lib-1.0-py3-none-any.whl"] == 1
    pins = (tmp_path / "wh" / "requirements.txt").read_text(encoding="utf-8")
    assert "lib==1.0 " in pins and "lib==2.0" not in pins


def test_guesses_follow_constraints_so_nothing_is_fetched_for_nothing(
    cli: Cli, dists: DistFactory, index_server: IndexServer, tmp_path: Path
) -> None:
    dists.wheel("app", "1.0", requires=["lib"])
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "2.0")
    requirements = tmp_path / "requirements.in"
    requirements.write_text("app\n", encoding="utf-8")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("lib<2\n", encoding="utf-8")

    build(cli, index_server, requirements, tmp_path / "wh", "-c", str(constraints))

    assert file_requests(index_server) == {
        "app-1.0-py3-none-any.whl": 1,
        "lib-1.0-py3-none-any.whl": 1,
    }
    assert (tmp_path / "wh" / "lib-1.0-py3-none-any.whl").is_file()


def test_pages_the_tap_cannot_forward_send_the_resolution_to_pip_directly(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    # The index refuses pages to the tap's client (which asks for no gzip) but not to pip:
    # as an index would that wants a trust store or credentials that only pip has.
    def refuse(path: str, headers: Mapping[str, str]) -> Answer | None:
        if path.startswith("/simple/") and "gzip" not in headers.get("Accept-Encoding", ""):
            return 403, {"Content-Type": "text/plain"}, b"not you"
        return None

    index_server.intercept(refuse)

    stderr = build(cli, index_server, graph, tmp_path / "wh", "-v")

    assert any(
        "pip resolves" in line and "the page tap could not forward" in line
        for line in stderr.splitlines()
    ), stderr
    for filename in GRAPH_WHEELS:
        assert (tmp_path / "wh" / filename).is_file()


def test_an_index_that_wants_credentials_gets_them_through_the_tap(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    wanted = "Basic " + base64.b64encode(b"alice:s3cret").decode()

    def guard(path: str, headers: Mapping[str, str]) -> Answer | None:
        if headers.get("Authorization") != wanted:
            return 401, {"WWW-Authenticate": 'Basic realm="index"'}, b"who are you?"
        return None

    index_server.intercept(guard)
    url = index_server.url.replace("http://", "http://alice:s3cret@")

    result = cli("build", "-r", graph, "-o", tmp_path / "wh", "--index-url", url, "-v")

    assert result.exit_code == 0, result.stderr
    assert "page tap" not in result.stderr
    assert "s3cret" not in result.stderr
    # Every request carried the credentials (pip's through the tap, which holds them: pip
    # is given the tap's URL without them), and each file was downloaded once.
    assert all(h.get("Authorization") == wanted for _, h in index_server.received)
    assert file_requests(index_server) == dict.fromkeys(INDEX_FILES, 1)
    for filename in GRAPH_WHEELS:
        assert (tmp_path / "wh" / filename).is_file()


def test_rebuild_after_one_pin_changes_fetches_only_that_pins_files(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    out = tmp_path / "wh"
    build(cli, index_server, graph, out)
    start = len(index_server.requests)
    graph.write_text(GRAPH_REQUIREMENTS + "lib<2\n", encoding="utf-8")

    stderr = build(cli, index_server, graph, out, "-v")

    assert file_requests(index_server, start) == {"lib-1.0-py3-none-any.whl": 1}
    assert stderr.splitlines()[-1].endswith("(1 downloaded, 4 from cache, 0 built from sdists)")
    assert (out / "lib-1.0-py3-none-any.whl").is_file()
    assert not (out / "lib-2.0-py3-none-any.whl").exists()


def test_a_resolution_download_with_another_hash_is_exit_6(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    index_server.corrupt("lib-2.0-py3-none-any.whl")

    result = cli("build", "-r", graph, "-o", tmp_path / "wh", "--index-url", index_server.url)

    assert result.exit_code == ExitCode.INTEGRITY == 6
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert first.startswith("error: hash mismatch for lib")
    assert "lib-2.0-py3-none-any.whl" in first
    assert f"expected sha256 {sha256_of(index_server.root / 'lib-2.0-py3-none-any.whl')}" in first
    assert not (tmp_path / "wh").exists()


def test_resolver_uv_gives_the_same_lock_as_pip(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    need_uv()
    by_pip, by_uv = tmp_path / "by-pip", tmp_path / "by-uv"
    build(cli, index_server, graph, by_pip)

    stderr = build(cli, index_server, graph, by_uv, "--resolver", "uv", "-v")

    uv = subprocess.run([find_uv(), "--version"], capture_output=True, text=True, check=True)
    assert f"wheelhouse: resolving with uv {uv.stdout.split()[1]}" in stderr.splitlines()
    assert "pip download" not in stderr
    assert locks(by_uv) == locks(by_pip)
    assert (by_uv / "requirements.txt").read_bytes() == (by_pip / "requirements.txt").read_bytes()
    # pylock.toml records which options made it (the resolver among them), and nothing else
    # differs.
    assert pylock_lines(by_uv) - pylock_lines(by_pip) == {
        line for line in pylock_lines(by_uv) if line.startswith("inputs-fingerprint = ")
    }
    # uv reads metadata its own way (with its own requests); the files themselves were
    # already in wheelhouse's cache.
    assert stderr.splitlines()[-1].endswith("(0 downloaded, 5 from cache, 0 built from sdists)")
    manifest = json.loads((by_uv / "wheelhouse.json").read_text(encoding="utf-8"))
    assert manifest["inputs"]["options"]["resolver"] == "uv"


def test_an_unknown_resolver_is_a_usage_error(cli: Cli, graph: Path, tmp_path: Path) -> None:
    result = cli("build", "-r", graph, "-o", tmp_path / "wh", "--resolver", "poetry")

    assert result.exit_code == ExitCode.USAGE == 2
    assert result.stderr == "error: --resolver must be 'pip' or 'uv', not 'poetry'\n"
    assert not (tmp_path / "wh").exists()


def test_verbose_names_the_pip_that_resolves(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    from importlib.metadata import version

    stderr = build(cli, index_server, graph, tmp_path / "wh", "-v")

    assert f"wheelhouse: resolving with pip {version('pip')}" in stderr.splitlines()


def test_no_more_file_bytes_than_pip_wheel(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "-r", graph, "-w", tmp_path / "pip-wheel"]
    argv += ["--index-url", index_server.url, "--cache-dir", tmp_path / "pip-cache"]
    subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    by_pip = file_requests(index_server)
    start = len(index_server.requests)

    build(cli, index_server, graph, tmp_path / "wh")

    by_wheelhouse = file_requests(index_server, start)
    assert by_wheelhouse == by_pip == dict.fromkeys(INDEX_FILES, 1)

    def size(requests: Counter[str]) -> int:
        return sum((index_server.root / name).stat().st_size * n for name, n in requests.items())

    assert size(by_wheelhouse) <= size(by_pip)


def page_requests(index: IndexServer, start: int = 0) -> Counter[str]:
    return Counter(p for p in index.requests[start:] if p.startswith("/simple/"))


UV_FILES = {
    "app-1.0-py3-none-any.whl",
    "lib-2.0-py3-none-any.whl",
    "srconly-1.0.tar.gz",
    "speedup-1.0-py3-none-any.whl",
}


def test_resolver_uv_takes_urls_and_hashes_from_uvs_lock_without_reading_pages_again(
    cli: Cli, uv_graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    need_uv()
    out = tmp_path / "wh"

    stderr = build(cli, index_server, uv_graph, out, "--resolver", "uv", "-v")

    # uv asks each page once and reads each file for its metadata (this index has no PEP
    # 658); wheelhouse asks no page again (URLs and sha256 come from uv's pylock) and
    # downloads each file once more into its cache, hash-checked.
    agents = [h.get("User-Agent", "") for _, h in index_server.received]
    pages = [p for p, a in zip(index_server.requests, agents, strict=True) if "/simple/" in p]
    assert Counter(pages) == {f"/simple/{n}/": 1 for n in ("app", "lib", "srconly", "speedup")}
    assert all(
        a.startswith("uv/")
        for p, a in zip(index_server.requests, agents, strict=True)
        if "/simple/" in p
    )
    assert not any("pip resolves again" in line for line in stderr.splitlines())
    ours = Counter(
        p.removeprefix("/files/")
        for p, a in zip(index_server.requests, agents, strict=True)
        if p.startswith("/files/") and not a.startswith("uv/")
    )
    assert ours == dict.fromkeys(UV_FILES, 1)
    manifest = json.loads((out / "wheelhouse.json").read_text(encoding="utf-8"))
    assert manifest["inputs"]["options"]["resolver"] == "uv"
    for filename in UV_FILES - {"srconly-1.0.tar.gz"} | {"srconly-1.0-py3-none-any.whl"}:
        assert (out / filename).is_file()


def test_resolver_uv_files_are_downloaded_while_uv_resolves(
    cli: Cli, uv_graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    need_uv()
    # uv reads speedup's page a second after it asked: by then it has read app's metadata.
    index_server.delay("/simple/speedup/", 1.0)

    stderr = build(cli, index_server, uv_graph, tmp_path / "wh", "--resolver", "uv")

    received = [(p, h.get("User-Agent", "")) for p, h in index_server.received]
    by_uv = [i for i, (_, agent) in enumerate(received) if agent.startswith("uv/")]
    ours = {p: i for i, (p, agent) in enumerate(received) if not agent.startswith("uv/")}
    # app's file was downloaded for the wheelhouse before uv was done: as soon as uv read
    # its metadata, not after uv's lock. Each file once, and counted as downloaded.
    assert ours["/files/app-1.0-py3-none-any.whl"] < by_uv[-1]
    assert sorted(p for p in ours if p.startswith("/files/")) == sorted(
        f"/files/{f}" for f in UV_FILES
    )
    assert stderr.splitlines()[-1].endswith("(4 downloaded, 0 from cache, 1 built from sdists)")


def test_resolver_uv_pin_that_metadata_refutes_goes_to_pip(
    cli: Cli, graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    need_uv()

    stderr = build(cli, index_server, graph, tmp_path / "wh", "--resolver", "uv", "-v")

    # uv ignores Requires-Python upper bounds and locks modern 3.0 (Requires-Python <3); the
    # metadata of the file it locked shows that, and pip resolves instead (modern 2.0).
    assert any(
        "modern 3.0 requires Python <3" in line and "pip resolves again" in line
        for line in stderr.splitlines()
    ), stderr
    assert (tmp_path / "wh" / "modern-2.0-py3-none-any.whl").is_file()
    assert not (tmp_path / "wh" / "modern-3.0-py3-none-any.whl").exists()


def test_resolver_uv_checks_the_sha256_of_uvs_lock(
    cli: Cli, uv_graph: Path, index_server: IndexServer, tmp_path: Path
) -> None:
    need_uv()
    # uv locks the sha256 of the bytes it read; the bytes wheelhouse then gets differ.
    lib = index_server.root / "lib-2.0-py3-none-any.whl"

    def tamper(path: str, headers: Mapping[str, str]) -> Answer | None:
        if path.endswith("/lib-2.0-py3-none-any.whl") and not headers.get(
            "User-Agent", ""
        ).startswith("uv/"):
            return 200, {"Content-Type": "application/octet-stream"}, b"not the locked bytes"
        return None

    index_server.intercept(tamper)

    result = cli(
        "build",
        "-r",
        uv_graph,
        "-o",
        tmp_path / "wh",
        "--index-url",
        index_server.url,
        "--resolver",
        "uv",
    )

    assert result.exit_code == ExitCode.INTEGRITY == 6, result.stderr
    first = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert first.startswith(f"error: lib-2.0-py3-none-any.whl from {index_server.base_url}")
    assert first.endswith(f"but the index promised {sha256_of(lib)}")
    assert not (tmp_path / "wh").exists()
