"""The build's live progress line as a terminal of 80 columns shows it."""

from __future__ import annotations

import io

from rich.console import Console

from wheelhouse.cli._reporters import RichReporter

# A multi-target build's stage, as the pipeline says it.
LONG = (
    "resolving with uv for cp312-cp312-manylinux_2_28_aarch64 "
    "(python 3.12, linux aarch64, glibc 2.28)"
)


def shown(reporter: RichReporter) -> list[str]:
    """The display's lines, as the terminal would draw them now."""
    console = reporter.console
    lines = console.render_lines(reporter.progress.get_renderable(), console.options, pad=False)
    return ["".join(s.text for s in line if not s.control).rstrip() for line in lines]


def reporter_at(width: int) -> RichReporter:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, record=True)
    reporter = RichReporter(0, console=console)
    reporter.progress.stop()  # no refresh thread: the test draws the frames itself
    return reporter


def test_a_long_stage_fits_one_line_of_80_columns() -> None:
    reporter = reporter_at(80)
    reporter.stage(LONG)
    lines = shown(reporter)
    assert len(lines) == 1, lines  # cut short, not wrapped onto a second line
    assert len(lines[0]) <= 80
    assert lines[0].startswith("⠋ resolving with uv for cp312")
    assert "…" in lines[0]
    assert lines[0].endswith("0:00:00")


def test_bytes_are_shown_only_when_some_are_known() -> None:
    reporter = reporter_at(80)
    reporter.stage("resolving with pip 26.3")  # pip downloads: we count none of its bytes
    (line,) = shown(reporter)
    assert "bytes" not in line and "?" not in line, line
    reporter.stage("fetching 12 files")
    reporter.downloaded("alpha-1.0-py3-none-any.whl", 2_500_000)
    (line,) = shown(reporter)
    assert "fetching 12 files" in line and "2.5 MB" in line, line
    # A new step counts its own bytes from none.
    reporter.stage("building 1 wheel from sdists")
    (line,) = shown(reporter)
    assert "MB" not in line and "bytes" not in line, line
