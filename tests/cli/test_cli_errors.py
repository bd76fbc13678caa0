"""`wheelhouse build` on bad input: the exit code, one `error:` line, and the old DIR untouched."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from tests.support.dists import BUILD_FAILURE_LINE, DistFactory
from tests.support.files import Entry
from tests.support.files import entries as snapshot
from tests.support.fixtures import Cli, Result, built_wheelhouse
from tests.support.process import clean_env, free_ports, run_command, wheelhouse_argv
from tests.support.server import IndexServer, _corrupted
from wheelhouse import __version__
from wheelhouse.errors import ExitCode
from wheelhouse.house.manifest import MANIFEST_NAME

REQUIREMENTS_HINT = "fix the line: requirements use pip's syntax (PEP 508, e.g. 'requests>=2.31')"
NETWORK_HINT = "check the network, the index URL and pip's proxy and cert settings"

# -- an existing wheelhouse, and proof that a failed run leaves it alone ----------------------

Snapshot = dict[str, Entry]


@pytest.fixture(scope="module")
def seeded_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real wheelhouse, built once per module; tests get a copy (see ``existing``)."""
    out = built_wheelhouse(
        tmp_path_factory.mktemp("seed"), "seeded\n", lambda dists: dists.wheel("seeded", "1.0")
    )
    assert (out / MANIFEST_NAME).is_file()
    assert (out / "seeded-1.0-py3-none-any.whl").is_file()
    return out


@dataclass(frozen=True)
class Existing:
    """A wheelhouse DIR from an earlier build, and what it held before this test's run."""

    path: Path
    before: Snapshot

    def assert_untouched(self) -> None:
        assert snapshot(self.path) == self.before
        # Nothing half-published beside it either (the lock file may stay).
        assert sorted(os.listdir(self.path.parent)) in (
            [self.path.name],
            sorted([self.path.name, f".{self.path.name}.lock"]),
        )


@pytest.fixture
def existing(seeded_wheelhouse: Path, tmp_path: Path) -> Existing:
    out = tmp_path / "out" / "wheelhouse"
    shutil.copytree(seeded_wheelhouse, out, symlinks=True)
    return Existing(out, snapshot(out))


@pytest.fixture
def req(tmp_path: Path) -> Path:
    """Where a test writes its requirements file."""
    return tmp_path / "requirements.txt"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_fails(
    result: Result,
    code: int,
    error: str | re.Pattern[str],
    hint: str | re.Pattern[str] | None = None,
    *,
    only_progress_besides: bool = True,
    build_log: bool = False,
) -> str:
    """The run exited with ``code`` and said ``error:`` once, without a traceback.

    ``error`` and ``hint`` are the exact text after ``error: `` / ``hint: `` (or a pattern it
    must fully match). Unless ``only_progress_besides`` is false, every other line on stderr is
    wheelhouse's own progress (``wheelhouse: ...``), so nothing else leaks out. With
    ``build_log``, indented lines (a build log quoted as context, which may hold the backend's
    own traceback) are allowed too.
    """
    assert result.exit_code == code, result.stderr
    lines = result.stderr.splitlines()
    if build_log:
        lines = [line for line in lines if not line.startswith((" ", "\t"))]
    assert "Traceback" not in "\n".join(lines) + result.stdout
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    if isinstance(error, re.Pattern):
        assert error.fullmatch(errors[0]), errors[0]
    else:
        assert errors[0] == error
    hints = [line.removeprefix("hint: ") for line in lines if line.startswith("hint:")]
    if hint is not None:
        assert len(hints) == 1, result.stderr
        if isinstance(hint, re.Pattern):
            assert hint.fullmatch(hints[0]), hints[0]
        else:
            assert hints[0] == hint
    if only_progress_besides:
        others = [
            line
            for line in lines
            if line.strip() and not line.startswith(("error: ", "hint: ", "wheelhouse: "))
        ]
        assert others == [], result.stderr
    return errors[0]


def packaging_says(text: str) -> str:
    """The first line of packaging's own complaint about a requirement string."""
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        return str(exc).splitlines()[0]
    raise AssertionError(f"{text!r} is a valid requirement")


