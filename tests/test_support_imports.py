"""Tests and benchmarks share helpers only through tests/support: no test imports another test."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUPPORT = "tests.support"


def outside_support(source: str) -> list[str]:
    """The modules under ``tests`` that ``source`` imports and that are not ``tests.support``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import reaches a sibling test module
                found.append("." * node.level + (node.module or ""))
                continue
            module = node.module or ""
            if module == "tests":  # `from tests import test_x` or `from tests import support`
                found += [f"tests.{alias.name}" for alias in node.names]
            elif module.startswith("tests."):
                found.append(module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("tests.")]
    return [name for name in found if name != SUPPORT and not name.startswith(SUPPORT + ".")]


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (REPO / folder).rglob("*.py"))


def test_tests_and_benchmarks_import_only_the_support_package() -> None:
    files = _python_files("tests", "benchmarks")
    assert len(files) > 50  # the walk found the suite
    wrong = {
        str(path.relative_to(REPO)): bad
        for path in files
        if (bad := outside_support(path.read_text(encoding="utf-8")))
    }
    assert wrong == {}


def test_the_support_package_holds_no_tests_or_fixtures() -> None:
    support = _python_files("tests/support")
    assert [path.name for path in support if path.name.startswith("test_")] == []
    assert [path.name for path in support if path.name == "conftest.py"] == []
    for path in support:
        assert "@pytest.fixture" not in path.read_text(encoding="utf-8"), path


def test_the_checker_sees_each_way_of_importing_a_test_module() -> None:
    source = "\n".join(
        [
            "from tests.serve.conftest import wait_until",
            "from tests.pipeline import test_multitarget",
            "import tests.house.test_index",
            "from .conftest import basic",
            "def f():",
            "    from tests.house.test_merge import lock_of",
            "from tests.support.dists import DistFactory",
            "from tests import support",
            "import wheelhouse.cli",
        ]
    )
    assert outside_support(source) == [
        "tests.serve.conftest",
        "tests.pipeline",
        "tests.house.test_index",
        ".conftest",
        "tests.house.test_merge",
    ]
