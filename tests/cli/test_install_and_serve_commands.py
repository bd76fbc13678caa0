"""``wheelhouse install`` and ``wheelhouse serve`` as a user runs them, outcome exact."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import httpget
from tests.support.cli import ALPHA, BETA, on_a_terminal
from tests.support.files import flip_byte
from tests.support.fixtures import Cli, MakeVenv
from tests.support.venvs import installed_versions as installed_in
from tests.support.wheelhouses import make_wheelhouse

# The console script that `pip install` put beside the interpreter running the tests.
WHEELHOUSE = Path(sys.executable).with_name("wheelhouse")


@pytest.fixture
def python(make_venv: MakeVenv) -> Path:
    """A venv without pip (fast to make; wheelhouse runs its own pip with --python)."""
    return make_venv(with_pip=False)


@pytest.mark.slow
def test_install_json_has_every_documented_field(cli: Cli, house: Path, python: Path) -> None:
    result = cli("install", "-w", house, "--python", python, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    seconds = summary.pop("seconds")
    assert isinstance(seconds, float) and 0 < seconds < 600
    assert summary == {
        "schema-version": 1,
        "wheelhouse": str(house),
        "python": str(python),
        "installer": "pip",
        "target": "host",
        "installed": [{"name": "alpha", "version": "1.0"}, {"name": "beta", "version": "2.0"}],
        "sync": False,
    }
    assert result.stderr == ""
    assert installed_in(python) == {"alpha": "1.0", "beta": "2.0"}


@pytest.mark.slow
def test_install_without_a_terminal_says_one_line_and_with_v_the_command_once(
    cli: Cli, house: Path, python: Path
) -> None:
    quiet = cli("install", "-w", house, "--python", python, "beta")
    assert quiet.exit_code == 0, quiet.stderr
    assert re.fullmatch(
        rf"installed 1 distribution from {re.escape(str(house))} into "
        rf"{re.escape(str(python))} with pip \(\d+\.\d s\)\n",
        quiet.stderr,
    ), quiet.stderr

    verbose = cli("install", "-w", house, "--python", python, "-v")
    assert verbose.exit_code == 0, verbose.stderr
    ran = [line for line in verbose.stderr.splitlines() if " install --no-index " in line]
    assert len(ran) == 1, verbose.stderr
    assert ran[0].startswith("wheelhouse: running: ")
    assert verbose.stderr.splitlines()[-1].startswith("installed 2 distributions from ")


@pytest.mark.slow
def test_install_on_a_terminal_shows_what_pip_is_doing(house: Path, python: Path) -> None:
    code, shown = on_a_terminal([WHEELHOUSE, "install", "-w", house, "--python", python])
    assert code == 0, shown
    # pip takes a second or more to start: the display shows that, then goes away.
    assert "pip: starting, 2 distributions to install" in shown
    last = shown.rstrip("\n").rsplit("\n", 1)[-1]
    assert re.fullmatch(
        rf"(\x1b\[[0-9;?]*[A-Za-z]|\r)*installed 2 distributions from {re.escape(str(house))} "
        rf"into {re.escape(str(python))} with pip \(\d+\.\d s\)",
        last,
    ), repr(last)
    assert installed_in(python) == {"alpha": "1.0", "beta": "2.0"}


@pytest.mark.slow
@pytest.mark.parametrize("form", ["command", "version"])
def test_python_is_looked_up_on_path_by_command_or_version(
    cli: Cli, house: Path, python: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, form: str
) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    # The venv's bin first on PATH, as an activated venv has it; run from elsewhere.
    monkeypatch.setenv("PATH", f"{python.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    spec = f"python{version}" if form == "command" else version
    result = cli("install", "-w", house, "--python", spec, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["python"] == str(python.parent / f"python{version}")
    assert installed_in(python) == {"alpha": "1.0", "beta": "2.0"}


@pytest.mark.parametrize("spec", ["3.99", "python3.99"])
def test_a_python_that_is_nowhere_is_one_clear_error(
    cli: Cli, house: Path, spec: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    result = cli("install", "-w", house, "--python", spec)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: no Python interpreter {spec!r}: it is not a path, and no 'python3.99' is on "
        f"PATH or in pyenv's versions ({str(tmp_path / 'pyenv' / 'versions')!r})",
        "hint: pass the interpreter's path (e.g. --python .venv/bin/python), a command on PATH "
        "(--python python3.12) or a version (--python 3.12)",
    ]


@pytest.mark.slow
def test_arguments_after_a_double_dash_go_to_pip(cli: Cli, house: Path, python: Path) -> None:
    dry = cli("install", "-w", house, "--python", python, "-v", "--", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    [ran] = [line for line in dry.stderr.splitlines() if line.startswith("wheelhouse: running: ")]
    assert ran.endswith(f"--require-hashes -r {house / 'requirements.txt'} --dry-run")
    assert installed_in(python) == {}  # pip was told --dry-run

    bogus = cli("install", "-w", house, "--python", python, "--", "--no-such-option")
    assert bogus.exit_code == 1
    lines = bogus.stderr.splitlines()
    assert lines[0] == (
        f"error: pip could not install from {str(house)!r} into {str(python)!r} (exit 2):"
    )
    assert "no such option: --no-such-option" in bogus.stderr
    assert lines[-1] == (f"hint: run 'wheelhouse verify {house}'; the lines above are pip's own")
    assert installed_in(python) == {}


@pytest.mark.slow
def test_install_from_a_tampered_wheelhouse_exits_6_before_pip_runs(
    cli: Cli, house: Path, python: Path
) -> None:
    flip_byte(house / BETA)
    result = cli("install", "-w", house, "--python", python)
    assert result.exit_code == 6
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"error: the wheelhouse {str(house)!r} does not match its manifest ({BETA!r}):"
    )
    assert lines[-1] == (
        f"hint: rebuild it with 'wheelhouse build', or see 'wheelhouse verify {house}'"
    )
    assert installed_in(python) == {}


@pytest.mark.slow
def test_install_from_a_directory_that_is_not_a_wheelhouse_exits_3(
    cli: Cli, tmp_path: Path, python: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli("install", "-w", plain, "--python", python)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {str(plain)!r} is not a wheelhouse (it has no wheelhouse.json)",
        "hint: pass the directory that 'wheelhouse build' wrote, or build one with "
        "'wheelhouse build -r requirements.txt -o DIR'",
    ]


@pytest.mark.slow
def test_install_of_a_wheelhouse_for_another_platform_exits_9(
    cli: Cli, tmp_path: Path, dists, python: Path
) -> None:  # type: ignore[no-untyped-def]
    minor = sys.version_info.minor
    platform = "win_amd64" if sys.platform != "win32" else "manylinux_2_28_x86_64"
    tag = f"cp3{minor}-cp3{minor}-{platform}"
    wheel = dists.wheel("winonly", "1.0", tag=tag)
    make_wheelhouse(tmp_path / "wh", [wheel], requested=["winonly"])
    result = cli("install", "-w", tmp_path / "wh", "--python", python)
    assert result.exit_code == 9
    lines = result.stderr.splitlines()
    expected = (
        rf"error: the wheelhouse {re.escape(repr(str(tmp_path / 'wh')))} has no wheel that "
        rf"{re.escape(repr(str(python)))} \(Python 3\.{minor}\.\d+, best tag \S+\) "
        "can install for:"
    )
    assert re.fullmatch(expected, lines[0]), lines[0]
    assert lines[1] == f"  winonly 1.0: the wheelhouse has {wheel.name}"
    assert lines[-1].startswith("hint: rebuild the wheelhouse for this interpreter")
    assert installed_in(python) == {}


@pytest.mark.slow
def test_the_console_script_installs_with_wheelhouse_dir(
    house: Path, python: Path, tmp_path: Path
) -> None:
    env = dict(os.environ, WHEELHOUSE_DIR=str(house))
    proc = subprocess.run(
        [str(WHEELHOUSE), "install", "--python", str(python), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["wheelhouse"] == str(house)
    assert installed_in(python) == {"alpha": "1.0", "beta": "2.0"}


# -- serve ----------------------------------------------------------------------------------------

# The one line saying where the server listens (issue 24: it was printed twice).
READY = re.compile(
    r"serving (?P<dir>.+) at (?P<url>http://127\.0\.0\.1:\d+/simple/) \(Ctrl-C to stop\)"
)


def get(url: str, accept: str) -> tuple[int, str, bytes]:
    """The status, Content-Type and body of ``url``."""
    status, headers, body = httpget.get(url, accept)
    return status, headers["Content-Type"], body


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_pages_and_files_then_stops_on_a_signal(
    house: Path, signum: signal.Signals
) -> None:
    proc = subprocess.Popen(
        [str(WHEELHOUSE), "serve", str(house), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        ready = READY.fullmatch(line.rstrip("\n"))
        assert ready, line
        assert ready["dir"] == str(house)
        url = ready["url"]

        status, kind, body = get(f"{url}alpha/", "application/vnd.pypi.simple.v1+json")
        assert (status, kind) == (200, "application/vnd.pypi.simple.v1+json")
        page = json.loads(body)
        assert [f["filename"] for f in page["files"]] == [ALPHA]
        status, kind, body = get(f"{url}alpha/", "text/html")
        assert (status, kind.split(";")[0]) == (200, "text/html")
        assert ALPHA.encode() in body
        file_url = url.removesuffix("simple/") + ALPHA
        status, _, body = get(file_url, "*/*")
        assert (status, body) == (200, (house / ALPHA).read_bytes())
        status, _, _ = get(f"{url}no-such-project/", "text/html")
        assert status == 404

        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert lines[-1] == f"stopped serving {house}"
    # The request log, one line per request, as written: no prefix before each line.
    assert re.fullmatch(r'127\.0\.0\.1 "GET /simple/alpha/ HTTP/1\.1" 200 -', lines[0])
    assert not [line for line in lines if line.startswith("serving ")]


def test_serve_a_directory_that_does_not_exist_says_so(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = cli("serve", missing)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {str(missing)!r} does not exist",
        "hint: name the wheelhouse to serve, or build one with "
        "'wheelhouse build -r requirements.txt -o DIR'",
    ]
    assert not missing.exists()


def test_serve_a_plain_directory_of_wheels_gives_a_hint_that_works_as_written(
    cli: Cli, house: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plainwheels"
    plain.mkdir()
    for name in (ALPHA, BETA):
        (plain / name).write_bytes((house / name).read_bytes())
    result = cli("serve", plain)
    assert result.exit_code == 3
    error, hint = result.stderr.splitlines()
    assert error == (
        f"error: {str(plain)!r} is not a wheelhouse (it has no wheelhouse.json): "
        "it holds 2 wheels and no package index"
    )
    assert hint == (
        f"hint: install from it with 'pip install --no-index --find-links {plain} NAME', "
        f"or make a wheelhouse of it with 'wheelhouse build -r requirements.txt "
        f"--find-links {plain} -o DIR'"
    )
    # The hint's pip command, as written (NAME given, into a target directory).
    command = re.search(r"'(pip install [^']+)'", hint)
    assert command is not None
    target = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    proc = subprocess.run(
        [sys.executable, "-m", *command[1].replace("NAME", "alpha").split(), "-t", str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in target.glob("*.dist-info")) == [
        "alpha-1.0.dist-info",
        "beta-2.0.dist-info",
    ]


def test_serve_a_wheelhouse_without_its_index_hints_the_index_command(
    cli: Cli, house: Path
) -> None:
    for page in (house / "simple").rglob("*"):
        if page.is_file():
            page.unlink()
    result = cli("serve", house)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {str(house)!r} has no package index (simple/index.html)",
        f"hint: write it with 'wheelhouse index {house}'",
    ]
    assert cli("index", house).exit_code == 0  # the hint works as written


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--ttl", "5"], "--ttl applies"),
        (["--timeout", "3", "--lease-timeout", "9"], "--lease-timeout and --timeout apply"),
        # A proxy-only option set to its default value is still refused: it does nothing.
        (
            ["--workers", "1", "--store", "s", "--ttl", "600", "--offline"],
            "--offline, --store, --ttl and --workers apply",
        ),
    ],
)
def test_serve_refuses_every_proxy_only_option_without_upstream(
    house: Path, options: list[str], named: str
) -> None:
    # A subprocess: a server that accepts the options would run until the timeout.
    proc = subprocess.run(
        [str(WHEELHOUSE), "serve", str(house), "--port", "0", *options],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: {named} to the proxy only",
        "hint: add --upstream (with a URL, or alone for pip's index)",
    ]


def test_serve_warnings_use_the_cli_prefix(house: Path) -> None:
    # More connections than a 128-file limit allows: the server warns at start, on the
    # CLI's handler (``warning: ...``), then says once where it listens.
    def lower_limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    proc = subprocess.Popen(
        [str(WHEELHOUSE), "serve", str(house), "--port", "0", "--max-connections", "500"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lower_limit,
    )
    try:
        assert proc.stderr is not None
        first, second = proc.stderr.readline(), proc.stderr.readline()
        ready = READY.fullmatch(second.rstrip("\n"))
        assert ready, second
        assert get(ready["url"], "text/html")[0] == 200  # serving, its signal handlers set
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert first == (
        "warning: 500 connections may need more files than the open-file limit (128) allows, "
        "which leaves room for 32; raise it (ulimit -n) or lower --max-connections\n"
    )
    assert proc.returncode == 0, rest
    assert rest.splitlines() == [
        '127.0.0.1 "GET /simple/ HTTP/1.1" 200 -',
        "stopped on SIGINT",
        f"stopped serving {house}",
    ]
