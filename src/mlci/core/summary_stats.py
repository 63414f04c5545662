"""Metrics and intervals from a summary (`core.summary`): what mlci reports above
evaluate.exact_rows, where the rows themselves are not kept.

- Count metrics (accuracy, precision, recall, f1, ...) are exact: they depend on the rows
  only through the confusion table, which the summary holds. Their intervals are the same
  multinomial bootstrap of the (joint) table as `core.stats`.
- `log_loss` and the regression metrics are exact: means of per-row columns, from sums.
  Intervals: normal, by the delta method, from the columns' sums of products.
- `roc_auc` is computed from the score histograms. Rows in different bins are ordered
  as their scores are; pairs of a positive and a negative in the same bin count one half,
  where the exact AUC counts each such pair 0, 1/2 or 1, so per class
  |AUC_binned - AUC| <= 0.5 * sum_b pos_b * neg_b / (P * N), and the macro average is
  within the average of those bounds (`Approximation.auc_bound`). Its interval is DeLong's
  with each row's placement taken at its bin; the macro average's standard error is taken
  as the average of the classes' (the classes' AUCs treated as fully correlated: never
  narrower than the exact estimator's). A paired difference uses, per class, the
  covariance of the two models' placements on the coarse joint bins.
- Curves (`roc_curves`, `pr_curves`) take their thresholds at the bins' edges: a ROC
  curve's area is the binned AUC. A precision-recall curve's average precision is that of
  the rows with each bin's scores tied; the rows' own (scikit-learn's) lies in the range
  `average_precision_range` computes from the bins (only the order within a bin is
  unknown), and the binned one is within `Approximation.ap_bound` (the largest of the
  classes' distances to the range's farther end) of it.
- `calibration` (two classes: the positive class's probability; more: the top label's
  confidence) is exact: the summary's fine bins lie inside the diagram's bins, and hold
  the rows, the hits and the sum of the probability, so each point's frequency is exact
  and its mean probability equal to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlci.core import stats
from mlci.core.curves import Curve
from mlci.core.intervals import Interval
from mlci.core.predictions import FloatArray, IntArray
from mlci.core.summary import (
    DIAGRAM_BINS,
    LOSS,
    ClassificationSummary,
    Histograms,
    Moments,
    RegressionSummary,
    Summary,
)

_INF = math.inf
_BASE = {"abs": "base_abs", "squared": "base_squared", "ape": "base_ape", LOSS: f"base_{LOSS}"}


@dataclass(frozen=True)
class Approximation:
    """How far the summary's metrics may be from the exact ones: named in gate.json."""

    method: str  # "binned, 1000 bins"
    auc_bound: float  # |roc_auc - exact| <= this; 0.0 without probabilities
    ap_bound: float  # |average precision - exact| <= this, each of `pr_curves`'s; 0.0 without


@dataclass(frozen=True)
class _Auc:
    value: float
    bound: float
    spread: float  # standard error


@dataclass(frozen=True)
class _Mean:
    """A metric of column means: the columns, the metric of their means, its gradient."""

    columns: tuple[str, ...]
    statistic: Callable[[FloatArray], float]
    gradient: Callable[[FloatArray], FloatArray]
    bounds: tuple[float, float]


def approximation(summary: Summary) -> Approximation:
    """The method, and the error bounds of the candidate's AUC and its precision-recall
    curves' average precisions, of a summary's metrics."""
    if isinstance(summary, RegressionSummary):
        return Approximation("exact sums", 0.0, 0.0)
    own = summary.candidate
    if own is None:
        return Approximation("exact counts", 0.0, 0.0)
    auc = _macro_auc(own)
    return Approximation(
        f"binned, {own.bins} bins", 0.0 if auc is None else auc.bound, ap_bound(own)
    )


def compute_metrics(summary: Summary) -> dict[str, float]:
    """The candidate's metrics, as `core.stats.compute_metrics` names them."""
    if isinstance(summary, RegressionSummary):
        moments = summary.moments
        return {name: mean.statistic(_means(moments, mean)) for name, mean in _REGRESSION.items()}
    table = confusion(summary, baseline=False).astype(np.float64)
    per_class = stats._per_class(table, np.asarray(summary.classes))
    metrics = {
        name: float(values[0])
        for name, values in stats._confusion_metrics(table[None], per_class).items()
    }
    auc = None if summary.candidate is None else _macro_auc(summary.candidate)
    if auc is not None:
        metrics["roc_auc"] = auc.value
    if summary.moments is not None:
        metrics[LOSS] = float(summary.moments.means()[summary.moments.index(LOSS)])
    return metrics


