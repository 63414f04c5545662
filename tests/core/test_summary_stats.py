"""Metrics from summaries against the exact ones (core.stats) and scikit-learn."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import digamma
from sklearn.metrics import average_precision_score, roc_auc_score

from mlci.core import curves, stats, summary, summary_stats
from mlci.core.intervals import Interval
from mlci.core.predictions import Predictions

ROWS = 20_000


def _classification(k: int, seed: int) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, ROWS)

    def model(skill: float) -> Predictions:
        logits = rng.normal(size=(ROWS, k))
        logits[np.arange(ROWS), true] += skill
        scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return Predictions(true, scores.argmax(axis=1), scores, tuple(range(k)), None)

    return model(1.5), model(1.2)


def _summary(candidate: Predictions, baseline: Predictions | None = None):
    assert candidate.scores is not None
    return summary.summarize_classification(
        candidate.classes,
        candidate.y_true,
        candidate.y_pred,
        candidate.scores,
        baseline_predicted=None if baseline is None else baseline.y_pred,
        baseline_scores=None if baseline is None else baseline.scores,
    )


@pytest.mark.parametrize("k", [2, 5])
def test_metrics_are_exact_but_the_auc_which_is_within_its_bound(k: int) -> None:
    candidate, _ = _classification(k, seed=k)
    exact = stats.compute_metrics(candidate, "classification")
    summarized = _summary(candidate)
    binned = summary_stats.compute_metrics(summarized)
    assert binned.keys() == exact.keys()
    for name, value in exact.items():
        if name != "roc_auc":
            assert binned[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert candidate.scores is not None
    reference = (
        roc_auc_score(candidate.y_true, candidate.scores[:, 1])
        if k == 2
        else roc_auc_score(candidate.y_true, candidate.scores, multi_class="ovr")
    )
    bound = summary_stats.approximation(summarized).auc_bound
    assert 0 < bound < 0.01
    assert abs(binned["roc_auc"] - reference) <= bound
    assert abs(binned["roc_auc"] - exact["roc_auc"]) <= bound


def test_the_bound_holds_where_every_score_falls_in_few_bins() -> None:
    candidate, _ = _classification(2, seed=7)
    assert candidate.scores is not None
    coarse = summary.summarize_classification(
        candidate.classes, candidate.y_true, candidate.y_pred, candidate.scores, bins=4
    )
    binned = summary_stats.compute_metrics(coarse)["roc_auc"]
    bound = summary_stats.approximation(coarse).auc_bound
    exact = roc_auc_score(candidate.y_true, candidate.scores[:, 1])
    assert bound > 0.01  # four bins: a loose bound, and it still holds
    assert abs(binned - exact) <= bound
    assert summary_stats.approximation(coarse).method == "binned, 4 bins"


def _assert_same_but_the_auc(ours: dict[str, Interval], exact: dict[str, Interval]) -> None:
    assert ours.keys() == exact.keys()
    for name, interval in exact.items():
        if name != "roc_auc":
            assert ours[name].low == pytest.approx(interval.low, abs=1e-9), name
            assert ours[name].high == pytest.approx(interval.high, abs=1e-9), name


@pytest.mark.parametrize("k", [2, 4])
def test_intervals_match_the_exact_ones(k: int) -> None:
    candidate, baseline = _classification(k, seed=10 + k)
    exact = stats.metric_intervals(candidate, "classification", resamples=200)
    binned = summary_stats.metric_intervals(_summary(candidate), resamples=200)
    _assert_same_but_the_auc(binned, exact)
    auc, auc_exact = binned["roc_auc"], exact["roc_auc"]
    width, exact_width = auc.high - auc.low, auc_exact.high - auc_exact.low
    assert exact_width * 0.95 <= width <= exact_width * (1.1 if k == 2 else 2.5)
    assert auc.method == "delong (binned, 1000 bins)"

    paired_exact = stats.paired_difference_intervals(
        candidate, baseline, "classification", resamples=200
    )
    paired = summary_stats.paired_difference_intervals(_summary(candidate, baseline), resamples=200)
    _assert_same_but_the_auc(paired, paired_exact)
    auc, auc_exact = paired["roc_auc"], paired_exact["roc_auc"]
    width, exact_width = auc.high - auc.low, auc_exact.high - auc_exact.low
    assert exact_width * 0.9 <= width <= exact_width * (1.15 if k == 2 else 2.5)
    middle = (auc.low + auc.high) / 2
    assert abs(middle - (auc_exact.low + auc_exact.high) / 2) < 0.01


def test_regression_metrics_and_intervals_from_sums_are_exact() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(5, 2, ROWS)
    candidate = Predictions(y, y + rng.normal(0, 0.5, ROWS), None, (), None)
    baseline = Predictions(y, y + rng.normal(0.1, 0.6, ROWS), None, (), None)
    summarized = summary.summarize_regression(y, candidate.y_pred, baseline.y_pred)
    exact = stats.compute_metrics(candidate, "regression")
    binned = summary_stats.compute_metrics(summarized)
    assert binned == pytest.approx(exact, rel=1e-9)
    for ours, theirs in (
        (
            summary_stats.metric_intervals(summarized),
            stats.metric_intervals(candidate, "regression"),
        ),
        (
            summary_stats.paired_difference_intervals(summarized),
            stats.paired_difference_intervals(candidate, baseline, "regression"),
        ),
    ):
        assert ours.keys() == theirs.keys()
        for name, interval in theirs.items():
            assert ours[name].low == pytest.approx(interval.low, rel=1e-6), name
            assert ours[name].high == pytest.approx(interval.high, rel=1e-6), name


def test_curves_from_histograms_against_the_exact_ones_and_sklearn() -> None:
    candidate, _ = _classification(4, seed=21)
    assert candidate.scores is not None
    histograms = _summary(candidate).candidate
    assert histograms is not None
    binned = summary_stats.compute_metrics(_summary(candidate))
    roc = summary_stats.roc_curves(histograms, candidate.classes)
    exact_roc = curves.roc_curves(candidate)
    assert [curve.name for curve in roc] == [curve.name for curve in exact_roc]
    assert sum(curve.area or 0 for curve in roc) / 4 == pytest.approx(binned["roc_auc"])
    for curve, exact in zip(roc, exact_roc, strict=True):
        assert abs((curve.area or 0) - (exact.area or 0)) < 0.001
    bound = summary_stats.ap_bound(histograms)
    assert 0 < bound < 0.01
    for c, curve in enumerate(summary_stats.pr_curves(histograms, candidate.classes)):
        reference = average_precision_score(candidate.y_true == c, candidate.scores[:, c])
        assert abs((curve.area or 0) - reference) <= bound


def _on_the_edges(k: int, rows: int, seed: int) -> Predictions:
    """Probabilities on the diagram's bin edges (0.3 and linspace's 0.30000000000000004,
    which differ), an ulp either side, and top labels tied between columns."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 1.0, 11)
    near = np.concatenate([edges, np.nextafter(edges, 2.0), np.nextafter(edges, -1.0)])
    near = np.concatenate([near, np.arange(11) / 10, np.arange(1001) / 1000])
    plotted = np.clip(rng.choice(near, rows), 1.0 / k, 1.0)  # a top label is at least 1/k
    scores = np.empty((rows, k))
    scores[:] = ((1.0 - plotted) / (k - 1))[:, None]
    column = rng.integers(0, k, rows)
    scores[np.arange(rows), column] = plotted
    tied = rng.random(rows) < 0.2  # two columns share the top probability
    halves = np.full(int(tied.sum()), 0.5 if k == 2 else 0.4)
    scores[tied] = (1.0 - 2 * halves[:, None]) / max(k - 2, 1)
    scores[tied, 0 if k == 2 else 1] = halves
    scores[tied, k - 1] = halves
    true = rng.integers(0, k, rows)
    return Predictions(true, scores.argmax(axis=1), scores, tuple(range(k)), None)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("edges", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_calibration_from_the_summary_is_the_exact_diagram(
    k: int, edges: bool, dtype: type
) -> None:
    found = _on_the_edges(k, 5_000, seed=k) if edges else _classification(k, seed=22)[0]
    assert found.scores is not None
    scores = found.scores.astype(dtype)  # float32 stays float32 (Parquet's float)
    candidate = Predictions(found.y_true, found.y_pred, scores, found.classes, None)
    histograms = _summary(candidate).candidate
    assert histograms is not None
    exact = curves.calibration(candidate)
    binned = summary_stats.calibration(histograms, candidate.classes)
    assert exact is not None and binned is not None
    assert binned.name == exact.name == ("class 1" if k == 2 else "top label")
    assert binned.y == exact.y  # the same rows in each bin: the same fractions
    assert binned.x == pytest.approx(exact.x, rel=1e-12, abs=0)


def test_the_fine_bins_lie_inside_the_diagrams_bins() -> None:
    edges = np.linspace(0.0, 1.0, 11)
    steps = np.arange(-4, 5)
    probabilities = [edges, np.arange(1001) / 1000, np.arange(11) / 10, np.cumsum([0.1] * 10)]
    for _ in range(4):  # up to four ulps either side of each edge
        edges = np.nextafter(edges, 2.0)
        probabilities.append(edges)
    down = np.linspace(0.0, 1.0, 11)
    for _ in steps:
        down = np.nextafter(down, -1.0)
        probabilities.append(down[1:])
    found = np.clip(np.concatenate(probabilities), 0.0, 1.0)
    fine = summary.confidence_bin(found)
    diagram = np.searchsorted(np.linspace(0.0, 1.0, 11)[1:-1], found)  # core.curves's bins
    assert np.array_equal(fine // 100, diagram)
    assert fine.min() >= 0 and fine.max() == summary.CONFIDENCE_BINS - 1
    assert summary.confidence_bin(np.array([0.30000000000000004]))[0] == 299  # not 300


def test_calibration_needs_two_classes_and_rows() -> None:
    none = summary.summarize_classification((0, 1, 2), np.zeros(0, int), np.zeros(0, int), None)
    assert none.candidate is None
    empty = summary.summarize_classification(
        (0, 1, 2), np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3))
    )
    assert empty.candidate is not None
    assert summary_stats.calibration(empty.candidate, (0, 1, 2)) is None


