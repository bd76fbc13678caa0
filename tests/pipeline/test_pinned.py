"""The pinned fast path: the files pip would pick, and pins proven complete by their metadata."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from packaging.utils import canonicalize_name

from tests.support.dists import DistFactory, vendor_dist_info
from tests.support.files import sha256_of as sha256
from tests.support.fixtures import Cli
from tests.support.pinned import chosen, ok, run
from tests.support.server import Answer, IndexServer, Intercept, _requires_python
from wheelhouse._base.pip_settings import IndexOptions, PipSettings
from wheelhouse._base.targets import HOST
from wheelhouse.inputs.requirements import read_inputs
from wheelhouse.resolve.by_pip import resolve
from wheelhouse.resolve.from_pins import PinnedResult
from wheelhouse.resolve.fully_pinned import Fallback

BEST = str(
    HOST.tags[0]
)  # the tag this interpreter prefers above all, e.g. cp311-cp311-linux_x86_64
WINDOWS = "cp311-cp311-win_amd64" if "win" not in BEST else "cp311-cp311-manylinux_2_17_x86_64"


def fallback(result: PinnedResult | Fallback) -> str:
    assert isinstance(result, Fallback), result
    return result.reason


# -- the same answer as pip --------------------------------------------------------------------


@pytest.mark.slow
def test_complete_pins_give_what_pips_resolver_gives(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("app", "1.0", requires=["lib>=1", "fast[speed]"], requires_python=">=3.8")
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "2.0", requires=['winonly; sys_platform == "win32"'])
    dists.wheel("fast", "1.5", tag="py3-none-any", extras={"speed": ["turbo<2"]})
    dists.wheel("fast", "1.5", tag=BEST)
    dists.wheel("fast", "1.5", tag=WINDOWS)
    dists.wheel("turbo", "1.1")
    requirements = "app==1.0\nlib==2.0\nfast==1.5\nturbo==1.1\n"

    fast = ok(run(tmp_path, requirements, index_server.url))
    (tmp_path / "pip").mkdir()
    (tmp_path / "pip" / "r.txt").write_text(requirements)
    pip = resolve(
        read_inputs((tmp_path / "pip" / "r.txt",), ()),
        PipSettings.read(IndexOptions(index_url=index_server.url)),
        HOST,
    )

    def view(pins: tuple[object, ...]) -> list[tuple[object, ...]]:
        return [
            (p.name, p.version, p.filename, p.sha256, p.url, p.kind, p.requires_python, p.requested)  # type: ignore[attr-defined]
            for p in pins
        ]

    assert view(fast.resolution.pins) == view(pip.pins)
    assert [p.name for p in fast.resolution.pins] == ["app", "fast", "lib", "turbo"]
    assert fast.resolution.pins[1].filename == f"fast-1.5-{BEST}.whl"
    # The files were fetched, verified and are in the cache.
    for item in fast.fetched:
        assert item.path.is_file()
        assert sha256(item.path) == item.sha256 == item.pin.sha256
        assert item.pin == next(p for p in fast.resolution.pins if p.name == item.pin.name)


# -- pins that are not complete or not consistent ----------------------------------------------


def test_missing_dependency_falls_back_naming_it(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("flask", "3.0", requires=["blinker>=1.6"])
    dists.wheel("blinker", "1.6")
    reason = fallback(run(tmp_path, "flask==3.0\n", index_server.url))
    assert reason == "pins are not complete: flask 3.0 requires blinker>=1.6, which is not pinned"


def test_version_mismatch_falls_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("flask", "3.0", requires=["blinker>=1.6"])
    dists.wheel("blinker", "1.5")
    reason = fallback(run(tmp_path, "flask==3.0\nblinker==1.5\n", index_server.url))
    assert reason == (
        "pins are not consistent: flask 3.0 requires blinker>=1.6, but blinker is pinned to 1.5"
    )


def test_marker_excluded_dependency_needs_no_pin(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("app", "1.0", requires=['pywin32>=300; sys_platform == "win32"', "lib"])
    dists.wheel("lib", "1.0", requires=['oldpy; python_version < "3"'])
    result = run(tmp_path, "app==1.0\nlib==1.0\n", index_server.url)
    assert chosen(result) == {"app": "app-1.0-py3-none-any.whl", "lib": "lib-1.0-py3-none-any.whl"}


def test_extras_are_followed_transitively(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("app", "1.0", extras={"web": ["server[tls]>=2"]})
    dists.wheel("server", "2.0", extras={"tls": ["crypto>=3"]})
    dists.wheel("crypto", "3.1")
    reason = fallback(run(tmp_path, "app[web]==1.0\nserver==2.0\n", index_server.url))
    assert reason == (
        "pins are not complete: server[tls] 2.0 requires crypto>=3, which is not pinned"
    )
    complete = run(tmp_path, "app[web]==1.0\nserver==2.0\ncrypto==3.1\n", index_server.url)
    assert set(chosen(complete)) == {"app", "server", "crypto"}
    # Without the extra, nothing beyond app is needed.
    assert set(chosen(run(tmp_path, "app==1.0\n", index_server.url))) == {"app"}


def test_requires_python_of_the_metadata_is_checked(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("future", "1.0", requires_python=">=4")
    reason = fallback(run(tmp_path, "future==1.0\n", index_server.url))
    assert reason == "no file of future==1.0 fits this target on the indexes"


# -- inputs that only pip can resolve ----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("lib>=1.0", "'lib>=1.0' is not pinned with == to one version"),
        ("lib==1.*", "'lib==1.*' is not pinned with == to one version"),
        ("lib", "'lib' is not pinned with == to one version"),
        ("lib==1.0,<2", "'lib<2,==1.0' is not pinned with == to one version"),
    ],
)
def test_unpinned_input_falls_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, line: str, reason: str
) -> None:
    dists.wheel("lib", "1.0")
    got = fallback(run(tmp_path, f"{line}\n", index_server.url))
    assert got == f"{tmp_path / 'requirements.txt'}:1: {reason}"


def test_url_requirement_falls_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    line = f"lib @ {index_server.files_url}lib-1.0-py3-none-any.whl"
    assert "is not pinned with ==" in fallback(run(tmp_path, f"{line}\n", index_server.url))


def test_sdist_with_dynamic_dependencies_falls_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.sdist("legacy", "1.0")  # Metadata-Version 2.1: its dependencies need a build
    reason = fallback(run(tmp_path, "legacy==1.0\n", index_server.url))
    assert reason == (
        "legacy-1.0.tar.gz is an sdist whose dependencies are only known after a build "
        "(its PKG-INFO is older than Metadata-Version 2.2 or marks them dynamic)"
    )


def _static_sdist(root: Path, name: str, version: str, requires: list[str]) -> Path:
    pkg_info = (
        f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as archive,
    ):
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
    path = root / f"{name}-{version}.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def test_sdist_with_static_metadata_is_checked_from_pkg_info(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    sdist = _static_sdist(dists.root, "modern", "2.0", ["lib>=1"])
    dists.wheel("lib", "1.0")
    assert fallback(run(tmp_path, "modern==2.0\n", index_server.url)) == (
        "pins are not complete: modern 2.0 requires lib>=1, which is not pinned"
    )
    result = ok(run(tmp_path, "modern==2.0\nlib==1.0\n", index_server.url))
    pin = next(p for p in result.resolution.pins if p.name == "modern")
    assert (pin.name, pin.kind, pin.filename, pin.sha256) == (
        "modern",
        "sdist",
        sdist.name,
        sha256(sdist),
    )


def test_option_lines_in_the_file_fall_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    text = f"--extra-index-url {index_server.url}\nlib==1.0\n"
    reason = fallback(run(tmp_path, text, index_server.url))
    assert (
        reason
        == f"{tmp_path / 'requirements.txt'}:1 sets --extra-index-url, which only pip can honour"
    )


def test_option_lines_in_an_included_file_fall_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    (tmp_path / "base.txt").write_text("# shared pins\n--only-binary :all:  # wheels only\n")
    text = "-r base.txt\n--require-hashes\nlib==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    reason = fallback(run(tmp_path, text, index_server.url))
    assert reason == f"{tmp_path / 'base.txt'}:2 sets --only-binary, which only pip can honour"


def test_pip_configuration_it_cannot_honour_falls_back(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    result = run(tmp_path, "lib==1.0\n", index_server.url, config={"use-deprecated": "x"})
    assert (
        fallback(result) == "pip's configuration sets 'use-deprecated', which only pip can honour"
    )


def test_pips_format_control_in_its_configuration_picks_the_file(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    dists.sdist("lib", "1.0")
    url = index_server.url
    assert chosen(run(tmp_path, "lib==1.0\n", url)) == {"lib": "lib-1.0-py3-none-any.whl"}
    # The sdist is chosen; its dependencies need a build, which this run() does not offer.
    no_binary = run(tmp_path, "lib==1.0\n", url, config={"no-binary": ":all:"})
    assert fallback(no_binary).startswith("lib-1.0.tar.gz is an sdist whose dependencies")
    # A name beats :all: in the other option, as in pip.
    config = {"no-binary": ":all:", "only-binary": "lib"}
    assert chosen(run(tmp_path, "lib==1.0\n", url, config=config)) == {
        "lib": "lib-1.0-py3-none-any.whl"
    }
    only = run(tmp_path, "lib==1.0\n", url, config={"only-binary": ":all:"})
    assert chosen(only) == {"lib": "lib-1.0-py3-none-any.whl"}


def test_constraints_are_checked_against_the_pins(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("lib", "1.0")
    good = run(tmp_path, "lib==1.0\n", index_server.url, constraints="lib<2\nother==3\n")
    assert chosen(good) == {"lib": "lib-1.0-py3-none-any.whl"}
    bad = fallback(run(tmp_path, "lib==1.0\n", index_server.url, constraints="lib>=2\n"))
    assert bad == f"constraint {tmp_path / 'constraints.txt'}:1 lib>=2 excludes the pin lib==1.0"


# -- which file ---------------------------------------------------------------------------------


def test_best_wheel_for_the_target_is_chosen(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("fast", "1.5", tag="py3-none-any")
    best = dists.wheel("fast", "1.5", tag=BEST)
    dists.wheel("fast", "1.5", tag=WINDOWS)
    dists.sdist("fast", "1.5")
    dists.wheel("fast", "1.6", tag=BEST)
    result = ok(run(tmp_path, "fast==1.5\n", index_server.url))
    (pin,) = result.resolution.pins
    assert (pin.filename, pin.kind, pin.sha256) == (best.name, "wheel", sha256(best))
    assert pin.url == f"{index_server.files_url}{best.name}"


def test_file_excluded_by_requires_python_is_not_chosen(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("fast", "1.5", tag=BEST, requires_python=">=4")
    dists.wheel("fast", "1.5", tag="py3-none-any", requires_python=">=3.8")
    assert chosen(run(tmp_path, "fast==1.5\n", index_server.url)) == {
        "fast": "fast-1.5-py3-none-any.whl"
    }


def test_pinned_hash_picks_the_file_it_names(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    pure = dists.wheel("fast", "1.5", tag="py3-none-any")
    dists.wheel("fast", "1.5", tag=BEST)
    text = f"fast==1.5 --hash=sha256:{sha256(pure)}\n"
    assert chosen(run(tmp_path, text, index_server.url)) == {"fast": pure.name}


# -- a PEP 691 JSON index ------------------------------------------------------------------------


class _JsonIndex(ThreadingHTTPServer):
    """Serves PEP 691 JSON project pages (only to clients that ask for JSON), with yanked files."""

    daemon_threads = True

    def __init__(self, root: Path, yanked: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.root = root
        self.yanked = yanked
        self.accepts: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/simple/"


class _JsonHandler(BaseHTTPRequestHandler):
    server: _JsonIndex

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = unquote(self.path)
        if path.startswith("/files/"):
            body = (self.server.root / path.removeprefix("/files/")).read_bytes()
            content_type = "application/octet-stream"
        else:
            self.server.accepts.append(self.headers.get("Accept", ""))
            if "application/vnd.pypi.simple.v1+json" not in self.headers.get("Accept", ""):
                self.send_error(406)
                return
            name = path.removeprefix("/simple/").strip("/")
            files = [
                {
                    "filename": p.name,
                    "url": f"/files/{p.name}",
                    "hashes": {"sha256": sha256(p)},
                    "requires-python": _requires_python(p),
                    "yanked": "broken" if p.name in self.server.yanked else False,
                }
                for p in sorted(self.server.root.iterdir())
                if canonicalize_name(p.name.split("-")[0]) == name
            ]
            body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files})
            body = body.encode()
            content_type = "application/vnd.pypi.simple.v1+json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def json_index(dists: DistFactory) -> Iterator[_JsonIndex]:
    server = _JsonIndex(dists.root, set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_json_index_is_read_and_yanked_files_are_avoided(
    tmp_path: Path, dists: DistFactory, json_index: _JsonIndex
) -> None:
    best = dists.wheel("fast", "1.5", tag=BEST, requires=["lib==1.0"])
    pure = dists.wheel("fast", "1.5", tag="py3-none-any", requires=["lib==1.0"])
    lib = dists.wheel("lib", "1.0")
    json_index.yanked.add(best.name)
    result = ok(run(tmp_path, "fast==1.5\nlib==1.0\n", json_index.url))
    assert chosen(result) == {"fast": pure.name, "lib": lib.name}
    # Plain HTML is asked first (the smallest answer); this JSON-only index says 406, and the
    # page is asked again with pip's header, JSON first.
    plain = [a for a in json_index.accepts if a == "text/html"]
    pips = [a for a in json_index.accepts if a.startswith("application/vnd.pypi.simple.v1+json")]
    assert len(plain) == len(pips) == 2  # fast and lib, once each way
    assert len(json_index.accepts) == 4
    # When every file of the pinned version is yanked, pip (and this) still takes the best one.
    json_index.yanked.update({pure.name})
    assert chosen(run(tmp_path, "fast==1.5\nlib==1.0\n", json_index.url))["fast"] == best.name


def test_a_wheel_vendoring_another_dist_info_is_read_by_its_own_metadata(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    vendor_dist_info(dists.wheel("app", "1.0", requires=["lib==1.0"]))
    dists.wheel("lib", "1.0")

    result = ok(run(tmp_path, "app==1.0\nlib==1.0\n", index_server.url))

    assert [p.name for p in result.resolution.pins] == ["app", "lib"]


def test_option_lines_are_read_as_pip_reads_them_with_variables_expanded(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip expands ${VAR} in requirements files: the included file is found, and its option
    # line, continued over two lines, is read.
    dists.wheel("lib", "1.0")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "base.txt").write_text("--only-\\\nbinary :all:\n")
    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "shared"))
    text = "-r ${SHARED_DIR}/base.txt\nlib==1.0\n"
    reason = fallback(run(tmp_path, text, index_server.url))
    assert reason == (
        f"{tmp_path / 'shared' / 'base.txt'}:1 sets --only-binary, which only pip can honour"
    )


def test_harmless_option_lines_through_a_variable_keep_the_fast_path(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "1.0", tag=BEST)
    (tmp_path / "base.txt").write_text("--prefer-binary\n--pre\n")
    monkeypatch.setenv("BASE", "base.txt")
    result = ok(run(tmp_path, "-r ${BASE}\nlib==1.0\n", index_server.url))
    assert [p.name for p in result.resolution.pins] == ["lib"]


# -- pages without hashes ------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
UNHASHED = (
    "the index gave no sha256 for: {files}; their hashes were computed from the downloaded bytes"
)


def _pages_without_hashes(index: IndexServer) -> Intercept:
    """Project pages as a simple directory server gives them: links with no sha256."""

    def hook(path: str, headers: Mapping[str, str]) -> Answer | None:
        if not path.startswith("/simple/") or path.count("/") != 3:
            return None
        project = path.split("/")[2]
        links = "".join(
            f'<a href="../../files/{f.name}">{f.name}</a><br>\n'
            for f in sorted(index.root.iterdir())
            if canonicalize_name(f.name.split("-", 1)[0]) == project
        )
        body = f"<!DOCTYPE html><html><body>{links}</body></html>\n".encode()
        return 200, {"Content-Type": "text/html"}, body

    return hook


@pytest.mark.parametrize("requirements", ["alpha==1.0\nbeta==1.0\n", "alpha\n"])
def test_files_from_a_page_without_hashes_are_taken_with_one_warning(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli, requirements: str
) -> None:
    """Issue 22 row 13: the README said every file is checked against the index's sha256,
    while a page without hashes made the build lock whatever arrived, without a word."""
    alpha = dists.wheel("alpha", "1.0", requires=["beta"])
    beta = dists.wheel("beta", "1.0")
    index_server.intercept(_pages_without_hashes(index_server))
    (tmp_path / "requirements.txt").write_text(requirements)
    out = tmp_path / "out"

    result = cli("build", "-r", tmp_path / "requirements.txt", "-o", out, "-i", index_server.url)

    assert result.exit_code == 0, result.stderr
    files = f"{alpha.name}, {beta.name}"
    warning = "warning: " + UNHASHED.format(files=files)
    assert [line for line in result.stderr.splitlines() if "sha256" in line] == [warning]
    # The lock holds the hashes of the bytes that arrived, which are the index's files.
    lock = (out / "requirements.txt").read_text(encoding="utf-8")
    assert f"--hash=sha256:{sha256(alpha)}" in lock
    assert f"--hash=sha256:{sha256(beta)}" in lock
    # The README says what the build does, in the words it prints.
    readme = " ".join(README.read_text(encoding="utf-8").split())
    assert f"`{UNHASHED.format(files='FILES')}`" in readme
    # Not the claims it made before (the mirror's, which skips such files, is true).
    assert "(checking each against the index's sha256)" not in readme
    assert "Every downloaded file is checked against the index's sha256 and" not in readme


def test_a_page_with_hashes_gives_no_warning(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    dists.wheel("alpha", "1.0")
    (tmp_path / "requirements.txt").write_text("alpha==1.0\n")
    out = tmp_path / "out"
    result = cli("build", "-r", tmp_path / "requirements.txt", "-o", out, "-i", index_server.url)
    assert result.exit_code == 0, result.stderr
    assert "sha256" not in result.stderr
