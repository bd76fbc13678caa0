"""``wheelhouse build -r LOCK``: every lock format taken as pins, per target, installed offline.

uv.lock, the pylock.toml of ``uv export`` and the pylock.toml of ``pip lock`` are written by
the real tools in each test, against the loopback index. poetry.lock and Pipfile.lock are the
real tools' output (Poetry 2.5.1, pipenv 2026.x, run against the same dists; see
tests/pipeline/locks/) with the index address and hashes filled in at test time: each tool takes
15-45 s to lock and would need installing from the internet. The Pipfile.lock entry of
winonly (behind a marker) and the whole pdm.lock (PDM 2.26 does not run here) follow the
format those tools write (lock_version 4.5.0, ``inherit_metadata``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import parse_wheel_filename

from tests.support.capabilities import find_uv
from tests.support.cli import error_line
from tests.support.dists import DistFactory
from tests.support.fixtures import Cli, MakeVenv, Offline
from tests.support.locktools import LockTool, newest_pip
from tests.support.process import run_command as run
from tests.support.server import IndexServer
from wheelhouse._base.targets import HOST
from wheelhouse.house.manifest import Manifest, read_manifest

WINDOWS = "cp311-win_amd64"
AARCH64 = "cp312-manylinux_2_28_aarch64"
HOST_COMPILED = "compiled-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WIN_COMPILED = "compiled-1.0-cp311-cp311-win_amd64.whl"
LOCKS = Path(__file__).parent / "locks"

BASE = {
    "compiled": None,  # per target
    "helper": "helper-1.0-py3-none-any.whl",
    "purepkg": "purepkg-1.0-py3-none-any.whl",
    "srcpure": "srcpure-1.0-py3-none-any.whl",  # built here from srcpure-1.0.tar.gz
}
EXPECTED = {
    "host": {**BASE, "compiled": HOST_COMPILED},
    WINDOWS: {**BASE, "compiled": WIN_COMPILED, "winonly": "winonly-1.0-py3-none-any.whl"},
}


def _host_is_the_modelled_build_machine() -> bool:
    tags = parse_wheel_filename(HOST_COMPILED)[3]
    return HOST.accepts(tags) is not None and not Marker('sys_platform == "win32"').evaluate()


pytestmark = pytest.mark.skipif(
    not _host_is_the_modelled_build_machine(),
    reason="these tests model a CPython 3.11 x86-64 Linux build machine",
)

PYPROJECT = """\
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["purepkg==1.0", "compiled", "srcpure"]

[project.optional-dependencies]
fast = ["extrapkg"]

[dependency-groups]
dev = ["devtool"]

[tool.uv]
package = false
"""


def make_dists(dists: DistFactory) -> None:
    dists.wheel("purepkg", "1.0", requires=['winonly; sys_platform == "win32"', "helper>=1"])
    dists.wheel("helper", "1.0")
    dists.wheel("winonly", "1.0")
    dists.wheel("devtool", "1.0")
    dists.wheel("extrapkg", "1.0")
    for filename in (HOST_COMPILED, WIN_COMPILED):
        tag = filename.removeprefix("compiled-1.0-").removesuffix(".whl")
        dists.wheel("compiled", "1.0", tag=tag)
    dists.sdist("srcpure", "1.0")


def fill(template: Path, dists: DistFactory, index: IndexServer) -> str:
    """A recorded lock with this session's index address and file hashes."""
    text = template.read_text(encoding="utf-8")
    text = re.sub(
        r"@SHA256:([^@]+)@",
        lambda m: hashlib.sha256((dists.root / m[1]).read_bytes()).hexdigest(),
        text,
    )
    return text.replace("@BASE@", index.base_url.rstrip("/"))


