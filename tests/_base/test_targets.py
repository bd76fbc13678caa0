"""Targets: parsing ``--target`` tags, the wheel tags each accepts, its marker environment."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, parse_tag, sys_tags
from packaging.utils import parse_wheel_filename

from tests.support.fixtures import Cli
from wheelhouse._base.targets import HOST, TARGET_FORMS, Target, parse_target, surely_foreign
from wheelhouse.errors import UsageError

AARCH64 = "cp312-manylinux_2_28_aarch64"
WINDOWS = "cp311-win_amd64"
MACOS = "cp313-macosx_11_0_arm64"
MUSL = "cp311-musllinux_1_2_x86_64"


def accepts(target: str | Target, wheel: str) -> bool:
    """Whether ``target`` can install the wheel file ``wheel`` (judged by its file name)."""
    parsed = parse_target(target) if isinstance(target, str) else target
    return parsed.accepts(parse_wheel_filename(wheel)[3]) is not None


def rank(target: str, tag: str) -> int | None:
    return parse_target(target).accepts(frozenset(parse_tag(tag)))


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "python_version", "platform", "first_tag"),
    [
        (AARCH64, (3, 12), "manylinux_2_28_aarch64", "cp312-cp312-manylinux_2_28_aarch64"),
        (WINDOWS, (3, 11), "win_amd64", "cp311-cp311-win_amd64"),
        (MACOS, (3, 13), "macosx_11_0_arm64", "cp313-cp313-macosx_11_0_arm64"),
        (MUSL, (3, 11), "musllinux_1_2_x86_64", "cp311-cp311-musllinux_1_2_x86_64"),
        (
            "cp311-manylinux2014_x86_64",
            (3, 11),
            "manylinux2014_x86_64",
            "cp311-cp311-manylinux_2_17_x86_64",
        ),
        (
            "cp312-manylinux2014_aarch64",
            (3, 12),
            "manylinux2014_aarch64",
            "cp312-cp312-manylinux_2_17_aarch64",
        ),
        ("cp39-win32", (3, 9), "win32", "cp39-cp39-win32"),
        ("cp314-win_arm64", (3, 14), "win_arm64", "cp314-cp314-win_arm64"),
    ],
)
def test_every_accepted_form_parses(
    text: str, python_version: tuple[int, int], platform: str, first_tag: str
) -> None:
    target = parse_target(text)
    assert target.name == text
    assert target.python_version == python_version
    assert target.platform == platform
    assert not target.is_host
    assert str(target.tags[0]) == first_tag
    assert target.key == first_tag


def test_host_is_the_running_interpreter() -> None:
    target = parse_target("host")
    assert target is HOST
    assert target.is_host
    assert target.platform is None
    # Surrounding blanks (a shell variable with a trailing space) do not matter.
    assert parse_target(" host ") is HOST


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "unknown target 'foo'"),
        ("", "unknown target ''"),
        ("cp312", "unknown target 'cp312'"),
        ("py3-manylinux_2_28_aarch64", "unknown target 'py3-manylinux_2_28_aarch64'"),
        ("pp310-manylinux_2_28_x86_64", "unknown target 'pp310-manylinux_2_28_x86_64'"),
        ("cp27-win_amd64", "unknown target 'cp27-win_amd64'"),
        ("CP312-win_amd64", "unknown target 'CP312-win_amd64'"),
        ("cp312-", "unknown platform '' in target 'cp312-'"),
        ("cp312-linux_x86_64", "unknown platform 'linux_x86_64' in target 'cp312-linux_x86_64'"),
        (
            "cp312-manylinux_2_28_sparc",
            "unknown platform 'manylinux_2_28_sparc' in target 'cp312-manylinux_2_28_sparc'",
        ),
        (
            "cp312-manylinux_3_0_x86_64",
            "unknown platform 'manylinux_3_0_x86_64' in target 'cp312-manylinux_3_0_x86_64'",
        ),
        (
            "cp312-musllinux_1_2_ppc64le",
            "unknown platform 'musllinux_1_2_ppc64le' in target 'cp312-musllinux_1_2_ppc64le'",
        ),
        (
            "cp312-macosx_11_0_ppc",
            "unknown platform 'macosx_11_0_ppc' in target 'cp312-macosx_11_0_ppc'",
        ),
        ("cp312-win_ia64", "unknown platform 'win_ia64' in target 'cp312-win_ia64'"),
        ("cp312-any", "unknown platform 'any' in target 'cp312-any'"),
    ],
)
def test_malformed_targets_are_usage_errors_listing_the_forms(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_target(text)
    assert caught.value.message == message
    assert caught.value.hint == f"a target is {TARGET_FORMS}"
    assert caught.value.exit_code == 2


def test_the_accepted_forms_name_every_example() -> None:
    for example in ("host", AARCH64, WINDOWS, MACOS, MUSL, "manylinux2014"):
        assert example in TARGET_FORMS


@pytest.mark.parametrize(
    "text",
    ["cp311-manylinux1_aarch64", "cp311-manylinux2010_aarch64", "cp311-manylinux_2_5_aarch64"],
)
def test_a_linux_platform_below_the_architectures_floor_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_target(text)


def test_cli_rejects_an_unknown_target_with_one_error_line(cli: Cli, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.in"
    requirements.write_text("anything\n")
    out = tmp_path / "out"
    result = cli("build", "-r", requirements, "-o", out, "--target", "foo")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: unknown target 'foo'",
        f"hint: a target is {TARGET_FORMS}",
    ]
    assert result.stdout == ""
    assert not out.exists()


# -- which wheels a target accepts ---------------------------------------------------------------


def test_manylinux_2_28_aarch64_accepts_older_glibc_wheels_down_to_manylinux2014() -> None:
    target = parse_target(AARCH64)
    assert accepts(target, "x-1.0-cp312-cp312-manylinux_2_28_aarch64.whl")
    assert accepts(target, "x-1.0-cp312-cp312-manylinux_2_17_aarch64.whl")
    assert accepts(target, "x-1.0-cp312-cp312-manylinux2014_aarch64.whl")
    assert accepts(target, "x-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    assert not accepts(target, "x-1.0-cp312-cp312-manylinux_2_31_aarch64.whl")
    # aarch64 wheels start at manylinux2014: there is no such thing as manylinux1_aarch64.
    assert "manylinux2014_aarch64" in target.platforms
    assert target.platforms[-1] == "manylinux2014_aarch64"
    assert not any("2_16" in p or "manylinux1" in p for p in target.platforms)
    # Never the other architecture, never a bare linux tag (not installable from an index).
    assert not accepts(target, "x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert not accepts(target, "x-1.0-cp312-cp312-linux_aarch64.whl")
    assert not accepts(target, "x-1.0-cp312-cp312-musllinux_1_2_aarch64.whl")


def test_x86_64_goes_down_to_manylinux1() -> None:
    target = parse_target("cp311-manylinux_2_28_x86_64")
    assert accepts(target, "x-1.0-cp311-cp311-manylinux1_x86_64.whl")
    assert accepts(target, "x-1.0-cp311-cp311-manylinux2010_x86_64.whl")
    assert accepts(target, "x-1.0-cp311-cp311-manylinux_2_5_x86_64.whl")
    assert target.platforms[-2:] == ("manylinux_2_5_x86_64", "manylinux1_x86_64")
    assert "manylinux2010_x86_64" in target.platforms
    assert "manylinux2014_x86_64" in target.platforms


def test_abi3_wheels_from_older_cpythons_are_accepted() -> None:
    assert accepts(AARCH64, "x-1.0-cp38-abi3-manylinux_2_17_aarch64.whl")
    assert accepts(AARCH64, "x-1.0-cp312-abi3-manylinux_2_28_aarch64.whl")
    assert accepts(WINDOWS, "x-1.0-cp37-abi3-win_amd64.whl")
    # abi3 from a newer CPython than the target is not.
    assert not accepts(WINDOWS, "x-1.0-cp312-abi3-win_amd64.whl")


@pytest.mark.parametrize("target", [AARCH64, WINDOWS, MACOS, MUSL, "cp39-win32"])
def test_pure_wheels_are_accepted_everywhere(target: str) -> None:
    assert accepts(target, "x-1.0-py3-none-any.whl")
    assert accepts(target, "x-1.0-py2.py3-none-any.whl")
    assert not accepts(target, "x-1.0-py2-none-any.whl")


def test_a_wheel_for_another_cpython_is_not_accepted() -> None:
    assert not accepts(AARCH64, "x-1.0-cp311-cp311-manylinux_2_17_aarch64.whl")
    assert not accepts(AARCH64, "x-1.0-cp313-cp313-manylinux_2_17_aarch64.whl")
    assert accepts(AARCH64, "x-1.0-cp312-cp312-manylinux_2_17_aarch64.whl")


def test_windows_refuses_linux_and_macos_wheels() -> None:
    assert accepts(WINDOWS, "x-1.0-cp311-cp311-win_amd64.whl")
    assert not accepts(WINDOWS, "x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
    assert not accepts(WINDOWS, "x-1.0-cp311-cp311-linux_x86_64.whl")
    assert not accepts(WINDOWS, "x-1.0-cp311-cp311-macosx_11_0_x86_64.whl")
    assert not accepts(WINDOWS, "x-1.0-cp311-cp311-win32.whl")
    assert parse_target(WINDOWS).platforms == ("win_amd64",)


def test_macos_accepts_older_deployment_targets_and_universal2() -> None:
    assert accepts(MACOS, "x-1.0-cp313-cp313-macosx_10_9_universal2.whl")
    assert accepts(MACOS, "x-1.0-cp313-cp313-macosx_11_0_arm64.whl")
    assert not accepts(MACOS, "x-1.0-cp313-cp313-macosx_12_0_arm64.whl")
    assert not accepts(MACOS, "x-1.0-cp313-cp313-macosx_11_0_x86_64.whl")


def test_musllinux_accepts_older_musl_only() -> None:
    assert accepts(MUSL, "x-1.0-cp311-cp311-musllinux_1_1_x86_64.whl")
    assert not accepts(MUSL, "x-1.0-cp311-cp311-musllinux_1_3_x86_64.whl")
    assert not accepts(MUSL, "x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")


def test_accepts_ranks_the_more_specific_tag_first() -> None:
    ranks = [
        rank(AARCH64, tag)
        for tag in (
            "cp312-cp312-manylinux_2_28_aarch64",
            "cp312-cp312-manylinux_2_17_aarch64",
            "cp312-abi3-manylinux_2_28_aarch64",
            "cp38-abi3-manylinux_2_28_aarch64",
            "py3-none-manylinux_2_28_aarch64",
            "cp312-none-any",
            "py3-none-any",
        )
    ]
    assert None not in ranks
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert rank(AARCH64, "cp312-cp312-manylinux_2_28_aarch64") == 0
    assert rank(AARCH64, "cp311-cp311-manylinux_2_28_aarch64") is None
    # A compressed tag set counts by its best member.
    both = "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64"
    assert rank(AARCH64, both) == rank(AARCH64, "cp312-cp312-manylinux_2_17_aarch64")
    assert parse_target(AARCH64).accepts(frozenset()) is None


def test_tags_come_from_packaging_not_string_matching() -> None:
    target = parse_target(AARCH64)
    assert all(isinstance(tag, Tag) for tag in target.tags)
    assert len(set(target.tags)) == len(target.tags)
    assert Tag("cp312", "cp312", "manylinux_2_28_aarch64") in target.tags
    assert Tag("py3", "none", "any") in target.tags


# -- marker environments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            AARCH64,
            {
                "sys_platform": "linux",
                "platform_system": "Linux",
                "platform_machine": "aarch64",
                "os_name": "posix",
                "python_version": "3.12",
                "python_full_version": "3.12.0",
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
            },
        ),
        (
            WINDOWS,
            {
                "sys_platform": "win32",
                "platform_system": "Windows",
                "platform_machine": "AMD64",
                "os_name": "nt",
                "python_version": "3.11",
                "python_full_version": "3.11.0",
                "implementation_name": "cpython",
            },
        ),
        (
            "cp310-win32",
            {"sys_platform": "win32", "platform_machine": "x86", "python_version": "3.10"},
        ),
        ("cp312-win_arm64", {"platform_machine": "ARM64", "os_name": "nt"}),
        (
            MACOS,
            {
                "sys_platform": "darwin",
                "platform_system": "Darwin",
                "platform_machine": "arm64",
                "os_name": "posix",
                "python_version": "3.13",
                "implementation_name": "cpython",
            },
        ),
        ("cp312-macosx_10_13_x86_64", {"sys_platform": "darwin", "platform_machine": "x86_64"}),
        (
            MUSL,
            {
                "sys_platform": "linux",
                "platform_system": "Linux",
                "platform_machine": "x86_64",
                "os_name": "posix",
                "python_version": "3.11",
            },
        ),
        ("cp39-manylinux2014_x86_64", {"platform_machine": "x86_64", "python_version": "3.9"}),
    ],
)
def test_marker_environment_per_platform(text: str, expected: dict[str, str]) -> None:
    environment = parse_target(text).environment
    assert {key: environment[key] for key in expected} == expected


def test_markers_evaluate_for_the_target_not_the_host() -> None:
    windows = parse_target(WINDOWS).environment
    aarch64 = parse_target(AARCH64).environment
    win_only = Marker('sys_platform == "win32"')
    new_python = Marker('python_version >= "3.12"')
    arm_only = Marker('platform_machine == "aarch64" and platform_system == "Linux"')
    assert win_only.evaluate(windows) and not win_only.evaluate(aarch64)
    assert new_python.evaluate(aarch64) and not new_python.evaluate(windows)
    assert arm_only.evaluate(aarch64) and not arm_only.evaluate(windows)
    assert Marker('os_name == "nt"').evaluate(windows)


def test_host_environment_is_the_running_interpreters() -> None:
    import platform
    import sys

    environment = HOST.environment
    assert environment["sys_platform"] == sys.platform
    assert environment["python_version"] == "{}.{}".format(*sys.version_info[:2])
    assert environment["platform_machine"] == platform.machine()


# -- uv's names for platforms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "platform", "env"),
    [
        (AARCH64, "aarch64-manylinux_2_28", {}),
        ("cp311-manylinux_2_17_x86_64", "x86_64-manylinux_2_17", {}),
        ("cp311-manylinux2014_x86_64", "x86_64-manylinux_2_17", {}),
        # uv knows no glibc between 2.17 and 2.28: the newest it knows at or below the target.
        ("cp311-manylinux_2_26_aarch64", "aarch64-manylinux_2_17", {}),
        ("cp311-manylinux_2_35_x86_64", "x86_64-manylinux_2_35", {}),
        ("cp311-manylinux_2_44_x86_64", "x86_64-manylinux_2_40", {}),
        ("cp311-manylinux_2_17_ppc64le", "ppc64le-unknown-linux-gnu", {}),
        (WINDOWS, "x86_64-pc-windows-msvc", {}),
        ("cp311-win32", "i686-pc-windows-msvc", {}),
        ("cp311-win_arm64", "aarch64-pc-windows-msvc", {}),
        (MACOS, "aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "11.0"}),
        (
            "cp312-macosx_10_13_x86_64",
            "x86_64-apple-darwin",
            {"MACOSX_DEPLOYMENT_TARGET": "10.13"},
        ),
        (MUSL, "x86_64-unknown-linux-musl", {}),
        ("cp311-musllinux_1_1_aarch64", "aarch64-unknown-linux-musl", {}),
    ],
)
def test_uv_platform_mapping(text: str, platform: str, env: dict[str, str]) -> None:
    assert parse_target(text).uv_platform == (platform, env)


# The running interpreter's own CPython minor, machine and a tag it accepts, for file names.
_OURS = f"cp3{sys.version_info.minor}"
_MACHINE = platform.machine()
_OTHER = f"cp3{sys.version_info.minor + 1}"


@pytest.mark.skipif(
    sys.platform != "linux" or sys.implementation.name != "cpython", reason="Linux CPython only"
)
@pytest.mark.parametrize(
    ("filename", "foreign"),
    [
        (f"x-1.0-{_OURS}-{_OURS}-manylinux_2_17_{_MACHINE}.whl", False),
        (f"x-1.0-{_OURS}-{_OURS}-manylinux2014_{_MACHINE}.manylinux_2_17_{_MACHINE}.whl", False),
        # Another glibc or musl on this machine: pip decides (it may or may not take it).
        (f"x-1.0-{_OURS}-{_OURS}-manylinux_2_99_{_MACHINE}.whl", False),
        (f"x-1.0-{_OURS}-{_OURS}-musllinux_1_2_{_MACHINE}.whl", False),
        (f"x-1.0-{_OURS}-{_OURS}-linux_{_MACHINE}.whl", False),
        ("x-1.0-py3-none-any.whl", False),
        ("x-1.0-py2.py3-none-any.whl", False),
        ("x-1.0-py2-none-any.whl", False),
        (f"x-1.0-cp39-abi3-manylinux_2_17_{_MACHINE}.whl", False),
        (f"x-1.0-{_OURS}-none-any.whl", False),
        ("x-1.0.tar.gz", False),
        ("x-1.0.zip", False),
        ("not a wheel name.whl", False),
        (f"x-1.0-{_OTHER}-{_OTHER}-manylinux_2_17_{_MACHINE}.whl", True),
        (f"x-1.0-{_OTHER}-abi3-manylinux_2_17_{_MACHINE}.whl", True),
        (f"x-1.0-{_OTHER}-none-any.whl", True),
        (f"x-1.0-{_OURS}-{_OURS}-win_amd64.whl", True),
        (f"x-1.0-{_OURS}-{_OURS}-macosx_11_0_arm64.whl", True),
        (f"x-1.0-{_OURS}-{_OURS}-manylinux_2_17_s390x.whl", True),
        (f"x-1.0-pp310-pypy310_pp73-manylinux_2_17_{_MACHINE}.whl", True),
        # One tag this interpreter accepts is enough to keep a file.
        (f"x-1.0-{_OTHER}.{_OURS}-{_OTHER}.{_OURS}-manylinux_2_17_{_MACHINE}.whl", False),
    ],
)
def test_surely_foreign_hides_only_wheels_this_interpreter_can_never_install(
    filename: str, foreign: bool
) -> None:
    assert surely_foreign(filename) is foreign


def test_surely_foreign_keeps_every_tag_this_interpreter_accepts() -> None:
    kept = [tag for tag in sys_tags() if not surely_foreign(f"x-1.0-{tag}.whl")]
    assert kept == list(sys_tags())
