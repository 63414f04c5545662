"""Metrics computed from predictions, their confidence intervals, and paired differences.

Point values follow scikit-learn's definitions (the tests compare them with sklearn):

- Classification, from the labels: `accuracy`, `balanced_accuracy`, `precision_*`,
  `recall_*`, `f1_*` averaged `macro`, `micro` and `weighted`, and per class
  `precision.<label>`, `recall.<label>`, `f1.<label>` (`<label>` is `str(label)`: `f1.3`,
  `f1.cat`). As in sklearn without `labels=`, the classes are those in y_true or y_pred;
  a class that only has a probability column counts nowhere. Where a ratio is 0/0 (a class
  never predicted has no precision) the value is 0.0, sklearn's `zero_division=0` and the
  value its default "warn" returns. `balanced_accuracy` averages recall over the classes
  present in y_true, as sklearn does.
- Classification, from the probabilities (`scores`): `log_loss` (probabilities clipped to
  [eps, 1 - eps] with eps the float64 machine epsilon, not renormalised, as sklearn 1.9
  does) and `roc_auc`: for two classes the AUC of the larger label; for more, the
  one-vs-rest macro average over the classes present in y_true (sklearn returns NaN with a
  warning when a class with a probability column is absent from y_true). No `roc_auc`
  when y_true holds a single class.
- Regression: `mae`, `rmse`, `r2` (1.0 for a perfect fit of a constant y_true, else 0.0
  there, sklearn's `force_finite`), `mape` (|error| / max(|y_true|, eps)).

Intervals, per metric:

- Count-based classification metrics depend on the rows only through the count table of
  (true label, predicted label), or for a paired difference of (true label, candidate's
  label, baseline's label): `CountTable`, its non-empty cells only, which batches of rows
  can sum (`count_intervals` is the entry point for a table). Up to `BOOTSTRAP_MAX_CELLS`
  non-empty cells and `BOOTSTRAP_MAX_TABLE_ROWS` rows, a percentile bootstrap
  (`"bootstrap"`): a resample is a multinomial draw of n rows over the table's cells,
  which has the same distribution as resampling the rows and costs nothing per row, and
  only each class's true positives, rows and predicted rows are summed from it. Macro
  averages count, in each resample, the classes present in that resample, as sklearn
  would on those rows. Above (many classes on many rows, a paired 10-class table has at
  most 1,000 cells; or so many rows that the two intervals agree and only the redraws'
  cost differs), a normal interval with the delta method's variance (`"normal (influence
  function)"`): each metric is a smooth function of the per-class counts, so a row's
  influence depends only on its cell and the variance is a sum over the cells; the
  classes averaged are those of the whole table. Both correct
  for the plug-in bias, estimated to second order from the counts (`_count_biases`):
  small per class, it adds up over a thousand classes to about a standard error of a
  macro or weighted average. The normal interval is centred on the value less the bias;
  the percentile interval, whose resamples centre on the value plus the bias, moves by
  twice the bias. In simulation (benchmarks/coverage.py, docs/gate.md has the table)
  both hold the true value 94-96% of the time with 10 and with 100 classes, and the
  influence function's with 1,000.
- `log_loss`, `mae`, `mape`, `rmse` and `r2`, smooth functions of per-row means: up to
  `BOOTSTRAP_MAX_ROWS` rows, a percentile bootstrap of resampled rows (`"bootstrap"`);
  above, a normal interval by the delta method (`"normal"`): value ± z·sd(ψ)/√n with ψ each
  row's linearised contribution (for rmse, of the squared error; for r2, of the squared
  error, y and y²). Paired: the same resampled rows for both models, or the per-row
  difference of the two contributions.
- `roc_auc`: DeLong's method (`"delong"`), a normal interval with DeLong's variance, and
  for a difference DeLong's paired covariance. One-vs-rest macro AUC averages each row's
  DeLong contribution over the classes and takes the variance within each true class, the
  same estimator generalised (binary AUC is its two-class case).

Normal intervals are clipped to the metric's range. Bootstrap draws come from
`numpy.random.default_rng((seed, stream))`: the same inputs and seed give the same intervals.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from mlci.core.intervals import Interval

# Re-exported: callers outside core (plots, figures, predictions, pipeline) import them here.
from mlci.core.predictions import Array as Array
from mlci.core.predictions import FloatArray as FloatArray
from mlci.core.predictions import IntArray as IntArray
from mlci.core.predictions import Predictions as Predictions
from mlci.core.predictions import take
from mlci.core.ranking import (
    Places,
    Ranking,
    ranking_and_rows,
    remember_area,
    sorts_ahead,
)

Task = Literal["classification", "regression"]
# The interval of a count-based metric: see count_intervals.
CountMethod = Literal["bootstrap", "normal (influence function)"]
INFLUENCE: Literal["normal (influence function)"] = "normal (influence function)"

# Below this many rows, means are bootstrapped; above, the normal approximation is good.
BOOTSTRAP_MAX_ROWS = 5_000
# Up to this many non-empty cells in a count table, its metrics are bootstrapped (a paired
# 10-class table has at most 1,000 cells); above, the influence function's normal interval.
BOOTSTRAP_MAX_CELLS = 10_000
# Up to this many rows too: above, the normal interval holds as well as the bootstrap (the
# coverage simulation) and costs nothing, where 2,000 redraws of 1,000 cells take 0.3 s.
BOOTSTRAP_MAX_TABLE_ROWS = 200_000
# Classes mlci computes metrics for (ImageNet's 1,000): the report's per-class tables and
# figures are cut to the classes that matter, but every class still has its metrics.
MAX_CLASSES = 1_000
_CHUNK_ELEMENTS = 1 << 22  # about 32 MiB per temporary array while resampling
_EPS = float(np.finfo(np.float64).eps)
_COUNTS_STREAM = 0
_ROWS_STREAM = 1
_INF = math.inf


@dataclass(frozen=True)
class _Smooth:
    """A metric that is a smooth function of the means of per-row columns."""

    value: float
    columns: FloatArray  # (n, m)
    statistic: Callable[[FloatArray], FloatArray]  # column means (..., m) -> metric (...)
    gradient: Callable[[FloatArray], FloatArray]  # column means (m,) -> (m,)
    bounds: tuple[float, float]

    def influence(self) -> FloatArray:
        means = self.columns.mean(axis=0)
        return np.asarray((self.columns - means) @ self.gradient(means), dtype=np.float64)


@dataclass(frozen=True)
class _Linear:
    """An estimate with each row's contribution to its variance, taken within strata."""

    value: float
    influence: FloatArray
    strata: IntArray


@dataclass(frozen=True)
class _Encoded:
    """y_true and y_pred as indices into the sorted `classes`."""

    classes: Array
    true: IntArray
    pred: IntArray

    @property
    def k(self) -> int:
        return len(self.classes)

    def confusion(self) -> IntArray:
        k = self.k
        return np.bincount(self.true * k + self.pred, minlength=k * k).reshape(k, k)


# -- Public API --------------------------------------------------------------------------


