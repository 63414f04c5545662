"""Flipped examples: the rows the baseline got right and the candidate wrong, and back.

Classification: a row is *broken* when the baseline's label is right and the candidate's
wrong, *fixed* the reverse. McNemar's test asks whether the two counts differ by more than
chance: exact (two-sided binomial, p = 1/2) when broken + fixed < `EXACT_BELOW`, else
chi-square with continuity correction, (|b - c| - 1)² / (b + c) on one degree of freedom
(statsmodels' `mcnemar`, either way). The broken rows are listed by the candidate's
confidence in its wrong label (its probability column), highest first.

Regression: a row is *broken* when its absolute error grew, *fixed* when it shrank;
listed by how much. No test: the paired intervals of mae and rmse say it.

Everything here is vectorised: a million rows cost a few numpy passes, the top rows an
`argpartition`. What the report keeps of them (`Flipped`) is plain values, in
`core/flipped_text.py`: a report without predictions does without numpy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from mlci.core.flipped_text import Flipped, Task
from mlci.core.numbers import format_number
from mlci.core.predictions import Array, Predictions

EXACT_BELOW = 25  # discordant pairs: below, the exact binomial test; from here, chi-square
REGRESSION_CSV_ROWS = 10_000  # of each: the error grew most, shrank most
MAX_EXTRA_COLUMNS = 3  # other columns of the candidate's file shown beside each row
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula
# Bidirectional overrides and isolates reorder what follows them on screen (the "Trojan
# Source" trick) and the marks are invisible: shown as U+FFFD, like control characters.
_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_CELL_CHARS = 80


@dataclass(frozen=True)
class McNemar:
    test: str  # "mcnemar-exact" or "mcnemar-chi2"
    p_value: float
    statistic: float | None = None  # the chi-square statistic; None for the exact test


def mcnemar(broken: int, fixed: int) -> McNemar:
    """McNemar's test of `broken` against `fixed` (the discordant pairs)."""
    pairs = broken + fixed
    if pairs < EXACT_BELOW:
        tail = sum(math.comb(pairs, k) for k in range(min(broken, fixed) + 1))
        return McNemar("mcnemar-exact", min(1.0, 2 * tail / 2**pairs))
    statistic = (abs(broken - fixed) - 1) ** 2 / pairs
    return McNemar("mcnemar-chi2", math.erfc(math.sqrt(statistic / 2)), statistic)


@dataclass(frozen=True, eq=False)
class Flips:
    """The changed rows of two models' predictions on the same rows (paired).

    `broken` and `fixed` are row positions in the paired predictions, in row order.
    `weight` is, per row, what orders the broken ones: the candidate's probability of its
    label (NaN without probabilities) or, for regression, how much the error grew.
    """

    task: Task
    broken: Array
    fixed: Array
    weight: Array


def find_flips(candidate: Predictions, baseline: Predictions, task: Task) -> Flips:
    """The rows that flipped between `baseline` and `candidate` (aligned row by row)."""
    if task == "regression":
        grew = np.abs(candidate.y_pred - candidate.y_true) - np.abs(
            baseline.y_pred - baseline.y_true
        )
        return Flips(task, np.flatnonzero(grew > 0), np.flatnonzero(grew < 0), grew)
    right = candidate.y_pred == candidate.y_true
    was_right = baseline.y_pred == baseline.y_true
    return Flips(
        task,
        np.flatnonzero(was_right & ~right),
        np.flatnonzero(right & ~was_right),
        _confidence(candidate),
    )


def _confidence(pred: Predictions) -> Array:
    if pred.scores is None:
        return np.full(len(pred), np.nan)
    classes = np.asarray(pred.classes)
    column = np.searchsorted(classes, pred.y_pred)
    return np.asarray(pred.scores[np.arange(len(pred)), column])


def top(rows: Array, weight: Array, count: int, *, largest: bool = True) -> Array:
    """The `count` rows of `rows` with the largest (or smallest) weight, in that order;
    ties and NaN weights keep row order."""
    keys = weight[rows]
    if count <= 0 or np.isnan(keys).all():  # none, or no probabilities: the first rows
        return rows[:count]
    keys = np.where(np.isnan(keys), -np.inf, keys) if largest else keys
    keys = -keys if largest else keys
    if count < len(rows):
        rows, keys = _partition(rows, keys, count)
    return np.asarray(rows[np.lexsort((rows, keys))][:count])


def _partition(rows: Array, keys: Array, count: int) -> tuple[Array, Array]:
    kept = np.argpartition(keys, count - 1)[:count]
    # argpartition may keep any of several rows tied at the edge: keep all of them.
    kept = np.flatnonzero(keys <= keys[kept].max())
    return rows[kept], keys[kept]


