"""A confidence interval: what `core.stats` computes and `core.gate` decides on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

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


def wilson_half_width(proportion: float, rows: int, confidence: float) -> float:
    """Half the width of the Wilson score interval of a proportion seen on `rows` rows."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    spread = proportion * (1 - proportion) / rows + z * z / (4 * rows * rows)
    return z / (1 + z * z / rows) * math.sqrt(spread)


def wilson_rows(proportion: float, half_width: float, confidence: float) -> int:
    """The fewest rows whose Wilson interval around `proportion` is at most ±half_width."""
    high = 1
    while wilson_half_width(proportion, high, confidence) > half_width:
        high *= 2
    low = high // 2  # too few (or 0); the answer lies in (low, high]
    while high - low > 1:
        middle = (low + high) // 2
        if wilson_half_width(proportion, middle, confidence) > half_width:
            low = middle
        else:
            high = middle
    return high


def scaled_rows(rows: int, half_width: float, target: float) -> int:
    """Rows for an interval of ±target, from one of ±half_width on `rows` rows: the width
    of a bootstrap or normal interval shrinks with the square root of the rows."""
    return math.ceil(round(rows * (half_width / target) ** 2, 6))  # 1600.0000000002: 1600
