"""The release cooldown (--exclude-newer) and PEP 792 project status, as `build` applies them:
against a loopback index whose JSON pages carry upload times, and against the real index."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.capabilities import need_uv
from tests.support.cli import error_lines as _errors
from tests.support.dists import DistFactory
from tests.support.fixtures import Cli
from tests.support.process import clean_env, run_command, wheelhouse_argv
from tests.support.server import IndexServer
from tests.support.server import ago as _ago
from wheelhouse.errors import ExitCode

OLD = "lib-1.0-py3-none-any.whl"
NEW = "lib-2.0-py3-none-any.whl"
# A fixed cutoff and upload time, so that the error lines can be compared whole.
CUTOFF = "2026-06-01T00:00:00Z"
AFTER = "2026-07-01T00:00:00Z"


@pytest.fixture
def index(dists: DistFactory) -> IndexServer:
    """lib 1.0 (uploaded long ago) and lib 2.0 (yesterday), on an index with JSON pages."""
    dists.wheel("lib", "1.0")
    dists.wheel("lib", "2.0")
    server = IndexServer(dists.root)
    server.json_pages = True
    server.upload_times[NEW] = _ago(timedelta(days=1))
    return server


@pytest.fixture
def served(index: IndexServer) -> IndexServer:
    with index:
        yield index


def _requirements(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _files(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.name.endswith(".whl")}


@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_a_loose_requirement_takes_the_newest_release_older_than_the_cutoff(
    cli: Cli, served: IndexServer, tmp_path: Path, resolver: str
) -> None:
    if resolver == "uv":
        need_uv()
    requirements = _requirements(tmp_path, "lib")
    out = tmp_path / "wh"
    args = ("-r", requirements, "-o", out, "-i", served.url, "--resolver", resolver)

    result = cli("build", *args, "--exclude-newer", "7d")

    assert result.exit_code == 0, result.stderr
    assert _files(out) == {OLD}
    # Without the cooldown the same input takes the new release: the cooldown chose.
    again = cli("build", *args, "-o", tmp_path / "wh2")
    assert again.exit_code == 0, again.stderr
    assert _files(tmp_path / "wh2") == {NEW}


def test_a_rebuild_with_another_cutoff_is_not_taken_as_up_to_date(
    served: IndexServer, tmp_path: Path
) -> None:
    # The cooldown was not among what decides a wheelhouse: adding or moving it into the same
    # DIR said "up to date" and kept the release it exists to keep out.
    requirements = _requirements(tmp_path, "lib")
    out = tmp_path / "wh"
    env = clean_env(tmp_path / "home")

    def build(*extra: str) -> subprocess.CompletedProcess[str]:
        args = ("build", "-r", requirements, "-o", out, "-i", served.url, *extra)
        return run_command(wheelhouse_argv(*args), env=env)

    plain = build()
    assert plain.returncode == 0, plain.stderr
    assert _files(out) == {NEW}
    cooled = build("--exclude-newer", "7d")
    assert cooled.returncode == 0, cooled.stderr
    assert "up to date" not in cooled.stderr
    assert _files(out) == {OLD}
    assert build("--exclude-newer", "7d").stderr.endswith(": up to date (1 file)\n")
    per_project = build("--exclude-newer", "7d", "--exclude-newer-package", "lib=1d")
    assert per_project.returncode == ExitCode.USAGE, per_project.stderr
    assert _files(out) == {OLD}


def test_a_pin_newer_than_the_cutoff_is_refused_naming_the_file(
    cli: Cli, served: IndexServer, tmp_path: Path
) -> None:
    served.upload_times[NEW] = AFTER
    requirements = _requirements(tmp_path, "lib==2.0")
    out = tmp_path / "wh"

    result = cli(
        "build", "-r", requirements, "-o", out, "-i", served.url, "--exclude-newer", CUTOFF
    )

    assert result.exit_code == ExitCode.RESOLUTION, result.stderr
    assert _errors(result.stderr) == [
        f"error: lib==2.0: {NEW} was uploaded at {AFTER}, after the cooldown's cutoff {CUTOFF}"
    ]
    assert not out.exists()
    # A per-project exception lets it through.
    result = cli(
        "build",
        "-r",
        requirements,
        "-o",
        out,
        "-i",
        served.url,
        "--exclude-newer",
        CUTOFF,
        "--exclude-newer-package",
        f"lib={AFTER[:10]}T00:00:01Z",
    )
    assert result.exit_code == 0, result.stderr
    assert _files(out) == {NEW}


def _pylock(tmp_path: Path, dists: DistFactory, index: IndexServer, uploaded: str | None) -> Path:
    digest = hashlib.sha256((dists.root / NEW).read_bytes()).hexdigest()
    upload = f"upload-time = {uploaded}\n" if uploaded else ""
    path = tmp_path / "pylock.toml"
    path.write_text(
        'lock-version = "1.0"\n'
        'created-by = "test"\n'
        "[[packages]]\n"
        'name = "lib"\n'
        'version = "2.0"\n'
        "[[packages.wheels]]\n"
        f'name = "{NEW}"\n'
        f'url = "{index.files_url}{NEW}"\n'
        f"{upload}"
        f'hashes = {{sha256 = "{digest}"}}\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("recorded", [True, False], ids=["lock-records-it", "index-gives-it"])
def test_a_lock_pinning_a_file_newer_than_the_cutoff_is_refused(
    cli: Cli, served: IndexServer, dists: DistFactory, tmp_path: Path, recorded: bool
) -> None:
    served.upload_times[NEW] = AFTER
    lock = _pylock(tmp_path, dists, served, AFTER if recorded else None)
    out = tmp_path / "wh"

    result = cli("build", "-r", lock, "-o", out, "-i", served.url, "--exclude-newer", CUTOFF)

    assert result.exit_code == ExitCode.RESOLUTION, result.stderr
    uploaded = "2026-07-01T00:00:00+00:00" if recorded else AFTER
    assert _errors(result.stderr) == [
        f"error: {str(lock)!r} pins {NEW} (lib==2.0), uploaded at {uploaded}, after the "
        f"cooldown's cutoff {CUTOFF}"
    ]
    assert not out.exists()
    assert f"/files/{NEW}" not in served.requests
    # The same lock without a cooldown builds.
    plain = cli("build", "-r", lock, "-o", out, "-i", served.url)
    assert plain.exit_code == 0, plain.stderr


def test_a_uv_lock_pinning_a_file_newer_than_the_cutoff_is_refused(
    cli: Cli, served: IndexServer, dists: DistFactory, tmp_path: Path
) -> None:
    digest = hashlib.sha256((dists.root / NEW).read_bytes()).hexdigest()
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n'
        '[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { virtual = "." }\n'
        'dependencies = [{ name = "lib" }]\n\n'
        '[[package]]\nname = "lib"\nversion = "2.0"\n'
        f'source = {{ registry = "{served.url}" }}\n'
        f'wheels = [{{ url = "{served.files_url}{NEW}", hash = "sha256:{digest}", '
        f'upload-time = "{AFTER}" }}]\n',
        encoding="utf-8",
    )
    out = tmp_path / "wh"

    result = cli("build", "-r", lock, "-o", out, "-i", served.url, "--exclude-newer", CUTOFF)

    assert result.exit_code == ExitCode.RESOLUTION, result.stderr
    assert _errors(result.stderr) == [
        f"error: {str(lock)!r} pins {NEW} (lib==2.0), uploaded at {AFTER}, after the "
        f"cooldown's cutoff {CUTOFF}"
    ]
    assert not out.exists()
    # The time the lock records is used: the index's page was not asked.
    assert not [p for p in served.requests if p.startswith("/simple/")]


def test_a_per_project_cutoff_with_the_pip_resolver_is_a_usage_error(
    cli: Cli, served: IndexServer, tmp_path: Path
) -> None:
    requirements = _requirements(tmp_path, "lib")
    out = tmp_path / "wh"

    result = cli(
        "build",
        "-r",
        requirements,
        "-o",
        out,
        "-i",
        served.url,
        "--exclude-newer",
        "7d",
        "--exclude-newer-package",
        "lib=1d",
    )

    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert _errors(result.stderr) == [
        "error: --exclude-newer-package needs --resolver uv here: pip's --uploaded-prior-to "
        "has no per-project form"
    ]
    assert not out.exists()


def test_a_file_without_upload_time_is_refused_unless_the_setting_keeps_it(
    cli: Cli, served: IndexServer, tmp_path: Path
) -> None:
    served.upload_times[OLD] = None
    requirements = _requirements(tmp_path, "lib==1.0")
    out = tmp_path / "wh"
    args = ("build", "-r", requirements, "-o", out, "-i", served.url, "--exclude-newer", "7d")

    refused = cli(*args)

    assert refused.exit_code == ExitCode.RESOLUTION, refused.stderr
    [line] = _errors(refused.stderr)
    assert line.startswith(f"error: lib==1.0: the index gives no upload-time for {OLD}, ")
    assert line.endswith("cannot tell its age (--no-upload-time refuse)")
    assert not out.exists()

    kept = cli(*args, "--no-upload-time", "keep")
    assert kept.exit_code == 0, kept.stderr
    assert _files(out) == {OLD}


@pytest.mark.parametrize(
    "value",
    ["tomorrow", "7x", "2026-13-45", "P1M", "", "7 d d"],
)
def test_a_bad_cooldown_value_is_a_usage_error_of_one_line(
    cli: Cli, tmp_path: Path, value: str
) -> None:
    requirements = _requirements(tmp_path, "lib")
    out = tmp_path / "wh"

    result = cli("build", "-r", requirements, "-o", out, "--exclude-newer", value)

    assert result.exit_code == ExitCode.USAGE
    assert _errors(result.stderr) == [
        f"error: --exclude-newer {value!r} is not a date (2026-11-30, 2026-11-30T12:00:00Z) "
        "or a duration (7d, 12h, 2w, P7D)"
    ]
    assert not out.exists()


def test_a_bad_per_project_value_and_setting_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    requirements = _requirements(tmp_path, "lib")
    out = tmp_path / "wh"
    base = ("build", "-r", requirements, "-o", out)

    result = cli(*base, "--exclude-newer-package", "lib")
    assert result.exit_code == ExitCode.USAGE
    assert _errors(result.stderr) == [
        "error: --exclude-newer-package 'lib' is not NAME=VALUE (a project name, and a date "
        "or duration)"
    ]
    result = cli(*base, "--exclude-newer-package", "lib=soon")
    assert result.exit_code == ExitCode.USAGE
    assert _errors(result.stderr)[0].startswith("error: --exclude-newer-package lib 'soon' is not")
    result = cli(*base, "--exclude-newer", "7d", "--no-upload-time", "maybe")
    assert result.exit_code == ExitCode.USAGE
    assert _errors(result.stderr) == ["error: --no-upload-time 'maybe' is not 'refuse' or 'keep'"]
    assert not out.exists()


def test_a_malformed_upload_time_is_one_line_naming_the_file(
    cli: Cli, served: IndexServer, tmp_path: Path
) -> None:
    served.upload_times[OLD] = "last tuesday"
    requirements = _requirements(tmp_path, "lib==1.0")
    out = tmp_path / "wh"

    result = cli("build", "-r", requirements, "-o", out, "-i", served.url, "--exclude-newer", "7d")

    assert result.exit_code == ExitCode.NETWORK, result.stderr
    assert _errors(result.stderr) == [
        f"error: {served.url}lib/ gives {OLD!r} the upload-time 'last tuesday', which is not "
        "an ISO 8601 time; the page is not used"
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    ("html", "requirement"),
    [(False, "lib==1.0"), (True, "lib==1.0"), (False, "lib"), (False, "uv")],
    ids=["json-pinned", "html-pinned", "json-loose-pip", "json-loose-uv"],
)
def test_a_quarantined_project_is_refused_with_one_line(
    cli: Cli, served: IndexServer, tmp_path: Path, html: bool, requirement: str
) -> None:
    args: tuple[str, ...] = ()
    if requirement == "uv":
        need_uv()
        requirement, args = "lib", ("--resolver", "uv")
    served.json_pages = not html
    served.project_status["lib"] = ("quarantined", "malware")
    requirements = _requirements(tmp_path, requirement)
    out = tmp_path / "wh"

    result = cli("build", "-r", requirements, "-o", out, "-i", served.url, *args)

    assert result.exit_code == ExitCode.RESOLUTION, result.stderr
    assert _errors(result.stderr) == [
        f"error: {served.url}lib/ marks the project quarantined (malware): the index offers "
        "none of its files, and wheelhouse does not take them"
    ]
    assert not out.exists()


def test_an_archived_project_is_taken_with_one_warning(
    cli: Cli, served: IndexServer, tmp_path: Path
) -> None:
    served.project_status["lib"] = ("archived", None)
    requirements = _requirements(tmp_path, "lib==1.0")
    out = tmp_path / "wh"

    result = cli("build", "-r", requirements, "-o", out, "-i", served.url)

    assert result.exit_code == 0, result.stderr
    assert _files(out) == {OLD}
    # One warning, however often the page is read.
    warnings = [line for line in result.stderr.splitlines() if "marks the project" in line]
    assert len(warnings) == 1
    assert warnings == [f"warning: {served.url}lib/ marks the project archived"]


@pytest.mark.network
def test_the_real_index_upload_times_hold_back_a_later_release(cli: Cli, tmp_path: Path) -> None:
    # packaging 24.2 was uploaded on 2024-11-08 and 25.0 on 2025-04-19.
    requirements = _requirements(tmp_path, "packaging>=24,<26")
    out = tmp_path / "wh"

    result = cli(
        "build",
        "-r",
        requirements,
        "-o",
        out,
        "-i",
        "https://pypi.org/simple/",
        "--exclude-newer",
        "2025-01-01",
    )

    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "wheelhouse.json").read_text(encoding="utf-8"))
    versions = {p["version"] for t in manifest["targets"] for p in t["packages"]}
    assert versions == {"24.2"}
