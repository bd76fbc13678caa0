"""The lock readers on their own: which packages each takes for a target, from small locks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wheelhouse._base.targets import HOST, parse_target
from wheelhouse.errors import RequirementsError
from wheelhouse.inputs import Selection, input_kind, read_lock

WINDOWS = parse_target("cp311-win_amd64")
SHA = "a" * 64

UV_LOCK = f"""\
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "requests", extra = ["socks"] }},
    {{ name = "numpy", version = "2.0", marker = "sys_platform == 'win32'" }},
    {{ name = "numpy", version = "1.0", marker = "sys_platform != 'win32'" }},
]

[[package]]
name = "requests"
version = "2.0"
source = {{ registry = "https://pypi.org/simple" }}
wheels = [{{ url = "https://files.example/requests-2.0-py3-none-any.whl", hash = "sha256:{SHA}" }}]

[package.optional-dependencies]
socks = [{{ name = "pysocks" }}]

[[package]]
name = "pysocks"
version = "1.7"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.example/PySocks-1.7.tar.gz", hash = "sha256:{SHA}" }}

[[package]]
name = "numpy"
version = "1.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.example/numpy-1.0.tar.gz", hash = "sha256:{SHA}" }}

[[package]]
name = "numpy"
version = "2.0"
source = {{ registry = "https://pypi.org/simple" }}
sdist = {{ url = "https://files.example/numpy-2.0.tar.gz", hash = "sha256:{SHA}" }}
"""


def packages(path: Path, target: object = HOST, **selection: frozenset[str]) -> dict[str, str]:
    lock = read_lock(path, input_kind(path))
    found = lock.packages_for(target, Selection(**selection))  # type: ignore[arg-type]
    return {p.name: p.version for p in found}


def test_uv_lock_follows_edge_extras_and_forks_by_marker(tmp_path: Path) -> None:
    path = tmp_path / "uv.lock"
    path.write_text(UV_LOCK)
    assert packages(path) == {"numpy": "1.0", "pysocks": "1.7", "requests": "2.0"}
    assert packages(path, WINDOWS)["numpy"] == "2.0"


def test_pdm_lists_a_package_per_extra_and_the_reader_takes_each(tmp_path: Path) -> None:
    path = tmp_path / "pdm.lock"
    path.write_text(
        '[metadata]\ngroups = ["default"]\nstrategy = ["inherit_metadata"]\n'
        'lock_version = "4.5.0"\n\n'
        '[[package]]\nname = "django"\nversion = "3.2"\ngroups = ["default"]\n'
        f'files = [{{file = "Django-3.2-py3-none-any.whl", hash = "sha256:{SHA}"}}]\n\n'
        '[[package]]\nname = "django"\nversion = "3.2"\nextras = ["argon2"]\n'
        'groups = ["default"]\n'
        f'files = [{{file = "Django-3.2-py3-none-any.whl", hash = "sha256:{SHA}"}}]\n\n'
        '[[package]]\nname = "tzdata"\nversion = "2024.1"\ngroups = ["default"]\n'
        'marker = "sys_platform == \\"win32\\""\n'
        f'files = [{{file = "tzdata-2024.1-py2.py3-none-any.whl", hash = "sha256:{SHA}"}}]\n'
    )
    assert packages(path) == {"django": "3.2"}
    assert packages(path, WINDOWS) == {"django": "3.2", "tzdata": "2024.1"}


def test_pipfile_lock_takes_default_and_develop_with_group_dev(tmp_path: Path) -> None:
    path = tmp_path / "Pipfile.lock"
    entry = {"hashes": [f"sha256:{SHA}"], "version": "==1.0"}
    path.write_text(
        json.dumps(
            {
                "_meta": {"pipfile-spec": 6, "sources": []},
                "default": {"a": entry, "w": {**entry, "markers": "sys_platform == 'win32'"}},
                "develop": {"d": entry},
            }
        )
    )
    assert packages(path) == {"a": "1.0"}
    assert packages(path, WINDOWS, groups=frozenset({"dev"})) == {
        "a": "1.0",
        "w": "1.0",
        "d": "1.0",
    }


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("deps.lock", 'version = 1\n[[package]]\nname = "a"\n', "uv.lock"),
        ("x.lock", '[[package]]\nname = "a"\n[metadata]\nlock-version = "2.1"\n', "poetry.lock"),
        ("x.lock", '[metadata]\nlock_version = "4.5.0"\n', "pdm.lock"),
        ("x.json", '{"_meta": {"pipfile-spec": 6}}', "Pipfile.lock"),
        ("x.toml", 'lock-version = "1.0"\ncreated-by = "x"\npackages = []\n', "pylock"),
        ("pylock.prod.toml", "", "pylock"),
        ("requirements.txt", "requests\n", "requirements"),
        ("x.toml", "not toml [", "requirements"),
    ],
)
def test_inputs_are_recognised_by_name_and_content(
    tmp_path: Path, name: str, text: str, kind: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert input_kind(path) == kind


def test_an_invalid_pylock_is_exit_3_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "1.0"\npackages = []\n')
    with pytest.raises(RequirementsError) as info:
        read_lock(path, "pylock")
    assert info.value.exit_code == 3
    assert info.value.message.startswith(f"{str(path)!r} is not a valid PEP 751 lock file: ")
