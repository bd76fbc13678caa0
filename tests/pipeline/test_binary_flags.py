"""--no-binary, --only-binary and --prefer-binary on ``build``, with pip's meanings, on every path.

``both 1.0`` ships a wheel and an sdist: which file lands tells which flag won. The sdist's
wheel is ``py3-none-any`` too, so the manifest's origin says whether it was downloaded or
built here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import targets
from tests.support.dists import DistFactory
from tests.support.fixtures import Cli
from tests.support.server import IndexServer
from wheelhouse.house.manifest import BuiltFrom, Downloaded, Manifest, read_manifest

WHEEL = "both-1.0-py3-none-any.whl"
TEXTS = ["both==1.0\nother==1.0\n", "both\nother\n"]


@pytest.fixture
def both(dists: DistFactory) -> DistFactory:
    dists.wheel("both", "1.0")
    dists.sdist("both", "1.0")
    dists.wheel("other", "1.0")
    dists.sdist("other", "1.0")
    dists.sdist("srconly", "1.0")
    return dists


def build(
    cli: Cli, tmp_path: Path, index: IndexServer, text: str, *flags: str, code: int = 0
) -> tuple[Manifest | None, str]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(text, encoding="utf-8")
    out = tmp_path / "house"
    result = cli("build", "-r", requirements, "-o", out, "-i", index.url, *flags)
    assert result.exit_code == code, result.stderr
    return (read_manifest(out) if code == 0 else None), result.stderr


def origin(manifest: Manifest | None, filename: str = WHEEL) -> str:
    assert manifest is not None
    found = manifest.file(filename).origin
    if isinstance(found, BuiltFrom):
        assert found.sdist == filename.split("-")[0] + "-1.0.tar.gz"
        return "built"
    assert isinstance(found, Downloaded)
    return "downloaded"


@pytest.mark.parametrize(
    "text", ["both==1.0\nother==1.0\n", "both\nother\n"], ids=["pinned", "loose"]
)
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), ("downloaded", "downloaded")),
        (("--no-binary", "both"), ("built", "downloaded")),
        (("--no-binary", ":all:"), ("built", "built")),
        (("--no-binary", "both,other", "--no-binary", ":none:"), ("downloaded", "downloaded")),
        (("--only-binary", ":all:"), ("downloaded", "downloaded")),
        # pip applies them in order: a name beats :all:, and a later :all: clears the names.
        (("--no-binary", ":all:", "--only-binary", "both"), ("downloaded", "built")),
        (("--only-binary", ":all:", "--no-binary", "other"), ("downloaded", "built")),
        (("--no-binary", "other", "--only-binary", ":all:"), ("downloaded", "downloaded")),
    ],
    ids=str,
)
def test_which_file_lands(
    cli: Cli,
    tmp_path: Path,
    both: DistFactory,
    index_server: IndexServer,
    text: str,
    flags: tuple[str, ...],
    expected: tuple[str, str],
) -> None:
    manifest, stderr = build(cli, tmp_path, index_server, text, *flags)
    assert (origin(manifest), origin(manifest, "other-1.0-py3-none-any.whl")) == expected
    assert manifest is not None
    assert manifest.inputs.options["binary"] == [
        [flag, value] for flag, value in zip(flags[::2], flags[1::2], strict=True)
    ]
    if "==" in text:
        assert "resolving with pip" not in stderr  # the pinned path chose the files itself


@pytest.mark.parametrize("text", ["srconly==1.0\n", "srconly\n"], ids=["pinned", "loose"])
def test_only_binary_refuses_an_sdist_only_project(
    cli: Cli, tmp_path: Path, both: DistFactory, index_server: IndexServer, text: str
) -> None:
    _, stderr = build(cli, tmp_path, index_server, text, "--only-binary", "srconly", code=4)
    # issue 24: the index has the project, as an sdist, which the flag forbids building;
    # "no distribution found ... check the project name" blamed the wrong thing.
    if "==" in text:
        assert stderr.splitlines()[-2:] == [
            "error: srconly==1.0 has only an sdist on the configured indexes "
            "(srconly-1.0.tar.gz), and --only-binary srconly forbids building it",
            "hint: allow it with --no-binary srconly, or drop --only-binary srconly",
        ]
    else:
        assert stderr.splitlines()[-2:] == [
            "error: no wheel of 'srconly' on the configured indexes that fits, and "
            "--only-binary srconly rules out building one from an sdist",
            "hint: check the project name and the indexes; if it publishes only sdists, allow "
            "it with --no-binary srconly, or drop --only-binary srconly",
        ]


def test_prefer_binary_takes_the_older_wheel_over_a_newer_sdist(
    cli: Cli, tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    dists.wheel("newer", "1.0")
    dists.sdist("newer", "2.0")
    manifest, _ = build(cli, tmp_path, index_server, "newer\n")
    assert manifest is not None
    assert [(e.name, e.version) for e in manifest.locks[0].entries] == [("newer", "2.0")]
    (tmp_path / "house").rename(tmp_path / "first")
    manifest, _ = build(cli, tmp_path, index_server, "newer\n", "--prefer-binary")
    assert manifest is not None
    assert [(e.name, e.version) for e in manifest.locks[0].entries] == [("newer", "1.0")]
    assert origin(manifest, "newer-1.0-py3-none-any.whl") == "downloaded"
    assert manifest.inputs.options["prefer-binary"] is True


@pytest.mark.parametrize(
    "text", ["both==1.0\nother==1.0\n", "both\nother\n"], ids=["pinned", "loose"]
)
def test_pip_configuration_sets_them_and_the_command_line_goes_on_top(
    cli: Cli,
    tmp_path: Path,
    both: DistFactory,
    index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nno-binary = both\n", encoding="utf-8")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    manifest, _ = build(cli, tmp_path, index_server, text)
    assert (origin(manifest), origin(manifest, "other-1.0-py3-none-any.whl")) == (
        "built",
        "downloaded",
    )
    # The environment goes on top of the file, as in pip.
    monkeypatch.setenv("PIP_NO_BINARY", ":all:")
    manifest, _ = build(cli, tmp_path, index_server, text, "--refresh")
    assert origin(manifest, "other-1.0-py3-none-any.whl") == "built"
    monkeypatch.delenv("PIP_NO_BINARY")
    manifest, _ = build(cli, tmp_path, index_server, text, "--no-binary", ":none:")
    assert (origin(manifest), origin(manifest, "other-1.0-py3-none-any.whl")) == (
        "downloaded",
        "downloaded",
    )


def test_changing_a_flag_ends_the_noop(
    cli: Cli, tmp_path: Path, both: DistFactory, index_server: IndexServer
) -> None:
    first, _ = build(cli, tmp_path, index_server, "both==1.0\n")
    _, again = build(cli, tmp_path, index_server, "both==1.0\n")
    assert first is not None and again.endswith("up to date (1 file)\n")
    for flags in (("--no-binary", "both"), ("--only-binary", "both"), ("--prefer-binary",)):
        _, stderr = build(cli, tmp_path, index_server, "both==1.0\n", *flags)
        assert "up to date" not in stderr, flags


def test_a_value_that_looks_like_an_option_is_a_usage_error(
    cli: Cli, tmp_path: Path, both: DistFactory, index_server: IndexServer
) -> None:
    _, stderr = build(cli, tmp_path, index_server, "both==1.0\n", "--no-binary=-x", code=2)
    assert "--no-binary takes comma-separated project names, :all: or :none:" in stderr


# -- foreign targets: the pinned path and uv ------------------------------------------------------

AARCH64 = targets.AARCH64


@pytest.mark.parametrize(
    "text", ["both==1.0\nother==1.0\n", "both\nother\n"], ids=["pinned", "loose"]
)
def test_a_foreign_target_honours_them(
    cli: Cli, tmp_path: Path, both: DistFactory, index_server: IndexServer, text: str
) -> None:
    manifest, stderr = build(
        cli, tmp_path, index_server, text, "--target", AARCH64, "--no-binary", "both"
    )
    assert manifest is not None
    assert (origin(manifest), origin(manifest, "other-1.0-py3-none-any.whl")) == (
        "built",
        "downloaded",
    )
    assert ("resolving with uv" in stderr) == ("==" not in text)


@pytest.mark.parametrize("text", ["csrc==1.0\n", "csrc\n"], ids=["pinned", "loose"])
def test_no_binary_all_with_a_compiled_sdist_for_a_foreign_target_is_exit_9(
    cli: Cli, tmp_path: Path, dists: DistFactory, index_server: IndexServer, text: str
) -> None:
    targets.rewrite_sdist(dists.sdist(targets.CSRC, "1.0"), tag=targets.CSRC_TAG)
    other, arch = targets.OTHER_CP, targets.ARCH
    dists.wheel("csrc", "1.0", tag=f"{other}-{other}-manylinux_2_17_{arch}")
    manifest, _ = build(cli, tmp_path, index_server, text, "--target", AARCH64)
    assert manifest is not None  # the aarch64 wheel serves without the flag
    _, stderr = build(
        cli, tmp_path, index_server, text, "--target", AARCH64, "--no-binary", ":all:", code=9
    )
    assert stderr.splitlines()[-2:] == targets.INCOMPATIBLE_LINES
