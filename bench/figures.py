"""One measured figure beside its baseline, as stored in the JSON and shown in the table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import ratio


@dataclass
class Figure:
    """``value`` and ``baseline`` are medians over the run's repeats; None = not measured.

    ``goal`` is the issue's target as text; ``met`` is decided by the benchmark that knows
    how to read it (None when the figure has no goal or was not measured).
    """

    key: str
    label: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.baseline)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def skipped(key: str, label: str, unit: str, why: str, goal: str = "") -> Figure:
    """A figure that was not measured, with the reason shown in the table."""
    return Figure(key, label, None, unit, goal=goal, note=f"not available: {why}")
