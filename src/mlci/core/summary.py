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
- per model, its reliability diagram's rows (`Reliability`): the probability
  `core.curves.calibration` plots (two classes: the positive class's; more: the top
  label's, the first column on a tie) in `CONFIDENCE_BINS` fine bins, each inside one of
  the diagram's `DIAGRAM_BINS`; per fine bin the rows, those whose plotted class is the
  true one, and the sum of the probability;
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

from mlci.core.predictions import Array, FloatArray, IntArray, top_label

BINS = 1000  # score bins per class: AUC within 0.5 * sum(pos_b * neg_b) / (P * N)
DIAGRAM_BINS = 10  # a reliability diagram's bins, as core.curves.calibration's
CONFIDENCE_BINS = 1000  # its fine bins: DIAGRAM_BINS of them merge into one of its bins
# The diagram's inner bin edges as core.curves (and sklearn) take them: bin c holds
# (edge[c - 1], edge[c]]. np.linspace's 0.30000000000000004 is not 300 * 0.001.
DIAGRAM_EDGES = tuple(np.linspace(0.0, 1.0, DIAGRAM_BINS + 1)[1:-1].tolist())
GRID_CELLS = 1 << 21  # at most this many cells in the paired joint bins (k * 2 * grid²)
_COUNTED_CELLS = 1 << 20  # a joint table of at most this many cells is counted, not sorted
_EPS = float(np.finfo(np.float64).eps)
LOSS = "log_loss"
REGRESSION_COLUMNS = ("abs", "squared", "y", "y2", "ape")
_BASELINE = {"abs": "base_abs", "squared": "base_squared", "ape": "base_ape"}


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

    def only(self, name: str, renamed: str) -> Moments:
        """The moments of column `name` alone, named `renamed`."""
        at = self.index(name)
        return Moments((renamed,), self.rows, self.sums[[at]], self.products[[at]][:, [at]])

    def covariance(self) -> FloatArray:
        """The columns' sample covariance (ddof=1)."""
        means = self.means()
        centred = self.products / self.rows - np.outer(means, means)
        return np.asarray(centred * self.rows / max(self.rows - 1, 1), dtype=np.float64)

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True, eq=False)
class Reliability:
    """One model's reliability diagram, in fine bins of the probability it plots (two
    classes: the positive class's; more: the top label's): per bin, the rows, the rows
    whose plotted class is the true one, and the sum of the probability."""

    rows: IntArray  # (CONFIDENCE_BINS,)
    hits: IntArray
    sums: FloatArray

    @property
    def bins(self) -> int:
        return len(self.rows)

    def merge(self, other: Reliability) -> Reliability:
        _same("confidence bins", self.bins, other.bins)
        return Reliability(self.rows + other.rows, self.hits + other.hits, self.sums + other.sums)


@dataclass(frozen=True, eq=False)
class Histograms:
    """One model's class probabilities, binned: (k, bins) row counts per class, and its
    reliability diagram's fine bins."""

    positives: IntArray  # rows whose true class is c, by the bin of p_c
    negatives: IntArray  # the other rows, by the bin of p_c
    reliability: Reliability

    @property
    def bins(self) -> int:
        return int(self.positives.shape[1])

    def merge(self, other: Histograms) -> Histograms:
        _same("bins", self.positives.shape, other.positives.shape)
        return Histograms(
            self.positives + other.positives,
            self.negatives + other.negatives,
            self.reliability.merge(other.reliability),
        )


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

    def side(self, *, baseline: bool) -> ClassificationSummary:
        """One model's summary, taken from a paired one: what summarizing its rows alone
        gives (its classes those in y_true, its predictions or its probability columns)."""
        if not self.paired:
            return self
        k = len(self.classes)
        cells, counts = self.joint.cells, self.joint.counts
        true, model = cells // (k * k), (cells % k if baseline else cells // k % k)
        histograms = self.baseline if baseline else self.candidate
        keep = np.ones(k, dtype=bool)
        if histograms is None:  # classes named only by the other model's predictions go
            keep = np.bincount(np.concatenate([true, model]), minlength=k) > 0
        code = np.cumsum(keep) - 1
        size = int(keep.sum())
        found, inverse = np.unique(code[true] * size + code[model], return_inverse=True)
        summed = np.bincount(inverse.ravel(), weights=counts, minlength=len(found))
        table = Table(found.astype(np.int64), summed.astype(np.int64))
        moments = None
        if self.moments is not None:
            moments = self.moments.only(f"base_{LOSS}" if baseline else LOSS, LOSS)
        classes = tuple(label for label, kept in zip(self.classes, keep, strict=True) if kept)
        return ClassificationSummary(classes, table, False, histograms, None, None, 0, moments)


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

    def side(self, *, baseline: bool) -> RegressionSummary:
        """One model's summary, taken from a paired one."""
        if not self.paired:
            return self
        moments = self.moments
        names = [(_BASELINE.get(name, name) if baseline else name) for name in REGRESSION_COLUMNS]
        at = [moments.index(name) for name in names]
        kept = Moments(
            REGRESSION_COLUMNS, moments.rows, moments.sums[at], moments.products[at][:, at]
        )
        return RegressionSummary(kept, False)


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
    """min(floor(p * bins), bins - 1): equal-width bins over [0, 1]. The product in
    float64 whatever the scores' dtype, as the engines' SQL computes it (in float32, a
    probability just under an edge could round up into the next bin)."""
    binned = np.multiply(probability, bins, dtype=np.float64).astype(np.int64)
    return np.minimum(binned, bins - 1, out=binned)


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
    labels = [true, predicted] + ([] if baseline_predicted is None else [baseline_predicted])
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
        joint_table(labels, k),
        paired,
        None if scores is None else histograms(true, scores, bins),
        None if baseline_scores is None else histograms(true, baseline_scores, bins),
        joint_bins,
        grid,
        moments,
    )