def build(cli: Cli, req: Path, out: Path, index_url: str, *extra: str) -> Result:
    return cli("build", "-r", req, "-o", out, "--index-url", index_url, *extra)


# -- help and version ------------------------------------------------------------------------


def _exit_codes_in(text: str) -> dict[int, str]:
    flat = " ".join(text.split())
    match = re.search(r"Exit codes: (.*?\.)(?: [A-Z]|$)", flat)
    assert match, text
    pairs = re.findall(r"(\d+) ([^;.]+)[;.]", match[1])
    return {int(code): meaning for code, meaning in pairs}


@pytest.mark.parametrize("argv", [["--help"], ["build", "--help"]], ids=" ".join)
def test_help_documents_every_exit_code(cli: Cli, argv: list[str]) -> None:
    result = cli(*argv)
    assert result.exit_code == ExitCode.OK
    codes = _exit_codes_in(result.stdout)
    documented = {v for k, v in vars(ExitCode).items() if k.isupper()}
    assert set(codes) == documented | {130}
    assert codes[ExitCode.INTEGRITY] == "hash mismatch or tampered wheelhouse"
    assert codes[ExitCode.BUILD] == "sdist build failed"
    assert codes[ExitCode.OUTPUT] == "output directory unusable"


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        f"wheelhouse {__version__}\n",
        "",
    )


def test_missing_requirement_option_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("build", "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.USAGE
    assert "Missing option '-r' / '--requirement'" in result.stderr
    assert not (tmp_path / "out").exists()


# -- the requirements file -------------------------------------------------------------------


def test_missing_requirements_file(cli: Cli, req: Path, existing: Existing) -> None:
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"requirements file {str(req)!r} does not exist",
        "check the path",
    )
    existing.assert_untouched()


def test_directory_as_requirements_file(cli: Cli, tmp_path: Path, existing: Existing) -> None:
    # Also the "unreadable" case that holds for root, who can read any chmod 000 file.
    folder = tmp_path / "reqs"
    folder.mkdir()
    result = build(cli, folder, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"requirements file {str(folder)!r} is a directory",
        "pass a requirements file, e.g. -r requirements.txt",
    )
    existing.assert_untouched()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root reads a chmod 000 file anyway; test_directory_as_requirements_file covers "
    "a path that cannot be read as a file",
)
def test_unreadable_requirements_file(cli: Cli, req: Path, existing: Existing) -> None:
    _write(req, "alpha\n").chmod(0)
    try:
        result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    finally:
        req.chmod(0o644)
    assert_fails(
        result, ExitCode.INPUT, f"requirements file {str(req)!r} cannot be read (permission denied)"
    )
    existing.assert_untouched()


def test_unparsable_line_is_reported_as_file_and_line(
    cli: Cli, req: Path, existing: Existing
) -> None:
    _write(req, "# header\nalpha\nthis is not valid!!\n")
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"{req}:3: invalid requirement 'this is not valid!!': "
        + packaging_says("this is not valid!!"),
        REQUIREMENTS_HINT,
    )
    existing.assert_untouched()


def test_unparsable_line_in_a_nested_file_names_that_file(
    cli: Cli, tmp_path: Path, req: Path, existing: Existing
) -> None:
    inner = _write(tmp_path / "inner.txt", "beta\n\nalpha ==\n")
    _write(req, "-r inner.txt\n")
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"{inner}:3: invalid requirement 'alpha ==': " + packaging_says("alpha =="),
        REQUIREMENTS_HINT,
    )
    existing.assert_untouched()


def test_bad_option_line(cli: Cli, req: Path, existing: Existing) -> None:
    _write(req, "alpha\n--no-such-option\n")
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"{req}:2: invalid option line '--no-such-option' (no such option: --no-such-option)",
        REQUIREMENTS_HINT,
        only_progress_besides=False,
    )
    existing.assert_untouched()