# -- The average precision's bound --------------------------------------------------------


def _ap_within_range(true: np.ndarray, scores: np.ndarray, bins: int) -> float:
    """Asserts that each class's scikit-learn average precision and binned one lie in
    `average_precision_range`, and the binned one within `ap_bound` of sklearn's; returns
    the bound."""
    k = scores.shape[1]
    histograms = summary.histograms(true, scores, bins)
    bound = summary_stats.ap_bound(histograms)
    drawn = summary_stats.pr_curves(histograms, tuple(range(k)))
    with_rows = [c for c in ([1] if k == 2 else range(k)) if (true == c).any()]
    assert [curve.name for curve in drawn] == [f"class {c}" for c in with_rows]
    for c, curve in zip(with_rows, drawn, strict=True):
        assert curve.area is not None
        exact = average_precision_score(true == c, scores[:, c])
        low, high = summary_stats.average_precision_range(
            histograms.positives[c], histograms.negatives[c]
        )
        assert low - 1e-12 <= exact <= high + 1e-12
        assert low - 1e-12 <= curve.area <= high + 1e-12
        assert abs(curve.area - exact) <= max(curve.area - low, high - curve.area) + 1e-12
        assert max(curve.area - low, high - curve.area) <= bound + 1e-12
    return bound


def _scores(rows: int, k: int, seed: int, decimals: int | None = None) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, rows)
    logits = rng.normal(size=(rows, k))
    logits[np.arange(rows), true] += 1.5
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return true, scores if decimals is None else np.round(scores, decimals)


