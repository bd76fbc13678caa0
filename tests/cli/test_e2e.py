"""End to end: build a wheelhouse, install it offline with plain pip, survive SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.files import sha256_of, snapshot
from tests.support.fixtures import Cli, MakeVenv, Offline
from tests.support.graph import (
    GRAPH_REQUIREMENTS,
    GRAPH_WHEELS,
    assert_manifest_matches_files,
    make_graph,
    pinned_hashes,
    wheels_in,
)
from tests.support.process import clean_env as scrubbed_env
from tests.support.process import run_command
from tests.support.server import IndexServer
from wheelhouse.house.manifest import BuiltFrom, Downloaded, read_manifest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

# What the graph installs, as import name -> __version__ (winonly's marker is false here).
GRAPH_MODULES = {"app": "1.0", "lib": "2.0", "srconly": "1.0", "modern": "2.0", "speedup": "1.0"}


def run(argv: Sequence[str | os.PathLike[str]]) -> subprocess.CompletedProcess[str]:
    return run_command(argv, env=scrubbed_env(), timeout=600)


def plain_pip_install(wheelhouse: Path) -> list[str]:
    """The install command a user types, without wheelhouse."""
    return [
        "install",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "--require-hashes",
        "-r",
        str(wheelhouse / "requirements.txt"),
    ]


def install_offline(
    pip: str, python: Path, wheelhouse: Path, offline: Offline
) -> subprocess.CompletedProcess[str]:
    if pip == "bundled":
        argv = [str(python), "-m", "pip", *plain_pip_install(wheelhouse)]
    else:
        # run_newest_pip's command, inside the network namespace.
        argv = [sys.executable, "-m", "pip", "--python", str(python)]
        argv += plain_pip_install(wheelhouse)
    return run(offline(argv))


def versions_in(python: Path, modules: Mapping[str, str], offline: Offline) -> dict[str, str]:
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(name, importlib.import_module(name).__version__)\n"
    )
    result = run(offline([str(python), "-c", code, *modules]))
    assert result.returncode == 0, result.stderr
    return dict(line.split() for line in result.stdout.splitlines())


def make_python(pip: str, make_venv: MakeVenv) -> Path:
    return make_venv(f"venv-{pip}", with_pip=pip == "bundled")


# -- plain pip installs what a build wrote, offline ------------------------------------------


@pytest.mark.parametrize("pip", ["bundled", "newest"])
def test_plain_pip_installs_a_built_wheelhouse_offline(
    pip: str,
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
    cli: Cli,
    make_venv: MakeVenv,
    offline: Offline,
) -> None:
    make_graph(dists)
    reqs = tmp_path / "requirements.in"
    reqs.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    out = tmp_path / "wh"
    built = cli("build", "--index-url", index_server.url, "-o", out, "-r", reqs)
    assert built.exit_code == 0, built.stderr
    python = make_python(pip, make_venv)

    result = install_offline(pip, python, out, offline)

    assert result.returncode == 0, result.stdout + result.stderr
    assert versions_in(python, GRAPH_MODULES, offline) == GRAPH_MODULES
    not_there = run([python, "-c", "import winonly"])
    assert "No module named 'winonly'" in not_there.stderr


# -- SIGKILL ---------------------------------------------------------------------------------

# The rebuild adds sdists to build (and drops speedup), so there is work to interrupt.
SLOW_SDISTS = ("slowa", "slowb", "slowc", "slowd")
REBUILD_REQUIREMENTS = "app\n" + "".join(f"{name}\n" for name in SLOW_SDISTS)
REBUILD_WHEELS = GRAPH_WHEELS - {"speedup-1.0-py3-none-any.whl"} | {
    f"{name}-1.0-py3-none-any.whl" for name in SLOW_SDISTS
}
WRITING = "wheelhouse: writing "


def start_build(out: Path, reqs: Path, index: IndexServer, cache: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)  # scrubbed by the autouse fixture
    env["WHEELHOUSE_CACHE_DIR"] = str(cache)
    argv = [sys.executable, "-m", "wheelhouse", "build", "--index-url", index.url, "-j", "2"]
    return subprocess.Popen(
        [*argv, "-o", str(out), "-r", str(reqs)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group, so the kill takes pip and the build backends with it.
        start_new_session=True,
    )


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    if proc.stderr is not None:
        proc.stderr.close()


def assert_old_or_complete_new(out: Path, before: dict[str, bytes]) -> str:
    """DIR is the old wheelhouse byte for byte, or the whole new one; no partial file shows."""
    hidden = [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix in (".tmp", ".part")]
    assert hidden == []
    if snapshot(out, dirs=True) == before:
        return "old"
    assert wheels_in(out) == REBUILD_WHEELS
    assert_manifest_matches_files(out)
    pins = pinned_hashes(out / "requirements.txt")
    assert {h for hashes in pins.values() for h in hashes} == {
        sha256_of(out / w) for w in REBUILD_WHEELS
    }
    assert (out / "NOTES.txt").read_text(encoding="utf-8") == "keep me\n"
    return "new"


def interrupt(
    out: Path, reqs: Path, index: IndexServer, cache: Path, trigger: str, delay: float
) -> None:
    """Start a build, wait for a stderr line starting with ``trigger`` (if any), SIGKILL it."""
    proc = start_build(out, reqs, index, cache)
    try:
        assert proc.stderr is not None
        if trigger:
            for line in proc.stderr:
                if line.startswith(trigger):
                    break
        time.sleep(delay)
    finally:
        kill(proc)


def test_sigkill_at_any_point_leaves_the_old_or_the_new_wheelhouse(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    make_graph(dists)
    for name in SLOW_SDISTS:
        dists.sdist(name, "1.0")
    reqs = tmp_path / "requirements.in"
    reqs.write_text(GRAPH_REQUIREMENTS, encoding="utf-8")
    out = tmp_path / "wh"
    assert cli("build", "--index-url", index_server.url, "-o", out, "-r", reqs).exit_code == 0
    (out / "NOTES.txt").write_text("keep me\n", encoding="utf-8")
    before = snapshot(out, dirs=True)
    reqs.write_text(REBUILD_REQUIREMENTS, encoding="utf-8")
    outcomes: list[str] = []

    # Cold runs (a new cache each), killed after fixed delays (startup, reading, resolving)
    # and as they reach each later stage.
    cold = [("", delay) for delay in (0.05, 0.2, 0.5, 1.0)]
    cold += [("wheelhouse: fetching", 0.0), ("wheelhouse: building", 0.0)]
    cold += [("wheelhouse: built", 0.0)]
    for i, (trigger, delay) in enumerate(cold):
        interrupt(out, reqs, index_server, tmp_path / f"cache-{i}", trigger, delay)
        outcomes.append(assert_old_or_complete_new(out, before))

    # Warm runs killed while they write the wheelhouse, until one lands after the swap.
    cache = tmp_path / "cache-warm"
    for delay in (0.0, 0.03, 0.1, 0.3):
        interrupt(out, reqs, index_server, cache, WRITING, delay)
        outcomes.append(assert_old_or_complete_new(out, before))
        if outcomes[-1] == "new":
            break  # later runs would be no-ops

    # The next run finishes what was interrupted, and cleans up beside DIR.
    with start_build(out, reqs, index_server, cache) as final:
        _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    assert wheels_in(out) == REBUILD_WHEELS
    assert_manifest_matches_files(out)
    assert (out / "NOTES.txt").read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".wh.")) == []
    assert outcomes[0] == "old", outcomes


def test_nothing_is_left_beside_the_output_after_a_build_that_worked_or_failed(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, cli: Cli
) -> None:
    dists.wheel("alpha", "1.0")
    work = tmp_path / "work"
    work.mkdir()
    good = tmp_path / "good.in"
    good.write_text("alpha\n", encoding="utf-8")
    built = cli("build", "-r", good, "-o", work / "wh", "-i", index_server.url)
    assert built.exit_code == 0, built.stderr
    assert os.listdir(work) == ["wh"]

    bad = tmp_path / "bad.in"
    bad.write_text("no-such-project\n", encoding="utf-8")
    failed = cli("build", "-r", bad, "-o", work / "never", "-i", index_server.url)
    assert failed.exit_code == 4, failed.stderr
    assert os.listdir(work) == ["wh"]


def console_block(document: Path, heading: str) -> str:
    """The first ```console block after ``heading`` in ``document``, as a person copies it."""
    text = document.read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    start = after.index("```console\n") + len("```console\n")
    return after[start : after.index("```", start)]