def test_bad_option_line_is_reported_as_file_and_line_and_nothing_else(
    cli: Cli, req: Path, existing: Existing
) -> None:
    _write(req, "alpha\n--no-such-option\n")
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"{req}:2: invalid option line '--no-such-option' (no such option: --no-such-option)",
    )


def test_editable_line_is_refused(cli: Cli, req: Path, existing: Existing) -> None:
    _write(req, "alpha\n-e ./src/project\n")
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"{req}:2: editable requirement './src/project' cannot go in a wheelhouse",
        "build a wheel or sdist of the project and require it by name or path",
    )
    existing.assert_untouched()


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n\n"], ids=["empty", "comments"])
def test_file_without_requirements(cli: Cli, req: Path, existing: Existing, text: str) -> None:
    _write(req, text)
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"no requirements in {str(req)!r}",
        "add at least one requirement line, e.g. 'requests>=2.31'",
    )
    existing.assert_untouched()


def test_file_that_is_not_utf8(cli: Cli, req: Path, existing: Existing) -> None:
    req.write_bytes(b"alpha  # caf\xe9\n")
    result = build(cli, req, existing.path, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.INPUT,
        f"{req}: cannot be decoded (invalid continuation byte at byte 12); save it as UTF-8",
    )
    existing.assert_untouched()


# -- resolution ------------------------------------------------------------------------------