@pytest.mark.parametrize(
    ("k", "bins", "decimals", "measured"),
    [
        (2, 1000, None, 0.0004),  # continuous scores, many bins
        (5, 1000, None, 0.0013),
        (2, 4, None, 0.08),  # few bins: a loose bound, which still holds
        (3, 1000, 2, 0.008),  # scores tied in hundredths: ten bins each, nine of them empty
        (4, 10, 3, 0.1),  # ties within a bin, and class 3 with no rows (no curve)
    ],
)
def test_average_precision_is_within_its_bound_of_sklearns(
    k: int, bins: int, decimals: int | None, measured: float
) -> None:
    true, scores = _scores(ROWS, k, seed=k + bins, decimals=decimals)
    if k == 4:
        true[true == 3] = 0
    bound = _ap_within_range(true, scores, bins)
    assert measured / 2 < bound < measured * 2
    found = summary.summarize_classification(
        tuple(range(k)), true, scores.argmax(axis=1), scores, bins=bins
    )
    assert summary_stats.approximation(found).ap_bound == bound


def test_the_range_is_what_the_bins_order_of_rows_within_it_reaches() -> None:
    """Every order of one bin's rows (ties too), between rows of distinct scores in bins
    of their own: scikit-learn's lowest and highest average precision are the range's."""
    for above, p, q in itertools.product(([], [1], [0], [1, 0], [0, 0, 1]), (1, 2, 3), (0, 1)):
        bin_true = [1] * p + [0] * q
        true = np.array([*above, *bin_true, 1, 0])  # rows below: a positive, a negative
        found = []
        for levels in itertools.product(range(p + q), repeat=p + q):
            scores = [90.0 - i for i in range(len(above))] + [10.0 + v for v in levels] + [2, 1]
            found.append(average_precision_score(true, scores))
        positives = np.array([0, 1, p, *above[::-1]])  # lowest bin first
        negatives = np.array([1, 0, q, *(1 - np.array(above[::-1], dtype=int))])
        low, high = summary_stats.average_precision_range(positives, negatives)
        assert min(found) == pytest.approx(low, abs=1e-12), (above, p, q)
        assert max(found) == pytest.approx(high, abs=1e-12), (above, p, q)


