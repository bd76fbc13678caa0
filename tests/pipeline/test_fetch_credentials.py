"""pip's fallback download gets no credentials on its command line (every local user reads it).

Our client is refused (401) and pip, which may hold a keyring or trust store we do not, is
asked. Its command line is read as another user would read it, from ``/proc/PID/cmdline``,
by a ``sitecustomize`` the child interpreter runs at start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.support.credentials import basic
from tests.support.dists import DistFactory
from tests.support.server import Answer, IndexServer
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import fetch_all
from wheelhouse.download.pins import Pin
from wheelhouse.house.manifest import Sha256

PASSWORD = "pw-Zq81-secret"


def test_pip_asked_for_a_file_gets_no_password_on_its_command_line(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = dists.wheel("alpha", "1.0")

    def only_pip(path: str, headers: Mapping[str, str]) -> Answer | None:
        # Our client is refused whatever it sends; pip, with the credentials, is served.
        if headers.get("User-Agent", "").startswith("pip/") and headers.get(
            "Authorization"
        ) == basic("u", PASSWORD):
            return None
        return 401, {"WWW-Authenticate": 'Basic realm="private"'}, b"no\n"

    index_server.intercept(only_pip)
    # pip knows the credentials from its own configuration, as the user set it up.
    monkeypatch.setenv("PIP_INDEX_URL", index_server.url.replace("//", f"//u:{PASSWORD}@", 1))
    record = tmp_path / "cmdlines"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "with open('/proc/self/cmdline', 'rb') as f, "
        f"open({str(record)!r}, 'ab') as out:\n"
        "    out.write(f.read() + b'\\n')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    name, version, _, _ = parse_wheel_filename(wheel.name)
    url = index_server.files_url.replace("//", f"//u:{PASSWORD}@", 1) + wheel.name
    pin = Pin(
        name=canonicalize_name(name),
        version=str(version),
        url=url,
        filename=wheel.name,
        kind="wheel",
        sha256=Sha256(hashlib.sha256(wheel.read_bytes()).hexdigest()),
        requires_python=None,
        requested=True,
    )

    [fetched] = fetch_all([pin], Cache(tmp_path / "cache"), pip=PipSettings(), allowed={}, jobs=1)

    assert fetched.path.read_bytes() == wheel.read_bytes()
    pip_runs = [line for line in record.read_bytes().splitlines() if b"download" in line]
    assert pip_runs, "pip was not asked"
    for line in pip_runs:
        assert PASSWORD.encode() not in line
        assert wheel.name.encode() in line
