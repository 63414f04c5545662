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

- Count-based classification metrics: percentile bootstrap (`"bootstrap"`). They depend on
  the rows only through the confusion table, so a resample is a multinomial draw of n rows
  over the table's cells, which has the same distribution as resampling the rows and costs
  nothing per row. A paired difference redraws the joint table of (true label, candidate's
  label, baseline's label): k³ cells. Macro averages count, in each resample, the classes
  present in that resample, as sklearn would on those rows.
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
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from mlci.core.intervals import Interval

# Re-exported: callers outside core (plots, figures, predictions, pipeline) import them here.
from mlci.core.predictions import Array as Array
from mlci.core.predictions import FloatArray as FloatArray
from mlci.core.predictions import IntArray as IntArray
from mlci.core.predictions import Predictions as Predictions
from mlci.core.ranking import Places, Ranking, rank, ranking_and_rows

Task = Literal["classification", "regression"]

# Below this many rows, means are bootstrapped; above, the normal approximation is good.
BOOTSTRAP_MAX_ROWS = 5_000
# Classes mlci computes metrics for: a paired interval resamples k x k tables, so 1,000
# classes (ImageNet's) take about 30 s and 0.5 GB; 200,000 would need hundreds of GiB.
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
    counts = _count_metrics(confusion[None], _per_class(confusion, encoded.classes))
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
    """Each value's index in `classes`; a lookup table for small integers, else a search."""
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


def _count_metrics(
    confusion: FloatArray, per_class: list[tuple[int, str]]
) -> dict[str, FloatArray]:
    """Every count-based metric for each (k, k) table of `confusion`, shape (b, k, k)."""
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    true = confusion.sum(axis=2)
    predicted = confusion.sum(axis=1)
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
    k = encoded.k
    per_class = _per_class(encoded.confusion(), encoded.classes)

    def metrics(draws: IntArray, cells: IntArray) -> dict[str, FloatArray]:
        confusion = _scatter(draws, cells, k * k).reshape(-1, k, k)
        return _count_metrics(confusion, per_class)

    joint = np.unique(encoded.true * k + encoded.pred, return_counts=True)
    samples = _resample_table(joint, metrics, width=k * k, resamples=resamples, seed=seed)
    return _percentiles(samples, confidence)


def _paired_count_intervals(
    candidate: Predictions, baseline: Predictions, confidence: float, resamples: int, seed: int
) -> dict[str, Interval]:
    classes = np.union1d(_classes(candidate), _classes(baseline))
    cand, base = _encode(candidate, classes), _encode(baseline, classes)
    k = len(classes)
    cand_classes = _per_class(cand.confusion(), classes)
    base_classes = _per_class(base.confusion(), classes)

    def differences(draws: IntArray, cells: IntArray) -> dict[str, FloatArray]:
        # cell = (true * k + candidate's label) * k + baseline's label
        first = _scatter(draws, cells // k, k * k).reshape(-1, k, k)
        second = _scatter(draws, (cells // (k * k)) * k + cells % k, k * k).reshape(-1, k, k)
        ours = _count_metrics(first, cand_classes)
        theirs = _count_metrics(second, base_classes)
        return {name: ours[name] - theirs[name] for name in ours if name in theirs}

    # Only the non-empty cells: k³ of them would not fit in memory for a thousand classes.
    joint = np.unique((cand.true * k + cand.pred) * k + base.pred, return_counts=True)
    samples = _resample_table(joint, differences, width=k * k, resamples=resamples, seed=seed)
    return _percentiles(samples, confidence)


def _resample_table(
    joint: tuple[IntArray, IntArray],
    metrics: Callable[[IntArray, IntArray], dict[str, FloatArray]],
    *,
    width: int,
    resamples: int,
    seed: int,
) -> dict[str, FloatArray]:
    """Bootstrap samples of `metrics`, from multinomial redraws of a table of row counts
    (`joint`: its non-empty cells and their counts).

    Drawing n rows with replacement and counting them per cell is a multinomial draw with
    the cells' frequencies, so only the non-empty cells are drawn, all resamples at once
    (in chunks that bound the memory).
    """
    rng = np.random.default_rng((seed, _COUNTS_STREAM))
    cells, counts = joint
    rows = int(counts.sum())
    frequencies = counts / rows
    chunk = max(1, _CHUNK_ELEMENTS // max(len(cells), width))
    parts: dict[str, list[FloatArray]] = {}
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        draws = rng.multinomial(rows, frequencies, size=size)
        for name, values in metrics(draws, cells).items():
            parts.setdefault(name, []).append(values)
        done += size
    return {name: np.concatenate(values) for name, values in parts.items()}


def _scatter(draws: IntArray, targets: IntArray, width: int) -> FloatArray:
    """Sum each resample's cell counts into `width` target cells: (b, cells) -> (b, width)."""
    size = draws.shape[0]
    flat = (np.arange(size)[:, None] * width + targets[None, :]).ravel()
    summed = np.bincount(flat, weights=draws.ravel(), minlength=size * width)
    return np.asarray(summed.reshape(size, width), dtype=np.float64)


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
    value, influence = 0.0, np.zeros(len(codes))
    for label in positives:
        auc, contribution = _ranked_auc(*ranking_and_rows(pred, label), codes == label)
        value += auc
        influence += contribution
    return _Linear(value / len(positives), influence / len(positives), codes)


def _binary_auc(positive: Array, score: FloatArray) -> tuple[float, FloatArray]:
    """AUC and each row's contribution (DeLong's placement values, scaled and centred)."""
    return _ranked_auc(*rank(positive, score), positive)


def _ranked_auc(ranked: Ranking, places: Places, positive: Array) -> tuple[float, FloatArray]:
    """AUC and each row's contribution, from the class's ranking and the
    rows' places in it (`core.ranking`).

    A positive's placement is the share of negatives it outscores (ties count half); a
    negative's, the share of positives that outscore it. AUC is the positives' mean
    placement, and each row's contribution is n/m · (placement - AUC), m the size of its side.
    """
    pos_at, neg_at = ranked.positives, ranked.negatives  # small unsigned counts
    positives, negatives = int(pos_at.sum(dtype=np.int64)), int(neg_at.sum(dtype=np.int64))
    rows = positives + negatives
    beats = (np.cumsum(neg_at, dtype=np.int64) - neg_at / 2) / negatives
    beaten = (positives - np.cumsum(pos_at, dtype=np.int64) + pos_at / 2) / positives
    auc = float((pos_at * beats).sum() / positives)
    # Per distinct score, what a negative and what a positive row there contributes,
    # side by side: one look-up per row.
    either = np.empty(2 * len(beats))
    either[0::2] = (beaten - auc) * (rows / negatives)
    either[1::2] = (beats - auc) * (rows / positives)
    return auc, places.to_rows(either[places.index * 2 + positive[places.order]])


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
    delta method within each slice. A metric without a per-slice estimate (roc_auc) is left
    out. `baseline` must be aligned with `candidate`.
    """
    _check_task(task)
    if baseline is not None:
        _check_paired(candidate, baseline)
    codes = np.asarray(codes, dtype=np.int64)
    found: dict[str, SliceEstimates] = {}
    if task == "classification":
        found.update(_slice_counts(candidate, baseline, codes, slices, metrics))
        smooth = {"log_loss": (_log_loss(candidate), _log_loss(baseline) if baseline else None)}
    else:
        base = _regression(baseline) if baseline is not None else {}
        smooth = {name: (s, base.get(name)) for name, s in _regression(candidate).items()}
    for name, (first, second) in smooth.items():
        if name in metrics and first is not None and (baseline is None or second is not None):
            found[name] = _slice_smooth(first, second, codes, slices)
    return found


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
    ours = _slice_tables(cell_slice, true_cells, cand_cells, counts, slices, k)
    theirs = _slice_tables(cell_slice, true_cells, base_cells, counts, slices, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        full = _count_metrics(ours, per_class)
        full_base = _count_metrics(theirs, per_class)
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
        values = _count_metrics(left, per_class)
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
        return SliceEstimates(value, value_se)
    base, base_influence = _slice_influence(second, codes, slices, rows)
    change_se = _influence_se(influence - base_influence, codes, slices, rows)
    return SliceEstimates(value, value_se, base, change_se)


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
