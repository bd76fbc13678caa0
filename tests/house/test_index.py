"""The static index: PEP 503 HTML, PEP 691/700 JSON and PEP 658 metadata, field by field."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.capabilities import find_uv
from tests.support.files import sha256_of as sha256
from tests.support.venvs import installed_versions as _installed
from tests.support.wheelhouses import manifest_of, record_of, sample_wheelhouse
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run
from wheelhouse.errors import InvalidWheelhouseError, TamperedError
from wheelhouse.house.index import index_directory, index_files, write_index
from wheelhouse.house.manifest import Manifest

JSON_KEYS_WHEEL = {"filename", "url", "hashes", "requires-python", "core-metadata", "size"}


class Anchors(HTMLParser):
    """Collects every <a> (attributes and text) and <meta> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []
        self.meta: list[dict[str, str | None]] = []
        self._current: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)
            self._current["#text"] = ""
            self.anchors.append(self._current)
        elif tag == "meta":
            self.meta.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current["#text"] = (self._current["#text"] or "") + data


def parse_html(path: Path) -> Anchors:
    parser = Anchors()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def wheel_metadata(path: Path) -> bytes:
    """The wheel's METADATA, found without the code under test."""
    with zipfile.ZipFile(path) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(member)


@pytest.fixture
def house(tmp_path: Path, dists: Any) -> tuple[Path, Manifest]:
    root = tmp_path / "house"
    manifest = sample_wheelhouse(root, dists)
    write_index(root, manifest)
    return root, manifest


def test_index_files_names_exactly_what_is_written(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    shipped = {record.filename for record in manifest.files}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk - shipped) == index_files(manifest)
    assert index_files(manifest) == [
        "dep_two-1.5-py3-none-any.whl.metadata",
        "dep_two-2.0-py3-none-any.whl.metadata",
        "foo_bar-1.0-py3-none-any.whl.metadata",
        "simple/dep-two/index.html",
        "simple/dep-two/index.json",
        "simple/foo-bar/index.html",
        "simple/foo-bar/index.json",
        "simple/index.html",
        "simple/index.json",
    ]


def test_root_page_html(house: tuple[Path, Manifest]) -> None:
    root, _ = house
    page = parse_html(root / "simple" / "index.html")
    assert root.joinpath("simple", "index.html").read_text().startswith("<!DOCTYPE html>\n")
    assert {"name": "pypi:repository-version", "content": "1.1"} in page.meta
    assert [(a["href"], a["#text"]) for a in page.anchors] == [
        ("dep-two/", "dep-two"),
        ("foo-bar/", "foo-bar"),
    ]


def test_root_page_json(house: tuple[Path, Manifest]) -> None:
    root, _ = house
    data = json.loads((root / "simple" / "index.json").read_bytes())
    assert data == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "dep-two"}, {"name": "foo-bar"}],
    }


