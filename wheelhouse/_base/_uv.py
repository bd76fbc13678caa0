"""The single fence around uv: finding it, and running it with pip's configuration, not uv's.

Index URLs and find-links reach uv through its environment, never its command line: they may
carry ``user:password``, and every local user reads a process's arguments (``ps``).
"""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from wheelhouse._base._subprocess import Completed, run
from wheelhouse._base.cooldown import CONFIG_PACKAGES, CONFIG_PRIOR_TO
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.errors import WheelhouseError

__all__ = ["find_uv", "pip_settings_as_uv_args", "pip_settings_as_uv_toml", "run_uv", "uv_env"]


_UV_HINT = "reinstall wheelhouse (uv is one of its dependencies: 'pip install wheelhouse')"


def find_uv(purpose: str = "uv is needed here", hint: str = _UV_HINT) -> Path:
    """The uv that wheelhouse depends on (the ``uv`` Python package), else uv from PATH.

    The package's binary comes first, as pypa/build looks for it: it is the version our
    dependency pins, whatever an unrelated uv on PATH may be.
    """
    try:
        import uv  # type: ignore[import-not-found,unused-ignore]

        return Path(uv.find_uv_bin())
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        found = shutil.which("uv")
        if found:
            return Path(found)
        raise WheelhouseError(
            f"{purpose}, but uv is neither installed as a Python package nor on PATH", hint=hint
        ) from exc


def uv_env(pip: PipSettings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """uv's environment: no ``UV_*`` settings of its own; pip's indexes, find-links,
    certificate bundle, proxy and trusted hosts."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith("UV_")}
    env["UV_NO_CONFIG"] = "1"
    env.update(_uv_locations(pip))
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if pip.cert:
        env["SSL_CERT_FILE"] = pip.cert
    else:
        env.update(_system_store(env))
    if pip.proxy:
        # pip's --proxy serves both schemes; uv reads the standard variables.
        env["HTTP_PROXY"] = env["HTTPS_PROXY"] = pip.proxy
    if pip.trusted_hosts:
        env["UV_INSECURE_HOST"] = " ".join(pip.trusted_hosts)
    return env


def _system_store(env: Mapping[str, str]) -> dict[str, str]:
    """The system's certificate store as uv's ``SSL_CERT_FILE``/``SSL_CERT_DIR``, where no
    bundle is named: pip (truststore) and our own client trust that store, uv by default only
    the roots compiled into it, so behind a TLS-intercepting proxy whose CA is in the system
    store pip works and uv fails (``invalid peer certificate: UnknownIssuer``). The variables
    work with every uv, where its ``--system-certs`` flag's name changed between versions."""
    if env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"):
        return {}
    paths = ssl.get_default_verify_paths()  # each None when absent
    if paths.cafile:
        return {"SSL_CERT_FILE": paths.cafile}
    if paths.capath:
        return {"SSL_CERT_DIR": paths.capath}
    return {}


def _uv_locations(pip: PipSettings) -> dict[str, str]:
    """pip's index URLs and find-links as uv's variables (which it reads as its flags)."""
    env: dict[str, str] = {}
    if pip.index_url:
        env["UV_INDEX_URL"] = pip.index_url
    if pip.extra_index_urls:
        # uv splits it at spaces, as pip does
        env["UV_EXTRA_INDEX_URL"] = " ".join(pip.extra_index_urls)
    if pip.find_links:
        env["UV_FIND_LINKS"] = ",".join(_without_commas(link) for link in pip.find_links)
    return env


def _without_commas(link: str) -> str:
    """A find-links entry that survives ``UV_FIND_LINKS``'s commas: a URL's commas
    percent-encoded, a directory with a comma as its ``file:`` URL (which encodes it)."""
    if "," not in link:
        return link
    if "://" in link:
        return link.replace(",", "%2C")
    return Path(link).absolute().as_uri()


def pip_settings_as_uv_args(pip: PipSettings) -> list[str]:
    """pip's resolution settings as uv flags, so uv chooses as pip would; where to look
    (indexes, find-links) is in ``uv_env``."""
    # pip considers every index's files together; uv's default stops at the first index that
    # knows a project, which would make it choose differently from pip.
    args: list[str] = ["--index-strategy", "unsafe-best-match"]
    for constraint in pip.constraints:
        args += ["--constraint", constraint]
    if pip.pre:
        args += ["--prerelease", "allow"]
    for option, value in pip.formats.as_options():
        args += [f"--{option}", value]
    if pip.cooldown is not None:
        # Absolute times (RFC 3339), the same instants pip and the pinned path use.
        config = pip.cooldown.as_config()
        if CONFIG_PRIOR_TO in config:
            args.append(f"--exclude-newer={config[CONFIG_PRIOR_TO]}")
        for item in config.get(CONFIG_PACKAGES, "").split():
            args.append(f"--exclude-newer-package={item}")
    return args


def pip_settings_as_uv_toml(pip: PipSettings) -> str:
    """pip's format settings as a ``uv.toml`` (its ``[pip]`` table), for uv runs whose
    command line is not ours: pypa/build's isolated environments. The index URLs, which may
    hold credentials, are not in it (no file gets them): ``uv_env`` passes them."""
    import tomli_w

    table: dict[str, object] = {"index-strategy": "unsafe-best-match"}
    if pip.no_index:
        table["no-index"] = True
    if pip.pre:
        table["prerelease"] = "allow"
    if pip.formats.no_binary:
        table["no-binary"] = sorted(pip.formats.no_binary)
    if pip.formats.only_binary:
        table["only-binary"] = sorted(pip.formats.only_binary)
    if pip.cooldown is not None:
        # A build's own dependencies come under the same cooldown.
        config = pip.cooldown.as_config()
        if CONFIG_PRIOR_TO in config:
            table["exclude-newer"] = config[CONFIG_PRIOR_TO]
        packages = dict(item.split("=", 1) for item in config.get(CONFIG_PACKAGES, "").split())
        if packages:
            table["exclude-newer-package"] = packages
    return tomli_w.dumps({"pip": table})


def run_uv(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    purpose: str = "uv is needed here",
    on_stderr: Callable[[str], None] | None = None,
) -> Completed:
    return run([find_uv(purpose), *args], env=env, on_stderr=on_stderr)
