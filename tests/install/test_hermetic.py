"""wheelhouse.install.hermetic: hermetic offline installs with pip (bundled and newest) and uv."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.tags import sys_tags

import wheelhouse._base._uv
import wheelhouse.install.hermetic as install_module
from tests.support.capabilities import missing
from tests.support.dists import vendor_dist_info
from tests.support.files import flip_byte
from tests.support.venvs import installed_versions as versions
from tests.support.wheelhouses import make_wheelhouse
from wheelhouse._base.targets import parse_target
from wheelhouse.errors import (
    IncompatibleError,
    NotFoundError,
    RequirementsError,
    TamperedError,
    WheelhouseError,
)
from wheelhouse.install._interpreter import describe
from wheelhouse.install.hermetic import (
    InstallOptions,
    default_python,
    execute,
    find_uv,
    install,
    plan_install,
)

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "examples" / "Dockerfile"
ALPHA = "alpha-1.0-py3-none-any.whl"


@pytest.fixture
def house(tmp_path: Path, dists) -> Path:  # type: ignore[no-untyped-def]
    """alpha needs beta (and gamma with the 'fast' extra); delta stands alone."""
    wheels = [
        dists.wheel("alpha", "1.0", requires=["beta>=2"], extras={"fast": ["gamma"]}),
        dists.wheel("beta", "2.0"),
        dists.wheel("gamma", "3.0"),
        dists.wheel("delta", "4.0"),
    ]
    make_wheelhouse(tmp_path / "wh", wheels, requested=["alpha", "delta"])
    return tmp_path / "wh"


def hostile_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dists) -> None:  # type: ignore[no-untyped-def]
    """Every way pip or uv could be told to look elsewhere or to pin something else."""
    evil = tmp_path / "evil"
    evil.mkdir()
    from tests.support.dists import make_wheel

    make_wheel(evil, "alpha", "9.0")
    constraint = tmp_path / "evil-constraints.txt"
    constraint.write_text("alpha==9.0\nbeta==9.0\n")
    conf = tmp_path / "evil-pip.conf"
    conf.write_text(
        "[global]\nindex-url = http://127.0.0.1:9/simple\n"
        "extra-index-url = http://127.0.0.1:9/extra\n"
        f"find-links = {evil}\nconstraint = {constraint}\n"
    )
    uv_toml = tmp_path / "evil-uv.toml"
    uv_toml.write_text(f'constraint-dependencies = ["alpha==9.0"]\nfind-links = ["{evil}"]\n')
    for key, value in {
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "http://127.0.0.1:9/extra",
        "PIP_FIND_LINKS": str(evil),
        "PIP_CONSTRAINT": str(constraint),
        "PIP_CONFIG_FILE": str(conf),
        "PIP_NO_INDEX": "0",
        "UV_INDEX_URL": "http://127.0.0.1:9/simple",
        "UV_FIND_LINKS": str(evil),
        "UV_CONSTRAINT": str(constraint),
        "UV_CONFIG_FILE": str(uv_toml),
    }.items():
        monkeypatch.setenv(key, value)


def run_offline(plan, offline: Callable[[list[str]], list[str]]):  # type: ignore[no-untyped-def]
    return execute(replace(plan, argv=tuple(offline(list(plan.argv)))))


# Planning: the exact command, no venv needed.


def test_plan_whole_lock_uses_the_wheelhouse_requirements(house: Path, tmp_path: Path) -> None:
    python = Path(sys.executable)
    plan = plan_install(InstallOptions(wheelhouse=house, python=python), workdir=tmp_path)
    assert plan.argv == (
        str(python),
        "-P",
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(house),
        "--only-binary=:all:",
        "--require-hashes",
        "-r",
        str(house / "requirements.txt"),
    )
    assert not plan.generated
    assert [e.name for e in plan.entries] == ["alpha", "beta", "gamma", "delta"]


def test_plan_env_is_scrubbed(
    house: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dists
) -> None:  # type: ignore[no-untyped-def]
    hostile_environment(monkeypatch, tmp_path, dists)
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path
    )
    assert plan.env["PIP_CONFIG_FILE"] == os.devnull
    assert plan.env["UV_NO_CONFIG"] == "1"
    leaked = {k for k in plan.env if k.startswith(("PIP_", "UV_"))} - {
        "PIP_CONFIG_FILE",
        "PIP_NO_INPUT",
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "UV_NO_CONFIG",
    }
    assert leaked == set()


def test_plan_uv_command(house: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uv = tmp_path / "bin" / "uv"
    uv.parent.mkdir()
    uv.write_text("#!/bin/sh\nexit 0\n")
    uv.chmod(0o755)
    # The uv that wheelhouse depends on (its Python package) is the one used.
    monkeypatch.setitem(sys.modules, "uv", types.SimpleNamespace(find_uv_bin=lambda: str(uv)))
    python = Path(sys.executable)
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=python, installer="uv", installer_args=("-q",)),
        workdir=tmp_path,
    )
    assert plan.argv == (
        str(uv),
        "pip",
        "install",
        "--offline",
        "--no-index",
        "--find-links",
        str(house),
        "--python",
        str(python),
        "--no-config",
        "--only-binary",
        ":all:",
        "--require-hashes",
        "-r",
        str(house / "requirements.txt"),
        "-q",
    )


def test_missing_uv_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheelhouse._base._uv.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "uv", None)  # import uv -> ImportError
    with pytest.raises(WheelhouseError) as info:
        find_uv("--installer uv was asked for", install_module._UV_HINT)
    assert info.value.message == (
        "--installer uv was asked for, but uv is neither installed as a Python package nor on PATH"
    )
    assert info.value.hint == (
        "reinstall wheelhouse (uv is one of its dependencies), or use --installer pip"
    )


def test_plan_for_one_package_pins_it_and_its_dependencies(house: Path, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    plan = plan_install(
        InstallOptions(wheelhouse=house, packages=("alpha",), python=Path(sys.executable)),
        workdir=tmp_path / "work",
    )
    assert plan.generated
    assert plan.requirements_file == tmp_path / "work" / "requirements.txt"
    assert plan.argv[-2:] == ("-r", str(plan.requirements_file))
    text = plan.requirements_file.read_text()
    pins = re.findall(r"^(\S+)==(\S+) \\$", text, flags=re.M)
    assert pins == [("alpha", "1.0"), ("beta", "2.0")]
    hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", text)
    manifest_hashes = {r.filename: r.sha256 for r in plan_manifest_files(house)}
    assert hashes == [
        manifest_hashes["alpha-1.0-py3-none-any.whl"],
        manifest_hashes["beta-2.0-py3-none-any.whl"],
    ]


def plan_manifest_files(house: Path):  # type: ignore[no-untyped-def]
    from wheelhouse.house.manifest import read_manifest

    manifest = read_manifest(house)
    assert manifest is not None
    return manifest.files


def test_extras_pull_in_their_dependencies(house: Path, tmp_path: Path) -> None:
    plan = plan_install(
        InstallOptions(wheelhouse=house, packages=("alpha[fast]>=1",), python=Path(sys.executable)),
        workdir=tmp_path,
    )
    assert [e.name for e in plan.entries] == ["alpha", "beta", "gamma"]
    assert plan.requirements_file.read_text().splitlines()[1] == "alpha[fast]==1.0 \\"


def test_requirements_file_selects_packages(house: Path, tmp_path: Path) -> None:
    asked = tmp_path / "asked.txt"
    asked.write_text("# just delta\ndelta>=4  # the standalone one\n")
    plan = plan_install(
        InstallOptions(wheelhouse=house, requirements=(asked,), python=Path(sys.executable)),
        workdir=tmp_path,
    )
    assert [e.name for e in plan.entries] == ["delta"]


def test_what_the_wheelhouse_cannot_satisfy_is_listed(house: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        plan_install(
            InstallOptions(
                wheelhouse=house, packages=("alpha>=2", "zeta"), python=Path(sys.executable)
            ),
            workdir=tmp_path,
        )
    assert info.value.message == (
        f"the wheelhouse {str(house)!r} cannot satisfy what was asked for (target 'host'):\n"
        "  'alpha>=2': the wheelhouse holds alpha 1.0\n"
        "  'zeta': the wheelhouse holds no 'zeta'"
    )


def test_a_direct_reference_is_refused(house: Path, tmp_path: Path) -> None:
    with pytest.raises(RequirementsError, match="is a direct reference"):
        plan_install(
            InstallOptions(
                wheelhouse=house,
                packages=("alpha @ https://example.invalid/a.whl",),
                python=Path(sys.executable),
            ),
            workdir=tmp_path,
        )


def test_wheel_for_another_platform_gets_the_precheck_error(tmp_path: Path, dists) -> None:  # type: ignore[no-untyped-def]
    windows = dists.wheel("native", "1.5", tag="cp311-cp311-win_amd64")
    make_wheelhouse(tmp_path / "wh", [windows, dists.wheel("beta", "2.0")])
    python = Path(sys.executable)
    with pytest.raises(IncompatibleError) as info:
        plan_install(InstallOptions(wheelhouse=tmp_path / "wh", python=python), workdir=tmp_path)
    best = next(t for t in describe(python).tags if "-linux_" not in t)
    assert info.value.message == (
        f"the wheelhouse {str(tmp_path / 'wh')!r} has no wheel that {str(python)!r} "
        f"(Python {describe(python).version}, best tag {best}) can install for:\n"
        "  native 1.5: the wheelhouse has native-1.5-cp311-cp311-win_amd64.whl"
    )
    # The hint names a target 'wheelhouse build --target' accepts: {interpreter}-{platform}.
    interpreter, _abi, platform = best.split("-")
    assert info.value.hint is not None and f"--target {interpreter}-{platform})" in info.value.hint
    assert parse_target(f"{interpreter}-{platform}").platform == platform
    assert info.value.exit_code == 9


def test_requires_python_that_excludes_the_target_fails_the_precheck(tmp_path: Path, dists) -> None:  # type: ignore[no-untyped-def]
    wheel = dists.wheel("future", "1.0")
    make_wheelhouse(tmp_path / "wh", [wheel], requires_python={wheel.name: ">=3.99"})
    with pytest.raises(
        IncompatibleError, match=re.escape("  future 1.0: the wheelhouse has future-1.0")
    ):
        plan_install(
            InstallOptions(wheelhouse=tmp_path / "wh", python=Path(sys.executable)),
            workdir=tmp_path,
        )


def test_a_changed_requirements_txt_is_refused(house: Path, tmp_path: Path) -> None:
    # The whole-lock install hands DIR/requirements.txt to pip, as a user would by hand.
    path = house / "requirements.txt"
    path.write_text(path.read_text().replace("gamma", "# gamma"))
    with pytest.raises(TamperedError) as info:
        plan_install(
            InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path
        )
    assert info.value.message.startswith(
        "the wheelhouse's 'requirements.txt' does not match its manifest"
    )
    assert info.value.exit_code == 6


def test_tampered_wheelhouse_is_refused_naming_the_file(house: Path) -> None:
    flip_byte(house / ALPHA)
    with pytest.raises(TamperedError) as info:
        install(InstallOptions(wheelhouse=house, python=Path(sys.executable)))
    assert info.value.message.startswith(
        f"the wheelhouse {str(house)!r} does not match its manifest ('{ALPHA}'):\n  '{ALPHA}' has"
    )
    assert info.value.exit_code == 6


def test_stray_wheel_is_refused_but_a_stray_note_is_not(house: Path, tmp_path: Path) -> None:
    (house / "README.txt").write_text("notes\n")
    plan_install(InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path)
    (house / "evil-9.0-py3-none-any.whl").write_bytes(b"PK")
    with pytest.raises(TamperedError, match=re.escape("'evil-9.0-py3-none-any.whl'")):
        plan_install(
            InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path
        )


def test_missing_interpreter(house: Path, tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError) as info:
        plan_install(
            InstallOptions(wheelhouse=house, python=tmp_path / "nope" / "python"), workdir=tmp_path
        )
    assert info.value.message == (
        f"the Python interpreter {str(tmp_path / 'nope' / 'python')!r} does not exist"
    )


def test_interpreter_that_does_not_run(house: Path, tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(WheelhouseError) as info:
        plan_install(InstallOptions(wheelhouse=house, python=broken), workdir=tmp_path)
    assert info.value.message == (
        f"the Python interpreter {str(broken)!r} failed (exit 3) when asked for its tags:\n"
        "cannot start"
    )


def test_default_python(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    assert default_python() == Path(sys.executable)
    assert default_python({"VIRTUAL_ENV": str(tmp_path)}) == tmp_path / "bin" / "python"


def test_installer_failure_carries_its_last_lines(house: Path, tmp_path: Path) -> None:
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path
    )
    script = (
        "import sys; print('first'); print('ERROR: the last word', file=sys.stderr); sys.exit(3)"
    )
    with pytest.raises(WheelhouseError) as info:
        execute(replace(plan, argv=(sys.executable, "-c", script)))
    assert info.value.message == (
        f"pip could not install from {str(house)!r} into {str(Path(sys.executable))!r} "
        "(exit 3):\nERROR: the last word\nfirst"
    )


def test_progress_reads_pips_log_and_keeps_it_out_of_the_error(house: Path, tmp_path: Path) -> None:
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path
    )
    # A stand-in for pip that logs as pip's --log does (to the file it is given) and fails.
    script = (
        "import sys\n"
        "log = open(sys.argv[sys.argv.index('--log') + 1], 'a')\n"
        "for line in ['Processing ./alpha-1.0-py3-none-any.whl', 'Processing ./beta-2.0.whl',\n"
        "             'Installing collected packages: beta, alpha']:\n"
        "    log.write('2026-12-07T03:56:54,812 ' + line + '\\n'); log.flush()\n"
        "print('ERROR: the last word', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    seen: list[tuple[str, int, int]] = []
    with pytest.raises(WheelhouseError) as info:
        execute(
            replace(plan, argv=(sys.executable, "-c", script)),
            lambda phase, done, total: seen.append((phase, done, total)),
        )
    assert seen == [
        ("starting", 0, 4),
        ("reading", 1, 4),
        ("reading", 2, 4),
        ("installing", 0, 4),
    ]
    assert info.value.message == (
        f"pip could not install from {str(house)!r} into {str(Path(sys.executable))!r} "
        "(exit 3):\nERROR: the last word"
    )


def test_progress_leaves_a_log_the_user_asked_for_alone(house: Path, tmp_path: Path) -> None:
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=Path(sys.executable)), workdir=tmp_path
    )
    script = "import json, sys; print(json.dumps(sys.argv[1:]))"
    mine = str(tmp_path / "pip.log")
    seen: list[tuple[str, int, int]] = []
    result = execute(
        replace(plan, argv=(sys.executable, "-c", script, "--log", mine)),
        lambda phase, done, total: seen.append((phase, done, total)),
    )
    assert json.loads(result.stdout) == ["--log", mine]
    assert seen == [("starting", 0, 4), ("installing", 0, 4), ("installing", 4, 4)]


# End to end: real installs into fresh venvs, offline, with a hostile environment.


@pytest.mark.slow
def test_bundled_pip_installs_everything_offline(  # type: ignore[no-untyped-def]
    house: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dists, make_venv, offline
) -> None:
    python = make_venv()
    hostile_environment(monkeypatch, tmp_path, dists)
    plan = plan_install(InstallOptions(wheelhouse=house, python=python), workdir=tmp_path)
    assert plan.argv[:3] == (str(python), "-m", "pip")  # the venv's own pip 23.2
    run_offline(plan, offline)
    assert versions(python) == {"alpha": "1.0", "beta": "2.0", "gamma": "3.0", "delta": "4.0"}


@pytest.mark.slow
def test_newest_pip_installs_into_an_interpreter_without_pip(  # type: ignore[no-untyped-def]
    house: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dists, make_venv, offline
) -> None:
    python = make_venv(with_pip=False)
    hostile_environment(monkeypatch, tmp_path, dists)
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=python, packages=("alpha",)), workdir=tmp_path
    )
    assert plan.argv[:6] == (sys.executable, "-P", "-m", "pip", "--python", str(python))
    run_offline(plan, offline)
    assert versions(python) == {"alpha": "1.0", "beta": "2.0"}


@pytest.mark.slow
def test_uv_installs_offline(  # type: ignore[no-untyped-def]
    house: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dists, make_venv, offline
) -> None:
    try:
        find_uv()
    except WheelhouseError as exc:
        missing("uv", exc.message)
    python = make_venv(with_pip=False)
    hostile_environment(monkeypatch, tmp_path, dists)
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=python, installer="uv"), workdir=tmp_path
    )
    run_offline(plan, offline)
    assert versions(python) == {"alpha": "1.0", "beta": "2.0", "gamma": "3.0", "delta": "4.0"}


@pytest.mark.slow
def test_one_package_installs_it_and_its_dependencies_only(  # type: ignore[no-untyped-def]
    house: Path, make_venv, offline, tmp_path: Path
) -> None:
    python = make_venv()
    plan = plan_install(
        InstallOptions(wheelhouse=house, python=python, packages=("delta",)), workdir=tmp_path
    )
    result = run_offline(plan, offline)
    assert result.returncode == 0
    assert versions(python) == {"delta": "4.0"}


@pytest.mark.slow
def test_install_runs_through_the_public_function(house: Path, make_venv) -> None:  # type: ignore[no-untyped-def]
    python = make_venv()
    result = install(InstallOptions(wheelhouse=house, python=python, packages=("alpha[fast]",)))
    assert result.returncode == 0
    assert not result.plan.requirements_file.exists()  # the temporary file is cleaned up
    assert versions(python) == {"alpha": "1.0", "beta": "2.0", "gamma": "3.0"}


def dockerfile_install_commands() -> list[tuple[dict[str, str], list[str]]]:
    """(environment, argv) of each stage's install, as examples/Dockerfile writes them."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.startswith("RUN --mount=type=bind") and "/wheelhouse " in line:
            words = shlex.split(line)[2:]
            env = dict(w.split("=", 1) for w in words[: words.index("pip")])
            found.append((env, words[words.index("pip") :]))
    return found