@dataclass(frozen=True)
class Pairing:
    """How the two files' rows were paired."""

    by_id: bool
    only_candidate: int = 0
    only_baseline: int = 0


def summarise(
    candidate: Predictions, baseline: Predictions, flips: Flips, pairing: Pairing, *, shown: int
) -> Flipped:
    """The counts, the test and the `shown` worst rows (and, for regression, best)."""
    broken, fixed = len(flips.broken), len(flips.fixed)
    test = mcnemar(broken, fixed) if flips.task == "classification" else None
    table = _Columns(candidate, baseline, flips)
    worst = top(flips.broken, flips.weight, shown)
    best = top(flips.fixed, flips.weight, shown, largest=False) if test is None else worst[:0]
    return Flipped(
        task=flips.task,
        rows=len(candidate),
        broken=broken,
        fixed=fixed,
        paired_by="id" if pairing.by_id else "row order",
        only_candidate=pairing.only_candidate,
        only_baseline=pairing.only_baseline,
        test=None if test is None else test.test,
        p_value=None if test is None else test.p_value,
        statistic=None if test is None else test.statistic,
        header=table.header(),
        worst=table.shown(worst),
        best=table.shown(best),
    )


@dataclass(frozen=True, eq=False)
class CsvTable:
    """flipped.csv: its header, and one array per column (text made safe, or numbers)."""

    header: tuple[str, ...]
    columns: tuple[Array, ...]


def csv_table(candidate: Predictions, baseline: Predictions, flips: Flips) -> CsvTable:
    """Every broken row, then every fixed one, in row order; text from the files made
    safe for spreadsheets (`csv_safe`). For regression, where nearly every row's error
    changes, the `REGRESSION_CSV_ROWS` whose error grew most, then shrank most."""
    broken, fixed = flips.broken, flips.fixed
    if flips.task == "regression":
        broken = top(broken, flips.weight, REGRESSION_CSV_ROWS)
        fixed = top(fixed, flips.weight, REGRESSION_CSV_ROWS, largest=False)
    rows = np.concatenate([broken, fixed])
    change = np.repeat(np.array(["broken", "fixed"]), [len(broken), len(fixed)])
    table = _Columns(candidate, baseline, flips)
    return CsvTable(("change", *table.header()), (change, *table.cells(rows, csv=True)))


@dataclass(frozen=True)
class _Columns:
    candidate: Predictions
    baseline: Predictions
    flips: Flips

    def header(self) -> tuple[str, ...]:
        key = "id" if self.candidate.ids is not None else "row"
        weight = "error change" if self.flips.task == "regression" else "confidence"
        return (key, "y_true", "candidate", "baseline", weight, *self.candidate.extra)

    def cells(self, rows: Array, *, csv: bool) -> list[Array]:
        c, b = self.candidate, self.baseline
        key = c.ids[rows] if c.ids is not None else rows + 1
        values = [key, c.y_true[rows], c.y_pred[rows], b.y_pred[rows]]
        values += [column[rows] for column in c.extra.values()]
        weight = self.flips.weight[rows]
        if csv:  # text from the files may start a formula; numbers (negative too) do not
            columns = [csv_safe(v) if v.dtype.kind in "UO" else v for v in values]
            unknown = np.isnan(weight).all()  # no probabilities: an empty column
            columns.insert(4, np.full(len(weight), "") if unknown else weight)
        else:
            columns = [v.astype(str) for v in values]
            task = self.flips.task
            columns.insert(4, np.array([_weight(w, task) for w in weight.tolist()], dtype=str))
        return columns

    def shown(self, rows: Array) -> tuple[tuple[str, ...], ...]:
        columns = self.cells(rows, csv=False)
        rows_of_cells = zip(*columns, strict=True)
        return tuple(tuple(visible_text(str(cell)) for cell in row) for row in rows_of_cells)


def _weight(value: float, task: Task) -> str:
    if math.isnan(value):
        return "—"
    text = format_number(value)
    return f"+{text}" if task == "regression" and value > 0 else text


def csv_safe(values: Array) -> Array:
    """Text cells a spreadsheet would run as a formula (=, +, -, @...) prefixed with '."""
    text = np.asarray(values, dtype=str)
    if not text.size:
        return text
    first = text.astype("U1")
    risky = np.isin(first, _CSV_TRIGGERS)
    return np.where(risky, np.char.add("'", text), text) if risky.any() else text


def visible_text(text: str, limit: int = MAX_CELL_CHARS) -> str:
    """A value from a file, fit for one table cell: control and bidirectional characters
    shown as U+FFFD, cut to `limit` characters with an ellipsis. Each format escapes it."""
    text = _HIDDEN.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
