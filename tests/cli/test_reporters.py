"""The build's live progress line as a terminal of 80 columns shows it."""

from __future__ import annotations

import io

from rich.console import Console

from wheelhouse._base.progress import PipWatcher
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
    reporter.stage("resolving with pip 26.3")
    (line,) = shown(reporter)
    assert "bytes" not in line and "?" not in line, line
    reporter.downloaded("alpha-1.0-py3-none-any.whl", 2_500_000)
    reporter.stage("fetching 12 files")
    (line,) = shown(reporter)
    assert "fetching 12 files" in line and "2.5 MB" in line, line


def test_pip_resolving_shows_its_bytes_and_the_sdist_it_builds() -> None:
    # pip's own output while it resolves (pip download, --progress-bar off).
    reporter = reporter_at(120)
    watcher = PipWatcher(reporter, "resolving with pip 26.3")
    reporter.stage("resolving with pip 26.3")
    for line in [
        "Collecting six==1.17.0",
        "  Downloading six-1.17.0-py2.py3-none-any.whl (11 kB)",
        "Collecting docopt==0.6.2",
        "  Downloading docopt-0.6.2.tar.gz (2.5 MB)",
        "  Installing build dependencies: started",
    ]:
        watcher(line)
    (line,) = shown(reporter)
    assert "resolving with pip 26.3: reading the metadata of docopt-0.6.2.tar.gz" in line
    assert "2.5 MB" in line, line  # 11 kB + 2.5 MB
    for line in [
        "  Installing build dependencies: finished with status 'done'",
        "  Preparing metadata (pyproject.toml): started",
        "Collecting attrs",
    ]:
        watcher(line)
    (line,) = shown(reporter)
    assert line.startswith("⠋ resolving with pip 26.3 "), line
