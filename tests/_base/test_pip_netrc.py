"""The netrc file that carries pip's credentials keeps the user's own netrc working."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

import pytest

from wheelhouse._base import _pip


def test_the_users_netrc_entries_are_kept_and_the_urls_lose_their_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    mine = tmp_path / "my-netrc"
    mine.write_text(
        "machine 127.0.0.1 login old password stale\n"
        "machine files.example login bob password b0b\n"
        "default login anon password guest\n",
        encoding="utf-8",
    )
    mine.chmod(0o600)
    monkeypatch.setenv("NETRC", str(mine))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://alice:s3cret@127.0.0.1:8080/simple/")
    monkeypatch.setenv("PIP_FIND_LINKS", "https://carol:p%40ss@links.example/flat/ /srv/local")
    monkeypatch.setattr(
        _pip,
        "_config_items",
        lambda: [
            (":env:.index-url", os.environ["PIP_INDEX_URL"]),
            (":env:.find-links", os.environ["PIP_FIND_LINKS"]),
        ],
    )

    env = _pip.online_env()

    assert env["PIP_INDEX_URL"] == "http://127.0.0.1:8080/simple/"
    assert env["PIP_FIND_LINKS"] == "https://links.example/flat/ /srv/local"
    path = Path(env["NETRC"])
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    read = netrc.netrc(str(path))
    # The URL's credentials first, as pip takes them before netrc's; the user's others kept.
    assert read.authenticators("127.0.0.1") == ("alice", "", "s3cret")
    assert read.authenticators("links.example") == ("carol", "", "p@ss")
    assert read.authenticators("files.example") == ("bob", "", "b0b")
    assert read.authenticators("elsewhere.example") == ("anon", "", "guest")
    assert mine.read_text(encoding="utf-8").startswith("machine 127.0.0.1 login old")

    _pip.remove_netrc_files()

    assert not path.parent.exists()
