"""`mirror` under a release cooldown (--exclude-newer) and PEP 792 project status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.dists import DistFactory
from tests.support.proxy import linked_files
from tests.support.server import IndexServer
from tests.support.server import ago as _ago
from wheelhouse._base import cooldown as cooldown_module
from wheelhouse.errors import ExitCode

OLD = "alpha-1.0-py3-none-any.whl"
NEW = "alpha-2.0-py3-none-any.whl"


@pytest.fixture
def alpha(dists: DistFactory, upstream: IndexServer) -> IndexServer:
    """alpha 1.0 (uploaded long ago) and 2.0 (two days ago)."""
    dists.wheel("alpha", "1.0")
    dists.wheel("alpha", "2.0")
    upstream.upload_times[NEW] = _ago(timedelta(days=2))
    return upstream


def _mirrored(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.name.endswith(".whl")}


def _selection(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / ".mirror/selection.json").read_text())
    return data


def test_a_file_newer_than_the_cutoff_waits_for_a_later_run(
    cli: Any, alpha: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "mirror"

    first = cli("mirror", "alpha", "-o", out, "-i", alpha.url, "--exclude-newer", "7d")

    assert first.exit_code == 0, first.stderr
    assert _mirrored(out) == set(linked_files(out)) == {OLD}
    # Remembered as given: a duration, so the cutoff moves with each run.
    filters = _selection(out)["filters"]
    assert filters["exclude-newer"] == "7d"
    assert filters["no-upload-time"] == "refuse"

    # Six days later the same page (same ETag) holds a file that is now old enough: the rerun
    # reads the page again instead of hearing "304", and takes it.
    later = datetime.now(UTC) + timedelta(days=6)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return later if tz is not None else later.replace(tzinfo=None)

    monkeypatch.setattr(cooldown_module, "datetime", Later)
    second = cli("mirror", "-o", out)

    assert second.exit_code == 0, second.stderr
    assert _mirrored(out) == set(linked_files(out)) == {OLD, NEW}


def test_moving_the_cutoff_takes_the_file_and_a_different_one_is_refused(
    cli: Any, alpha: IndexServer, tmp_path: Path
) -> None:
    out = tmp_path / "mirror"
    assert (
        cli("mirror", "alpha", "-o", out, "-i", alpha.url, "--exclude-newer", "7d").exit_code == 0
    )
    assert _mirrored(out) == {OLD}

    differs = cli("mirror", "-o", out, "--exclude-newer", "1d")
    assert differs.exit_code == ExitCode.USAGE
    assert "keeps --exclude-newer 7d --no-upload-time refuse" in differs.stderr
    assert _mirrored(out) == {OLD}

    moved = cli("mirror", "-o", out, "--exclude-newer", "1d", "--replace-filters")
    assert moved.exit_code == 0, moved.stderr
    assert _mirrored(out) == set(linked_files(out)) == {OLD, NEW}
    assert _selection(out)["filters"]["exclude-newer"] == "1d"


def test_a_per_project_exception_and_a_date(cli: Any, alpha: IndexServer, tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")

    result = cli(
        "mirror",
        "alpha",
        "-o",
        out,
        "-i",
        alpha.url,
        "--exclude-newer",
        "2020-01-01",
        "--exclude-newer-package",
        f"alpha={tomorrow}",
    )

    assert result.exit_code == 0, result.stderr
    assert _mirrored(out) == {OLD, NEW}
    assert _selection(out)["filters"]["exclude-newer-packages"] == [f"alpha={tomorrow}"]


def test_files_without_upload_time_are_refused_or_kept_per_the_setting(
    cli: Any, alpha: IndexServer, tmp_path: Path
) -> None:
    alpha.upload_times[OLD] = None
    out = tmp_path / "mirror"

    refused = cli("mirror", "alpha", "-o", out, "-i", alpha.url, "--exclude-newer", "1d")

    assert refused.exit_code == 0, refused.stderr
    assert _mirrored(out) == {NEW}
    assert (
        f"alpha: {OLD!r} has no upload-time on the index, so the cooldown cannot tell its age "
        "(--no-upload-time refuse); skipped"
    ) in refused.stderr

    kept = cli("mirror", "-o", tmp_path / "kept", "alpha", "-i", alpha.url)
    assert kept.exit_code == 0
    kept = cli(
        "mirror",
        "alpha",
        "-o",
        tmp_path / "kept2",
        "-i",
        alpha.url,
        "--exclude-newer",
        "1d",
        "--no-upload-time",
        "keep",
    )
    assert kept.exit_code == 0, kept.stderr
    assert _mirrored(tmp_path / "kept2") == {OLD, NEW}


@pytest.mark.parametrize("value", ["soon", "7y", "2026-02-30", "PT"])
def test_a_bad_cooldown_value_is_a_usage_error_and_nothing_is_written(
    cli: Any, alpha: IndexServer, tmp_path: Path, value: str
) -> None:
    out = tmp_path / "mirror"

    result = cli("mirror", "alpha", "-o", out, "-i", alpha.url, "--exclude-newer", value)

    assert result.exit_code == ExitCode.USAGE
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: --exclude-newer {value!r} is not a date (2026-11-30, 2026-11-30T12:00:00Z) "
        "or a duration (7d, 12h, 2w, P7D)"
    ]
    assert not out.exists()
    assert not [p for p in alpha.requests if p.startswith("/simple/")]


def test_a_malformed_upload_time_fails_the_project_naming_the_file(
    cli: Any, alpha: IndexServer, tmp_path: Path
) -> None:
    alpha.upload_times[NEW] = "2026-99-01T00:00:00Z"
    out = tmp_path / "mirror"

    result = cli("mirror", "alpha", "-o", out, "-i", alpha.url)

    assert result.exit_code == ExitCode.PARTIAL
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: alpha: {alpha.url}alpha/ gives alpha file {NEW!r} the upload-time "
        "'2026-99-01T00:00:00Z', which is not an ISO 8601 time; the page is not used"
    ]
    assert not any(p.name.endswith(".whl") for p in out.iterdir())
    assert not (out / "simple/alpha").exists()


@pytest.mark.parametrize("html", [False, True], ids=["json", "html"])
def test_a_quarantined_project_keeps_no_files_and_its_pages_say_so(
    cli: Any, alpha: IndexServer, tmp_path: Path, html: bool
) -> None:
    out = tmp_path / "mirror"
    assert cli("mirror", "alpha", "-o", out, "-i", alpha.url).exit_code == 0
    assert _mirrored(out) == {OLD, NEW}
    # A file the mirror did not write stays: only its own files are deleted.
    (out / "alpha-0.1-py3-none-any.whl").write_bytes(b"not ours")

    alpha.json_pages = not html
    alpha.project_status["alpha"] = ("quarantined", "malware found")
    result = cli("mirror", "-o", out)

    assert result.exit_code == 0, result.stderr
    assert _mirrored(out) == {"alpha-0.1-py3-none-any.whl"}
    page = json.loads((out / "simple/alpha/index.json").read_text())
    assert page["files"] == []
    assert page["project-status"] == {"status": "quarantined", "reason": "malware found"}
    assert page["meta"]["api-version"] == "1.4"
    text = (out / "simple/alpha/index.html").read_text()
    assert '<meta name="pypi:project-status" content="quarantined">' in text
    assert '<meta name="pypi:project-status-reason" content="malware found">' in text

    # Lifted: the files come back.
    del alpha.project_status["alpha"]
    again = cli("mirror", "-o", out)
    assert again.exit_code == 0, again.stderr
    assert _mirrored(out) == {OLD, NEW, "alpha-0.1-py3-none-any.whl"}
    assert set(linked_files(out)) == {OLD, NEW}
    assert "project-status" not in json.loads((out / "simple/alpha/index.json").read_text())
