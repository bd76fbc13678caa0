"""Which resolution strategies a build tries, decided in one place (pipeline.resolving)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.progress import NullReporter
from wheelhouse._base.targets import HOST, parse_target
from wheelhouse.download.cache import Cache
from wheelhouse.inputs.requirements import InputSet
from wheelhouse.pipeline.resolving import Run, choose_strategies
from wheelhouse.pipeline.settings import BuildSettings
from wheelhouse.resolve.speedups import Speedups

FOREIGN = parse_target("cp311-manylinux_2_28_x86_64")
LOOSE = InputSet((), (), (), (), {})


def _run(tmp_path: Path, **settings: object) -> Run:
    return Run(
        BuildSettings(requirements=(), output=tmp_path / "wh", **settings),  # type: ignore[arg-type]
        PipSettings(),
        Cache(tmp_path / "cache"),
        NullReporter(),
        build=lambda sdists: [],
        speedups=Speedups(),
    )


def _names(inputs: InputSet, target: object, run: Run) -> list[str]:
    return [type(s).__name__ for s in choose_strategies(inputs, target, run)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "target", "expected"),
    [
        ({}, HOST, ["Pinned", "LooseByPip", "ByPipReport"]),
        ({"resolver": "uv"}, HOST, ["Pinned", "LooseByUv", "ByPipReport"]),
        ({"refresh": True}, HOST, ["LooseByPip", "ByPipReport"]),
        ({}, FOREIGN, ["Pinned", "ForeignByUv"]),
        ({"refresh": True, "resolver": "uv"}, FOREIGN, ["ForeignByUv"]),
    ],
)
def test_the_chooser_orders_the_strategies_for_the_input_and_target(
    tmp_path: Path, settings: dict[str, object], target: object, expected: list[str]
) -> None:
    assert _names(LOOSE, target, _run(tmp_path, **settings)) == expected


def test_a_lock_is_taken_as_it_is(tmp_path: Path) -> None:
    locked = dataclasses.replace(LOOSE, lock=object())  # type: ignore[arg-type]
    for target in (HOST, FOREIGN):
        assert _names(locked, target, _run(tmp_path, refresh=True)) == ["ByLock"]
