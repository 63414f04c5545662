"""The flipped examples as the report and gate.json show them: plain values (the counts,
McNemar's test, the rows listed as text), so that a report without predictions does
without numpy. `core/flipped.py` finds them in both models' predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Task = Literal["classification", "regression"]

FILE = "flipped.csv"


@dataclass(frozen=True)
class Flipped:
    """What the report and gate.json say of the flipped examples (plain, shown text)."""

    task: Task
    rows: int  # the rows both models predicted
    broken: int  # regression: rows whose absolute error grew
    fixed: int  # regression: rows whose absolute error shrank
    paired_by: str  # "id" or "row order"
    only_candidate: int = 0  # rows left out: their id is in one file only
    only_baseline: int = 0
    test: str | None = None  # "mcnemar-exact", "mcnemar-chi2"; None for regression
    p_value: float | None = None
    statistic: float | None = None
    header: tuple[str, ...] = ()
    worst: tuple[tuple[str, ...], ...] = ()  # the top broken rows (the error grew most)
    best: tuple[tuple[str, ...], ...] = ()  # regression: the error shrank most
    file: str | None = FILE  # in .mlci/out/, every flipped row
