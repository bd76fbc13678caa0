"""wheelhouse.provenance.policy: the pins a user writes, read strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelhouse.errors import ProvenancePolicyError
from wheelhouse.provenance.policy import ProjectPin, ProvenancePolicy, read_policy


def _read(tmp_path: Path, text: str) -> ProvenancePolicy:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return read_policy(path)


def test_every_kind_of_pin(tmp_path: Path) -> None:
    policy = _read(
        tmp_path,
        """
require = true
[projects.Sample_Project]
repository = "pypa/sampleproject"
workflow = "release.yml"
[projects.gl]
kind = "GitLab"
repository = "group/sub/project/"
[projects.g]
email = "pub@p.iam.gserviceaccount.com"
[projects.legacy]
require = false
""",
    )
    assert policy.require is True
    assert policy.pin("sample-project") == ProjectPin(
        kind="github", repository="pypa/sampleproject", workflow="release.yml"
    )
    assert policy.pin("GL") == ProjectPin(kind="gitlab", repository="group/sub/project")
    assert policy.pin("g") == ProjectPin(kind="google", email="pub@p.iam.gserviceaccount.com")
    assert policy.requires("legacy") is False
    assert policy.requires("unlisted") is True
    assert policy.requires("sample.project") is True


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("requires = true\n", "unknown key(s) ['requires'] (expected 'require' and 'projects')"),
        (
            "[projects.x]\nrepository = 'a'\n",
            "[projects.x] repository must be 'owner/name', not 'a'",
        ),
        ("[projects.x]\nkind = 'svn'\nrepository = 'a/b'\n", "[projects.x] kind must be one of"),
        ("[projects.x]\nworkflow = 'r.yml'\n", "[projects.x] a github publisher is pinned by"),
        ("[projects.x]\nemail = 'e@x'\nrepository = 'a/b'\n", "[projects.x] a google publisher"),
        ("[projects.x]\nrepository = 7\n", "[projects.x] repository must be a non-empty string"),
        ("[projects.x]\nrequire = 'no'\n", "[projects.x] require must be true or false"),
        ("[projects.x]\n[projects.X]\n", "[projects.X] names the project 'x' a second time"),
    ],
)
def test_a_malformed_policy_names_its_fault(tmp_path: Path, text: str, fault: str) -> None:
    with pytest.raises(ProvenancePolicyError) as caught:
        _read(tmp_path, text)
    assert caught.value.message.startswith(
        f"the provenance policy {str(tmp_path / 'policy.toml')!r}: {fault}"
    )
    assert caught.value.exit_code == 3
