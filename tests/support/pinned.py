"""The pinned fast path run directly, and the files it chose."""

from __future__ import annotations

from pathlib import Path

from wheelhouse._base.pip_settings import IndexOptions, PipSettings
from wheelhouse._base.targets import HOST
from wheelhouse.download.cache import Cache
from wheelhouse.inputs.requirements import read_inputs
from wheelhouse.resolve.from_pins import PinnedResult, resolve_pinned
from wheelhouse.resolve.fully_pinned import Fallback


def run(
    tmp_path: Path,
    requirements: str,
    index_url: str,
    *,
    constraints: str | None = None,
    config: dict[str, str] | None = None,
) -> PinnedResult | Fallback:
    req = tmp_path / "requirements.txt"
    req.write_text(requirements)
    cons: tuple[Path, ...] = ()
    if constraints is not None:
        (tmp_path / "constraints.txt").write_text(constraints)
        cons = (tmp_path / "constraints.txt",)
    inputs = read_inputs((req,), cons)
    return resolve_pinned(
        inputs,
        PipSettings.parse(config or {}, IndexOptions(index_url=index_url)),
        HOST,
        Cache(tmp_path / "cache"),
        jobs=4,
    )


def ok(result: PinnedResult | Fallback) -> PinnedResult:
    assert isinstance(result, PinnedResult), result
    return result


def chosen(result: PinnedResult | Fallback) -> dict[str, str]:
    return {pin.name: pin.filename for pin in ok(result).resolution.pins}
