"""Tests and benchmarks share helpers only through tests/support: no test imports another test."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.support.process import run_command

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


def _helpers(path: Path) -> list[str]:
    """The functions and classes ``path`` defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def test_the_support_package_defines_each_helper_once() -> None:
    where: dict[str, list[str]] = {}
    for path in _python_files("tests/support"):
        for name in _helpers(path):
            if not name.startswith("_"):
                where.setdefault(name, []).append(path.name)
    assert {name: files for name, files in where.items() if len(files) > 1} == {}


def test_benchmarks_import_the_support_package_without_pytest_or_a_path_edit() -> None:
    """`nox -s bench` installs no pytest: what the benchmarks import of tests/support must not
    need it; and they find the package as a package, not by editing ``sys.path``."""
    modules = sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in _python_files("benchmarks")
        if path.name != "__main__.py"
    )
    code = "import importlib, sys\nsys.modules['pytest'] = None\n" + "".join(
        f"importlib.import_module({module!r})\n" for module in modules
    )
    proc = run_command([sys.executable, "-c", code], cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for path in _python_files("benchmarks"):
        assert "sys.path" not in path.read_text(encoding="utf-8"), path