def test_project_page_html(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    page = parse_html(root / "simple" / "dep-two" / "index.html")
    assert {"name": "pypi:repository-version", "content": "1.1"} in page.meta
    expected = sorted(r.filename for r in manifest.files if r.name == "dep-two")
    assert [a["#text"] for a in page.anchors] == expected
    for anchor in page.anchors:
        filename = str(anchor["#text"])
        data = (root / filename).read_bytes()
        assert anchor["href"] == f"../../{filename}#sha256={sha256(data)}"
        if filename.endswith(".whl"):
            metadata = (root / f"{filename}.metadata").read_bytes()
            assert anchor["data-core-metadata"] == f"sha256={sha256(metadata)}"
            assert anchor["data-dist-info-metadata"] == anchor["data-core-metadata"]
            assert "data-requires-python" not in anchor
        else:
            assert "data-core-metadata" not in anchor
            assert "data-dist-info-metadata" not in anchor
            assert anchor["data-requires-python"] == ">=3.7"
        assert "data-yanked" not in anchor


def test_requires_python_is_html_escaped(house: tuple[Path, Manifest]) -> None:
    root, _ = house
    text = (root / "simple" / "foo-bar" / "index.html").read_text()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in text
    (anchor,) = parse_html(root / "simple" / "foo-bar" / "index.html").anchors
    # Taken from the wheel's METADATA when the manifest has no value.
    assert anchor["data-requires-python"] == ">=3.8,<4"


def test_project_page_json(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    data = json.loads((root / "simple" / "dep-two" / "index.json").read_bytes())
    assert set(data) == {"meta", "name", "versions", "files"}
    assert data["meta"] == {"api-version": "1.1"}
    assert data["name"] == "dep-two"
    assert data["versions"] == ["1.5", "2.0"]
    records = {r.filename: r for r in manifest.files if r.name == "dep-two"}
    assert [f["filename"] for f in data["files"]] == sorted(records)
    for item in data["files"]:
        filename = item["filename"]
        content = (root / filename).read_bytes()
        assert item["url"] == "../../" + filename
        assert item["hashes"] == {"sha256": sha256(content)}
        assert item["size"] == len(content)
        assert type(item["size"]) is int
        assert "dist-info-metadata" not in item  # pip 22.3-23.1 crash on it (PEP 714)
        assert "yanked" not in item
        if filename.endswith(".whl"):
            assert set(item) == JSON_KEYS_WHEEL - {"requires-python"}
            metadata = (root / f"{filename}.metadata").read_bytes()
            assert item["core-metadata"] == {"sha256": sha256(metadata)}
        else:
            assert set(item) == JSON_KEYS_WHEEL
            assert item["core-metadata"] is False
            assert item["requires-python"] == ">=3.7"
        # PEP 700: every file belongs to one of the listed versions.
        assert records[filename].version in data["versions"]


def test_foo_bar_json_has_requires_python(house: tuple[Path, Manifest]) -> None:
    root, _ = house
    data = json.loads((root / "simple" / "foo-bar" / "index.json").read_bytes())
    (item,) = data["files"]
    assert set(item) == JSON_KEYS_WHEEL
    assert item["requires-python"] == ">=3.8,<4"


def test_every_metadata_file_is_the_wheels_metadata(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    wheels = [r for r in manifest.files if r.kind == "wheel"]
    assert len(wheels) == 3
    for record in wheels:
        metadata = (root / f"{record.filename}.metadata").read_bytes()
        assert metadata == wheel_metadata(root / record.filename)
        assert b"Name: " in metadata
        data = json.loads((root / "simple" / record.name / "index.json").read_bytes())
        (item,) = [f for f in data["files"] if f["filename"] == record.filename]
        assert item["core-metadata"]["sha256"] == sha256(metadata)
    assert not list(root.glob("*.tar.gz.metadata"))


def test_writing_twice_changes_nothing(house: tuple[Path, Manifest]) -> None:
    root, manifest = house

    def snapshot() -> dict[str, tuple[bytes, int]]:
        return {
            p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in root.rglob("*")
            if p.is_file()
        }

    before = snapshot()
    write_index(root, manifest)
    assert snapshot() == before
    assert not [p for p in root.rglob(".*")], "a temporary file was left behind"


def two_copies(tmp_path: Path, dists: Any) -> tuple[Path, Path, Manifest]:
    """A wheelhouse without its index, and a copy of it elsewhere."""
    first = tmp_path / "one"
    manifest = sample_wheelhouse(first, dists)
    second = tmp_path / "two"
    shutil.copytree(first, second)
    return first, second, manifest


def test_same_manifest_gives_same_bytes_elsewhere(tmp_path: Path, dists: Any) -> None:
    first, second, manifest = two_copies(tmp_path, dists)
    write_index(first, manifest)
    write_index(second, manifest)
    for name in index_files(manifest):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_staged_index_is_the_same_bytes_readable_by_all(tmp_path: Path, dists: Any) -> None:
    first, staged, manifest = two_copies(tmp_path, dists)
    write_index(first, manifest)
    umask = os.umask(0o077)  # a strict umask must not hide the index from a web server
    try:
        write_index(staged, manifest, staged=True)
    finally:
        os.umask(umask)
    for name in index_files(manifest):
        assert (staged / name).read_bytes() == (first / name).read_bytes(), name
        assert stat.S_IMODE((staged / name).stat().st_mode) == 0o644, name
    # Staged means new: a file that is there already is not overwritten.
    with pytest.raises(FileExistsError):
        write_index(staged, manifest, staged=True)


def test_index_is_rewritten_when_a_file_changes(house: tuple[Path, Manifest], dists: Any) -> None:
    root, manifest = house
    path = dists.wheel("dep-two", "3.0", requires_python=">=3.9")
    shutil.copy2(path, root / path.name)
    bigger = manifest_of([*manifest.files, record_of(root / path.name)])
    write_index(root, bigger)
    data = json.loads((root / "simple" / "dep-two" / "index.json").read_bytes())
    assert data["versions"] == ["1.5", "2.0", "3.0"]
    assert data["files"][-1]["requires-python"] == ">=3.9"


def test_pages_of_dropped_projects_are_removed(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    smaller = manifest_of([r for r in manifest.files if r.name != "foo-bar"])
    write_index(root, smaller)
    assert not (root / "simple" / "foo-bar").exists()
    assert json.loads((root / "simple" / "index.json").read_bytes())["projects"] == [
        {"name": "dep-two"}
    ]


def test_file_names_are_url_quoted(tmp_path: Path, dists: Any) -> None:
    root = tmp_path / "house"
    root.mkdir()
    path = dists.wheel("local", "1.0+cpu.7")
    shutil.copy2(path, root / path.name)
    assert "+" in path.name
    write_index(root, manifest_of([record_of(root / path.name)]))
    data = json.loads((root / "simple" / "local" / "index.json").read_bytes())
    assert data["files"][0]["url"] == "../../" + quote(path.name)
    assert data["files"][0]["url"] == "../../local-1.0%2Bcpu.7-py3-none-any.whl"
    (anchor,) = parse_html(root / "simple" / "local" / "index.html").anchors
    assert str(anchor["href"]).startswith("../../local-1.0%2Bcpu.7-py3-none-any.whl#sha256=")
    assert (root / f"{path.name}.metadata").is_file()


def make_raw_wheel(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_dist_info_found_by_meaning_not_spelling(tmp_path: Path) -> None:
    root = tmp_path / "house"
    root.mkdir()
    wheel = root / "foo_bar-1.0-py3-none-any.whl"
    wanted = b"Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.0\n"
    make_raw_wheel(
        wheel,
        {
            "foo_bar/__init__.py": b"",
            "vendored-2.0.dist-info/METADATA": b"Name: vendored\nVersion: 2.0\n",
            "Foo.Bar-1.0.0.dist-info/METADATA": wanted,
        },
    )
    write_index(root, manifest_of([record_of(wheel)]))
    assert (root / f"{wheel.name}.metadata").read_bytes() == wanted


def test_wheel_without_its_metadata_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "house"
    root.mkdir()
    wheel = root / "foo-1.0-py3-none-any.whl"
    make_raw_wheel(wheel, {"bar-1.0.dist-info/METADATA": b"Name: bar\n"})
    with pytest.raises(InvalidWheelhouseError) as info:
        write_index(root, manifest_of([record_of(wheel)]))
    assert info.value.message == (
        "the wheel 'foo-1.0-py3-none-any.whl' has no foo-1.0.dist-info/METADATA"
    )
    assert not (root / "simple").exists()


def test_tampered_file_is_refused(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    wheel = root / "dep_two-2.0-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    data[40] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(TamperedError) as info:
        write_index(root, manifest)
    expected = manifest.file(wheel.name)
    assert info.value.message == (
        f"'dep_two-2.0-py3-none-any.whl' does not match the manifest (sha256 "
        f"{sha256(bytes(data))!r}, {len(data)} bytes; expected {expected.sha256!r}, "
        f"{expected.size} bytes)"
    )


def test_missing_file_is_refused(house: tuple[Path, Manifest]) -> None:
    root, manifest = house
    (root / "dep_two-1.5-py3-none-any.whl").unlink()
    with pytest.raises(TamperedError, match=r"^'dep_two-1.5-py3-none-any.whl' is listed"):
        write_index(root, manifest)


def test_empty_manifest_gives_an_empty_index(tmp_path: Path) -> None:
    write_index(tmp_path, manifest_of([]))
    assert json.loads((tmp_path / "simple" / "index.json").read_bytes())["projects"] == []
    assert parse_html(tmp_path / "simple" / "index.html").anchors == []
    assert index_files(manifest_of([])) == ["simple/index.html", "simple/index.json"]


def test_index_directory_reads_the_manifest(tmp_path: Path, dists: Any) -> None:
    root = tmp_path / "house"
    manifest = sample_wheelhouse(root, dists)
    (root / "wheelhouse.json").write_text(manifest.to_json())
    assert index_directory(root) == manifest
    for name in index_files(manifest):
        assert (root / name).is_file(), name


def test_index_directory_needs_a_wheelhouse(tmp_path: Path) -> None:
    with pytest.raises(InvalidWheelhouseError) as info:
        index_directory(tmp_path)
    assert (
        info.value.message == f"{str(tmp_path)!r} is not a wheelhouse (it has no wheelhouse.json)"
    )
    assert not (tmp_path / "simple").exists()


# --- real installers against the file:// index, offline, configuration scrubbed ---------------


@pytest.mark.slow
def test_bundled_pip_installs_from_file_index_offline(
    house: tuple[Path, Manifest], make_venv: Any, offline: Any
) -> None:
    root, _ = house
    python = make_venv("old-pip")
    url = (root / "simple").as_uri()
    result = run(
        offline([python, "-m", "pip", "install", "--index-url", url, "foo-bar"]),
        env=offline_env(),
    )
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert installed["foo-bar"] == "1.0"
    assert installed["dep-two"] == "2.0"


@pytest.mark.slow
def test_newest_pip_installs_from_file_index_using_metadata_files(
    house: tuple[Path, Manifest], make_venv: Any, offline: Any
) -> None:
    root, _ = house
    python = make_venv("new-pip", with_pip=False)
    url = (root / "simple").as_uri()
    pip = [sys.executable, "-m", "pip"]  # the test environment's own, newest pip
    result = run(
        offline([*pip, "--python", python, "install", "-v", "--index-url", url, "foo-bar"]),
        env=offline_env(),
    )
    assert result.ok, result.stdout + result.stderr
    # pip read the PEP 658 files instead of the wheels to resolve.
    assert f"{(root / 'foo_bar-1.0-py3-none-any.whl.metadata').as_uri()}" in result.stdout
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")


@pytest.mark.slow
def test_uv_installs_from_file_index_offline(
    house: tuple[Path, Manifest], make_venv: Any, offline: Any, tmp_path: Path
) -> None:
    uv = find_uv()
    root, _ = house
    python = make_venv("uv", with_pip=False)
    argv = [*uv, "pip", "install", "--no-config", "--offline", "--cache-dir", tmp_path / "uvc"]
    argv += ["--python", python, "--index-url", (root / "simple").as_uri(), "foo-bar"]
    result = run(offline(argv), env=offline_env())
    assert result.ok, result.stdout + result.stderr
    installed = _installed(python)
    assert (installed["foo-bar"], installed["dep-two"]) == ("1.0", "2.0")