def test_airgap_doc_install_without_wheelhouse_runs_as_written(
    tmp_path: Path,
    house: Path,
    dists: DistFactory,
    index_server: IndexServer,
    cli: Cli,
    offline: Offline,
) -> None:
    import ensurepip

    package = ensurepip._get_packages()["pip"]  # type: ignore[attr-defined]
    pip_wheel = Path(
        package.wheel_path or Path(ensurepip.__file__).parent / "_bundled" / package.wheel_name
    )
    (dists.root / pip_wheel.name).write_bytes(pip_wheel.read_bytes())
    far = tmp_path / "far"
    far.mkdir()
    bundle = far / "wheelhouse-2026-12-01.tar.gz"  # the name the document uses
    packed = cli("pack", house, "-o", bundle, "--with-installer", "-i", index_server.url)
    assert packed.exit_code == 0, packed.stderr

    block = console_block(REPO / "docs" / "airgap.md", "### Without wheelhouse on the far side")
    assert "installers/pip-*.whl" in block  # the case: the name is found before Python runs
    # `python` is the interpreter running the tests, first on PATH, as a user's would be.
    env = {
        **scrubbed_env(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        offline(["bash", "-euo", "pipefail", "-c", block]),
        cwd=far,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    python = far / "venv" / "bin" / "python"
    code = "import alpha, beta; print(alpha.__version__, beta.__version__)"
    shown = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout == "1.0 2.0\n"


def test_readme_build_then_plain_pip_install_work_as_written_in_the_checkout(
    tmp_path: Path,
    dists: DistFactory,
    index_server: IndexServer,
    cli: Cli,
    offline: Offline,
    make_venv: MakeVenv,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = console_block(REPO / "README.md", "# wheelhouse").splitlines()[0]
    assert first == "python -m pip install . && wheelhouse build -r examples/requirements.txt"
    install = console_block(REPO / "README.md", "Installs from it need no network")
    assert install.startswith("pip install --no-index ")
    assert readme.index("Installs from it need no network") < readme.index("## What a wheelhouse")

    # A checkout: ./wheelhouse is the package's source, so the build writes elsewhere.
    checkout = tmp_path / "checkout"
    (checkout / "wheelhouse").mkdir(parents=True)
    (checkout / "wheelhouse" / "__init__.py").write_text('"""the package"""\n', encoding="utf-8")
    (checkout / "examples").mkdir()
    (checkout / "examples" / "requirements.txt").write_text("alpha\n", encoding="utf-8")
    dists.wheel("alpha", "1.0")
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("PIP_INDEX_URL", index_server.url)  # the index, as pip's configuration
    built = cli(*first.split(" && ")[1].split()[1:])
    assert built.exit_code == 0, built.stderr

    pip = make_venv("target")  # with the pip a fresh venv bundles
    argv = install.split()
    done = subprocess.run(
        offline([str(pip.parent / argv[0]), *argv[1:]]),
        cwd=checkout,
        env=scrubbed_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run(
        [pip, "-c", "import alpha; print(alpha.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "1.0\n"


# -- the real PyPI ---------------------------------------------------------------------------

# PyPI's published sha256 of docopt-0.6.2.tar.gz (the only file of that release).
DOCOPT_SDIST_SHA256 = "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"


@pytest.mark.network
@pytest.mark.parametrize("pip", ["bundled", "newest"])
def test_real_pypi_sdist_only_package_installs_offline(
    pip: str, tmp_path: Path, cli: Cli, make_venv: MakeVenv, offline: Offline
) -> None:
    reqs = tmp_path / "requirements.in"
    reqs.write_text("docopt==0.6.2\nsix\n", encoding="utf-8")
    out = tmp_path / "wh"

    result = cli("build", "-o", out, "-r", reqs)

    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(out)
    assert manifest is not None
    [docopt] = [r for r in manifest.files if r.name == "docopt"]
    assert (docopt.version, docopt.kind) == ("0.6.2", "wheel")
    assert isinstance(docopt.origin, BuiltFrom)
    assert (docopt.origin.sdist, docopt.origin.sdist_sha256, docopt.origin.backend) == (
        "docopt-0.6.2.tar.gz",
        DOCOPT_SDIST_SHA256,
        "setuptools.build_meta:__legacy__",  # docopt 0.6.2 has no pyproject.toml
    )
    [six] = [r for r in manifest.files if r.name == "six"]
    assert isinstance(six.origin, Downloaded)
    assert six.origin.url.startswith("https://")
    assert wheels_in(out) == {docopt.filename, six.filename}
    assert_manifest_matches_files(out)

    python = make_python(pip, make_venv)
    installed = install_offline(pip, python, out, offline)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    code = "import docopt, six; print(docopt.__version__, six.__version__)"
    imported = run(offline([str(python), "-c", code]))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["0.6.2", six.version]


@pytest.mark.network
def test_real_pypi_sdist_builds_with_only_the_system_certificate_store(tmp_path: Path) -> None:
    """A new user's machine: no pip ``cert``, no ``SSL_CERT_FILE``, the index's CA (a
    TLS-intercepting proxy's, on these machines) only in the system store. pip trusts that
    store, so uv, which installs the sdist's build requirements, must trust it too."""
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("docopt==0.6.2\n", encoding="utf-8")
    out = tmp_path / "wh"
    bundles = ("PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
    env = {k: v for k, v in scrubbed_env(tmp_path / "home").items() if k not in bundles}

    result = run_command(
        [sys.executable, "-m", "wheelhouse", "build", "-r", reqs, "-o", out], env=env
    )

    assert result.returncode == 0, result.stderr
    assert "UnknownIssuer" not in result.stderr
    manifest = read_manifest(out)
    assert manifest is not None
    assert [(r.name, r.kind) for r in manifest.files] == [("docopt", "wheel")]
