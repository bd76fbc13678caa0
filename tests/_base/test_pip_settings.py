"""pip's settings parsed once into one typed value: the command line over pip's configuration."""

from __future__ import annotations

from wheelhouse._base.pip_settings import PYPI_SIMPLE, FormatControl, IndexOptions, PipSettings

CONFIG = {
    "index-url": "https://u:s3cret@mirror.example/simple",
    "extra-index-url": "file:///opt/a file:///opt/b",
    "find-links": "/srv/wheels",
    "no-binary": ":all:",
    "cert": "/etc/ca.pem",
    "client-cert": "/etc/me.pem",
    "proxy": "http://p:pw@proxy.example:3128",
    "retries": "2",
    "timeout": "30",
    "trusted-host": "mirror.example other.example",
    "constraint": "/etc/constraints.txt",
    "require-hashes": "yes",
}


def test_the_command_line_goes_over_pips_configuration() -> None:
    options = IndexOptions(
        index_url="http://127.0.0.1:1/simple",
        extra_index_urls=("file:///opt/b", "file:///opt/c"),
        find_links=("/srv/more",),
        pre=True,
        binary=(("only-binary", "numpy"),),
    )

    pip = PipSettings.parse(CONFIG, options)

    assert pip.index_url == "http://127.0.0.1:1/simple"
    assert pip.extra_index_urls == ("file:///opt/a", "file:///opt/b", "file:///opt/c")
    assert pip.find_links == ("/srv/wheels", "/srv/more")
    assert pip.index_urls == [
        "http://127.0.0.1:1/simple",
        "file:///opt/a",
        "file:///opt/b",
        "file:///opt/c",
    ]
    assert pip.pre is True
    assert pip.require_hashes is True
    assert pip.formats == FormatControl(frozenset({":all:"}), frozenset({"numpy"}))
    assert (pip.cert, pip.client_cert) == ("/etc/ca.pem", "/etc/me.pem")
    assert (pip.retries, pip.timeout) == (2, 30.0)
    assert pip.trusted_hosts == ("mirror.example", "other.example")
    assert pip.constraints == ("/etc/constraints.txt",)
    assert pip.configured == frozenset(CONFIG)
    assert pip.command_line == options


def test_nothing_configured_means_pips_defaults() -> None:
    pip = PipSettings.parse({})
    assert pip == PipSettings()
    assert pip.index_urls == [PYPI_SIMPLE]
    assert (pip.retries, pip.timeout, pip.proxy, pip.cooldown) == (None, 15.0, None, None)
    assert PipSettings.parse({"no-index": "on"}).index_urls == []


def test_values_pip_would_refuse_fall_back_to_the_defaults() -> None:
    pip = PipSettings.parse({"retries": "many", "timeout": "soon", "pre": "maybe"})
    assert (pip.retries, pip.timeout, pip.pre) == (None, 15.0, False)
    assert PipSettings.parse({"default-timeout": "7"}).timeout == 7.0


def test_credentials_stay_out_of_the_repr() -> None:
    options = IndexOptions(extra_index_urls=("https://x:hunter2@extra.example/simple",))
    pip = PipSettings.parse(CONFIG, options)
    shown = repr(pip)
    assert "s3cret" not in shown
    assert "hunter2" not in shown
    assert ":pw@" not in shown
    assert "mirror.example/simple" in shown
    assert "hunter2" not in repr(options)


def test_without_indexes_keeps_everything_but_the_index_urls() -> None:
    pip = PipSettings.parse(CONFIG).without_indexes()
    assert (pip.index_url, pip.extra_index_urls) == (None, ())
    assert pip.cert == "/etc/ca.pem"
    assert pip.find_links == ("/srv/wheels",)
