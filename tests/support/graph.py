"""A dependency graph of tiny dists, and what a build of it must leave behind."""

from __future__ import annotations

from pathlib import Path

from tests.support.dists import DistFactory
from tests.support.files import sha256_of
from tests.support.fixtures import Cli
from tests.support.server import IndexServer
from wheelhouse.house.manifest import read_manifest

# The wheels a build of GRAPH_REQUIREMENTS must ship, and nothing else.
GRAPH_WHEELS = {
    "app-1.0-py3-none-any.whl",
    "lib-2.0-py3-none-any.whl",
    "srconly-1.0-py3-none-any.whl",  # built here from srconly-1.0.tar.gz
    "modern-2.0-py3-none-any.whl",
    "speedup-1.0-py3-none-any.whl",  # only through the app[fast] extra
}


GRAPH_REQUIREMENTS = "# what the app needs\napp[fast]\n"


def make_graph(dists: DistFactory) -> dict[str, Path]:
    """A small dependency graph on the index; returns every dist made, by file name.

    app needs lib (1.0 and 2.0 exist), srconly (sdist only, built with the tiny backend),
    modern (3.0 wants Python < 3, so 2.0 is chosen), winonly only on Windows, and speedup
    only with its 'fast' extra.
    """
    made = [
        dists.wheel(
            "app",
            "1.0",
            requires=[
                "lib>=1",
                "srconly",
                "modern",
                'winonly; sys_platform == "win32"',
            ],
            extras={"fast": ["speedup"]},
        ),
        dists.wheel("lib", "1.0"),
        dists.wheel("lib", "2.0"),
        dists.sdist("srconly", "1.0"),
        dists.wheel("modern", "2.0", requires_python=">=3.8"),
        dists.wheel("modern", "3.0", requires_python="<3"),
        dists.wheel("winonly", "1.0"),
        dists.wheel("speedup", "1.0"),
        dists.wheel("unrelated", "1.0"),
    ]
    return {path.name: path for path in made}


def wheels_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.endswith(".whl")}


def shipped_dists(directory: Path) -> set[str]:
    """Every wheel and sdist flat in ``directory``."""
    return {p.name for p in directory.iterdir() if p.name.endswith((".whl", ".tar.gz"))}


def pinned_hashes(requirements: Path) -> dict[str, set[str]]:
    """``name==version`` -> the sha256 hashes a hash-checking requirements file gives it."""
    text = requirements.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, set[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if line.startswith("#") else line.strip()
        if not line:
            continue
        spec, *hashes = line.split()
        pins[spec] = {h.removeprefix("--hash=sha256:") for h in hashes}
    return pins


def assert_manifest_matches_files(directory: Path) -> None:
    """The manifest lists exactly the dists in ``directory``, with their real sizes and hashes."""
    manifest = read_manifest(directory)
    assert manifest is not None
    assert {r.filename for r in manifest.files} == shipped_dists(directory)
    for record in manifest.files:
        path = directory / record.filename
        assert sha256_of(path) == record.sha256, record.filename
        assert path.stat().st_size == record.size, record.filename


def build(cli: Cli, index: IndexServer, requirements: Path, out: Path, *args: str) -> str:
    result = cli("build", "-r", requirements, "-o", out, "--index-url", index.url, *args)
    assert result.exit_code == 0, result.stderr
    return result.stderr
