"""Summaries of predictions that merge: what mlci computes metrics from when rows do not fit.

A summary holds counts and sums only, so the summary of two sets of rows is the sum of
their summaries (`merge`): a file read in record batches, or an engine's GROUP BY (DuckDB,
Spark), gives the same summary as all the rows at once. Every field is a plain array an
SQL query can produce:

- classes are coded 0..k-1 in sorted label order;
- the joint table of (true, candidate's label[, baseline's label]) as its non-empty cells
  and their counts: cell = true*k + candidate, paired (true*k + candidate)*k + baseline;
- per model and class c, the rows in `bins` equal-width bins of p_c over [0, 1]
  (bin = min(floor(p_c * bins), bins - 1)), counted separately for the rows whose true
  class is c (`positives`) and the others (`negatives`);
- paired, per class and side (positive or not), the rows in each pair of coarse bins
  (candidate's, baseline's) on a `grid` x `grid` grid: the AUCs' covariance;
- `Moments`: n, and the sums of a few per-row columns and of their pairwise products
  (log loss; regression errors and targets), for the means and their normal intervals.

`core.summary_stats` turns a summary into metrics and intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from mlci.core.predictions import Array, FloatArray, IntArray

BINS = 1000  # score bins per class: AUC within 0.5 * sum(pos_b * neg_b) / (P * N)
GRID_CELLS = 1 << 21  # at most this many cells in the paired joint bins (k * 2 * grid²)
_EPS = float(np.finfo(np.float64).eps)
LOSS = "log_loss"
REGRESSION_COLUMNS = ("abs", "squared", "y", "y2", "ape")


@dataclass(frozen=True, eq=False)
class Moments:
    """n, and per column of `names` its sum and the sums of its products with the others."""

    names: tuple[str, ...]
    rows: int
    sums: FloatArray  # (m,)
    products: FloatArray  # (m, m): sum over rows of column_i * column_j

    @classmethod
    def of(cls, names: tuple[str, ...], columns: FloatArray) -> Moments:
        """The moments of `columns`, shape (n, m), one column per name."""
        return cls(names, len(columns), columns.sum(axis=0), columns.T @ columns)

    def merge(self, other: Moments) -> Moments:
        _same("columns", self.names, other.names)
        rows, sums = self.rows + other.rows, self.sums + other.sums
        return Moments(self.names, rows, sums, self.products + other.products)

    def means(self) -> FloatArray:
        return self.sums / self.rows

    def covariance(self) -> FloatArray:
        """The columns' sample covariance (ddof=1)."""
        means = self.means()
        centred = self.products / self.rows - np.outer(means, means)
        return np.asarray(centred * self.rows / max(self.rows - 1, 1), dtype=np.float64)

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True, eq=False)
class Histograms:
    """One model's class probabilities, binned: (k, bins) row counts per class."""

    positives: IntArray  # rows whose true class is c, by the bin of p_c
    negatives: IntArray  # the other rows, by the bin of p_c

    @property
    def bins(self) -> int:
        return int(self.positives.shape[1])

    def merge(self, other: Histograms) -> Histograms:
        _same("bins", self.positives.shape, other.positives.shape)
        return Histograms(self.positives + other.positives, self.negatives + other.negatives)


@dataclass(frozen=True, eq=False)
class Table:
    """A sparse count table: its non-empty cells (sorted) and their counts."""

    cells: IntArray
    counts: IntArray

    @classmethod
    def of(cls, cells: IntArray) -> Table:
        found, counts = np.unique(cells, return_counts=True)
        return cls(found.astype(np.int64), counts.astype(np.int64))

    def merge(self, other: Table) -> Table:
        cells = np.concatenate([self.cells, other.cells])
        found, inverse = np.unique(cells, return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([self.counts, other.counts]))
        return Table(found.astype(np.int64), counts.astype(np.int64))

    def dense(self, size: int) -> IntArray:
        return np.bincount(self.cells, weights=self.counts, minlength=size).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ClassificationSummary:
    """Classification predictions (one model, or a candidate paired with a baseline)."""

    classes: tuple[object, ...]
    joint: Table  # cells true*k + candidate, or (true*k + candidate)*k + baseline (paired)
    paired: bool
    candidate: Histograms | None = None  # None: no probabilities
    baseline: Histograms | None = None
    joint_bins: Table | None = None  # ((c*2 + positive)*grid + candidate's)*grid + baseline's
    grid: int = 0
    moments: Moments | None = None  # log_loss [, base_log_loss]

    @property
    def rows(self) -> int:
        return int(self.joint.counts.sum())

    def merge(self, other: ClassificationSummary) -> ClassificationSummary:
        """The summary of both summaries' rows: counts and sums added."""
        _same("classes", self.classes, other.classes)
        _same("pairing", self.paired, other.paired)
        return ClassificationSummary(
            self.classes,
            self.joint.merge(other.joint),
            self.paired,
            _merged(self.candidate, other.candidate),
            _merged(self.baseline, other.baseline),
            _merged(self.joint_bins, other.joint_bins),
            self.grid,
            _merged(self.moments, other.moments),
        )


@dataclass(frozen=True, eq=False)
class RegressionSummary:
    """Regression predictions: moments of |e|, e², y, y², |e|/|y| (and the baseline's)."""

    moments: Moments
    paired: bool

    @property
    def rows(self) -> int:
        return self.moments.rows

    def merge(self, other: RegressionSummary) -> RegressionSummary:
        _same("pairing", self.paired, other.paired)
        return RegressionSummary(self.moments.merge(other.moments), self.paired)