def joint_table(labels: list[IntArray], k: int) -> Table:
    """The table of rows by their codes (0..k-1) in `labels`: cell = (l0*k + l1)*k + l2.
    Counted over the codes' own range (one bincount) when its cells are few, else sorted."""
    span = max(int(codes.max()) for codes in labels) + 1 if len(labels[0]) else 0
    if not span or span ** len(labels) > _COUNTED_CELLS:
        cells = labels[0]
        for codes in labels[1:]:
            cells = cells * k + codes
        return Table.of(cells)
    local = labels[0]
    for codes in labels[1:]:
        local = local * span + codes
    counts = np.bincount(local, minlength=span ** len(labels))
    found = np.flatnonzero(counts)
    cells, rest, scale = np.zeros_like(found), found, 1
    for _ in labels:  # the codes back from the local cell, last first: same order with k
        rest, digit = np.divmod(rest, span)
        cells += digit * scale
        scale *= k
    return Table(cells.astype(np.int64), counts[found].astype(np.int64))


def histograms(true: IntArray, scores: FloatArray, bins: int) -> Histograms:
    """Per class, the rows by the bin of that class's probability, positives apart: one
    bincount per class for all rows, one for every row's own class."""
    n, k = scores.shape
    found = reliability(true, scores)  # first: its temporaries and these never overlap
    everything = np.empty((k, bins), dtype=np.int64)
    for c in range(k):
        everything[c] = np.bincount(bin_of(scores[:, c], bins), minlength=bins)
    own = bin_of(scores[np.arange(n), true], bins)
    positives = np.bincount(true * bins + own, minlength=k * bins).reshape(k, bins)
    return Histograms(positives, everything - positives, found)


def reliability(true: IntArray, scores: FloatArray) -> Reliability:
    """The fine bins of the probability `core.curves.calibration` plots: two classes, the
    positive class's, a hit where it is the true class; more, the top label's (the first
    column on a tie), a hit where the top label is the true class. About 25
    bytes a row at the peak."""
    if scores.shape[1] == 2:
        plotted, hit = np.ascontiguousarray(scores[:, 1]), true == 1
    else:
        top, plotted = top_label(scores)
        hit = true == top
        del top
    fine = confidence_bin(plotted)
    return Reliability(
        np.bincount(fine, minlength=CONFIDENCE_BINS),
        np.bincount(fine[hit], minlength=CONFIDENCE_BINS),
        np.asarray(np.bincount(fine, weights=plotted, minlength=CONFIDENCE_BINS), np.float64),
    )


def confidence_bin(probability: FloatArray) -> IntArray:
    """The fine bin: ceil(p * CONFIDENCE_BINS) - 1 (right-closed, as sklearn's), kept
    inside the diagram bin `core.curves` puts p in, so the fine bins merge into exactly
    its bins where p * CONFIDENCE_BINS rounds across an edge (p = 0.30000000000000004)."""
    width = CONFIDENCE_BINS // DIAGRAM_BINS
    scaled = np.multiply(probability, CONFIDENCE_BINS, dtype=np.float64)
    fine = np.ceil(scaled, out=scaled).astype(np.int64)
    del scaled
    fine -= 1
    low = np.searchsorted(np.array(DIAGRAM_EDGES), probability)
    low *= width
    np.maximum(fine, low, out=fine)
    low += width - 1
    return np.minimum(fine, low, out=fine)


def _joint_bins(true: IntArray, scores: FloatArray, baseline: FloatArray, grid: int) -> Table:
    """Per class, the rows by (candidate's, baseline's) coarse bin, positives apart."""
    n, k = scores.shape
    cells = grid * grid
    everything = np.empty((k, cells), dtype=np.int64)
    for c in range(k):
        pairs = bin_of(scores[:, c], grid) * grid + bin_of(baseline[:, c], grid)
        everything[c] = np.bincount(pairs, minlength=cells)
    rows = np.arange(n)
    own = bin_of(scores[rows, true], grid) * grid + bin_of(baseline[rows, true], grid)
    positives = np.bincount(true * cells + own, minlength=k * cells).reshape(k, cells)
    counts = np.stack([everything - positives, positives], axis=1).ravel()
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
        names = (*names, *_BASELINE.values())
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
