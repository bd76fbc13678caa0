"""The types behind the root conftest's fixtures, the environment isolation every test gets,
and a real wheelhouse built once for a module's fixtures."""

from __future__ import annotations

import functools
import http.client
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dists import DistFactory
from tests.support.server import IndexServer
from wheelhouse._base.pip_settings import IndexOptions
from wheelhouse.pipeline.run import build_wheelhouse
from wheelhouse.pipeline.settings import BuildSettings

# Captured before any test scrubs os.environ: the network check needs the machine's CA bundle.
_HOST_ENV: Mapping[str, str] = dict(os.environ)


PYPI_PROBE_URL = "https://pypi.org/simple/pip/"


# Every PIP_* and UV_* variable is removed, then these are set (paths are under tmp_path).
_PIP_QUIET = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_NO_INPUT": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def isolate_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make os.environ free of the machine's pip/uv configuration, with caches under tmp_path."""
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_")):
            monkeypatch.delenv(key)
    for key, value in _PIP_QUIET.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("WHEELHOUSE_CACHE_DIR", str(tmp_path / "wh-cache"))
    # The runner's venv must not be mistaken for the target of an install.
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)


def private_tmpdir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Make ``folder`` the temporary directory of this process (``tempfile``) and of every
    process it starts (``TMPDIR``): what they leave there is removed with pytest's tmp dirs
    instead of piling up in /tmp."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@functools.cache
def _host_ca_bundle() -> str | None:
    """The CA bundle pip would use on this machine (its ``cert`` option first), if any."""
    if _HOST_ENV.get("PIP_CERT"):
        return _HOST_ENV["PIP_CERT"]
    if _HOST_ENV.get("PIP_CONFIG_FILE") != os.devnull:  # a cert set only in pip.conf
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.cert"],
            env=dict(_HOST_ENV),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if _HOST_ENV.get(key):
            return _HOST_ENV[key]
    return None


MakeVenv = Callable[..., Path]


RunPip = Callable[..., "subprocess.CompletedProcess[str]"]


Offline = Callable[[list[str]], list[str]]


@dataclass(frozen=True)
class Result:
    """What one in-process run of the CLI did."""

    exit_code: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


PYPI_PROBE_TIMEOUT = 3.0


@functools.cache
def _pypi_unreachable() -> str | None:
    """Why the real index cannot be reached (checked once per process), or None."""
    cafile = _host_ca_bundle()
    try:
        context = ssl.create_default_context(cafile=cafile)
        request = urllib.request.Request(PYPI_PROBE_URL, method="HEAD")
        with urllib.request.urlopen(request, timeout=PYPI_PROBE_TIMEOUT, context=context):
            pass
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return f"{PYPI_PROBE_URL} not reachable within {PYPI_PROBE_TIMEOUT:g} s: {exc}"
    return None


@functools.cache
def _unshare_prefix() -> tuple[list[str] | None, str]:
    """The argv prefix that runs a command without network, or None and why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare(1) is not installed"
    reasons = []
    # -n needs root; -rn maps the user to root in a new user namespace, for non-root runners.
    for prefix in ([unshare, "-n"], [unshare, "-r", "-n"]):
        proc = subprocess.run(
            [*prefix, "true"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        if proc.returncode == 0:
            return prefix, ""
        reasons.append(f"`{' '.join(prefix[1:])}`: {proc.stderr.strip() or proc.returncode}")
    return None, "network namespaces unavailable (" + "; ".join(reasons) + ")"


def built_wheelhouse(
    root: Path, requirements: str, make_dists: Callable[[DistFactory], object]
) -> Path:
    """``root/wheelhouse`` as a real build leaves it, of ``requirements`` (a file's text) over
    the dists ``make_dists`` makes, served from loopback; for fixtures that build once."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_environment(monkeypatch, root)
        factory = DistFactory(root / "dists")
        make_dists(factory)
        path = root / "requirements.txt"
        path.write_text(requirements, encoding="utf-8")
        with IndexServer(factory.root) as server:
            build_wheelhouse(
                BuildSettings(
                    requirements=(path,),
                    output=root / "wheelhouse",
                    index=IndexOptions(index_url=server.url),
                    jobs=1,
                )
            )
    return root / "wheelhouse"