@dataclass(frozen=True)
class Project:
    root: Path
    dists: DistFactory
    index: IndexServer
    tool: LockTool

    def lock(self, kind: str) -> Path:
        """The project's lock of ``kind``, written by the real tool or filled in from its
        recorded output."""
        if kind == "uv.lock":
            self._run([*find_uv(), "lock", "--index-url", self.index.url])
            return self.root / "uv.lock"
        if kind == "pylock-uv":
            self.lock("uv.lock")
            self._run(
                [*find_uv(), "export", "--no-dev", "--format", "pylock.toml", "-o", "pylock.toml"]
            )
            return self.root / "pylock.toml"
        if kind == "pylock-pip":
            (self.root / "requirements.in").write_text("purepkg==1.0\ncompiled\nsrcpure\n")
            self._run(
                [*newest_pip(), "lock", "-r", "requirements.in", "-i", self.index.url,
                 "-o", "pylock.pip.toml"]
            )  # fmt: skip
            return self.root / "pylock.pip.toml"
        path = self.root / kind
        path.write_text(fill(LOCKS / kind, self.dists, self.index), encoding="utf-8")
        return path

    def _run(self, argv: list[str]) -> None:
        proc = self.tool(argv, cwd=self.root)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def project(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, lock_tool: LockTool
) -> Project:
    make_dists(dists)
    root = tmp_path / "app"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    return Project(root, dists, index_server, lock_tool)


def build(cli: Cli, out: Path, lock: Path, index: IndexServer, *args: str) -> Manifest:
    result = cli("build", "-r", lock, "-o", out, "-i", index.url, *args)
    assert result.exit_code == 0, result.stderr
    assert "resolving with" not in result.stderr, result.stderr
    return read_manifest(out) or pytest.fail("no manifest")


def lock_of(manifest: Manifest, target: str) -> dict[str, tuple[str, ...]]:
    (lock,) = [lock for lock in manifest.locks if lock.target == target]
    return {entry.name: entry.filenames for entry in lock.entries}


