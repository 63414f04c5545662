"""A confidence interval: what `core.stats` computes and `core.gate` decides on."""

from __future__ import annotations

from dataclasses import dataclass

from mlci.core.numbers import format_number


@dataclass(frozen=True)
class Interval:
    """A confidence interval for a metric's value, or for a candidate - baseline change."""

    low: float
    high: float
    confidence: float  # e.g. 0.95
    method: str  # "bootstrap", "delong", "normal", "paired bootstrap", ...

    def describe(self) -> str:
        return f"[{format_number(self.low)}, {format_number(self.high)}]"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high
