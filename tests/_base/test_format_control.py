"""_pip.FormatControl follows pip's own FormatControl, option by option."""

from __future__ import annotations

import pytest
from pip._internal.models.format_control import FormatControl as PipFormatControl

from wheelhouse._base.pip_settings import FormatControl, format_control

SEQUENCES: list[list[tuple[str, str]]] = [
    [],
    [("no-binary", ":all:")],
    [("only-binary", ":all:")],
    [("no-binary", ":all:"), ("only-binary", "Numpy,lxml")],
    [("only-binary", ":all:"), ("no-binary", "foo")],
    [("no-binary", "foo"), ("only-binary", ":all:")],
    [("no-binary", "a,b"), ("no-binary", ":none:"), ("only-binary", "c")],
    [("no-binary", ":all:,:none:,x")],
    [("only-binary", "x"), ("no-binary", "x")],
    [("no-binary", "x"), ("only-binary", "x")],
    [("no-binary", "Foo_Bar")],
]
NAMES = ["foo", "numpy", "lxml", "x", "c", "a", "foo-bar", "other"]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=str)
def test_the_same_allowed_formats_as_pip(sequence: list[tuple[str, str]]) -> None:
    ours = FormatControl()
    theirs = PipFormatControl(set(), set())
    for option, value in sequence:
        ours = ours.apply(option, value)  # type: ignore[arg-type]
        target, other = (
            (theirs.no_binary, theirs.only_binary)
            if option == "no-binary"
            else (theirs.only_binary, theirs.no_binary)
        )
        PipFormatControl.handle_mutual_excludes(value, target, other)
    assert (ours.no_binary, ours.only_binary) == (theirs.no_binary, theirs.only_binary)
    for name in NAMES:
        assert ours.allowed(name) == theirs.get_allowed_formats(name), name
    # The options it gives back make the same state from scratch (and from pip's config).
    config = dict(ours.as_options())
    assert format_control(config) == ours


def test_config_values_apply_the_all_holder_first() -> None:
    state = format_control({"only-binary": "numpy", "no-binary": ":all:"})
    assert state.allowed("numpy") == {"binary"}
    assert state.allowed("other") == {"source"}
    assert not format_control({})