def metric_intervals(
    summary: Summary, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> dict[str, Interval]:
    """A `confidence` interval for each metric `compute_metrics` returns."""
    if isinstance(summary, RegressionSummary):
        return {
            name: _normal_interval(summary.moments, mean, None, confidence)
            for name, mean in _REGRESSION.items()
        }
    cells, counts = _cells(summary, baseline=False)
    table = stats.table_of_cells(np.asarray(summary.classes), cells, counts, paired=False)
    intervals = stats.count_intervals(table, confidence=confidence, resamples=resamples, seed=seed)
    auc = None if summary.candidate is None else _macro_auc(summary.candidate)
    if auc is not None:
        intervals["roc_auc"] = stats._normal(
            auc.value, auc.spread, confidence, (0.0, 1.0), _auc_method(summary)
        )
    if summary.moments is not None:
        intervals[LOSS] = _normal_interval(summary.moments, _LOSS, None, confidence)
    return intervals


def paired_difference_intervals(
    summary: Summary, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> dict[str, Interval]:
    """Intervals of (candidate's metric - baseline's) from a paired summary."""
    if not summary.paired:
        raise ValueError("the summary is not paired: summarize the baseline's predictions too")
    if isinstance(summary, RegressionSummary):
        return {
            name: _normal_interval(summary.moments, mean, _based(mean), confidence)
            for name, mean in _REGRESSION.items()
        }
    table = stats.table_of_cells(
        np.asarray(summary.classes), summary.joint.cells, summary.joint.counts, paired=True
    )
    intervals = stats.count_intervals(table, confidence=confidence, resamples=resamples, seed=seed)
    auc = _paired_auc(summary)
    if auc is not None:
        intervals["roc_auc"] = stats._normal(
            auc.value, auc.spread, confidence, (-1.0, 1.0), _auc_method(summary)
        )
    if summary.moments is not None and f"base_{LOSS}" in summary.moments.names:
        intervals[LOSS] = _normal_interval(summary.moments, _LOSS, _based(_LOSS), confidence)
    return intervals


# -- Count tables -------------------------------------------------------------------------


def _cells(summary: ClassificationSummary, *, baseline: bool) -> tuple[IntArray, IntArray]:
    """The (true, model's label) table's non-empty cells, from a paired table if need be."""
    cells, counts = summary.joint.cells, summary.joint.counts
    if not summary.paired:
        return cells, counts
    k = len(summary.classes)
    mapped = (cells // (k * k)) * k + cells % k if baseline else cells // k
    found, inverse = np.unique(mapped, return_inverse=True)
    return found, np.bincount(inverse, weights=counts).astype(np.int64)


def confusion(summary: ClassificationSummary, *, baseline: bool) -> IntArray:
    """The (true, candidate's or baseline's label) confusion matrix, classes in order."""
    k = len(summary.classes)
    cells, counts = _cells(summary, baseline=baseline)
    dense = np.bincount(cells, weights=counts, minlength=k * k)
    return dense.astype(np.int64).reshape(k, k)


# -- ROC AUC from histograms --------------------------------------------------------------


def _auc_method(summary: ClassificationSummary) -> str:
    assert summary.candidate is not None
    return f"delong (binned, {summary.candidate.bins} bins)"


def _placements(
    positives: FloatArray, negatives: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """AUC, and per bin a positive's and a negative's placement (ties count half)."""
    total_pos, total_neg = positives.sum(), negatives.sum()
    beats = (np.cumsum(negatives) - negatives / 2) / total_neg
    beaten = (total_pos - np.cumsum(positives) + positives / 2) / total_pos
    return float((positives * beats).sum() / total_pos), beats, beaten


def _binned_auc(positives: FloatArray, negatives: FloatArray) -> _Auc:
    total_pos, total_neg = positives.sum(), negatives.sum()
    auc, beats, beaten = _placements(positives, negatives)
    var_pos = (positives * (beats - auc) ** 2).sum() / max(total_pos - 1, 1)
    var_neg = (negatives * (beaten - auc) ** 2).sum() / max(total_neg - 1, 1)
    spread = math.sqrt(var_pos / total_pos + var_neg / total_neg)
    bound = 0.5 * float((positives * negatives).sum()) / (total_pos * total_neg)
    return _Auc(auc, bound, spread)


def _auc_classes(histograms: Histograms) -> list[int]:
    """The classes whose AUC counts: as `core.stats`, the larger label of two, else
    every class present in y_true (none when fewer than two are)."""
    present = histograms.positives.sum(axis=1) > 0
    if len(present) == 2:
        return [1] if present.all() else []
    found = np.flatnonzero(present).tolist()
    return found if len(found) >= 2 else []


def _macro_auc(histograms: Histograms) -> _Auc | None:
    chosen = _auc_classes(histograms)
    if not chosen:
        return None
    per_class = [
        _binned_auc(histograms.positives[c].astype(float), histograms.negatives[c].astype(float))
        for c in chosen
    ]
    return _average(per_class)


def _average(per_class: list[_Auc]) -> _Auc:
    count = len(per_class)
    return _Auc(
        sum(auc.value for auc in per_class) / count,
        sum(auc.bound for auc in per_class) / count,
        sum(auc.spread for auc in per_class) / count,  # sd of a mean <= mean of the sds
    )


def _paired_auc(summary: ClassificationSummary) -> _Auc | None:
    first, second, joint = summary.candidate, summary.baseline, summary.joint_bins
    if first is None or second is None or joint is None:
        return None
    chosen = _auc_classes(first)
    if not chosen:
        return None
    grid = summary.grid
    table = joint.dense(len(first.positives) * 2 * grid * grid).reshape(-1, 2, grid, grid)
    per_class = []
    for c in chosen:
        ours = _binned_auc(first.positives[c].astype(float), first.negatives[c].astype(float))
        theirs = _binned_auc(second.positives[c].astype(float), second.negatives[c].astype(float))
        covariance = _covariance(table[c, 1].astype(float), table[c, 0].astype(float))
        variance = max(ours.spread**2 + theirs.spread**2 - 2 * covariance, 0.0)
        per_class.append(
            _Auc(ours.value - theirs.value, ours.bound + theirs.bound, math.sqrt(variance))
        )
    return _average(per_class)


def _covariance(positives: FloatArray, negatives: FloatArray) -> float:
    """DeLong's covariance of two models' AUCs, from the coarse joint bins of one class:
    positives[g, h] rows of the class with the candidate's bin g and the baseline's h."""
    total_pos, total_neg = positives.sum(), negatives.sum()
    auc_a, beats_a, beaten_a = _placements(positives.sum(axis=1), negatives.sum(axis=1))
    auc_b, beats_b, beaten_b = _placements(positives.sum(axis=0), negatives.sum(axis=0))
    pos = (positives * np.outer(beats_a - auc_a, beats_b - auc_b)).sum() / max(total_pos - 1, 1)
    neg = (negatives * np.outer(beaten_a - auc_a, beaten_b - auc_b)).sum()
    neg /= max(total_neg - 1, 1)
    return float(pos / total_pos + neg / total_neg)


# -- Means: log loss and regression -------------------------------------------------------


def _first(means: FloatArray) -> float:
    return float(means[0])


def _ones(means: FloatArray) -> FloatArray:
    return np.ones(1)


def _rmse(means: FloatArray) -> float:
    return math.sqrt(float(means[0]))


def _rmse_gradient(means: FloatArray) -> FloatArray:
    mse = float(means[0])
    return np.array([0.5 / math.sqrt(mse) if mse > 0 else 0.0])


def _r2(means: FloatArray) -> float:
    return float(stats._r2_of_means(means))


_LOSS = _Mean((LOSS,), _first, _ones, (0.0, _INF))
_REGRESSION = {
    "mae": _Mean(("abs",), _first, _ones, (0.0, _INF)),
    "rmse": _Mean(("squared",), _rmse, _rmse_gradient, (0.0, _INF)),
    "r2": _Mean(("squared", "y", "y2"), _r2, stats._r2_gradient, (-_INF, 1.0)),
    "mape": _Mean(("ape",), _first, _ones, (0.0, _INF)),
}


def _based(mean: _Mean) -> _Mean:
    """The same metric of the baseline's columns."""
    columns = tuple(_BASE.get(name, name) for name in mean.columns)
    return _Mean(columns, mean.statistic, mean.gradient, mean.bounds)


def _means(moments: Moments, mean: _Mean) -> FloatArray:
    return np.asarray(moments.means()[[moments.index(name) for name in mean.columns]])


def _normal_interval(
    moments: Moments, first: _Mean, second: _Mean | None, confidence: float
) -> Interval:
    """Delta method: the metric (or difference) ± z * sqrt(g' Cov g / n)."""
    gradient = np.zeros(len(moments.names))
    value = first.statistic(_means(moments, first))
    for name, slope in zip(first.columns, first.gradient(_means(moments, first)), strict=True):
        gradient[moments.index(name)] += slope
    bounds = first.bounds
    if second is not None:
        value -= second.statistic(_means(moments, second))
        slopes = second.gradient(_means(moments, second))
        for name, slope in zip(second.columns, slopes, strict=True):
            gradient[moments.index(name)] -= slope
        bounds = (-_INF, _INF)
    variance = max(float(gradient @ moments.covariance() @ gradient), 0.0)
    spread = math.sqrt(variance / moments.rows)
    return stats._normal(value, spread, confidence, bounds, "normal")


# -- Curves from histograms ---------------------------------------------------------------


def _curve_classes(histograms: Histograms) -> list[int]:
    """As `core.curves`: the larger label of two, else every class."""
    k = len(histograms.positives)
    return [1] if k == 2 else list(range(k))


def _counts_above(histograms: Histograms, c: int) -> tuple[FloatArray, FloatArray]:
    """False and true positives when predicting class c at p_c >= each bin's lower edge,
    from the highest edge down (as `core.curves`, thresholds at the bins' edges only)."""
    positives = histograms.positives[c][::-1].astype(np.float64)
    negatives = histograms.negatives[c][::-1].astype(np.float64)
    filled = (positives + negatives) > 0
    return np.cumsum(negatives)[filled], np.cumsum(positives)[filled]


def roc_curves(histograms: Histograms, classes: tuple[object, ...]) -> list[Curve]:
    """ROC curves with a point per non-empty bin; each area equals the binned AUC (ties
    within a bin on a straight segment), so within the bound of `Approximation`."""
    curves = []
    for c in _curve_classes(histograms):
        fps, tps = _counts_above(histograms, c)
        if not len(tps) or tps[-1] == 0 or fps[-1] == 0:
            continue
        fpr, tpr = np.append(0.0, fps / fps[-1]), np.append(0.0, tps / tps[-1])
        area = float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0).sum())
        curves.append(Curve(f"class {classes[c]}", tuple(fpr.tolist()), tuple(tpr.tolist()), area))
    return curves


def pr_curves(histograms: Histograms, classes: tuple[object, ...]) -> list[Curve]:
    """Precision-recall curves with thresholds at the bins' edges; area = the average
    precision over those thresholds, within `ap_bound` of the rows'."""
    curves = []
    for c in _curve_classes(histograms):
        fps, tps = _counts_above(histograms, c)
        if not len(tps) or tps[-1] == 0:
            continue
        recall = np.append(0.0, tps / tps[-1])
        precision = np.append(1.0, tps / (tps + fps))
        area = max(0.0, float(np.sum(np.diff(recall) * precision[1:])))
        name = f"class {classes[c]}"
        curves.append(Curve(name, tuple(recall.tolist()), tuple(precision.tolist()), area))
    return curves


def calibration(histograms: Histograms, classes: tuple[object, ...]) -> Curve | None:
    """The reliability diagram of `core.curves.calibration` (two classes: the positive
    class's probability; more: the top label's confidence), its `DIAGRAM_BINS` bins
    merged from the fine bins, which lie inside them: the same rows in each bin, so the
    observed frequencies are exact and each point's mean probability (from the sums)
    equal to float rounding. None with fewer than two classes or no rows."""
    found = histograms.reliability
    if len(histograms.positives) < 2 or found.bins % DIAGRAM_BINS:
        return None
    width = found.bins // DIAGRAM_BINS
    rows = found.rows.reshape(DIAGRAM_BINS, width).sum(axis=1)
    hits = found.hits.reshape(DIAGRAM_BINS, width).sum(axis=1)
    sums = found.sums.reshape(DIAGRAM_BINS, width).sum(axis=1)
    filled = rows > 0
    if not filled.any():
        return None
    x, y = sums[filled] / rows[filled], hits[filled] / rows[filled]
    name = f"class {classes[1]}" if len(histograms.positives) == 2 else "top label"
    return Curve(name, tuple(x.tolist()), tuple(y.tolist()), None)


# -- Average precision's bound ------------------------------------------------------------

_DIRECT = 32  # a harmonic sum's terms 1/n with n <= this are added one by one


def average_precision_range(positives: FloatArray, negatives: FloatArray) -> tuple[float, float]:
    """The lowest and the highest average precision (scikit-learn's: over the distinct
    scores, each step's recall gain times its precision) that rows binned as `positives`
    and `negatives` (one class's rows and the others', per bin, lowest bin first) can have.

    Rows in different bins are ordered by their bins, so only the order within a bin is
    unknown, and it changes only the precisions at that bin's positives. In a bin with p
    positives and q negatives below b rows, a of them positive, the j-th positive's
    precision is (a + A) / (b + A + B), with A positives and B negatives of the bin scored
    at least as high as it (tied ones included: sklearn takes a tie as one step, at its
    end). As j <= A <= p, B <= q and a <= b, it is at least (a + j) / (b + q + j), with the
    negatives first, and at most (a + p) / (b + p), with the positives tied above the
    negatives: one by one they would get less. Both ends are reached, bin by bin at once:
    low = sum_b sum_j (a + j) / (b + q + j) / P, high = sum_b p (a + p) / (b + p) / P. The
    binned average precision (`pr_curves`), (a + p) / (b + p + q) at each of the bin's
    positives, is the rows' with each bin's scores tied, so it lies between them.
    """
    binned, below, above = _ap_distances(positives, negatives)
    return binned - below, binned + above


def _ap_distances(positives: FloatArray, negatives: FloatArray) -> tuple[float, float, float]:
    """The binned average precision and its distances to the low and the high end of
    `average_precision_range`, each summed from the bins' own distances: no cancellation
    (the range's ends from a closed form lose 1e-9 at 100M rows)."""
    p = positives[::-1].astype(np.float64)  # the highest bin first
    q = negatives[::-1].astype(np.float64)
    total = p.sum()
    if total == 0:
        return 0.0, 0.0, 0.0
    a = np.cumsum(p) - p  # positives in the bins above
    b = np.cumsum(p + q) - (p + q)  # rows in the bins above
    has = p > 0
    p, q, a, b = p[has], q[has], a[has], b[has]
    c = b + q
    binned = p * (a + p) / (c + p)
    # binned - low = sum_{j<=p} [(a+p)/(c+p) - (a+j)/(c+j)] = (c-a) sum_{j<p} [1/(c+j) - 1/(c+p)]
    below = (c - a) * np.maximum(_harmonic_gap(c, p - 1) - (p - 1) / (c + p), 0.0)
    above = p * (a + p) * q / ((b + p) * (c + p))  # high - binned
    return float(binned.sum() / total), float(below.sum() / total), float(above.sum() / total)


def _harmonic_gap(start: FloatArray, count: FloatArray) -> FloatArray:
    """sum_{j=1}^{count} 1 / (start + j) for whole numbers = psi(start + count + 1) -
    psi(start + 1): its terms up to 1 / `_DIRECT` added, then psi's asymptotic series
    (the first term left out under 3e-15 from x = 33 on), the logarithms' difference
    taken as log1p."""
    gap = np.zeros_like(start)
    for j in range(1, _DIRECT + 1):
        gap += np.where((j <= count) & (start + j <= _DIRECT), 1.0 / (start + j), 0.0)
    added = np.minimum(count, np.maximum(_DIRECT - start, 0.0))
    start, count = start + added, count - added
    low, high = start + 1.0, start + count + 1.0
    return gap + np.log1p(count / low) + (_psi_tail(high) - _psi_tail(low))


def _psi_tail(x: FloatArray) -> FloatArray:
    """psi(x) - ln(x), asymptotically: -1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6)."""
    inverse = 1.0 / (x * x)
    return -0.5 / x - inverse * (1 / 12 - inverse * (1 / 120 - inverse / 252))


def ap_bound(histograms: Histograms) -> float:
    """The most any of `pr_curves`'s average precisions may be from the rows' (its
    distance to the farther end of `average_precision_range`); 0.0 without curves."""
    bounds = [0.0]
    for c in _curve_classes(histograms):
        _, below, above = _ap_distances(
            histograms.positives[c].astype(np.float64), histograms.negatives[c].astype(np.float64)
        )
        bounds.append(max(below, above))
    return max(bounds)