def test_a_tie_of_positives_reaches_higher_than_any_order_of_distinct_scores() -> None:
    """sklearn takes tied scores as one step, at the precision at its end: two positives
    tied under a negative get 2/3 each, where one by one they get 1/2 and 2/3."""
    true = np.array([0, 1, 1])
    assert average_precision_score(true, [0.9, 0.5, 0.5]) == pytest.approx(2 / 3)
    assert average_precision_score(true, [0.9, 0.5, 0.4]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    low, high = summary_stats.average_precision_range(np.array([2, 0]), np.array([0, 1]))
    assert (low, high) == pytest.approx(((1 / 2 + 2 / 3) / 2, 2 / 3))


def test_the_bound_is_small_for_many_rows_of_continuous_scores() -> None:
    true, scores = _scores(100_000, 2, seed=1)
    bound = _ap_within_range(true, scores, 1000)
    assert 1e-4 < bound < 1e-3  # 0.0004: the binned AP is 0.00015 from sklearn's


def test_the_bound_is_zero_where_no_bin_can_reorder_its_positives() -> None:
    """Each bin of one row, or of positives only above every negative: the rows'
    average precision is the binned one, and the bound says so. Bins whose rows share
    one score have the binned one too, but the bins cannot tell: the bound is not 0."""
    rng = np.random.default_rng(4)
    alone = (rng.choice(900, 300, replace=False) + 0.5) / 1000  # one row per bin
    top = 0.9 + rng.random(200) / 10  # positives only, many to a bin
    first = np.concatenate([alone, top])
    true = np.concatenate([rng.integers(0, 2, 300), np.ones(200, dtype=int)])
    scores = np.column_stack([1 - first, first])
    assert _ap_within_range(true, scores, 1000) == 0.0
    (curve,) = summary_stats.pr_curves(summary.histograms(true, scores, 1000), (0, 1))
    assert curve.area == pytest.approx(average_precision_score(true, first), rel=1e-12)

    tied = (rng.integers(0, 1000, 5000) + 0.5) / 1000  # one score per bin, many rows
    true = (rng.random(5000) < tied).astype(int)
    scores = np.column_stack([1 - tied, tied])
    assert _ap_within_range(true, scores, 1000) > 0.0
    (curve,) = summary_stats.pr_curves(summary.histograms(true, scores, 1000), (0, 1))
    assert curve.area == pytest.approx(average_precision_score(true, tied), rel=1e-12)


def test_the_range_against_its_sums_term_by_term() -> None:
    """50,000 rows in 200 bins, counts from 0 to hundreds: the range's ends are the sums
    over each bin's positives, added one by one (math.fsum), to float rounding."""
    rng = np.random.default_rng(6)
    positives = rng.integers(0, 400, 200) * (rng.random(200) < 0.8)
    negatives = rng.integers(0, 100, 200)
    low, high = summary_stats.average_precision_range(positives, negatives)
    lows, highs, above, positive = [], [], 0, 0
    for p, q in zip(positives[::-1].tolist(), negatives[::-1].tolist(), strict=True):
        lows += [(positive + j) / (above + q + j) for j in range(1, p + 1)]
        highs += [(positive + p) / (above + p)] * p
        above, positive = above + p + q, positive + p
    assert low == pytest.approx(math.fsum(lows) / positive, rel=1e-13)
    assert high == pytest.approx(math.fsum(highs) / positive, rel=1e-13)


def test_the_range_at_100_million_rows_against_the_digamma_form() -> None:
    """10^8 rows in 1000 bins, some without positives: the range's ends agree with
    p - (c - a)(psi(c + p + 1) - psi(c + 1)) summed (scipy's digamma), which loses ~1e-9
    to cancellation, and the binned AP is inside."""
    rng = np.random.default_rng(5)
    shape = np.linspace(0.01, 1.0, 1000) ** 3
    positives = rng.multinomial(10**7, shape / shape.sum())
    positives[400:420] = 0
    negatives = rng.multinomial(9 * 10**7, shape[::-1] / shape.sum())
    low, high = summary_stats.average_precision_range(positives, negatives)
    p, q = positives[::-1].astype(float), negatives[::-1].astype(float)
    a, b = np.cumsum(p) - p, np.cumsum(p + q) - p - q
    c = b + q
    expected_low = (p - (c - a) * (digamma(c + p + 1) - digamma(c + 1))).sum() / p.sum()
    expected_high = (p * (a + p) / np.maximum(b + p, 1)).sum() / p.sum()
    binned = (p * (a + p) / np.maximum(b + p + q, 1)).sum() / p.sum()
    assert low == pytest.approx(expected_low, rel=1e-8)
    assert high == pytest.approx(expected_high, rel=1e-12)
    assert low < binned < high and high - low < 0.002