def uv_install_offline(offline: Offline, house: Path, requirements: str, venv: Path) -> None:
    made = run([*find_uv(), "venv", "-q", "--python", sys.executable, venv])
    assert made.returncode == 0, made.stderr
    proc = run(
        offline(
            [*find_uv(), "pip", "install", "--offline", "--no-index", "--find-links", house,
             "--require-hashes", "-r", house / requirements, "--python", venv / "bin" / "python"]
        ),
        env={
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(venv.parent / "uv-cache"),
            "TMPDIR": os.environ["TMPDIR"],
        },
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    check = run([venv / "bin" / "python", "-c", "import compiled, purepkg, srcpure, helper"])
    assert check.returncode == 0, check.stderr


FORMATS = ["uv.lock", "pylock-uv", "poetry.lock", "pdm.lock", "Pipfile.lock"]


@pytest.mark.parametrize("kind", FORMATS)
def test_each_lock_format_builds_its_pins_per_target_and_installs_offline(
    kind: str, project: Project, cli: Cli, tmp_path: Path, offline: Offline
) -> None:
    lock = project.lock(kind)
    manifest = build(cli, tmp_path / "house", lock, project.index, "--target", "host",
                     "--target", WINDOWS)  # fmt: skip
    for target, files in EXPECTED.items():
        assert lock_of(manifest, target) == {name: (f,) for name, f in files.items()}, target
    uv_install_offline(offline, tmp_path / "house", "requirements.host.txt", tmp_path / "venv")


def test_a_pip_lock_builds_and_installs_offline_with_plain_pip(
    project: Project, cli: Cli, tmp_path: Path, offline: Offline, make_venv: MakeVenv
) -> None:
    lock = project.lock("pylock-pip")
    house = tmp_path / "house"
    manifest = build(cli, house, lock, project.index)
    assert lock_of(manifest, "host") == {n: (f,) for n, f in EXPECTED["host"].items()}
    # The newest pip, installing into a venv without one (a venv's own pip costs seconds).
    python = make_venv(with_pip=False)
    proc = run(
        offline([*newest_pip(), "--python", python, "install", "--no-index", "--find-links",
                 house, "--require-hashes", "-r", house / "requirements.txt"])
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert run([python, "-c", "import compiled, srcpure"]).returncode == 0


@pytest.mark.parametrize("kind", ["uv.lock", "poetry.lock", "pdm.lock"])
def test_extras_and_groups_select_from_the_lock(
    kind: str, project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock(kind)
    manifest = build(cli, tmp_path / "house", lock, project.index, "--extra", "fast",
                     "--group", "dev")  # fmt: skip
    assert set(lock_of(manifest, "host")) == {*EXPECTED["host"], "extrapkg", "devtool"}


def test_pipfile_lock_dev_packages_come_with_group_dev(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("Pipfile.lock")
    manifest = build(cli, tmp_path / "house", lock, project.index, "--group", "dev")
    assert set(lock_of(manifest, "host")) == {*EXPECTED["host"], "devtool"}


# -- a lock is pins ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["uv.lock", "poetry.lock", "Pipfile.lock"])
def test_a_tampered_hash_in_the_lock_is_exit_6_and_writes_nothing(
    kind: str, project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock(kind)
    real = hashlib.sha256((project.dists.root / "helper-1.0-py3-none-any.whl").read_bytes())
    forged = hashlib.sha256(b"not helper").hexdigest()
    text = lock.read_text()
    assert real.hexdigest() in text
    lock.write_text(text.replace(real.hexdigest(), forged))
    out = tmp_path / "house"
    result = cli("build", "-r", lock, "-o", out, "-i", project.index.url)
    assert result.exit_code == 6, result.stderr
    assert forged in result.stderr and "helper" in result.stderr
    assert not out.exists()


def test_a_lock_without_files_for_a_target_is_one_error_naming_them(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("uv.lock")
    result = cli("build", "-r", lock, "-o", tmp_path / "house", "-i", project.index.url,
                 "--target", AARCH64)  # fmt: skip
    assert result.exit_code == 9, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(lock)!r} cannot be installed on target {AARCH64!r}: compiled 1.0 "
        "(no wheel for the target among 2 locked files, no sdist)"
    )


def test_a_lock_takes_its_files_from_the_url_it_records(
    project: Project, cli: Cli, tmp_path: Path, dists: DistFactory
) -> None:
    lock = project.lock("uv.lock")
    # The configured index is empty: every file must come from the lock's own URLs.
    empty = tmp_path / "empty"
    (empty / "simple").mkdir(parents=True)
    result = cli("build", "-r", lock, "-o", tmp_path / "house", "-i", empty.as_uri() + "/simple/")
    assert result.exit_code == 0, result.stderr
    manifest = read_manifest(tmp_path / "house")
    assert manifest is not None
    origin = manifest.file("helper-1.0-py3-none-any.whl").origin
    assert getattr(origin, "url", "") == project.index.files_url + "helper-1.0-py3-none-any.whl"


def test_a_lock_must_be_the_only_input(project: Project, cli: Cli, tmp_path: Path) -> None:
    lock = project.lock("pdm.lock")
    other = tmp_path / "more.txt"
    other.write_text("helper\n")
    result = cli("build", "-r", lock, "-r", other, "-o", tmp_path / "house")
    assert result.exit_code == 3, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(lock)!r} is a lock file (pdm.lock): it must be the only input, with no "
        "other -r files and no -c constraints"
    )


def test_a_renamed_lock_is_recognised_by_its_content(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("poetry.lock")
    renamed = lock.rename(tmp_path / "locked-deps.lock")
    manifest = build(cli, tmp_path / "house", renamed, project.index)
    assert set(lock_of(manifest, "host")) == set(EXPECTED["host"])


def test_rebuilding_from_an_unchanged_lock_is_a_noop(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("uv.lock")
    build(cli, tmp_path / "house", lock, project.index)
    again = cli("build", "-r", lock, "-o", tmp_path / "house", "-i", project.index.url, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["noop"] is True


POETRY_1_PYPROJECT = """\
[tool.poetry]
name = "app"
version = "0.1.0"
description = ""
authors = []

[tool.poetry.dependencies]
python = "^3.11"
purepkg = "1.0"
compiled = "*"
srcpure = "*"
"""


def test_a_poetry_1_lock_without_markers_is_walked_from_the_pyproject_beside_it(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    # Poetry 1.x (lock-version 2.0) writes the same package tables without groups and
    # markers: which packages a target needs follows from the project's dependencies.
    lock = project.lock("poetry.lock")
    text = lock.read_text()
    text = re.sub(r"^(groups|markers) = .*\n", "", text, flags=re.MULTILINE)
    lock.write_text(text.replace('lock-version = "2.1"', 'lock-version = "2.0"'))
    (project.root / "pyproject.toml").write_text(POETRY_1_PYPROJECT)
    manifest = build(cli, tmp_path / "house", lock, project.index, "--target", "host",
                     "--target", WINDOWS)  # fmt: skip
    for target, files in EXPECTED.items():
        assert lock_of(manifest, target) == {name: (f,) for name, f in files.items()}, target


def test_a_file_whose_locked_url_is_unreachable_is_taken_by_name_from_the_index(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("uv.lock")
    # Locked against another host (the public index, say) that this machine cannot reach.
    text = lock.read_text().replace(project.index.files_url, "http://127.0.0.1:9/files/")
    lock.write_text(text)
    manifest = build(cli, tmp_path / "house", lock, project.index)
    assert set(lock_of(manifest, "host")) == set(EXPECTED["host"])
    origin = manifest.file("helper-1.0-py3-none-any.whl").origin
    assert getattr(origin, "url", "") == project.index.files_url + "helper-1.0-py3-none-any.whl"


# -- issue 24: --extra/--group, requires-python, no network ------------------------------------

UNKNOWN = {
    # (kind, option): (what the lock has, the hint's place to look)
    ("uv.lock", "--group"): ("dev", "the projects' [dependency-groups]"),
    ("uv.lock", "--extra"): ("fast", "the projects' [project.optional-dependencies]"),
    ("poetry.lock", "--group"): ("dev, main", "the project's [tool.poetry.group.NAME] tables"),
    ("poetry.lock", "--extra"): ("fast", "the project's extras (the lock's [extras])"),
    ("pdm.lock", "--group"): (
        "default, dev, fast",
        "the lock's [metadata] groups (pdm lock -G NAME)",
    ),
    ("pdm.lock", "--extra"): ("dev, fast", "the lock's [metadata] groups (pdm lock -G NAME)"),
    # uv export writes no extras and groups into the pylock.toml: it holds what was exported.
    ("pylock-uv", "--group"): ("none", "the lock's dependency-groups"),
    ("pylock-uv", "--extra"): ("none", "the lock's extras"),
    ("Pipfile.lock", "--group"): (
        "default, dev, dev-packages, develop",
        "the Pipfile's sections: [dev-packages] is --group dev",
    ),
    ("Pipfile.lock", "--extra"): ("none", "the Pipfile (a Pipfile has no extras of its own)"),
}


@pytest.mark.parametrize(("kind", "option"), sorted(UNKNOWN))
def test_an_unknown_extra_or_group_of_a_lock_is_exit_3_naming_those_it_has(
    kind: str, option: str, project: Project, cli: Cli, tmp_path: Path
) -> None:
    # It built the main dependencies and exited 0: the wheelhouse silently lacked what was
    # asked for. A pyproject.toml input already failed this way.
    lock = project.lock(kind)
    out = tmp_path / "house"
    result = cli("build", "-r", lock, "-o", out, "-i", project.index.url, option, "nope")
    assert result.exit_code == 3, result.stderr
    has, where = UNKNOWN[(kind, option)]
    what = "dependency group" if option == "--group" else "extra"
    assert error_line(result.stderr) == f"error: {str(lock)!r} has no {what} 'nope' (it has: {has})"
    assert f"hint: check the {option} name against {where}" in result.stderr.splitlines()
    assert not out.exists()


WORKSPACE_ROOT = """\
[dependency-groups]
tools = ["devtool"]

[tool.uv.workspace]
members = ["app"]
"""

WORKSPACE_MEMBER = """\
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["purepkg==1.0"]

[dependency-groups]
dev = ["extrapkg"]
"""


def test_uv_groups_of_a_workspace_root_that_is_no_project_are_taken(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    # The shape of the full-stack FastAPI template: a root with [dependency-groups] but no
    # [project], which uv.lock records under [manifest.dependency-groups]. '--group tools'
    # added nothing (exit 0).
    (project.root / "pyproject.toml").write_text(WORKSPACE_ROOT, encoding="utf-8")
    (project.root / "app").mkdir()
    (project.root / "app" / "pyproject.toml").write_text(WORKSPACE_MEMBER, encoding="utf-8")
    lock = project.lock("uv.lock")
    assert "[manifest.dependency-groups]" in lock.read_text()
    plain = build(cli, tmp_path / "plain", lock, project.index)
    assert set(lock_of(plain, "host")) == {"purepkg", "helper"}
    grouped = build(cli, tmp_path / "grouped", lock, project.index, "--group", "tools",
                    "--group", "dev")  # fmt: skip
    assert set(lock_of(grouped, "host")) == {"purepkg", "helper", "devtool", "extrapkg"}
    unknown = cli("build", "-r", lock, "-o", tmp_path / "unknown", "-i", project.index.url,
                  "--group", "github-actions")  # fmt: skip
    assert unknown.exit_code == 3, unknown.stderr
    assert error_line(unknown.stderr) == (
        f"error: {str(lock)!r} has no dependency group 'github-actions' (it has: dev, tools)"
    )


PYTHON_OF = {
    # kind: (the lock's text for Python >= 3.11, the same lock made for Python >= 3.14, and
    # the requirement the error names)
    "uv.lock": ('requires-python = ">=3.11"', 'requires-python = ">=3.14"', ">=3.14"),
    "poetry.lock": ('python-versions = ">=3.11"', 'python-versions = "^3.14"', ">=3.14,<4"),
    "pdm.lock": ('requires_python = ">=3.11"', 'requires_python = ">=3.14"', ">=3.14"),
}


@pytest.mark.parametrize("kind", sorted(PYTHON_OF))
def test_a_lock_for_another_python_says_so_before_looking_for_files(
    kind: str, project: Project, cli: Cli, tmp_path: Path
) -> None:
    # A uv.lock for Python >= 3.14 built for a 3.11 host blamed a package ("no wheel for the
    # target among 11 locked files") or built what fit; Python was never named.
    import platform

    lock = project.lock(kind)
    ours, theirs, spec = PYTHON_OF[kind]
    text = lock.read_text()
    assert text.count(ours) == 1, text
    lock.write_text(text.replace(ours, theirs))
    out = tmp_path / "house"
    result = cli("build", "-r", lock, "-o", out, "-i", project.index.url)
    assert result.exit_code == 9, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(lock)!r} requires Python {spec}; the target 'host' is Python "
        f"{platform.python_version()}"
    )
    # The oldest Python the lock allows, on the host's own platform, in a form --target takes.
    hint = result.stderr.splitlines()[-1]
    assert re.fullmatch(
        r"hint: build for a Python it allows \(--target cp314-manylinux_2_\d+_x86_64\), or "
        rf"lock again to include Python {sys.version_info.major}\.{sys.version_info.minor}",
        hint,
    ), hint
    assert not out.exists()


@pytest.mark.parametrize("kind", ["poetry.lock", "pdm.lock"])
def test_a_lock_without_urls_and_no_network_is_exit_5_cannot_reach(
    kind: str, project: Project, cli: Cli, tmp_path: Path
) -> None:
    # It was exit 9, one line of every package "is not on the configured indexes", and the
    # hint "lock for this target too"; uv.lock and requirement files said exit 5 already.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    dead = f"http://127.0.0.1:{closed}/simple/"
    lock = project.lock(kind)
    lock.write_text(lock.read_text().replace(project.index.base_url.rstrip("/"),
                                             f"http://127.0.0.1:{closed}"))  # fmt: skip
    out = tmp_path / "house"
    result = cli("build", "-r", lock, "-o", out, "-i", dead)
    assert result.exit_code == 5, result.stderr
    line = error_line(result.stderr)
    assert line.startswith(f"error: cannot reach http://127.0.0.1:{closed}/simple"), line
    assert "Connection refused" in line, line
    assert result.stderr.splitlines()[-1] == (
        "hint: check the network, the index URL and pip's proxy and cert settings"
    )
    assert not out.exists()


def test_packages_missing_from_the_index_are_named_five_at_most(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("pdm.lock")
    empty = tmp_path / "empty"
    (empty / "simple").mkdir(parents=True)
    result = cli("build", "-r", lock, "-o", tmp_path / "house", "-i", empty.as_uri() + "/simple/",
                 "--group", "dev", "--extra", "fast")  # fmt: skip
    assert result.exit_code == 9, result.stderr
    line = error_line(result.stderr)
    assert line.startswith(f"error: {str(lock)!r} cannot be installed on target 'host': "), line
    assert line.endswith("; and 1 more"), line
    assert line.count("is not on the configured indexes") == 5, line


def test_packages_from_version_control_are_named_five_at_most(cli: Cli, tmp_path: Path) -> None:
    names = [f"vcs{i}" for i in range(7)]
    lock = tmp_path / "pdm.lock"
    lock.write_text(
        '[metadata]\ngroups = ["default"]\nstrategy = ["inherit_metadata"]\n'
        'lock_version = "4.5.0"\n\n'
        + "".join(
            f'[[package]]\nname = "{name}"\nversion = "1.0"\ngroups = ["default"]\n'
            f'git = "https://git.example.org/{name}.git"\nrevision = "abc"\n\n'
            for name in names
        ),
        encoding="utf-8",
    )
    result = cli("build", "-r", lock, "-o", tmp_path / "house")
    assert result.exit_code == 3, result.stderr
    shown = ", ".join(f"{n} (git+https://git.example.org/{n}.git)" for n in names[:5])
    assert error_line(result.stderr) == (
        f"error: {str(lock)!r} locks {shown}, and 2 more from version control, which a "
        "wheelhouse cannot pin by hash"
    )


def test_a_foreign_target_outside_requires_python_is_named_with_one_that_fits(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    lock = project.lock("uv.lock")
    lock.write_text(
        lock.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.13"')
    )
    result = cli("build", "-r", lock, "-o", tmp_path / "house", "-i", project.index.url,
                 "--target", "host", "--target", WINDOWS)  # fmt: skip
    assert result.exit_code == 9, result.stderr
    # The host comes first; the same check names a foreign target by its minor version.
    assert "the target 'host' is Python 3.11" in error_line(result.stderr)
    foreign = cli("build", "-r", lock, "-o", tmp_path / "house", "-i", project.index.url,
                  "--target", WINDOWS)  # fmt: skip
    assert foreign.exit_code == 9, foreign.stderr
    assert error_line(foreign.stderr) == (
        f"error: {str(lock)!r} requires Python >=3.13; the target {WINDOWS!r} is Python 3.11"
    )
    assert foreign.stderr.splitlines()[-1] == (
        "hint: build for a Python it allows (--target cp313-win_amd64), or lock again to "
        "include Python 3.11"
    )


def test_a_pyproject_outside_its_requires_python_says_so(
    project: Project, cli: Cli, tmp_path: Path
) -> None:
    # pip resolved the dependencies for a Python the project does not support (exit 0).
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(
        PYPROJECT.replace('requires-python = ">=3.11"', 'requires-python = ">=3.14"')
    )
    out = tmp_path / "house"
    result = cli("build", "-r", pyproject, "-o", out, "-i", project.index.url, "--target",
                 WINDOWS)  # fmt: skip
    assert result.exit_code == 9, result.stderr
    assert error_line(result.stderr) == (
        f"error: {str(pyproject)!r} requires Python >=3.14; the target {WINDOWS!r} is Python 3.11"
    )
    assert result.stderr.splitlines()[-1] == (
        "hint: build for a Python it allows (--target cp314-win_amd64), or widen its "
        "requires-python to include Python 3.11"
    )
    assert not out.exists()


def test_a_lock_whose_group_tables_are_malformed_is_exit_3(cli: Cli, tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "app"\n'
        'version = "0.1.0"\nsource = { virtual = "." }\noptional-dependencies = 5\n',
        encoding="utf-8",
    )
    result = cli("build", "-r", lock, "-o", tmp_path / "house", "--extra", "fast")
    assert result.exit_code == 3, result.stderr
    assert error_line(result.stderr).startswith(
        f"error: {str(lock)!r} is not a uv.lock this version can read: TypeError("
    )
    assert "Traceback" not in result.stderr
