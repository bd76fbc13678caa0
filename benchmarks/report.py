"""The report: one Case per comparison (wheelhouse vs a baseline, alternated), the ratio table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    """One comparison: wheelhouse and a baseline, timed alternately on the same input."""

    name: str
    input: str
    wheelhouse_command: str
    baseline_command: str
    target: float
    wheelhouse: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    note: str = ""

    @property
    def ratio(self) -> float:
        return statistics.median(self.wheelhouse) / statistics.median(self.baseline)

    @property
    def status(self) -> str:
        return "PASS" if self.ratio <= self.target else "MISS"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "input": self.input,
            "wheelhouse": {
                "command": self.wheelhouse_command,
                "seconds": self.wheelhouse,
                "median": statistics.median(self.wheelhouse),
            },
            "baseline": {
                "command": self.baseline_command,
                "seconds": self.baseline,
                "median": statistics.median(self.baseline),
            },
            "ratio": self.ratio,
            "target": self.target,
            "status": self.status,
        }
        if self.phases:
            labels = sorted({k for p in self.phases for k in p})
            data["wheelhouse"]["phases_median"] = {
                k: statistics.median(p.get(k, 0.0) for p in self.phases) for k in labels
            }
        if self.note:
            data["note"] = self.note
        return data


def print_cases(cases: Sequence[Case]) -> None:
    head = f"{'case':<20} {'input':<16} {'wheelhouse':>10} {'baseline':>9} {'ratio':>6}  target"
    print(head)
    print("-" * len(head) + "-------")
    for c in cases:
        print(
            f"{c.name:<20} {c.input:<16} {statistics.median(c.wheelhouse):9.2f}s "
            f"{statistics.median(c.baseline):8.2f}s {c.ratio:5.2f}x  <= {c.target:.2f}x "
            f"{c.status}"
        )
    for c in cases:
        if c.note:
            print(f"note: {c.name} / {c.input}: {c.note}")
    for c in cases:
        if c.phases:
            spent = c.as_json()["wheelhouse"]["phases_median"]
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(spent.items(), key=_by_value))
            print(f"wheelhouse cold build phases ({c.input}, medians): {parts}")


def _by_value(item: tuple[str, float]) -> float:
    return -item[1]
