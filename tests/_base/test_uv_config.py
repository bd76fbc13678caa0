"""pip's settings as uv's: flags for the foreign resolver, a uv.toml for build environments."""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path

from wheelhouse._base._uv import pip_settings_as_uv_args, pip_settings_as_uv_toml, uv_env
from wheelhouse._base.pip_settings import PipSettings

CONFIG = PipSettings.parse(
    {
        "index-url": "https://mirror.example/simple",
        "extra-index-url": "file:///opt/a file:///opt/b",
        "find-links": "/srv/wheels",
        "pre": "yes",
        "no-binary": ":all:",
        "only-binary": "numpy",
        "cert": "/etc/ca.pem",
        "proxy": "http://proxy.example:3128",
        "trusted-host": "mirror.example",
    }
)


def test_uv_toml_carries_the_format_settings_and_no_url() -> None:
    # The index URLs may hold credentials, which no file gets: uv_env passes them.
    assert tomllib.loads(pip_settings_as_uv_toml(CONFIG)) == {
        "pip": {
            "index-strategy": "unsafe-best-match",
            "prerelease": "allow",
            "no-binary": [":all:"],
            "only-binary": ["numpy"],
        }
    }
    assert tomllib.loads(pip_settings_as_uv_toml(PipSettings())) == {
        "pip": {"index-strategy": "unsafe-best-match"}
    }


def test_uv_flags_carry_the_format_control() -> None:
    args = pip_settings_as_uv_args(CONFIG)
    assert args[-4:] == ["--no-binary", ":all:", "--only-binary", "numpy"]


def test_uv_flags_name_no_index_and_no_find_links() -> None:
    """Every local user reads a command line: the URLs, which may carry a password, are
    passed in uv's environment (uv_env)."""
    secret = PipSettings.parse(
        {
            "index-url": "https://u:pw@mirror.example/simple",
            "extra-index-url": "https://u:pw@extra.example/simple",
            "find-links": "https://u:pw@links.example/",
        }
    )
    args = pip_settings_as_uv_args(secret)
    assert args == ["--index-strategy", "unsafe-best-match"]
    env = uv_env(secret, {})
    assert env["UV_INDEX_URL"] == "https://u:pw@mirror.example/simple"
    assert env["UV_EXTRA_INDEX_URL"] == "https://u:pw@extra.example/simple"
    assert env["UV_FIND_LINKS"] == "https://u:pw@links.example/"


def test_find_links_with_a_comma_survive_uvs_comma_separated_variable(tmp_path: Path) -> None:
    odd = tmp_path / "a,b"
    config = PipSettings.parse({"find-links": f"{odd} http://h/x,y/ /srv/plain"})
    assert uv_env(config, {})["UV_FIND_LINKS"] == (f"{odd.as_uri()},http://h/x%2Cy/,/srv/plain")
    assert "," not in odd.as_uri()


def test_uv_env_takes_pips_cert_proxy_and_trusted_hosts() -> None:
    env = uv_env(CONFIG, {"PATH": "/bin", "UV_INDEX_URL": "http://elsewhere/"})
    assert env == {
        "PATH": "/bin",
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_INDEX_URL": "https://mirror.example/simple",
        "UV_EXTRA_INDEX_URL": "file:///opt/a file:///opt/b",
        "UV_FIND_LINKS": "/srv/wheels",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "HTTP_PROXY": "http://proxy.example:3128",
        "HTTPS_PROXY": "http://proxy.example:3128",
        "UV_INSECURE_HOST": "mirror.example",
    }


def test_uv_env_without_a_cert_names_the_system_store_as_pip_trusts_it() -> None:
    # uv trusts only its compiled-in roots unless told; pip (truststore) trusts the system's.
    paths = ssl.get_default_verify_paths()
    env = uv_env(PipSettings(), {"PATH": "/bin"})
    if paths.cafile:
        assert env["SSL_CERT_FILE"] == paths.cafile
    else:
        assert env.get("SSL_CERT_DIR") == paths.capath
    # a bundle the user named already is theirs to keep
    kept = uv_env(PipSettings(), {"SSL_CERT_FILE": "/etc/mine.pem"})
    assert kept["SSL_CERT_FILE"] == "/etc/mine.pem"
    assert "SSL_CERT_DIR" not in kept
