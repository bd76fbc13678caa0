"""tests/support/capabilities: a missing capability skips locally and fails under CI=true."""

from __future__ import annotations

import pytest

from tests.support.capabilities import missing, require


@pytest.mark.parametrize("ci", ["", "false", "1"])
def test_outside_ci_a_missing_capability_skips(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception) as info:
        missing("uv", "not on PATH")
    assert str(info.value) == "needs uv: not on PATH"


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_under_ci_a_missing_capability_fails(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception) as info:
        require("network namespaces (unshare -n)", "unshare(1) is not installed")
    assert str(info.value) == (
        "needs network namespaces (unshare -n): unshare(1) is not installed "
        "(CI=true: a missing capability fails the run)"
    )


def test_a_present_capability_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require("uv", None) is None