def test_project_that_does_not_exist(
    cli: Cli, req: Path, existing: Existing, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("alpha", "1.0")
    _write(req, "alpha\nnosuchproject\n")
    result = build(cli, req, existing.path, index_server.url)
    assert_fails(
        result,
        ExitCode.RESOLUTION,
        "no distribution found for 'nosuchproject' on the configured indexes",
        "check the project name, and --index-url/--extra-index-url/--find-links",
    )
    existing.assert_untouched()


def test_no_version_satisfies_lists_the_versions(
    cli: Cli, req: Path, existing: Existing, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("alpha", "1.0")
    dists.wheel("alpha", "2.0")
    _write(req, "alpha>=3\n")
    result = build(cli, req, existing.path, index_server.url)
    assert_fails(
        result,
        ExitCode.RESOLUTION,
        "no version of 'alpha>=3' is available (versions found: 1.0, 2.0)",
        "relax the version specifier, or add --pre for pre-releases",
    )
    existing.assert_untouched()


def test_conflicting_requirements_are_condensed_to_the_conflict(
    cli: Cli, req: Path, existing: Existing, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("shared", "1.0")
    dists.wheel("shared", "2.0")
    dists.wheel("left", "1.0", requires=["shared==1.0"])
    dists.wheel("right", "1.0", requires=["shared==2.0"])
    _write(req, "left\nright\n")
    result = build(cli, req, existing.path, index_server.url)
    assert_fails(
        result,
        ExitCode.RESOLUTION,
        f"conflicting requirements: 'left' ({req}:1) and 'right' ({req}:2) "
        "(left 1.0 depends on shared==1.0; right 1.0 depends on shared==2.0)",
        "loosen one of the pins above so that they can agree",
    )
    existing.assert_untouched()


# -- integrity -------------------------------------------------------------------------------


def test_hash_in_the_requirements_that_does_not_match(
    cli: Cli, req: Path, existing: Existing, dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    actual = index_server.dists()["alpha"][0].sha256
    zeros = "0" * 64
    _write(req, f"alpha==1.0 --hash=sha256:{zeros}\n")
    result = build(cli, req, existing.path, index_server.url)
    # A fully pinned input takes the fast path, where wheelhouse checks the pinned hash itself.
    assert_fails(
        result,
        ExitCode.INTEGRITY,
        f"{wheel.name} (alpha==1.0) has sha256 {actual}, which is not among the hashes the "
        f"requirements pin: {zeros}",
        "the pinned hash is for another file or release; regenerate the pins "
        "(e.g. pip-compile --generate-hashes) if the change is expected",
    )
    existing.assert_untouched()


def test_corrupted_file_on_the_index_publishes_nothing(
    cli: Cli,
    req: Path,
    tmp_path: Path,
    existing: Existing,
    dists: DistFactory,
    index_server: IndexServer,
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    dists.wheel("beta", "1.0")
    expected = index_server.dists()["alpha"][0].sha256
    index_server.corrupt(wheel.name)
    _write(req, "beta\nalpha\n")
    result = build(cli, req, existing.path, index_server.url)
    served = hashlib.sha256(_corrupted(wheel.read_bytes())).hexdigest()
    url = f"{index_server.files_url}{wheel.name}#sha256={expected}"
    assert_fails(
        result,
        ExitCode.INTEGRITY,
        f"hash mismatch for alpha from {url}: expected sha256 {expected}, got {served}",
    )
    existing.assert_untouched()
    cached = [p.name for p in (tmp_path / "wh-cache").rglob("*") if p.is_file()]
    assert wheel.name not in cached


def test_corrupted_file_never_creates_the_wheelhouse(
    cli: Cli, req: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.corrupt(wheel.name)
    _write(req, "alpha\n")
    out = tmp_path / "out" / "new"
    result = build(cli, req, out, index_server.url)
    assert result.exit_code == ExitCode.INTEGRITY
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] in ([], [".new.lock"])


# -- building sdists -------------------------------------------------------------------------


def test_sdist_build_failure(
    cli: Cli, req: Path, existing: Existing, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("alpha", "1.0")
    dists.sdist("broken", "1.0", fail=True)
    _write(req, "alpha\nbroken\n")
    result = build(cli, req, existing.path, index_server.url)
    assert_fails(
        result,
        ExitCode.BUILD,
        "building a wheel from broken-1.0.tar.gz (broken 1.0) failed",
        "the build needs a C compiler or system headers: install them (e.g. build-essential and "
        "python3-dev) or require a version that ships a wheel for this platform",
        build_log=True,
    )
    existing.assert_untouched()


def test_sdist_build_failure_shows_the_end_of_the_build_log(
    cli: Cli, req: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.sdist("broken", "1.0", fail=True)
    _write(req, "broken\n")
    result = build(cli, req, tmp_path / "out", index_server.url)
    assert result.exit_code == ExitCode.BUILD
    assert BUILD_FAILURE_LINE in result.stderr
    # The log is shown as indented context, not as more `error:` lines.
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("error:")]) == 1


# -- the network -----------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that nothing listens on (bound, then closed)."""
    (port,) = free_ports()
    yield port


def test_unreachable_index_is_a_network_error(
    cli: Cli,
    req: Path,
    existing: Existing,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One retry (no back-off before it): the index is found dead by our probe, not pip.
    monkeypatch.setenv("PIP_RETRIES", "1")
    _write(req, "alpha\n")
    url = f"http://127.0.0.1:{closed_port}/simple/"
    result = build(cli, req, existing.path, url)
    assert_fails(
        result,
        ExitCode.NETWORK,
        re.compile(
            re.escape(f"cannot reach http://127.0.0.1:{closed_port}/simple/: ")
            + ".*Connection refused.*"
        ),
        NETWORK_HINT,
    )
    existing.assert_untouched()


@pytest.mark.parametrize("command", ["build", "mirror", "audit fetch"])
def test_unreachable_server_is_named_in_words_not_urllib3_reprs(
    command: str, tmp_path: Path, closed_port: int
) -> None:
    # The error line carried urllib3's internals: "_HTTPSPool(host=..., port=443): Max retries
    # exceeded with url: ... (Caused by NewConnectionError("_WatchedHTTPConnection(...): ...".
    base = f"http://127.0.0.1:{closed_port}"
    req = _write(tmp_path / "requirements.txt", "six==1.17.0\n")
    argv, error = {
        "build": (
            ["build", "-r", req, "-o", tmp_path / "out", "-i", f"{base}/simple/"],
            f"error: cannot reach {base}/simple/: ",
        ),
        "mirror": (
            ["mirror", "six", "-o", tmp_path / "out", "-i", f"{base}/simple/"],
            f"error: six: {base}/simple/six/ cannot be reached: ",
        ),
        "audit fetch": (
            ["audit", "fetch", tmp_path, "--url", f"{base}/all.zip", "-o", tmp_path / "x.zip"],
            f"error: cannot download the OSV snapshot from {base}/all.zip: ",
        ),
    }[command]
    env = {**clean_env(tmp_path / "home"), "PIP_RETRIES": "0"}
    result = run_command(wheelhouse_argv(*argv), env=env)

    assert result.returncode == (10 if command == "mirror" else ExitCode.NETWORK), result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert line == error + "Failed to establish a new connection: [Errno 111] Connection refused"


def test_unreachable_index_without_retries_is_a_network_error(
    cli: Cli,
    req: Path,
    existing: Existing,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_RETRIES", "0")
    _write(req, "alpha\n")
    result = build(cli, req, existing.path, f"http://127.0.0.1:{closed_port}/simple/")
    error = assert_fails(result, ExitCode.NETWORK, re.compile("cannot reach .+"), NETWORK_HINT)
    assert f"127.0.0.1:{closed_port}" in error
    existing.assert_untouched()


@pytest.mark.parametrize("retries", ["1", "0"])
def test_unreachable_index_is_an_error_even_when_an_extra_index_answers(
    cli: Cli,
    req: Path,
    existing: Existing,
    closed_port: int,
    dists: DistFactory,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
    retries: str,
) -> None:
    # Offline, pip gives up on the index and resolves from whatever else answers (a mirror's
    # file:// extra index with older releases): the build must fail, not ship stale versions.
    monkeypatch.setenv("PIP_RETRIES", retries)
    dists.wheel("alpha", "1.0")
    _write(req, "alpha\n")
    url = f"http://127.0.0.1:{closed_port}/simple/"
    result = build(cli, req, existing.path, url, "--extra-index-url", index_server.url)
    error = assert_fails(result, ExitCode.NETWORK, re.compile("cannot reach .+"), NETWORK_HINT)
    assert f"127.0.0.1:{closed_port}" in error
    existing.assert_untouched()


# -- the output directory --------------------------------------------------------------------


def test_output_that_is_a_file(cli: Cli, req: Path, tmp_path: Path) -> None:
    _write(req, "alpha\n")
    target = tmp_path / "wheelhouse"
    target.write_bytes(b"precious\n")
    result = build(cli, req, target, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.OUTPUT,
        f"output {str(target)!r} exists and is not a directory",
        "choose another path with -o",
    )
    assert target.read_bytes() == b"precious\n"


def test_output_inside_a_file(cli: Cli, req: Path, tmp_path: Path) -> None:
    _write(req, "alpha\n")
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"precious\n")
    result = build(cli, req, blocker / "wheelhouse", "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.OUTPUT,
        f"cannot create {str(blocker / 'wheelhouse')!r}: {str(blocker)!r} is a file, "
        "not a directory",
        "choose another path with -o",
    )
    assert blocker.read_bytes() == b"precious\n"
    deeper = build(cli, req, blocker / "a" / "b", "http://127.0.0.1:9/simple/")
    assert_fails(
        deeper,
        ExitCode.OUTPUT,
        f"cannot create {str(blocker / 'a' / 'b')!r}: {str(blocker)!r} is a file, not a directory",
        "choose another path with -o",
    )


def test_non_empty_directory_that_is_not_a_wheelhouse(cli: Cli, req: Path, tmp_path: Path) -> None:
    _write(req, "alpha\n")
    target = tmp_path / "project"
    (target / "src").mkdir(parents=True)
    (target / "src" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    (target / "alpha-0.1-py3-none-any.whl").write_bytes(b"not ours\n")
    before = snapshot(target)
    result = build(cli, req, target, "http://127.0.0.1:9/simple/")
    assert_fails(
        result,
        ExitCode.OUTPUT,
        f"output directory {str(target)!r} is not empty and is not a wheelhouse (it has no "
        f"{MANIFEST_NAME}); refusing to write into it",
        "choose an empty or new directory with -o",
    )
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "requirements.txt"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into a read-only directory anyway; test_output_inside_a_file covers "
    "a place that cannot be created",
)
def test_output_in_a_read_only_directory(cli: Cli, req: Path, tmp_path: Path) -> None:
    _write(req, "alpha\n")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = build(cli, req, parent / "wheelhouse", "http://127.0.0.1:9/simple/")
    finally:
        parent.chmod(0o755)
    assert_fails(
        result,
        ExitCode.OUTPUT,
        f"cannot write to {str(parent / 'wheelhouse')!r} (permission denied)",
        "choose a writable location with -o",
    )
    assert list(parent.iterdir()) == []


# -- --debug ---------------------------------------------------------------------------------


def test_debug_shows_the_traceback_too(cli: Cli, req: Path, tmp_path: Path) -> None:
    result = cli("--debug", "build", "-r", req, "-o", tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT
    assert "Traceback (most recent call last):" in result.stderr
    assert result.stderr.splitlines()[-2:] == [
        f"error: requirements file {str(req)!r} does not exist",
        "hint: check the path",
    ]


def test_an_interrupt_is_one_error_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import wheelhouse.pipeline.run
    from wheelhouse.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(wheelhouse.pipeline.run, "build_wheelhouse", interrupted)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n", encoding="utf-8")
    assert main(["build", "-r", str(reqs), "-o", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted"


# -- issue 24: index URLs, sdist hints, --only-binary ----------------------------------------


@pytest.mark.parametrize(
    ("option", "given"),
    [
        ("--index-url", "127.0.0.1:{port}/simple/"),
        ("--extra-index-url", "localhost:{port}/simple/"),
        ("--find-links", "files.example.org/wheels/"),
    ],
)
def test_an_index_url_without_a_scheme_is_a_usage_error_that_suggests_one(
    cli: Cli,
    req: Path,
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
    option: str,
    given: str,
) -> None:
    # pip crashed on such a value ("Exception:", exit 4), or blamed the package.
    dists.wheel("six", "1.17.0")
    _write(req, "six==1.17.0\n")
    value = given.format(port=index_server.port)
    out = tmp_path / "out"
    result = cli("build", "-r", req, "-o", out, option, value)
    assert_fails(
        result,
        ExitCode.USAGE,
        f"{option} {value!r} is not a URL; did you mean {'https://' + value!r}?",
        "an index URL starts with https:// (or http:// for a server you trust)",
    )
    assert not out.exists()


def test_an_index_url_that_is_neither_a_url_nor_a_directory_is_a_usage_error(
    cli: Cli, req: Path, tmp_path: Path
) -> None:
    _write(req, "six==1.17.0\n")
    result = cli("build", "-r", req, "-o", tmp_path / "out", "--index-url", "simple")
    assert_fails(
        result,
        ExitCode.USAGE,
        "--index-url 'simple' is not a URL, and no such directory exists",
        "give --index-url an https:// URL or an existing directory",
    )


def _sdist_without_metadata(root: Path, name: str, version: str) -> Path:
    """An sdist whose in-tree backend fails to prepare metadata and to build (no compiler
    involved): pip fails while resolving, the pinned path while building."""
    import io
    import tarfile

    backend = (
        "import sys\n"
        "def get_requires_for_build_wheel(config_settings=None):\n    return []\n"
        "def prepare_metadata_for_build_wheel(directory, config_settings=None):\n"
        "    print('nometa: this project cannot say what it is', file=sys.stderr)\n"
        "    raise RuntimeError('nometa')\n"
        "build_wheel = prepare_metadata_for_build_wheel\n"
    )
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "nometa"\n'
        'backend-path = ["."]\n',
        "nometa.py": backend,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_failed_sdist_build_gives_one_hint_on_the_pip_and_the_pinned_path(
    cli: Cli, req: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    _sdist_without_metadata(dists.root, "nometa", "1.0")
    hint = "read the build log above; a newer or older version may ship a wheel instead"
    # Loose: pip prepares the metadata while it resolves (it said "a compiler or system
    # headers may be missing", although nothing was compiled).
    _write(req, "nometa\n")
    loose = build(cli, req, tmp_path / "loose", index_server.url)
    assert_fails(
        loose,
        ExitCode.BUILD,
        "pip could not prepare the metadata of nometa while resolving",
        hint,
        build_log=True,
    )
    # Pinned: no resolver; the build stage builds it, with the same hint.
    _write(req, "nometa==1.0\n")
    pinned = build(cli, req, tmp_path / "pinned", index_server.url)
    assert_fails(
        pinned,
        ExitCode.BUILD,
        "building a wheel from nometa-1.0.tar.gz (nometa 1.0) failed",
        hint,
        build_log=True,
    )


def test_build_requirements_uv_cannot_install_are_named_not_a_traceback(
    req: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    # The log quoted our helper's traceback (build's CalledProcessError) and not uv's output,
    # which is the only place that says why (here: no such project; for a new user behind a
    # TLS proxy it was "invalid peer certificate").
    dists.sdist("needy", "1.0", build_requires=["no-such-build-helper"])
    _write(req, "needy==1.0\n")
    env = clean_env(tmp_path / "home")
    argv = wheelhouse_argv(
        "build", "-r", req, "-o", tmp_path / "out", "--index-url", index_server.url
    )
    result = run_command(argv, env=env)

    assert result.returncode == ExitCode.BUILD, result.stderr
    assert "Traceback" not in result.stderr
    assert "CalledProcessError" not in result.stderr
    log = [
        line.removeprefix("  | ") for line in result.stderr.splitlines() if line.startswith("  | ")
    ]
    assert any("no-such-build-helper" in line for line in log), result.stderr
    assert log[-1] == "wheelhouse: installing the build requirements with uv failed (exit 1)"
    assert "error: building a wheel from needy-1.0.tar.gz (needy 1.0) failed" in result.stderr


def test_only_binary_with_an_sdist_only_pin_says_the_flag_forbids_it(
    cli: Cli, req: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    # It said "no distribution found for 'docopt==0.6.2' on the configured indexes" and
    # hinted at the project's name.
    dists.sdist("docopt", "0.6.2")
    _write(req, "docopt==0.6.2\n")
    result = build(cli, req, tmp_path / "out", index_server.url, "--only-binary", ":all:")
    assert_fails(
        result,
        ExitCode.RESOLUTION,
        "docopt==0.6.2 has only an sdist on the configured indexes (docopt-0.6.2.tar.gz), "
        "and --only-binary :all: forbids building it",
        "allow it with --no-binary docopt, or drop --only-binary :all:",
    )
    # The hint's way out works: the sdist is built.
    allowed = build(cli, req, tmp_path / "out", index_server.url, "--only-binary", ":all:",
                    "--no-binary", "docopt")  # fmt: skip
    assert allowed.exit_code == 0, allowed.stderr
    assert (tmp_path / "out" / "docopt-0.6.2-py3-none-any.whl").is_file()


def test_only_binary_by_name_on_a_loose_requirement_names_the_flag(
    cli: Cli, req: Path, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.sdist("docopt", "0.6.2")
    _write(req, "docopt\n")
    result = build(cli, req, tmp_path / "out", index_server.url, "--only-binary", "docopt")
    assert_fails(
        result,
        ExitCode.RESOLUTION,
        "no wheel of 'docopt' on the configured indexes that fits, and --only-binary docopt "
        "rules out building one from an sdist",
        "check the project name and the indexes; if it publishes only sdists, allow it with "
        "--no-binary docopt, or drop --only-binary docopt",
    )


def test_an_interrupt_while_the_command_line_loads_is_one_error_line_and_exit_130(
    tmp_path: Path,
) -> None:
    """Ctrl-C in the half second the command line takes to load: the real entry point, in a
    process of its own, with the import of the command line interrupted."""
    script = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'wheelhouse.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['wheelhouse', 'build', '--help']\n"
        "from wheelhouse._main import run\n"
        "run()\n"
    )
    result = run_command([sys.executable, "-c", script], cwd=tmp_path, timeout=60)
    assert (result.returncode, result.stderr, result.stdout) == (130, "error: interrupted\n", "")