Summary = ClassificationSummary | RegressionSummary


_Part = TypeVar("_Part", Histograms, Table, Moments)


def _merged(first: _Part | None, second: _Part | None) -> _Part | None:
    if first is None or second is None:
        _same("probabilities", first is None, second is None)
        return None
    return first.merge(second)


def _same(what: str, first: object, second: object) -> None:
    if first != second:
        raise ValueError(f"cannot merge summaries with different {what}: {first} and {second}")


# -- Building a summary from one batch of rows --------------------------------------------


def grid_for(classes: int) -> int:
    """The coarse grid of the paired joint bins: at most `GRID_CELLS` cells, at most 100."""
    return max(2, min(100, math.isqrt(GRID_CELLS // (2 * max(classes, 1)))))


def bin_of(probability: FloatArray, bins: int) -> IntArray:
    """min(floor(p * bins), bins - 1): equal-width bins over [0, 1]."""
    return np.minimum((probability * bins).astype(np.int64), bins - 1)


def summarize_classification(
    classes: tuple[object, ...],
    true: IntArray,
    predicted: IntArray,
    scores: FloatArray | None,
    *,
    baseline_predicted: IntArray | None = None,
    baseline_scores: FloatArray | None = None,
    bins: int = BINS,
    grid: int | None = None,
) -> ClassificationSummary:
    """The summary of rows given as class codes (0..k-1, `classes` order) and (n, k)
    probabilities: one record batch, or all the rows. `grid`: of the paired joint bins,
    by default `grid_for(k)`."""
    k = len(classes)
    paired = baseline_predicted is not None
    cells = true * k + predicted
    if baseline_predicted is not None:
        cells = cells * k + baseline_predicted
    grid = (grid or grid_for(k)) if paired else 0
    joint_bins = None
    if paired and scores is not None and baseline_scores is not None:
        joint_bins = _joint_bins(true, scores, baseline_scores, grid)
    losses = [column for column in (scores, baseline_scores) if column is not None]
    moments = None
    if scores is not None and (not paired or baseline_scores is not None):
        names = (LOSS, f"base_{LOSS}")[: len(losses)]
        moments = Moments.of(names, np.column_stack([_losses(true, s) for s in losses]))
    return ClassificationSummary(
        classes,
        Table.of(cells),
        paired,
        None if scores is None else histograms(true, scores, bins),
        None if baseline_scores is None else histograms(true, baseline_scores, bins),
        joint_bins,
        grid,
        moments,
    )


def histograms(true: IntArray, scores: FloatArray, bins: int) -> Histograms:
    """Per class, the rows by the bin of that class's probability, positives apart."""
    k = scores.shape[1]
    positives = np.zeros((k, bins), dtype=np.int64)
    negatives = np.zeros((k, bins), dtype=np.int64)
    for c in range(k):
        binned = bin_of(scores[:, c], bins)
        everything = np.bincount(binned, minlength=bins)
        positives[c] = np.bincount(binned[true == c], minlength=bins)
        negatives[c] = everything - positives[c]
    return Histograms(positives, negatives)


def _joint_bins(true: IntArray, scores: FloatArray, baseline: FloatArray, grid: int) -> Table:
    k = scores.shape[1]
    size = k * 2 * grid * grid
    counts = np.zeros(size, dtype=np.int64)
    for c in range(k):
        side = (c * 2 + (true == c)) * grid
        cells = (side + bin_of(scores[:, c], grid)) * grid + bin_of(baseline[:, c], grid)
        counts += np.bincount(cells, minlength=size)
    found = np.flatnonzero(counts)
    return Table(found.astype(np.int64), counts[found])


def _losses(true: IntArray, scores: FloatArray) -> FloatArray:
    chosen = scores[np.arange(len(true)), true]
    return np.asarray(-np.log(np.clip(chosen, _EPS, 1 - _EPS)), dtype=np.float64)


def summarize_regression(
    y_true: FloatArray, y_pred: FloatArray, baseline_pred: FloatArray | None = None
) -> RegressionSummary:
    """The summary of regression rows (one batch, or all)."""
    columns = _regression_columns(y_true, y_pred)
    names: tuple[str, ...] = REGRESSION_COLUMNS
    if baseline_pred is not None:
        base = _regression_columns(y_true, baseline_pred)
        columns = np.column_stack([columns, base[:, [0, 1, 4]]])
        names = (*names, "base_abs", "base_squared", "base_ape")
    return RegressionSummary(Moments.of(names, columns), baseline_pred is not None)


def _regression_columns(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    errors = y_true - y_pred
    absolute = np.abs(errors)
    ape = absolute / np.maximum(np.abs(y_true), _EPS)
    return np.column_stack([absolute, errors**2, y_true, y_true**2, ape])


def codes(values: Array, classes: Array) -> IntArray:
    """Each label's index in the sorted `classes`; ValueError for a label not among them."""
    position = np.minimum(np.searchsorted(classes, values), len(classes) - 1)
    unknown = classes[position] != values
    if unknown.any():
        raise ValueError(f"label {values[np.argmax(unknown)].item()!r} is not one of the classes")
    return position.astype(np.int64)