def confusion_matrix(y_true: Array, y_pred: Array, classes: Any) -> IntArray:
    """(k, k) counts of (true, predicted) pairs; rows are true labels, in `classes` order."""
    labels = np.asarray(classes)
    k = len(labels)
    true = _codes(np.asarray(y_true), labels)
    pred = _codes(np.asarray(y_pred), labels)
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def compute_metrics(pred: Predictions, task: Task) -> dict[str, float]:
    """Every metric for `task`, computed as scikit-learn does (see the module docstring)."""
    _check_task(task)
    if task == "regression":
        return {name: smooth.value for name, smooth in _regression(pred).items()}
    encoded = _encode(pred, _classes(pred))
    confusion = encoded.confusion().astype(np.float64)
    counts = _confusion_metrics(confusion[None], _per_class(confusion, encoded.classes))
    metrics = {name: float(values[0]) for name, values in counts.items()}
    auc = _roc_auc(pred)
    if auc is not None:
        metrics["roc_auc"] = auc.value
    loss = _log_loss(pred)
    if loss is not None:
        metrics["log_loss"] = loss.value
    return metrics


def metric_intervals(
    pred: Predictions,
    task: Task,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Interval]:
    """A `confidence` interval for each metric `compute_metrics` returns."""
    _check_options(task, confidence, resamples)
    if task == "regression":
        smooth = {name: (value, None) for name, value in _regression(pred).items()}
        return _smooth_intervals(smooth, len(pred), confidence, resamples, seed)
    intervals = _count_intervals(pred, confidence, resamples, seed)
    auc = _roc_auc(pred)
    if auc is not None:
        intervals["roc_auc"] = _delong(auc, confidence, bounds=(0.0, 1.0))
    loss = _log_loss(pred)
    if loss is not None:
        intervals.update(
            _smooth_intervals({"log_loss": (loss, None)}, len(pred), confidence, resamples, seed)
        )
    return intervals


def paired_difference_intervals(
    candidate: Predictions,
    baseline: Predictions,
    task: Task,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Interval]:
    """Intervals of (candidate metric - baseline metric), both measured on the same rows.

    The two must be aligned (`mlci.predictions.align`). Only metrics both models have get
    an interval: per-class metrics of a class one model never saw nor predicted, and the
    probability metrics of a model without scores, are left out.
    """
    _check_options(task, confidence, resamples)
    _check_paired(candidate, baseline)
    if task == "regression":
        base = _regression(baseline)
        pairs = {name: (value, base[name]) for name, value in _regression(candidate).items()}
        return _smooth_intervals(pairs, len(candidate), confidence, resamples, seed)
    intervals = _paired_count_intervals(candidate, baseline, confidence, resamples, seed)
    auc, base_auc = _roc_auc(candidate), _roc_auc(baseline)
    if auc is not None and base_auc is not None:
        difference = _Linear(
            auc.value - base_auc.value, auc.influence - base_auc.influence, auc.strata
        )
        intervals["roc_auc"] = _delong(difference, confidence, bounds=(-1.0, 1.0))
    loss, base_loss = _log_loss(candidate), _log_loss(baseline)
    if loss is not None and base_loss is not None:
        pair = {"log_loss": (loss, base_loss)}
        intervals.update(_smooth_intervals(pair, len(candidate), confidence, resamples, seed))
    return intervals


# -- Checks and label encoding -----------------------------------------------------------


def _check_task(task: str) -> None:
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")


def _check_options(task: str, confidence: float, resamples: int) -> None:
    _check_task(task)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), not {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")


def _check_paired(candidate: Predictions, baseline: Predictions) -> None:
    first, second = candidate.y_true, baseline.y_true
    same = len(first) == len(second) and first.dtype.kind == second.dtype.kind
    if same and first.dtype.kind == "f":  # align accepts y_true rounded differently
        same = bool(np.allclose(first, second, rtol=1e-6, atol=1e-12))
    elif same:
        same = bool(np.array_equal(first, second))
    if not same:
        raise ValueError(
            "the candidate's and the baseline's predictions are not on the same rows; "
            "pair them with mlci.predictions.align first"
        )


def _classes(pred: Predictions) -> Array:
    if pred.classes:
        return np.asarray(pred.classes)
    return np.union1d(np.unique(pred.y_true), np.unique(pred.y_pred))


def _encode(pred: Predictions, classes: Array) -> _Encoded:
    return _Encoded(classes, _codes(pred.y_true, classes), _codes(pred.y_pred, classes))


def _codes(values: Array, classes: Array) -> IntArray:
    """Each value's index in `classes`; a lookup table for small integers, else a search.
    Kept while `values` lives, read-only: a gate asks for the codes of the same labels
    (each model's y_true and y_pred) 18 times, 10 ms each at a million rows."""
    key = id(values)
    known = _CODED.get(key)
    if known is not None and known[0]() is values and np.array_equal(known[1], classes):
        return known[2]
    codes = _coded(values, classes)
    codes.flags.writeable = False
    try:
        forget = weakref.ref(values, lambda _: _CODED.pop(key, None))
    except TypeError:  # an array type without weak references: not kept
        return codes
    _CODED[key] = (forget, classes.copy(), codes)
    return codes


# _codes' results by the id of the labels they encode: (a weak reference to the labels,
# which drops the entry when they go, the classes, the codes).
_CODED: dict[int, tuple[weakref.ref[Array], Array, IntArray]] = {}


def _coded(values: Array, classes: Array) -> IntArray:
    if values.dtype.kind in "iu" and classes.dtype.kind in "iu" and len(values):
        codes = _small_int_codes(values, classes)
        if codes is not None:
            return codes
    order = np.argsort(classes, kind="stable")
    position = np.searchsorted(classes, values, sorter=order)
    position = np.minimum(position, len(classes) - 1)
    codes = order[position].astype(np.int64)
    unknown = classes[codes] != values
    if unknown.any():
        raise ValueError(f"label {values[np.argmax(unknown)].item()!r} is not one of the classes")
    return codes


def _small_int_codes(values: Array, classes: Array) -> IntArray | None:
    low = min(int(values.min()), int(classes.min()))
    high = max(int(values.max()), int(classes.max()))
    if high - low > 1 << 20:
        return None
    table = np.full(high - low + 1, -1, dtype=np.int64)
    table[classes.astype(np.int64) - low] = np.arange(len(classes))
    codes = table[values.astype(np.int64) - low]
    if (codes < 0).any():
        raise ValueError(f"label {values[np.argmax(codes < 0)].item()!r} is not one of the classes")
    return codes


def _per_class(confusion: FloatArray | IntArray, classes: Array) -> list[tuple[int, str]]:
    """(index, name) of the classes sklearn reports: those in y_true or y_pred."""
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    return [(int(index), str(classes[index])) for index in np.flatnonzero(present)]


# -- Count-based classification metrics --------------------------------------------------


@dataclass(frozen=True)
class CountTable:
    """Rows counted by (true label, predicted label), or for a paired comparison by (true
    label, candidate's label, baseline's label): the table's non-empty cells only, each
    label an index into `classes`. Every count-based metric, and its interval, depends on
    the rows only through this table, so it can be summed over batches of rows."""

    classes: Array
    true: IntArray
    pred: IntArray
    counts: IntArray
    base: IntArray | None = None  # the baseline's label, in a paired table

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def rows(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True)
class _ClassCounts:
    """Per class: true positives, rows of the class (support), rows predicted as the class.
    Arrays of shape (k,) for one table, (b, k) for b tables."""

    tp: FloatArray
    true: FloatArray
    predicted: FloatArray


@dataclass(frozen=True)
class _Gradient:
    """A count metric's partial derivatives by each class's counts (`_ClassCounts`' order);
    for a per-class metric, each class's by its own counts."""

    tp: FloatArray
    true: FloatArray
    predicted: FloatArray

    def at(self, true: IntArray, pred: IntArray) -> FloatArray:
        """The derivative along one row of each cell (true, pred): Σ ∂metric/∂count."""
        right = np.where(true == pred, self.tp[true], 0.0)
        return np.asarray(self.true[true] + self.predicted[pred] + right, dtype=np.float64)


def count_table(
    classes: Array, true: IntArray, pred: IntArray, base: IntArray | None = None
) -> CountTable:
    """The table of rows whose labels, as indices into `classes`, are `true`, `pred` and,
    for a paired table, `base` (the baseline's)."""
    k = len(classes)
    keys = true.astype(np.int64) * k + pred
    if base is not None:
        keys = keys * k + base
    cells, counts = _cell_counts(keys, k**2 if base is None else k**3)
    return table_of_cells(classes, cells, counts, paired=base is not None)


def count_intervals(
    table: CountTable,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    method: CountMethod | None = None,
) -> dict[str, Interval]:
    """An interval for every count-based metric of `table` (of a paired table: of the
    candidate's metric minus the baseline's). Its cells may repeat: they are added up.

    `method` None is the percentile bootstrap up to `BOOTSTRAP_MAX_CELLS` non-empty cells
    and `BOOTSTRAP_MAX_TABLE_ROWS` rows, and above either, the normal interval with the
    influence function's variance (`INFLUENCE`).
    """
    table = _merged(table)
    if method is None:
        small = len(table.counts) <= BOOTSTRAP_MAX_CELLS
        method = "bootstrap" if small and table.rows <= BOOTSTRAP_MAX_TABLE_ROWS else INFLUENCE
    ours = _table_classes(table, table.pred)
    theirs = None if table.base is None else _table_classes(table, table.base)
    biases = _table_biases(table, ours, theirs)
    if method == "bootstrap":
        samples = _table_bootstrap(table, ours, theirs, resamples, seed)
        return _bias_corrected(_percentiles(samples, confidence), biases, _bounds(table))
    return _influence_intervals(table, ours, theirs, biases, confidence)


def _merged(table: CountTable) -> CountTable:
    """One cell per combination of labels, in the order of (true, pred, base): the
    bootstrap's draws depend on the cells' order."""
    k = table.k
    keys = table.true.astype(np.int64) * k + table.pred
    if table.base is not None:
        keys = keys * k + table.base
    if bool((np.diff(keys) > 0).all()):
        return table
    cells, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, weights=table.counts, minlength=len(cells)).astype(np.int64)
    return table_of_cells(table.classes, cells, counts, paired=table.base is not None)


