"""Credentials in tests: the Basic value, an index that answers only with them, and another
local user to try to steal them."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from tests.support.server import Answer, IndexServer

# The upload index's account in the tests.
USER, PASSWORD = "alice", "correct horse battery staple"


def basic(user: str = USER, password: str = PASSWORD) -> str:
    """The Authorization (or Proxy-Authorization) value for Basic ``user:password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# Bounds for what another process does: generous, a loaded 2-core machine is slow.
WAIT = 60.0


# Another local user.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def guard(index: IndexServer, password: str = "s3cret") -> str:
    """Let ``index`` answer only requests with alice's credentials; its URL with them."""
    wanted = basic("alice", password)

    def check(path: str, headers: Mapping[str, str]) -> Answer | None:
        if headers.get("Authorization") != wanted:
            return 401, {"WWW-Authenticate": 'Basic realm="index"'}, b"who are you?"
        return None

    index.intercept(check)
    return index.url.replace("http://", f"http://alice:{password}@")