def test_dockerfile_installs_hermetically_in_both_variants() -> None:
    expected = (
        {"PIP_CONFIG_FILE": "/dev/null"},
        [
            "pip",
            "install",
            "--no-index",
            "--find-links",
            "/wheelhouse",
            "--require-hashes",
            "-r",
            "/wheelhouse/requirements.txt",
        ],
    )
    assert dockerfile_install_commands() == [expected, expected]
    mounts = re.findall(r"^RUN (--mount=\S+)", DOCKERFILE.read_text(), flags=re.M)
    assert mounts == [
        "--mount=type=bind,from=wheelhouse-src,target=/tmp/wheelhouse-src,rw",
        "--mount=type=bind,source=wheelhouse,target=/wheelhouse",
        "--mount=type=bind,from=builder,source=/wheelhouse,target=/wheelhouse",
    ]


def test_dockerfile_installs_wheelhouse_from_its_source_not_from_the_index() -> None:
    # "wheelhouse" on PyPI is an unrelated project: `pip install wheelhouse` would run it.
    runs = DOCKERFILE.read_text().replace("\\\n", " ")
    installs = [line for line in runs.splitlines() if " pip install " in line]
    assert not [line for line in installs if re.search(r"pip install \S*\s*wheelhouse\b", line)]
    assert any(line.endswith("pip install --no-cache-dir /tmp/wheelhouse-src") for line in installs)


