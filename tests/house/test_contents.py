"""The one fact about a wheelhouse's contents: its lock names, how to open one, its record codec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fixtures import Cli
from wheelhouse.errors import ExitCode, InvalidWheelhouseError
from wheelhouse.house.contents import generated_names, lock_names, open_wheelhouse
from wheelhouse.house.manifest import (
    GENERATOR,
    Downloaded,
    FileRecord,
    Inputs,
    LockEntry,
    Manifest,
    Sha256,
    TargetLock,
    record_from_dict,
    record_to_dict,
)

WHEEL = "alpha-1.0-py3-none-any.whl"
SHA = Sha256("a" * 64)
RECORD = FileRecord(
    name="alpha",  # type: ignore[arg-type]
    version="1.0",
    filename=WHEEL,
    sha256=SHA,
    size=12,
    kind="wheel",
    origin=Downloaded("https://files.example/alpha-1.0-py3-none-any.whl"),
    requires_python=">=3.9",
    yanked="broken",
)


def _manifest(*targets: str) -> Manifest:
    entry = LockEntry(name=RECORD.name, version="1.0", filenames=(WHEEL,))
    return Manifest(
        generator=GENERATOR,
        created="2026-12-07T00:00:00+00:00",
        inputs=Inputs(files=()),
        files=(RECORD,),
        locks=tuple(TargetLock(t, (), {}, (entry,)) for t in targets),
    )


def test_one_target_has_requirements_txt_and_pylock() -> None:
    assert lock_names(_manifest("cp311-manylinux_2_28_x86_64")) == (
        "requirements.txt",
        "pylock.toml",
    )


def test_several_targets_have_a_requirements_file_each_and_no_plain_one() -> None:
    manifest = _manifest("cp311-manylinux_2_28_x86_64", "cp312-win_amd64")
    assert lock_names(manifest) == (
        "requirements.cp311-manylinux_2_28_x86_64.txt",
        "requirements.cp312-win_amd64.txt",
        "pylock.toml",
    )
    assert lock_names(manifest, both_forms=True) == (
        "requirements.txt",
        "requirements.cp311-manylinux_2_28_x86_64.txt",
        "requirements.cp312-win_amd64.txt",
        "pylock.toml",
    )
    assert generated_names(manifest) == {
        "wheelhouse.json",
        "requirements.txt",
        "requirements.cp311-manylinux_2_28_x86_64.txt",
        "requirements.cp312-win_amd64.txt",
        "pylock.toml",
        WHEEL,
        f"{WHEEL}.metadata",
        "simple",
    }


def test_a_record_survives_the_codec_exactly() -> None:
    data = record_to_dict(RECORD)
    assert data == {
        "name": "alpha",
        "version": "1.0",
        "filename": WHEEL,
        "kind": "wheel",
        "sha256": SHA,
        "size": 12,
        "requires-python": ">=3.9",
        "origin": {"url": "https://files.example/alpha-1.0-py3-none-any.whl"},
        "yanked": "broken",
    }
    assert record_from_dict(json.loads(json.dumps(data))) == RECORD


def test_a_mirror_state_record_with_its_url_flat_still_reads() -> None:
    # What the mirror's own codec wrote before it used the manifest's: the URL beside the rest.
    old = {k: v for k, v in record_to_dict(RECORD).items() if k != "origin"}
    old["url"] = "https://files.example/alpha-1.0-py3-none-any.whl"
    assert record_from_dict(old) == RECORD


def test_open_wheelhouse_refuses_a_missing_directory_and_one_without_a_manifest(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidWheelhouseError) as missing:
        open_wheelhouse(tmp_path / "nowhere")
    assert missing.value.message == (
        f"the wheelhouse {str(tmp_path / 'nowhere')!r} does not exist or is not a directory"
    )
    with pytest.raises(InvalidWheelhouseError) as plain:
        open_wheelhouse(tmp_path)
    assert plain.value.message == (
        f"{str(tmp_path)!r} is not a wheelhouse (it has no wheelhouse.json)"
    )
    assert plain.value.exit_code == ExitCode.INPUT


@pytest.mark.parametrize(
    "command",
    [
        ("verify", "{dir}"),
        ("merge", "-q", "{dir}", "-o", "{out}"),
        ("pack", "{dir}", "-o", "{out}.tar"),
        ("publish", "{dir}", "{out_uri}"),
        ("sbom", "{dir}"),
    ],
    ids=lambda c: c[0],
)
def test_every_command_says_not_a_wheelhouse_in_one_line(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = tmp_path / "out"
    args = [a.format(dir=plain, out=out, out_uri=out.as_uri()) for a in command]
    result = cli(*args)
    assert result.exit_code == ExitCode.INPUT
    assert result.stderr.splitlines() == [
        f"error: {str(plain)!r} is not a wheelhouse (it has no wheelhouse.json)",
        "hint: pass the directory that 'wheelhouse build' wrote, or build one with "
        "'wheelhouse build -r requirements.txt -o DIR'",
    ]
    assert not out.exists()
    assert not tmp_path.joinpath("out.tar").exists()