def table_of_cells(
    classes: Array, cells: IntArray, counts: IntArray, *, paired: bool
) -> CountTable:
    """The CountTable of encoded cells: true * k + pred, or (true * k + candidate) * k + base."""
    k = len(classes)
    if not paired:
        return CountTable(classes, cells // k, cells % k, counts)
    return CountTable(classes, cells // (k * k), (cells // k) % k, counts, cells % k)


def _table_classes(table: CountTable, pred: IntArray) -> list[tuple[int, str]]:
    """(index, name) of the classes sklearn reports for one model: in y_true or its y_pred."""
    counts = _class_counts(table, pred)
    present = (counts.true + counts.predicted) > 0
    return [(int(index), str(table.classes[index])) for index in np.flatnonzero(present)]


def _class_counts(table: CountTable, pred: IntArray) -> _ClassCounts:
    """One model's per-class counts (`pred`: its label in each cell)."""
    k, weights = table.k, table.counts.astype(np.float64)
    right = table.true == pred
    return _ClassCounts(
        _sums(table.true[right], weights[right], k),
        _sums(table.true, weights, k),
        _sums(pred, weights, k),
    )


def _sums(labels: IntArray, weights: FloatArray, k: int) -> FloatArray:
    return np.asarray(np.bincount(labels, weights=weights, minlength=k), dtype=np.float64)


def _confusion_metrics(
    confusion: FloatArray, per_class: list[tuple[int, str]]
) -> dict[str, FloatArray]:
    """Every count-based metric of each (k, k) table of `confusion`, shape (b, k, k)."""
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    counts = _ClassCounts(tp, confusion.sum(axis=2), confusion.sum(axis=1))
    return _count_metrics(counts, per_class)


def _count_metrics(counts: _ClassCounts, per_class: list[tuple[int, str]]) -> dict[str, FloatArray]:
    """Every count-based metric of each table, from its per-class counts, shape (b, k)."""
    tp, true, predicted = counts.tp, counts.true, counts.predicted
    total = true.sum(axis=1)
    present = (true + predicted) > 0
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, true)
    f1 = _ratio(2 * tp, true + predicted)
    accuracy = tp.sum(axis=1) / total
    metrics = {"accuracy": accuracy, "balanced_accuracy": _mean_where(recall, true > 0)}
    by_name = {"precision": precision, "recall": recall, "f1": f1}
    for name, values in by_name.items():
        metrics[f"{name}_macro"] = _mean_where(values, present)
    for name in by_name:
        metrics[f"{name}_micro"] = accuracy  # every class counted: sum(tp) / n
    for name, values in by_name.items():
        metrics[f"{name}_weighted"] = (values * true).sum(axis=1) / total
    for name, values in by_name.items():
        for index, label in per_class:
            metrics[f"{name}.{label}"] = values[:, index]
    return metrics


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """numerator / denominator, 0.0 where the denominator is 0 (sklearn's zero_division=0)."""
    out = np.zeros_like(numerator, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _mean_where(values: FloatArray, mask: Array) -> FloatArray:
    return np.asarray((values * mask).sum(axis=1) / mask.sum(axis=1), dtype=np.float64)


def _count_intervals(
    pred: Predictions, confidence: float, resamples: int, seed: int
) -> dict[str, Interval]:
    encoded = _encode(pred, _classes(pred))
    table = count_table(encoded.classes, encoded.true, encoded.pred)
    return count_intervals(table, confidence=confidence, resamples=resamples, seed=seed)


def _paired_count_intervals(
    candidate: Predictions, baseline: Predictions, confidence: float, resamples: int, seed: int
) -> dict[str, Interval]:
    classes = np.union1d(_classes(candidate), _classes(baseline))
    cand, base = _encode(candidate, classes), _encode(baseline, classes)
    table = count_table(classes, cand.true, cand.pred, base.pred)
    return count_intervals(table, confidence=confidence, resamples=resamples, seed=seed)


# -- The bootstrap of a count table ------------------------------------------------------


def _table_bootstrap(
    table: CountTable,
    ours: list[tuple[int, str]],
    theirs: list[tuple[int, str]] | None,
    resamples: int,
    seed: int,
) -> dict[str, FloatArray]:
    """Every metric (or paired difference) of each resampled table. Each model's cells are
    summed into its own non-empty (true, predicted) pairs, and those into each class's
    counts: 3k numbers per model and resample, never a k x k table."""
    first = _Pairs.of(table.true, table.pred, table.k)
    second = None if table.base is None else _Pairs.of(table.true, table.base, table.k)

    def metrics(draws: IntArray) -> dict[str, FloatArray]:
        mine = _count_metrics(first.counts(draws), ours)
        if second is None or theirs is None:
            return mine
        other = _count_metrics(second.counts(draws), theirs)
        return {name: mine[name] - other[name] for name in mine if name in other}

    return _resample_table(table.counts, metrics, width=3 * table.k, resamples=resamples, seed=seed)


@dataclass(frozen=True)
class _Pairs:
    """One model's non-empty (true, predicted) pairs, and each cell's pair."""

    true: IntArray
    pred: IntArray
    of_cell: IntArray
    k: int

    @classmethod
    def of(cls, true: IntArray, pred: IntArray, k: int) -> _Pairs:
        pairs, of_cell = np.unique(true * k + pred, return_inverse=True)
        return cls(pairs // k, pairs % k, of_cell, k)

    def counts(self, draws: IntArray) -> _ClassCounts:
        """Each resample's per-class counts from its cell counts (b, cells)."""
        summed = _scatter(draws, self.of_cell, len(self.true))
        right = self.true == self.pred
        return _ClassCounts(
            _scatter(summed[:, right], self.true[right], self.k),
            _scatter(summed, self.true, self.k),
            _scatter(summed, self.pred, self.k),
        )


def _resample_table(
    counts: IntArray,
    metrics: Callable[[IntArray], dict[str, FloatArray]],
    *,
    width: int,
    resamples: int,
    seed: int,
) -> dict[str, FloatArray]:
    """Bootstrap samples of `metrics`, from multinomial redraws of a table's cell `counts`.

    Drawing n rows with replacement and counting them per cell is a multinomial draw with
    the cells' frequencies, so only the non-empty cells are drawn, all resamples at once
    (in chunks that bound the memory).
    """
    rng = np.random.default_rng((seed, _COUNTS_STREAM))
    rows = int(counts.sum())
    frequencies = counts / rows
    chunk = max(1, _CHUNK_ELEMENTS // max(len(counts), width))
    parts: dict[str, list[FloatArray]] = {}
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        draws = rng.multinomial(rows, frequencies, size=size)
        for name, values in metrics(draws).items():
            parts.setdefault(name, []).append(values)
        done += size
    return {name: np.concatenate(values) for name, values in parts.items()}


def _scatter(draws: IntArray | FloatArray, targets: IntArray, width: int) -> FloatArray:
    """Sum each resample's cell counts into `width` target cells: (b, cells) -> (b, width)."""
    size = draws.shape[0]
    flat = (np.arange(size)[:, None] * width + targets[None, :]).ravel()
    summed = np.bincount(flat, weights=draws.ravel(), minlength=size * width)
    return np.asarray(summed.reshape(size, width), dtype=np.float64)


# -- The influence function of a count table ---------------------------------------------


def _influence_intervals(
    table: CountTable,
    ours: list[tuple[int, str]],
    theirs: list[tuple[int, str]] | None,
    biases: Mapping[str, float],
    confidence: float,
) -> dict[str, Interval]:
    """Normal intervals with the delta method's variance (`_influence_spreads`), centred
    on the value less its plug-in bias."""
    values, spreads = _influence_spreads(table, ours, theirs)
    bounds = _bounds(table)
    return {
        name: _normal(values[name] - biases[name], spread, confidence, bounds, INFLUENCE)
        for name, spread in spreads.items()
    }


def _bias_corrected(
    intervals: dict[str, Interval], biases: Mapping[str, float], bounds: tuple[float, float]
) -> dict[str, Interval]:
    """Percentile intervals moved by twice the bias: the resamples' metrics centre on the
    value plus the bias, as the value centres on the truth plus the bias."""
    low, high = bounds
    return {
        name: replace(
            interval,
            low=min(max(interval.low - 2 * biases[name], low), high),
            high=max(min(interval.high - 2 * biases[name], high), low),
        )
        for name, interval in intervals.items()
    }


def _bounds(table: CountTable) -> tuple[float, float]:
    """The range of a metric of the table, or of a paired table's difference."""
    return (0.0, 1.0) if table.base is None else (-1.0, 1.0)


def _table_biases(
    table: CountTable, ours: list[tuple[int, str]], theirs: list[tuple[int, str]] | None
) -> dict[str, float]:
    """Each metric's plug-in bias (`_count_biases`); of a paired table, of the difference.
    Summed over a thousand classes, a macro or weighted average's is a standard error."""
    biases = _count_biases(_class_counts(table, table.pred), ours)
    if table.base is None or theirs is None:
        return biases
    other = _count_biases(_class_counts(table, table.base), theirs)
    return {name: bias - other[name] for name, bias in biases.items() if name in other}


def _count_biases(counts: _ClassCounts, per_class: list[tuple[int, str]]) -> dict[str, float]:
    """Each count metric's plug-in bias to second order, E[metric] - metric ≈ ½ Σ_cells
    n_c·∂²metric/∂n_c² over the cells' counts n_c (the multinomial covariance's other part,
    -n·p·pᵀ, adds nothing: a metric does not change when every count grows alike).

    Per class, with tp its true positives, t its support, p its predicted rows and
    s = t + p: precision tp/p and recall tp/t are unbiased at this order, F1 = 2tp/s is
    biased by -2tp(s - 2tp)/s³. A weighted average Σ metricᵢ·tᵢ/n also moves with the
    supports it weights by: it adds Σ (p - tp)·tp/p² / n (precision) and
    Σ (p - tp)·F1/s / n (F1). Accuracy, and so every micro average, is unbiased.
    """
    tp, true, predicted = counts.tp, counts.true, counts.predicted
    rows, claimed, both = float(true.sum()), predicted - tp, true + predicted
    f1 = _ratio(2 * tp, both)
    own = {
        "precision": np.zeros_like(tp),
        "recall": np.zeros_like(tp),
        "f1": -_ratio(2 * tp * (both - 2 * tp), both**3),
    }
    supports = {
        "precision": _ratio(claimed * tp, predicted**2),
        "recall": np.zeros_like(tp),
        "f1": _ratio(claimed * f1, both),
    }
    biases = {"accuracy": 0.0, "balanced_accuracy": 0.0}  # recall: unbiased
    for name, values in own.items():
        biases[f"{name}_macro"] = float(_mean_where(values[None], (both > 0)[None])[0])
    for name in own:
        biases[f"{name}_micro"] = 0.0
    for name, values in own.items():
        biases[f"{name}_weighted"] = float((values * true + supports[name]).sum()) / rows
    for name, values in own.items():
        for index, label in per_class:
            biases[f"{name}.{label}"] = float(values[index])
    return biases


def _influence_spreads(
    table: CountTable, ours: list[tuple[int, str]], theirs: list[tuple[int, str]] | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Each metric's value (of a paired table: the difference) and standard error. Each
    metric is a smooth function of the per-class counts, so a row's influence on it
    depends only on the row's cell: the variance is a sum over the non-empty cells, not
    over rows or resamples."""
    first = _class_counts(table, table.pred)
    values = _values(first, ours)
    gradients = _count_gradients(first, ours)
    other: dict[str, _Gradient] = {}
    if table.base is not None and theirs is not None:
        counts = _class_counts(table, table.base)
        second = _values(counts, theirs)
        values = {name: value - second[name] for name, value in values.items() if name in second}
        other = _count_gradients(counts, theirs)
    base = table.pred if table.base is None else table.base
    spreads = {}
    for name, gradient in gradients.items():
        if name.endswith("."):
            family = _per_class_spread(table, base, gradient, other.get(name))
            for index, label in ours:
                spreads[f"{name}{label}"] = float(family[index])
        elif table.base is None or name in other:
            spreads[name] = _spread(table, base, gradient, other.get(name))
    return values, {name: spread for name, spread in spreads.items() if name in values}


def _values(counts: _ClassCounts, per_class: list[tuple[int, str]]) -> dict[str, float]:
    one = _ClassCounts(counts.tp[None], counts.true[None], counts.predicted[None])
    return {name: float(values[0]) for name, values in _count_metrics(one, per_class).items()}


def _count_gradients(
    counts: _ClassCounts, per_class: list[tuple[int, str]]
) -> dict[str, _Gradient]:
    """Each metric's gradient by the counts, named as `_count_metrics` names them; the
    per-class metrics as one family each ("precision."), every class by its own counts."""
    tp, true, predicted = counts.tp, counts.true, counts.predicted
    rows = float(true.sum())
    zero, one = np.zeros_like(tp), np.ones_like(tp)
    precision, recall = _ratio(tp, predicted), _ratio(tp, true)
    f1 = _ratio(2 * tp, true + predicted)
    f1_slope = -_ratio(f1, true + predicted)
    families = {
        "precision": (
            precision,
            _Gradient(_ratio(one, predicted), zero, -_ratio(precision, predicted)),
        ),
        "recall": (recall, _Gradient(_ratio(one, true), -_ratio(recall, true), zero)),
        "f1": (f1, _Gradient(_ratio(2 * one, true + predicted), f1_slope, f1_slope)),
    }
    accuracy = float(tp.sum()) / rows
    whole = _Gradient(one / rows, -accuracy * one / rows, zero)
    gradients = {"accuracy": whole, "balanced_accuracy": _averaged(families["recall"][1], true > 0)}
    for name, (_, family) in families.items():
        gradients[f"{name}_macro"] = _averaged(family, (true + predicted) > 0)
    for name in families:
        gradients[f"{name}_micro"] = whole
    for name, (values, family) in families.items():
        weighted = float((values * true).sum()) / rows
        gradients[f"{name}_weighted"] = _Gradient(
            family.tp * true / rows,
            (family.true * true + values - weighted) / rows,
            family.predicted * true / rows,
        )
    for name, (_, family) in families.items():
        gradients[f"{name}."] = family
    return gradients


def _averaged(family: _Gradient, mask: Array) -> _Gradient:
    share = mask / max(int(mask.sum()), 1)
    return _Gradient(family.tp * share, family.true * share, family.predicted * share)


def _spread(table: CountTable, base: IntArray, ours: _Gradient, theirs: _Gradient | None) -> float:
    """Standard error of one metric (or difference) from its derivative along each cell's rows."""
    slope = ours.at(table.true, table.pred)
    if theirs is not None:
        slope = slope - theirs.at(table.true, base)
    weights, rows = table.counts.astype(np.float64), table.rows
    centred = slope - float((weights * slope).sum()) / rows
    return math.sqrt(rows * float((weights * centred**2).sum()) / max(rows - 1, 1))


def _per_class_spread(
    table: CountTable, base: IntArray, ours: _Gradient, theirs: _Gradient | None
) -> FloatArray:
    """`_spread` of each class's own metric at once. A class's metric depends only on its
    own counts, so a cell moves only the classes of its labels: its true label, the
    candidate's and the baseline's (a class's gradient sums to zero over its own counts,
    as its metric does not change when every count grows alike, so no centring)."""
    true, pred, k = table.true, table.pred, table.k
    other = theirs or _Gradient(*(np.zeros(k),) * 3)
    hit, base_hit = pred == true, base == true
    # the true label's class
    at_true = ours.true[true] + np.where(hit, ours.predicted[true] + ours.tp[true], 0.0)
    at_true -= other.true[true] + np.where(base_hit, other.predicted[true] + other.tp[true], 0.0)
    # the candidate's label, when wrong
    at_pred = ours.predicted[pred] - np.where(base == pred, other.predicted[pred], 0.0)
    # the baseline's label, when neither the true one nor the candidate's
    at_base = -other.predicted[base]
    weights = table.counts.astype(np.float64)
    wrong, apart = ~hit, ~base_hit & (base != pred)
    squares = (
        np.bincount(true, weights=weights * at_true**2, minlength=k)
        + np.bincount(pred[wrong], weights=(weights * at_pred**2)[wrong], minlength=k)
        + np.bincount(base[apart], weights=(weights * at_base**2)[apart], minlength=k)
    )
    rows = table.rows
    return np.asarray(np.sqrt(rows * squares / max(rows - 1, 1)), dtype=np.float64)


def _percentiles(samples: Mapping[str, FloatArray], confidence: float) -> dict[str, Interval]:
    """Percentile bootstrap intervals, all metrics' quantiles in one call."""
    alpha = 1 - confidence
    names = list(samples)
    lows, highs = np.quantile(
        np.stack([samples[name] for name in names]), [alpha / 2, 1 - alpha / 2], axis=1
    )
    return {
        name: Interval(float(low), float(high), confidence, "bootstrap")
        for name, low, high in zip(names, lows, highs, strict=True)
    }


# -- Metrics of per-row means: log loss and regression ----------------------------------


def _regression(pred: Predictions) -> dict[str, _Smooth]:
    y_true = np.asarray(pred.y_true, dtype=np.float64)
    errors = y_true - np.asarray(pred.y_pred, dtype=np.float64)
    return {
        "mae": _mean_of(np.abs(errors)),
        "rmse": _rmse(errors**2),
        "r2": _r2(y_true, errors**2),
        "mape": _mean_of(np.abs(errors) / np.maximum(np.abs(y_true), _EPS)),
    }


def _mean_of(values: FloatArray) -> _Smooth:
    return _Smooth(
        value=float(values.mean()),
        columns=values[:, None],
        statistic=lambda means: means[..., 0],
        gradient=lambda means: np.ones(1),
        bounds=(0.0, _INF),
    )


def _rmse(squared: FloatArray) -> _Smooth:
    def gradient(means: FloatArray) -> FloatArray:
        mse = float(means[0])
        return np.array([0.5 / math.sqrt(mse) if mse > 0 else 0.0])

    return _Smooth(
        value=math.sqrt(float(squared.mean())),
        columns=squared[:, None],
        statistic=lambda means: np.sqrt(means[..., 0]),
        gradient=gradient,
        bounds=(0.0, _INF),
    )


def _r2(y_true: FloatArray, squared: FloatArray) -> _Smooth:
    """r2 = 1 - mean(e²) / (mean(y²) - mean(y)²), y centred first for precision."""
    centred = y_true - y_true.mean()
    total = float((centred**2).sum())
    residual = float(squared.sum())
    value = (1 - residual / total) if total > 0 else (1.0 if residual == 0 else 0.0)
    return _Smooth(
        value=value,
        columns=np.column_stack([squared, centred, centred**2]),
        statistic=_r2_of_means,
        gradient=_r2_gradient,
        bounds=(-_INF, 1.0),
    )


def _variance(means: FloatArray) -> FloatArray:
    spread = means[..., 2] - means[..., 1] ** 2
    # A resample of one repeated y: its variance is rounding error, and sklearn's is 0.
    return np.where(spread > 1e-12 * means[..., 2], spread, 0.0)


def _r2_of_means(means: FloatArray) -> FloatArray:
    variance = _variance(means)
    safe = np.where(variance > 0, variance, 1.0)
    perfect = np.where(means[..., 0] == 0, 1.0, 0.0)
    return np.where(variance > 0, 1 - means[..., 0] / safe, perfect)


def _r2_gradient(means: FloatArray) -> FloatArray:
    variance = float(_variance(means))
    if variance <= 0:
        return np.zeros(3)
    residual, mean = float(means[0]), float(means[1])
    return np.array([-1 / variance, -2 * mean * residual / variance**2, residual / variance**2])


def _log_loss(pred: Predictions) -> _Smooth | None:
    if pred.scores is None or len(pred.classes) < 2:
        return None
    codes = _codes(pred.y_true, np.asarray(pred.classes))
    chosen = pred.scores[np.arange(len(codes)), codes].astype(np.float64)
    losses = -np.log(np.clip(chosen, _EPS, 1 - _EPS))
    return _mean_of(losses)


def _smooth_intervals(
    pairs: Mapping[str, tuple[_Smooth, _Smooth | None]],
    rows: int,
    confidence: float,
    resamples: int,
    seed: int,
) -> dict[str, Interval]:
    """Intervals for metrics (or, with a second `_Smooth`, differences) of per-row means."""
    if rows <= BOOTSTRAP_MAX_ROWS:
        return _percentiles(_bootstrap_rows(pairs, rows, resamples, seed), confidence)
    intervals = {}
    for name, (first, second) in pairs.items():
        if second is None:
            value, influence, bounds = first.value, first.influence(), first.bounds
        else:
            value = first.value - second.value
            influence, bounds = first.influence() - second.influence(), (-_INF, _INF)
        spread = float(np.std(influence, ddof=1)) / math.sqrt(rows)
        intervals[name] = _normal(value, spread, confidence, bounds, "normal")
    return intervals


def _bootstrap_rows(
    pairs: Mapping[str, tuple[_Smooth, _Smooth | None]], rows: int, resamples: int, seed: int
) -> dict[str, FloatArray]:
    """Each metric (or difference) on the same resamples of rows."""
    rng = np.random.default_rng((seed, _ROWS_STREAM))
    width = max(first.columns.shape[1] for first, _ in pairs.values())
    chunk = max(1, _CHUNK_ELEMENTS // (rows * width))
    parts: dict[str, list[FloatArray]] = {name: [] for name in pairs}
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        index = rng.integers(0, rows, size=(size, rows))
        for name, (first, second) in pairs.items():
            values = first.statistic(first.columns[index].mean(axis=1))
            if second is not None:
                values = values - second.statistic(second.columns[index].mean(axis=1))
            parts[name].append(values)
        done += size
    return {name: np.concatenate(values) for name, values in parts.items()}


def _normal(
    value: float, spread: float, confidence: float, bounds: tuple[float, float], method: str
) -> Interval:
    margin = NormalDist().inv_cdf(0.5 + confidence / 2) * spread
    low, high = max(value - margin, bounds[0]), min(value + margin, bounds[1])
    return Interval(float(low), float(high), confidence, method)


# -- ROC AUC (DeLong) --------------------------------------------------------------------


# The metrics, their intervals and the paired differences each need a model's AUC: it is
# computed once per Predictions (seconds at millions of rows), kept while that lives.
_AUCS: weakref.WeakKeyDictionary[Predictions, _Linear | None] = weakref.WeakKeyDictionary()


def rank_classes(pred: Predictions) -> None:
    """Compute `pred`'s ROC AUC now (kept while `pred` lives, as every metric and interval
    here takes it): the classes' rankings (`core.ranking`) are made on the way, each
    score column sorted once, so that curves drawn before the gate's intervals reuse them."""
    _roc_auc(pred)


def _roc_auc(pred: Predictions) -> _Linear | None:
    """Binary or one-vs-rest macro AUC with each row's DeLong contribution."""
    if pred not in _AUCS:
        _AUCS[pred] = _compute_roc_auc(pred)
    return _AUCS[pred]


def _compute_roc_auc(pred: Predictions) -> _Linear | None:
    if pred.scores is None or len(pred.classes) < 2:
        return None
    codes = _codes(pred.y_true, np.asarray(pred.classes))
    counts = np.bincount(codes, minlength=pred.scores.shape[1])
    if len(counts) == 2:
        positives = [1] if counts.all() else []  # the larger label, as sklearn
    else:
        positives = np.flatnonzero(counts).tolist()
        positives = positives if len(positives) >= 2 else []
    if not positives:
        return None
    rows = len(codes)
    value, influence = 0.0, np.zeros(rows)
    # Each row's contribution less its placement's part: by its true class (`_placements`).
    centre = np.zeros(len(counts))
    for label, sorted_ in sorts_ahead(pred, positives):
        auc = _placements(*ranking_and_rows(pred, label, sorted_), influence)
        value += auc
        ours, theirs = auc * rows / counts[label], auc * rows / (rows - counts[label])
        centre += theirs
        centre[label] += ours - theirs
    influence -= centre[codes]
    influence /= len(positives)
    return _Linear(value / len(positives), influence, codes)


def _placements(ranked: Ranking, places: Places, into: FloatArray) -> float:
    """The class's AUC; each row's placement added to `into`, scaled to its contribution.

    A positive's placement is the share of negatives it outscores (ties count half); a
    negative's, the share of positives that outscore it. AUC is the positives' mean
    placement, and each row's contribution is n/m · (placement - AUC), m the size of its
    side: n/m · placement is added here, and the caller subtracts n/m · AUC by class.
    Twice a placement's numerator is a whole number: counted so, in 32-bit integers per
    distinct score from the sums the ranking has (`Places.below`, `ends`), the AUC is
    exact, and each row's is one look-up and one scatter.
    """
    pos_at, neg_at = ranked.positives, ranked.negatives  # small unsigned counts
    rows = len(places.order)
    positives = int(places.below[-1])
    pairs = 2 * positives * (rows - positives)
    wide = np.int32 if 2 * rows < 2**31 else np.int64
    # Twice the negatives a positive at each score outscores (those at or below it, less
    # half those tied with it), and twice the positives that outscore a negative there.
    outscores = places.ends.astype(wide)
    outscores += 1
    outscores -= places.below
    outscores *= 2
    outscores -= neg_at
    outscored = places.below.astype(wide)
    outscored *= -2
    outscored += 2 * positives
    outscored += pos_at
    auc = int(np.einsum("i,i->", pos_at, outscores, dtype=np.int64)) / pairs
    remember_area(ranked, auc)
    # Each row's doubled numerator in score order, then put in file order.
    seen = places.seen
    doubled = np.where(places.hit, np.repeat(outscores, seen), np.repeat(outscored, seen))
    in_file = np.empty(rows, wide)
    np.put(in_file, places.order, doubled)
    into += np.multiply(in_file, rows / pairs, dtype=np.float64)
    return auc


def _delong(estimate: _Linear, confidence: float, bounds: tuple[float, float]) -> Interval:
    spread = _stratified_spread(estimate)
    return _normal(estimate.value, spread, confidence, bounds, "delong")


def _stratified_spread(estimate: _Linear) -> float:
    """Standard error from the contributions' variance within each stratum (true class).

    For a binary AUC this is DeLong's S10/m + S01/n, and for a difference of two AUCs on the
    same rows, DeLong's paired variance.
    """
    strata, influence = estimate.strata, estimate.influence
    counts = np.bincount(strata).astype(np.float64)
    means = np.bincount(strata, weights=influence) / np.maximum(counts, 1)
    deviation = influence - means[strata]
    within = np.bincount(strata, weights=deviation**2, minlength=len(counts))
    factor = np.where(counts > 1, counts / np.maximum(counts - 1, 1), 0.0)
    return math.sqrt(float((within * factor).sum())) / len(influence)


# -- Per slice ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceEstimates:
    """One metric in each slice: its value and standard error, and with a baseline on the
    same rows, the baseline's value and the paired change's standard error. Arrays of
    shape (slices,); NaN where a slice has too few rows to tell."""

    value: FloatArray
    value_se: FloatArray
    baseline: FloatArray | None = None
    change_se: FloatArray | None = None
    method: str = "jackknife"  # how the standard errors were found, for the report


def slice_estimates(
    candidate: Predictions,
    baseline: Predictions | None,
    task: Task,
    codes: IntArray,
    slices: int,
    metrics: tuple[str, ...],
) -> dict[str, SliceEstimates]:
    """`metrics` in each of `slices` slices (`codes`: each row's slice, 0 to slices - 1).

    Count-based metrics get a delete-one jackknife on each slice's count table: one
    evaluation per non-empty cell, all slices at once. Means (log loss, regression) get the
    delta method within each slice, and roc_auc DeLong's variance on each slice's rows. A
    metric the models lack (roc_auc without probabilities) is left out. `baseline` must be
    aligned with `candidate`.
    """
    _check_task(task)
    if baseline is not None:
        _check_paired(candidate, baseline)
    codes = np.asarray(codes, dtype=np.int64)
    found: dict[str, SliceEstimates] = {}
    if task == "classification":
        found.update(_slice_counts(candidate, baseline, codes, slices, metrics))
        auc = _slice_roc_auc(candidate, baseline, codes, slices) if "roc_auc" in metrics else None
        if auc is not None:
            found["roc_auc"] = auc
        smooth = {"log_loss": (_log_loss(candidate), _log_loss(baseline) if baseline else None)}
    else:
        base = _regression(baseline) if baseline is not None else {}
        smooth = {name: (s, base.get(name)) for name, s in _regression(candidate).items()}
    for name, (first, second) in smooth.items():
        if name in metrics and first is not None and (baseline is None or second is not None):
            found[name] = _slice_smooth(first, second, codes, slices)
    return found


def _slice_roc_auc(
    candidate: Predictions, baseline: Predictions | None, codes: IntArray, slices: int
) -> SliceEstimates | None:
    """Each slice's ROC AUC and DeLong standard error, and with a baseline its AUC and the
    paired change's DeLong standard error: the overall computation (`_compute_roc_auc`,
    `_stratified_spread`) run on each slice's rows, one ranking per slice, class and model.
    NaN where the slice's AUC is undefined, as the overall one would be on those rows (a
    binary slice of one class; fewer than two classes present), and standard errors NaN
    (too few to gate) where a class has a single row in the slice. None when a model has
    no probabilities."""
    if not _has_auc(candidate) or (baseline is not None and not _has_auc(baseline)):
        return None
    nan = np.full(slices, np.nan)
    value, value_se = nan.copy(), nan.copy()
    base, change_se = nan.copy(), nan.copy()
    # The rows grouped by slice once (one sort), so each slice is a run of `order`.
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=slices)).tolist()
    for index, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
        if end - start < 2:  # one row is never both a positive and a negative
            continue
        rows = order[start:end]
        ours = _compute_roc_auc(take(candidate, rows))
        if ours is None:
            continue
        theirs = _compute_roc_auc(take(baseline, rows)) if baseline is not None else None
        value[index] = ours.value
        base[index] = theirs.value if theirs is not None else np.nan
        present = np.bincount(ours.strata)
        if (present[present > 0] < 2).any():
            # A class of one row has no spread to estimate (DeLong's variance sums over a
            # class's rows): the standard error would be too small, so none is given.
            continue
        value_se[index] = _stratified_spread(ours)
        if theirs is not None:
            change = _Linear(
                ours.value - theirs.value, ours.influence - theirs.influence, ours.strata
            )
            change_se[index] = _stratified_spread(change)
    if baseline is None:
        return SliceEstimates(value, value_se, method="delong")
    return SliceEstimates(value, value_se, base, change_se, "delong")


def _has_auc(pred: Predictions) -> bool:
    return pred.scores is not None and len(pred.classes) >= 2


def _slice_counts(
    candidate: Predictions,
    baseline: Predictions | None,
    codes: IntArray,
    slices: int,
    metrics: tuple[str, ...],
) -> dict[str, SliceEstimates]:
    classes = _classes(candidate)
    if baseline is not None:
        classes = np.union1d(classes, _classes(baseline))
    cand = _encode(candidate, classes)
    k = len(classes)
    base_pred = _encode(baseline, classes).pred if baseline is not None else cand.pred
    per_class = _per_class(cand.confusion(), classes)
    if baseline is not None:
        base_classes = _per_class(_encode(baseline, classes).confusion(), classes)
        per_class = sorted(set(per_class) | set(base_classes))
    # cell = ((slice * k + true) * k + candidate's label) * k + baseline's label
    joint = ((codes * k + cand.true) * k + cand.pred) * k + base_pred
    cells, counts = _cell_counts(joint, slices * k**3)
    base_cells = cells % k
    rest = cells // k
    cand_cells, true_cells, cell_slice = rest % k, (rest // k) % k, rest // (k * k)
    if len(cells) > BOOTSTRAP_MAX_CELLS:
        table = CountTable(classes, true_cells, cand_cells, counts, base_cells)
        paired = baseline is not None
        return _slice_influence_counts(table, cell_slice, slices, per_class, metrics, paired)
    ours = _slice_tables(cell_slice, true_cells, cand_cells, counts, slices, k)
    theirs = _slice_tables(cell_slice, true_cells, base_cells, counts, slices, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        full = _confusion_metrics(ours, per_class)
        full_base = _confusion_metrics(theirs, per_class)
    wanted = [name for name in metrics if name in full]
    if not wanted:
        return {}
    with np.errstate(invalid="ignore", divide="ignore"):
        left_out = _jackknife(ours, cell_slice, true_cells, cand_cells, per_class, wanted)
        base_left = _jackknife(theirs, cell_slice, true_cells, base_cells, per_class, wanted)
    rows = np.bincount(codes, minlength=slices).astype(np.float64)
    found = {}
    for name in wanted:
        value_se = _jackknife_se(left_out[name], counts, cell_slice, rows)
        if baseline is None:
            found[name] = SliceEstimates(full[name], value_se)
            continue
        change = left_out[name] - base_left[name]
        found[name] = SliceEstimates(
            full[name], value_se, full_base[name], _jackknife_se(change, counts, cell_slice, rows)
        )
    return found


def _slice_influence_counts(
    table: CountTable,
    cell_slice: IntArray,
    slices: int,
    per_class: list[tuple[int, str]],
    metrics: tuple[str, ...],
    paired: bool,
) -> dict[str, SliceEstimates]:
    """Per-slice values, and standard errors from the influence function (as
    `count_intervals` above `BOOTSTRAP_MAX_CELLS`): for tables too large for a jackknife,
    whose cost grows with cells x classes."""
    assert table.base is not None
    ours = _slice_class_counts(table, table.pred, cell_slice, slices)
    theirs = _slice_class_counts(table, table.base, cell_slice, slices)
    with np.errstate(invalid="ignore", divide="ignore"):
        full, full_base = _count_metrics(ours, per_class), _count_metrics(theirs, per_class)
    wanted = [name for name in metrics if name in full]
    if not wanted:  # the per-slice loop below is the cost: none when no rule needs it
        return {}
    value_se = {name: np.full(slices, np.nan) for name in wanted}
    change_se = {name: np.full(slices, np.nan) for name in wanted}
    for index in range(slices):
        here = cell_slice == index
        if not here.any():
            continue
        labels = (table.classes, table.true[here], table.pred[here], table.counts[here])
        alone = _merged(CountTable(*labels))
        _, spreads = _influence_spreads(alone, _table_classes(alone, alone.pred), None)
        changes: dict[str, float] = {}
        if paired:
            base = table.base[here]
            both = CountTable(*labels, base)
            pair = (_table_classes(both, both.pred), _table_classes(both, base))
            _, changes = _influence_spreads(both, *pair)
        for name in wanted:
            value_se[name][index] = spreads.get(name, 0.0)
            change_se[name][index] = changes.get(name, 0.0)
    return {
        name: SliceEstimates(full[name], value_se[name], method="influence function")
        if not paired
        else SliceEstimates(
            full[name], value_se[name], full_base[name], change_se[name], "influence function"
        )
        for name in wanted
    }


def _slice_class_counts(
    table: CountTable, pred: IntArray, cell_slice: IntArray, slices: int
) -> _ClassCounts:
    """Each slice's per-class counts, shape (slices, k)."""
    k, weights = table.k, table.counts.astype(np.float64)
    right = table.true == pred
    width = slices * k
    return _ClassCounts(
        _sums((cell_slice * k + table.true)[right], weights[right], width).reshape(slices, k),
        _sums(cell_slice * k + table.true, weights, width).reshape(slices, k),
        _sums(cell_slice * k + pred, weights, width).reshape(slices, k),
    )


def _cell_counts(joint: IntArray, width: int) -> tuple[IntArray, IntArray]:
    """The non-empty cells and their counts: a bincount when the table is small enough."""
    if width > 4 * len(joint):
        cells, counts = np.unique(joint, return_counts=True)
        return cells, counts
    every = np.bincount(joint, minlength=width)
    cells = np.flatnonzero(every)
    return cells.astype(np.int64), every[cells]


def _slice_tables(
    cell_slice: IntArray, true: IntArray, pred: IntArray, counts: IntArray, slices: int, k: int
) -> FloatArray:
    flat = (cell_slice * k + true) * k + pred
    summed = np.bincount(flat, weights=counts, minlength=slices * k * k)
    return np.asarray(summed.reshape(slices, k, k), dtype=np.float64)


def _jackknife(
    tables: FloatArray,
    cell_slice: IntArray,
    true: IntArray,
    pred: IntArray,
    per_class: list[tuple[int, str]],
    wanted: list[str],
) -> dict[str, FloatArray]:
    """Each metric of each cell's slice table with one row of that cell left out."""
    k = tables.shape[1]
    chunk = max(1, _CHUNK_ELEMENTS // (k * k))
    parts: dict[str, list[FloatArray]] = {name: [] for name in wanted}
    for start in range(0, len(cell_slice), chunk):
        part = slice(start, start + chunk)
        left = tables[cell_slice[part]].copy()
        left[np.arange(len(left)), true[part], pred[part]] -= 1
        values = _confusion_metrics(left, per_class)
        for name in wanted:
            parts[name].append(values[name])
    return {name: np.concatenate(values) for name, values in parts.items()}


def _jackknife_se(
    left_out: FloatArray, counts: IntArray, cell_slice: IntArray, rows: FloatArray
) -> FloatArray:
    """sqrt((n - 1) / n · Σ (θ₋ᵢ - θ̄)²) per slice, the rows of a cell sharing one θ₋ᵢ."""
    weights = counts.astype(np.float64)
    size = len(rows)
    mean = np.bincount(cell_slice, weights=weights * left_out, minlength=size) / rows
    spread = np.bincount(
        cell_slice, weights=weights * (left_out - mean[cell_slice]) ** 2, minlength=size
    )
    return np.asarray(np.sqrt((rows - 1) / rows * spread), dtype=np.float64)


def _slice_smooth(
    first: _Smooth, second: _Smooth | None, codes: IntArray, slices: int
) -> SliceEstimates:
    """Per-slice values and delta-method standard errors of a metric of per-row means."""
    rows = np.bincount(codes, minlength=slices).astype(np.float64)
    value, influence = _slice_influence(first, codes, slices, rows)
    value_se = _influence_se(influence, codes, slices, rows)
    if second is None:
        return SliceEstimates(value, value_se, method="delta method")
    base, base_influence = _slice_influence(second, codes, slices, rows)
    change_se = _influence_se(influence - base_influence, codes, slices, rows)
    return SliceEstimates(value, value_se, base, change_se, "delta method")


def _slice_influence(
    smooth: _Smooth, codes: IntArray, slices: int, rows: FloatArray
) -> tuple[FloatArray, FloatArray]:
    columns = smooth.columns
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.column_stack(
            [np.bincount(codes, weights=column, minlength=slices) / rows for column in columns.T]
        )
        values = np.asarray(smooth.statistic(means), dtype=np.float64)
    gradients = np.array(
        [smooth.gradient(row) if np.isfinite(row).all() else np.zeros(len(row)) for row in means]
    )
    influence = ((columns - means[codes]) * gradients[codes]).sum(axis=1)
    return values, np.asarray(influence, dtype=np.float64)


def _influence_se(
    influence: FloatArray, codes: IntArray, slices: int, rows: FloatArray
) -> FloatArray:
    squares = np.bincount(codes, weights=influence**2, minlength=slices)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.sqrt(squares / (rows - 1)) / np.sqrt(rows), dtype=np.float64)
