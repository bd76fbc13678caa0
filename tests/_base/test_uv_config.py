"""pip's settings as uv's: flags for the foreign resolver, a uv.toml for build environments."""

from __future__ import annotations

import tomllib

from wheelhouse._base._uv import pip_config_as_uv_args, pip_config_as_uv_toml, uv_env

CONFIG = {
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


def test_uv_toml_carries_the_index_and_format_settings() -> None:
    assert tomllib.loads(pip_config_as_uv_toml(CONFIG)) == {
        "pip": {
            "index-strategy": "unsafe-best-match",
            "index-url": "https://mirror.example/simple",
            "extra-index-url": ["file:///opt/a", "file:///opt/b"],
            "find-links": ["/srv/wheels"],
            "prerelease": "allow",
            "no-binary": [":all:"],
            "only-binary": ["numpy"],
        }
    }
    assert tomllib.loads(pip_config_as_uv_toml({})) == {
        "pip": {"index-strategy": "unsafe-best-match"}
    }


def test_uv_flags_carry_the_format_control() -> None:
    args = pip_config_as_uv_args(CONFIG)
    assert args[-4:] == ["--no-binary", ":all:", "--only-binary", "numpy"]


def test_uv_env_takes_pips_cert_proxy_and_trusted_hosts() -> None:
    env = uv_env(CONFIG, {"PATH": "/bin", "UV_INDEX_URL": "http://elsewhere/"})
    assert env == {
        "PATH": "/bin",
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "HTTP_PROXY": "http://proxy.example:3128",
        "HTTPS_PROXY": "http://proxy.example:3128",
        "UV_INSECURE_HOST": "mirror.example",
    }
