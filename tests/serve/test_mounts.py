"""The private indexes' mounts (serve/_mounts.py): which app answers a path, and what it sees."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from wheelhouse.serve._mounts import Mounts


class Recorder:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(dict(scope))


def _call(path: str, raw: bytes | None) -> tuple[Recorder, Recorder]:
    root, team = Recorder(), Recorder()
    app = Mounts(root, {"team": team})
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    if raw is not None:
        scope["raw_path"] = raw

    async def run() -> None:
        await app(scope, None, None)

    anyio.run(run)
    return root, team


@pytest.mark.parametrize(
    ("path", "raw", "seen_path", "seen_raw"),
    [
        ("/team/simple/pkg/", b"/team/simple/pkg/", "/simple/pkg/", b"/simple/pkg/"),
        ("/team/", b"/team/", "/", b"/"),
        ("/team", b"/team", "/", b"/"),  # twine given the URL without its slash
        ("/team/simple/", b"/te%61m/simple/", "/simple/", b"/simple/"),
        ("/team/simple/", None, "/simple/", None),
        # A slash hidden in the prefix: the app reads the decoded path, not the raw one.
        ("/team/simple/", b"/team%2Fsimple/", "/simple/", None),
    ],
)
def test_a_mounted_index_sees_its_path_without_its_prefix(
    path: str, raw: bytes | None, seen_path: str, seen_raw: bytes | None
) -> None:
    root, team = _call(path, raw)
    assert root.scopes == []
    [scope] = team.scopes
    assert (scope["path"], scope["root_path"], scope.get("raw_path")) == (
        seen_path,
        "/team",
        seen_raw,
    )


@pytest.mark.parametrize("path", ["/", "/simple/team/", "/teams/", "/-/project/team/", "/x/team/"])
def test_other_paths_go_to_the_server_s_own_app(path: str) -> None:
    root, team = _call(path, path.encode())
    assert team.scopes == []
    assert [s["path"] for s in root.scopes] == [path]