@pytest.mark.slow
def test_dockerfile_install_command_works_offline(  # type: ignore[no-untyped-def]
    house: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dists, make_venv, offline
) -> None:
    """There is no Docker daemon here: run the Dockerfile's exact command against a venv."""
    python = make_venv()
    # A base image's pip.conf (PIP_CONFIG_FILE stands for /etc/pip.conf) must not apply.
    hostile_environment(monkeypatch, tmp_path, dists)
    for key in [k for k in os.environ if k.startswith(("PIP_", "UV_"))]:
        if key != "PIP_CONFIG_FILE":
            monkeypatch.delenv(key)
    env, words = dockerfile_install_commands()[-1]
    argv = [str(python), "-m", *(w.replace("/wheelhouse", str(house)) for w in words)]
    done = subprocess.run(
        offline(argv), env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert versions(python) == {"alpha": "1.0", "beta": "2.0", "gamma": "3.0", "delta": "4.0"}


def test_running_interpreter_answers_like_a_started_one() -> None:
    from wheelhouse.install._interpreter import _ask

    python = Path(sys.executable).absolute()
    started = _ask(python)
    assert describe(python) == started
    assert started.tags == tuple(str(t) for t in sys_tags())
    assert started.has_pip  # the test environment has pip


def test_dependencies_come_from_the_wheels_own_metadata_not_a_vendored_one(
    tmp_path: Path,
    dists,  # type: ignore[no-untyped-def]
) -> None:
    """A wheel may ship another project's .dist-info (vendored); its METADATA must not win,
    even when it comes first in the archive."""
    wheel = dists.wheel("alpha", "1.0", requires=["beta>=2"])
    vendor_dist_info(wheel)
    make_wheelhouse(tmp_path / "wh", [wheel, dists.wheel("beta", "2.0")], requested=["alpha"])

    plan = plan_install(
        InstallOptions(
            wheelhouse=tmp_path / "wh", packages=("alpha",), python=Path(sys.executable)
        ),
        workdir=tmp_path,
    )

    assert [(e.name, e.version) for e in plan.entries] == [("alpha", "1.0"), ("beta", "2.0")]
