"""The test infrastructure itself: dists are real, the index is honest, isolation holds."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import types
import urllib.request
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version
from pytest_socket import SocketConnectBlockedError

from tests.support.dists import BUILD_FAILURE_LINE, DistFactory, make_sdist, make_wheel
from tests.support.files import sha256_of as _sha256
from tests.support.fixtures import (
    PYPI_PROBE_URL,
    Cli,
    MakeVenv,
    Offline,
    RunPip,
    _host_ca_bundle,
    isolate_environment,
)
from tests.support.httpget import get
from tests.support.server import IndexServer
from tests.support.tmpguard import TmpGuard

# One raw request: no redirect followed.
_get = functools.partial(get, redirects=False)


def _anchors(page: bytes) -> dict[str, tuple[str, str | None]]:
    """filename -> (href, data-requires-python as written in the HTML) of a project page."""
    found = {}
    for match in re.finditer(
        r'<a href="([^"]+)"( data-requires-python="([^"]*)")?>([^<]+)</a>', page.decode()
    ):
        found[match.group(4)] = (match.group(1), match.group(3))
    return found


def _extract(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


# -- wheels ----------------------------------------------------------------------------------


def test_wheel_follows_the_binary_distribution_format(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "Foo.Bar_baz",
        "1.0.0-RC1",
        requires=["dep>=1"],
        requires_python=">=3.8",
        extras={"Fast_JSON": ['ujson>=5; python_version >= "3.8"']},
    )

    assert wheel.name == "foo_bar_baz-1.0.0rc1-py3-none-any.whl"
    name, version, _, tags = parse_wheel_filename(wheel.name)
    assert (name, version) == ("foo-bar-baz", Version("1.0.0rc1"))
    assert {str(t) for t in tags} == {"py3-none-any"}
    with zipfile.ZipFile(wheel) as archive:
        assert archive.namelist() == [
            "foo_bar_baz/__init__.py",
            "foo_bar_baz-1.0.0rc1.dist-info/METADATA",
            "foo_bar_baz-1.0.0rc1.dist-info/WHEEL",
            "foo_bar_baz-1.0.0rc1.dist-info/RECORD",
        ]
        assert archive.read("foo_bar_baz/__init__.py") == b'__version__ = "1.0.0-RC1"\n'
        metadata = HeaderParser().parsestr(
            archive.read("foo_bar_baz-1.0.0rc1.dist-info/METADATA").decode()
        )
        wheel_file = archive.read("foo_bar_baz-1.0.0rc1.dist-info/WHEEL").decode()
        record = archive.read("foo_bar_baz-1.0.0rc1.dist-info/RECORD").decode()
        contents = {n: archive.read(n) for n in archive.namelist()}

    assert metadata["Metadata-Version"] == "2.1"
    assert metadata["Name"] == "Foo.Bar_baz"
    assert metadata["Version"] == "1.0.0rc1"
    assert metadata["Requires-Python"] == ">=3.8"
    assert metadata.get_all("Provides-Extra") == ["fast-json"]
    assert metadata.get_all("Requires-Dist") == [
        "dep>=1",
        'ujson>=5; (python_version >= "3.8") and extra == "fast-json"',
    ]
    assert wheel_file.splitlines() == [
        "Wheel-Version: 1.0",
        "Generator: wheelhouse-tests",
        "Root-Is-Purelib: true",
        "Tag: py3-none-any",
    ]
    rows = [line.split(",") for line in record.splitlines()]
    assert rows[-1] == ["foo_bar_baz-1.0.0rc1.dist-info/RECORD", "", ""]
    assert [path for path, _, _ in rows[:-1]] == list(contents)[:-1]
    for path, digest, size in rows[:-1]:
        data = contents[path]
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(data)), path


def test_platform_wheel_lists_every_expanded_tag(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "native", "2", tag="cp311.cp312-abi3-manylinux_2_28_x86_64")

    with zipfile.ZipFile(wheel) as archive:
        wheel_file = archive.read("native-2.dist-info/WHEEL").decode()
    assert wheel.name == "native-2-cp311.cp312-abi3-manylinux_2_28_x86_64.whl"
    assert "Root-Is-Purelib: false" in wheel_file.splitlines()
    assert [line for line in wheel_file.splitlines() if line.startswith("Tag:")] == [
        "Tag: cp311-abi3-manylinux_2_28_x86_64",
        "Tag: cp312-abi3-manylinux_2_28_x86_64",
    ]


def test_dists_are_byte_for_byte_reproducible(tmp_path: Path) -> None:
    first = DistFactory(tmp_path / "a")
    second = DistFactory(tmp_path / "b")
    pairs = [
        (factory.wheel("pkg", "1.0", requires=["dep"]), factory.sdist("pkg", "1.0", fail=True))
        for factory in (first, second)
    ]

    assert [_sha256(p) for p in pairs[0]] == [_sha256(p) for p in pairs[1]]
    assert first.wheel("pkg", "1.1").read_bytes() != first.wheel("pkg", "1.0").read_bytes()


# -- sdists ----------------------------------------------------------------------------------


def test_sdist_layout(tmp_path: Path) -> None:
    sdist = make_sdist(
        tmp_path,
        "My.Pkg",
        "2.0",
        requires=["dep"],
        requires_python=">=3.9",
        build_requires=["tiny-helper>=1"],
    )

    assert sdist.name == "my_pkg-2.0.tar.gz"
    assert parse_sdist_filename(sdist.name) == ("my-pkg", Version("2.0"))
    with tarfile.open(sdist) as archive:
        assert sorted(archive.getnames()) == [
            "my_pkg-2.0/PKG-INFO",
            "my_pkg-2.0/_backend/tiny_backend.py",
            "my_pkg-2.0/my_pkg/__init__.py",
            "my_pkg-2.0/pyproject.toml",
        ]
        pyproject = archive.extractfile("my_pkg-2.0/pyproject.toml").read().decode()  # type: ignore[union-attr]
        pkg_info = archive.extractfile("my_pkg-2.0/PKG-INFO").read().decode()  # type: ignore[union-attr]
    assert pyproject.splitlines() == [
        "[build-system]",
        'requires = ["tiny-helper>=1"]',
        'build-backend = "tiny_backend"',
        'backend-path = ["_backend"]',
    ]
    headers = HeaderParser().parsestr(pkg_info)
    assert (headers["Name"], headers["Version"]) == ("My.Pkg", "2.0")
    assert headers["Requires-Python"] == ">=3.9"
    assert headers.get_all("Requires-Dist") == ["dep"]


def test_made_sdist_reads_back_like_a_real_one(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "x", "1")
    with tarfile.open(fileobj=io.BytesIO(sdist.read_bytes())) as archive:
        members = archive.getmembers()
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(315532800, 0, 0, 0o644)}


# `build` in isolation makes a fresh venv and installs the build-system requires into it with
# the outer pip; the requires list is empty, so nothing is installed and nothing is downloaded.
# That is closer to how wheelhouse builds than --no-isolation (which would build against our own
# environment), and running it in a network namespace proves no download was needed.
def test_sdist_builds_with_build_without_network(
    dists: DistFactory, tmp_path: Path, offline: Offline
) -> None:
    source = _extract(dists.sdist("Tiny.Pkg", "1.2", requires=["dep>=1"]), tmp_path / "src")
    out = tmp_path / "out"

    proc = subprocess.run(
        offline([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.iterdir()
    assert wheel.name == "tiny_pkg-1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("tiny_pkg/__init__.py") == b'__version__ = "1.2"\n'
        metadata = HeaderParser().parsestr(archive.read("tiny_pkg-1.2.dist-info/METADATA").decode())
        assert (
            archive.read("tiny_pkg-1.2.dist-info/RECORD")
            .decode()
            .endswith("tiny_pkg-1.2.dist-info/RECORD,,\n")
        )
    assert metadata.get_all("Requires-Dist") == ["dep>=1"]


def test_failing_sdist_fails_with_its_marker_line(dists: DistFactory, tmp_path: Path) -> None:
    source = _extract(dists.sdist("broken", "0.1", fail=True), tmp_path / "src")

    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "out"), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 1, proc.stderr
    assert BUILD_FAILURE_LINE in proc.stderr.splitlines()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- the index server ------------------------------------------------------------------------


def test_server_pages_advertise_the_true_hash_and_requires_python(
    dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("Pkg_A", "1.0", requires_python=">=3.8,<4")
    sdist = dists.sdist("pkg-a", "1.0")

    status, headers, page = _get(index_server.url + "pkg-a/")

    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    links = _anchors(page)
    assert set(links) == {wheel.name, sdist.name}
    href, requires_python = links[wheel.name]
    assert requires_python == "&gt;=3.8,&lt;4"
    assert links[sdist.name][1] is None
    assert href == f"../../files/{wheel.name}#sha256={_sha256(wheel)}"
    file_url = urllib.request.urljoin(index_server.url + "pkg-a/", href.split("#")[0])
    assert file_url == index_server.files_url + wheel.name
    status, _, served = _get(file_url)
    assert status == 200
    assert served == wheel.read_bytes()
    assert index_server.requests == ["/simple/pkg-a/", f"/files/{wheel.name}"]


def test_server_rescans_and_lists_projects(dists: DistFactory, index_server: IndexServer) -> None:
    assert _get(index_server.url + "late/")[0] == 404
    dists.wheel("late", "1.0")
    (dists.root / "notes.txt").write_text("not a dist")

    status, _, root_page = _get(index_server.url)

    assert status == 200
    assert re.findall(r'<a href="([^"]+)">', root_page.decode()) == ["late/"]
    assert _get(index_server.url + "late/")[0] == 200
    assert _get(index_server.files_url + "notes.txt")[0] == 404
    assert _get(index_server.files_url + "missing-1.0-py3-none-any.whl")[0] == 404


def test_server_redirects_non_normalized_names(
    dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("foo-bar", "1.0")

    for path in ("Foo_Bar/", "foo.bar/", "foo-bar"):
        status, headers, _ = _get(index_server.url + path)
        assert (status, headers["Location"]) == (301, "/simple/foo-bar/"), path
    assert _get(index_server.url + "foo-bar/")[0] == 200
    # urllib follows the redirect to the same page pip would land on
    with urllib.request.urlopen(index_server.url + "Foo.Bar/", timeout=5) as response:
        assert response.url == index_server.url + "foo-bar/"


def test_corrupt_serves_other_bytes_under_the_advertised_hash(
    dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("pkg", "1.0")
    index_server.corrupt(wheel.name)

    _, _, page = _get(index_server.url + "pkg/")
    _, _, served = _get(index_server.files_url + wheel.name)

    assert _anchors(page)[wheel.name][0].endswith(f"#sha256={_sha256(wheel)}")
    assert len(served) == len(wheel.read_bytes())
    assert hashlib.sha256(served).hexdigest() != _sha256(wheel)
    index_server.clear_hooks()
    assert _get(index_server.files_url + wheel.name)[2] == wheel.read_bytes()


def test_fail_injects_an_http_error_by_prefix(
    dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("pkg", "1.0")
    index_server.fail("/files/")
    index_server.fail("/simple/pkg/", status=503)

    assert _get(index_server.files_url + wheel.name)[0] == 500
    assert _get(index_server.url + "pkg/")[0] == 503
    assert _get(index_server.url)[0] == 200
    index_server.clear_hooks()
    assert _get(index_server.files_url + wheel.name)[0] == 200


def test_server_stops_cleanly(tmp_path: Path) -> None:
    with IndexServer(tmp_path) as server:
        port = server.port
        assert _get(server.url)[0] == 200

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# -- isolation -------------------------------------------------------------------------------


def test_env_is_scrubbed(tmp_path: Path) -> None:
    assert "PIP_FIND_LINKS" not in os.environ
    assert "VIRTUAL_ENV" not in os.environ
    assert sorted(k for k in os.environ if k.startswith(("PIP_", "UV_"))) == [
        "PIP_CONFIG_FILE",
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_NO_INPUT",
    ]
    assert os.environ["PIP_CONFIG_FILE"] == os.devnull
    assert os.environ["XDG_CACHE_HOME"] == str(tmp_path / "xdg-cache")
    assert os.environ["WHEELHOUSE_CACHE_DIR"] == str(tmp_path / "wh-cache")


def test_each_test_has_a_temporary_directory_of_its_own(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    temp = Path(os.environ["TMPDIR"])
    assert tempfile.gettempdir() == str(temp)
    assert temp.parent == tmp_path_factory.getbasetemp()
    assert list(temp.iterdir()) == []
    code = "import tempfile; print(tempfile.gettempdir())"
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert child.stdout == f"{temp}\n"


def test_the_guard_names_what_would_write_to_tmp(_session_tmpdir: TmpGuard) -> None:
    bare = {"PATH": os.environ["PATH"]}
    subprocess.run([sys.executable, "-c", "pass"], env=bare, timeout=60, check=True)
    subprocess.run([sys.executable, "-c", "pass"], timeout=60, check=True)  # this test's TMPDIR
    _session_tmpdir._hook("tempfile.mkdtemp", ("/tmp/wheelhouse-x",))  # not made: only told
    _session_tmpdir._hook("tempfile.mkstemp", (os.path.join(os.environ["TMPDIR"], "f"),))

    assert _session_tmpdir.take() == [
        f"a process started with TMPDIR=None: {sys.executable} -c pass",
        "tempfile.mkdtemp made '/tmp/wheelhouse-x'",
    ]
    assert _session_tmpdir.take() == []


def test_isolation_removes_whatever_the_machine_sets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Proves the scrub itself, on machines whose environment has no PIP_* to begin with.
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "https://example.invalid/simple")
    monkeypatch.setenv("UV_INDEX_URL", "https://example.invalid/simple")
    monkeypatch.setenv("VIRTUAL_ENV", "/somewhere")

    isolate_environment(monkeypatch, tmp_path)

    for key in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "UV_INDEX_URL", "VIRTUAL_ENV"):
        assert key not in os.environ


def test_pip_sees_no_configuration() -> None:
    # This machine has a global pip.conf and PIP_* variables; pip must see none of them.
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        ":env:.config-file='/dev/null'",
        ":env:.disable-pip-version-check='1'",
        ":env:.no-input='1'",
    ]


def test_in_process_sockets_reach_only_loopback(index_server: IndexServer) -> None:
    assert _get(index_server.url)[0] == 200

    with (
        pytest.raises(SocketConnectBlockedError),
        pytest.warns(UserWarning, match="socket.socket.connect"),
    ):
        # TEST-NET-1: never routable, so if the guard failed this would time out, not connect
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def test_offline_has_no_network_not_even_loopback(
    index_server: IndexServer, offline: Offline
) -> None:
    probe = [
        sys.executable,
        "-c",
        "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 2)",
        str(index_server.port),
    ]

    online = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    cut_off = subprocess.run(
        offline(probe), capture_output=True, text=True, timeout=30, check=False
    )

    assert online.returncode == 0, online.stderr  # the probe itself works
    assert cut_off.returncode == 1, cut_off.stderr
    # Even loopback is down in the new namespace: the connect fails at once, it is not refused.
    assert cut_off.stderr.splitlines()[-1] == "OSError: [Errno 101] Network is unreachable"
    assert offline(["true"])[-1] == "true"


@pytest.mark.network
def test_network_tests_reach_the_real_index() -> None:
    # Runs only when the probe got through; proves network tests get sockets and a CA bundle.
    request = urllib.request.Request(PYPI_PROBE_URL, method="HEAD")
    import ssl

    context = ssl.create_default_context(cafile=_host_ca_bundle())
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        assert response.status == 200


# -- the CLI fixture ---------------------------------------------------------------------------


def test_cli_fixture_captures_output_and_exit_code(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def main(argv: list[str]) -> int:
        seen.append(argv)
        print("to stdout")
        print("error: to stderr", file=sys.stderr)
        return 3

    fake = types.ModuleType("wheelhouse.cli")
    fake.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wheelhouse.cli", fake)
    print("printed by the test before the CLI ran")

    result = cli("build", Path("req.txt"))

    assert result.exit_code == 3
    assert result.stdout == "to stdout\n"
    assert result.stderr == "error: to stderr\n"
    assert seen == [["build", "req.txt"]]


# -- venvs and pip end to end ----------------------------------------------------------------


@pytest.mark.slow
def test_made_wheels_install_with_plain_pip_from_the_server(
    dists: DistFactory, index_server: IndexServer, make_venv: MakeVenv
) -> None:
    dists.wheel("App", "1.0", requires=["helper-lib>=2"])
    dists.wheel("helper_lib", "1.0")
    dists.wheel("helper_lib", "2.0")
    dists.wheel("helper_lib", "3.0", requires_python="<3")  # never for this interpreter
    python = make_venv()

    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--index-url", index_server.url, "app"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import app, helper_lib; print(app.__version__, helper_lib.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.stdout.split() == ["1.0", "2.0"], check.stderr
    assert "/simple/app/" in index_server.requests
    assert "/files/helper_lib-3.0-py3-none-any.whl" not in index_server.requests


@pytest.mark.slow
def test_newest_pip_builds_an_sdist_from_the_server_and_rejects_a_corrupt_file(
    dists: DistFactory, index_server: IndexServer, make_venv: MakeVenv, run_newest_pip: RunPip
) -> None:
    sdist = dists.sdist("from-source", "0.3")
    dists.wheel("tampered", "1.0")
    python = make_venv("bare", with_pip=False)
    assert not (python.parent / "pip").exists()

    built = run_newest_pip(python, "install", "--index-url", index_server.url, "from-source")
    index_server.corrupt("tampered-1.0-py3-none-any.whl")
    rejected = run_newest_pip(python, "install", "--index-url", index_server.url, "tampered")

    assert built.returncode == 0, built.stdout + built.stderr
    assert f"/files/{sdist.name}" in index_server.requests
    listed = run_newest_pip(python, "list", "--format=freeze")
    assert "from-source==0.3" in listed.stdout.splitlines()
    assert rejected.returncode == 1, rejected.stderr
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in rejected.stderr
