"""The command line's index options combine with pip's configuration as pip combines them."""

from __future__ import annotations

from wheelhouse._base.pip_settings import IndexOptions


def test_index_url_replaces_and_extra_urls_extend_without_repeats() -> None:
    config = {
        "index-url": "https://mirror.example/simple",
        "extra-index-url": "file:///opt/a file:///opt/b",
        "cert": "/etc/ca.pem",
    }
    options = IndexOptions(
        index_url="http://127.0.0.1:1/simple",
        extra_index_urls=("file:///opt/b", "file:///opt/c"),
        find_links=("/srv/wheels",),
        pre=True,
    )

    merged = options.over(config)

    assert merged == {
        "index-url": "http://127.0.0.1:1/simple",
        "extra-index-url": "file:///opt/a file:///opt/b file:///opt/c",
        "find-links": "/srv/wheels",
        "pre": "true",
        "cert": "/etc/ca.pem",
    }
    assert config["index-url"] == "https://mirror.example/simple"  # the input is not changed
    # Applying the same options twice changes nothing more.
    assert options.over(merged) == merged


def test_no_options_leave_pip_settings_alone() -> None:
    config = {"index-url": "https://mirror.example/simple", "find-links": "/opt/wheels"}
    assert IndexOptions().over(config) == config
