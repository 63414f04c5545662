"""Metrics from predictions against scikit-learn; intervals: reproducibility and coverage."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from mlci.core import stats
from mlci.core.stats import (
    Interval,
    Predictions,
    compute_metrics,
    confusion_matrix,
    metric_intervals,
    paired_difference_intervals,
)

COUNT_METRICS = [
    "accuracy",
    "balanced_accuracy",
    *(f"{m}_{a}" for a in ("macro", "micro", "weighted") for m in ("precision", "recall", "f1")),
]


def classified(y_true: Any, y_pred: Any, scores: Any = None, classes: Any = None) -> Predictions:
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if classes is None:
        classes = np.union1d(np.unique(true), np.unique(pred)).tolist()
    probabilities = None if scores is None else np.asarray(scores, dtype=np.float64)
    return Predictions(true, pred, probabilities, tuple(classes), None)


def regressed(y_true: Any, y_pred: Any) -> Predictions:
    return Predictions(
        np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64), None, (), None
    )


def noisy_labels(rng: np.random.Generator, classes: list[Any], n: int, right: float) -> Any:
    """(y_true, y_pred, scores): y_pred is y_true with probability `right`, else random."""
    k = len(classes)
    true = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < right, true, rng.integers(0, k, n))
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[true] * rng.random((n, 1))
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.asarray(classes)
    return labels[true], labels[pred], scores


def sklearn_metrics(pred: Predictions) -> dict[str, float]:
    """What scikit-learn says, with zero_division=0 (the value its default warns about)."""
    y, yp, classes = pred.y_true, pred.y_pred, list(pred.classes)
    seen = np.union1d(np.unique(y), np.unique(yp))
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true", etc.
        warnings.simplefilter("ignore")
        expected = {
            "accuracy": skm.accuracy_score(y, yp),
            "balanced_accuracy": skm.balanced_accuracy_score(y, yp),
        }
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, yp, average=average, zero_division=0)
        expected |= {f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f}
    p, r, f, _ = skm.precision_recall_fscore_support(y, yp, labels=seen, zero_division=0)
    for index, label in enumerate(seen.tolist()):
        expected |= {f"precision.{label}": p[index], f"recall.{label}": r[index]}
        expected[f"f1.{label}"] = f[index]
    if pred.scores is not None:
        expected["log_loss"] = skm.log_loss(y, y_proba=pred.scores, labels=classes)
        if len(classes) == 2:
            expected["roc_auc"] = skm.roc_auc_score(y, pred.scores[:, 1])
        else:
            expected["roc_auc"] = skm.roc_auc_score(
                y, pred.scores, multi_class="ovr", labels=classes
            )
    return {name: float(value) for name, value in expected.items()}


def assert_same_metrics(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


# -- Point values against scikit-learn ---------------------------------------------------


def test_binary_metrics_match_sklearn() -> None:
    y, yp, scores = noisy_labels(np.random.default_rng(1), [0, 1], 400, right=0.7)
    pred = classified(y, yp, scores)

    assert_same_metrics(compute_metrics(pred, "classification"), sklearn_metrics(pred))


def test_multiclass_metrics_match_sklearn() -> None:
    y, yp, scores = noisy_labels(np.random.default_rng(2), list(range(10)), 2000, right=0.6)
    pred = classified(y, yp, scores)

    assert_same_metrics(compute_metrics(pred, "classification"), sklearn_metrics(pred))


def test_string_labels_match_sklearn_and_name_each_class() -> None:
    y, yp, scores = noisy_labels(np.random.default_rng(3), ["bird", "cat", "dog"], 300, 0.7)
    pred = classified(y, yp, scores)

    metrics = compute_metrics(pred, "classification")

    assert_same_metrics(metrics, sklearn_metrics(pred))
    assert {"precision.cat", "recall.dog", "f1.bird"} <= set(metrics)


def test_a_class_never_predicted_scores_zero_like_sklearn() -> None:
    rng = np.random.default_rng(4)
    y, yp, scores = noisy_labels(rng, [0, 1, 2], 300, right=0.7)
    yp = np.where(yp == 2, 1, yp)  # the model never says 2
    pred = classified(y, yp, scores)

    metrics = compute_metrics(pred, "classification")

    assert_same_metrics(metrics, sklearn_metrics(pred))
    assert metrics["precision.2"] == 0.0
    assert metrics["f1.2"] == 0.0


def test_a_predicted_class_absent_from_y_true_counts_like_sklearn() -> None:
    # balanced_accuracy leaves class 3 out; the macro averages count it (recall 0).
    pred = classified([0, 1, 2, 0, 1, 2, 0], [0, 1, 3, 0, 2, 2, 3])

    metrics = compute_metrics(pred, "classification")

    assert_same_metrics(metrics, sklearn_metrics(pred))
    assert metrics["balanced_accuracy"] != metrics["recall_macro"]


def test_a_class_with_only_a_probability_column_is_not_a_count_metric_class() -> None:
    rng = np.random.default_rng(5)
    y, yp, _ = noisy_labels(rng, [0, 1], 200, right=0.8)
    scores = rng.dirichlet([1, 1, 1], 200)
    pred = classified(y, yp, scores, classes=[0, 1, 2])

    metrics = compute_metrics(pred, "classification")

    assert "f1.2" not in metrics
    expected_auc = np.mean([skm.roc_auc_score(y == c, scores[:, c]) for c in (0, 1)])
    assert metrics["roc_auc"] == pytest.approx(expected_auc, rel=1e-12)
    assert metrics["log_loss"] == pytest.approx(
        skm.log_loss(y, y_proba=scores, labels=[0, 1, 2]), rel=1e-12
    )


def test_log_loss_clips_a_zero_probability_like_sklearn() -> None:
    scores = [[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]]
    pred = classified([0, 0, 1], [0, 1, 1], scores)

    loss = compute_metrics(pred, "classification")["log_loss"]

    assert math.isfinite(loss)
    assert loss == pytest.approx(skm.log_loss([0, 0, 1], y_proba=scores), rel=1e-12)


def test_no_roc_auc_when_y_true_holds_one_class() -> None:
    pred = classified([1, 1, 1], [1, 0, 1], [[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]], classes=[0, 1])

    metrics = compute_metrics(pred, "classification")

    assert "roc_auc" not in metrics
    assert "roc_auc" not in metric_intervals(pred, "classification", resamples=50)


def test_no_probability_metrics_without_scores() -> None:
    metrics = compute_metrics(classified([0, 1, 1], [0, 1, 0]), "classification")

    assert "roc_auc" not in metrics
    assert "log_loss" not in metrics


def test_confusion_matrix_matches_sklearn_in_the_given_class_order() -> None:
    y = ["cat", "dog", "dog", "bird", "cat"]
    yp = ["cat", "cat", "dog", "dog", "bird"]
    classes = ["dog", "bird", "cat"]

    assert confusion_matrix(y, yp, classes).tolist() == (
        skm.confusion_matrix(y, yp, labels=classes).tolist()
    )


def test_confusion_matrix_rejects_an_unknown_label() -> None:
    with pytest.raises(ValueError, match="'fish' is not one of the classes"):
        confusion_matrix(["cat"], ["fish"], ["cat", "dog"])


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(10, 3, 500)
    y[:3] = 0.0  # mape divides by max(|y|, eps)
    yp = y + rng.normal(0, 1, 500)

    metrics = compute_metrics(regressed(y, yp), "regression")

    assert metrics == {
        "mae": pytest.approx(skm.mean_absolute_error(y, yp), rel=1e-12),
        "rmse": pytest.approx(skm.root_mean_squared_error(y, yp), rel=1e-12),
        "r2": pytest.approx(skm.r2_score(y, yp), rel=1e-12),
        "mape": pytest.approx(skm.mean_absolute_percentage_error(y, yp), rel=1e-12),
    }


@pytest.mark.parametrize("y_pred", [[2.0, 2.0, 2.0], [2.0, 2.0, 3.0]])
def test_r2_of_a_constant_y_true_is_sklearns_force_finite(y_pred: list[float]) -> None:
    metrics = compute_metrics(regressed([2.0, 2.0, 2.0], y_pred), "regression")

    assert metrics["r2"] == skm.r2_score([2.0, 2.0, 2.0], y_pred)


# -- Intervals ---------------------------------------------------------------------------


def some_classification(n: int = 600, seed: int = 7) -> Predictions:
    y, yp, scores = noisy_labels(np.random.default_rng(seed), [0, 1, 2], n, right=0.75)
    return classified(y, yp, scores)


def test_every_metric_gets_an_interval_around_its_value() -> None:
    pred = some_classification()

    metrics = compute_metrics(pred, "classification")
    intervals = metric_intervals(pred, "classification", resamples=300)

    assert set(intervals) == set(metrics)
    for name, value in metrics.items():
        interval = intervals[name]
        assert interval.confidence == 0.95
        assert interval.low <= value <= interval.high, name


def test_methods_per_metric() -> None:
    small = metric_intervals(some_classification(), "classification", resamples=100)
    large = metric_intervals(
        some_classification(n=stats.BOOTSTRAP_MAX_ROWS + 1), "classification", resamples=100
    )

    assert {small[name].method for name in COUNT_METRICS} == {"bootstrap"}
    assert small["roc_auc"].method == large["roc_auc"].method == "delong"
    assert small["log_loss"].method == "bootstrap"
    assert large["log_loss"].method == "normal"


def test_same_seed_same_intervals_other_seed_other_intervals() -> None:
    pred = some_classification()

    first = metric_intervals(pred, "classification", resamples=200, seed=3)
    again = metric_intervals(pred, "classification", resamples=200, seed=3)
    other = metric_intervals(pred, "classification", resamples=200, seed=4)

    assert first == again
    assert first["accuracy"] != other["accuracy"]


def test_paired_intervals_are_reproducible() -> None:
    candidate = some_classification(seed=1)
    baseline = classified(candidate.y_true, np.roll(candidate.y_pred, 1), candidate.scores)

    first = paired_difference_intervals(candidate, baseline, "classification", resamples=200)
    again = paired_difference_intervals(candidate, baseline, "classification", resamples=200)

    assert first == again


def test_higher_confidence_gives_a_wider_interval() -> None:
    pred = some_classification()

    narrow = metric_intervals(pred, "classification", confidence=0.8, resamples=400)
    wide = metric_intervals(pred, "classification", confidence=0.99, resamples=400)

    for name in ("accuracy", "roc_auc", "log_loss"):
        assert wide[name].high - wide[name].low > narrow[name].high - narrow[name].low, name


def test_table_bootstrap_spread_is_the_row_bootstrap_spread() -> None:
    # Accuracy of n rows resampled: sd sqrt(p(1-p)/n). Width of the 95% interval ~ 3.92 sd.
    n = 2000
    right = np.arange(n) < 1600  # accuracy 0.8
    pred = classified(np.zeros(n, dtype=int), np.where(right, 0, 1))

    interval = metric_intervals(pred, "classification", resamples=2000)["accuracy"]

    expected = 2 * NormalDist().inv_cdf(0.975) * math.sqrt(0.8 * 0.2 / n)
    assert interval.high - interval.low == pytest.approx(expected, rel=0.1)


def test_rare_class_macro_average_interval_stays_within_range() -> None:
    # A class with one row vanishes from many resamples; the macro average then counts the
    # classes present in the resample, as sklearn would.
    y = np.array([0] * 50 + [1] * 49 + [2])
    pred = classified(y, y.copy())

    intervals = metric_intervals(pred, "classification", resamples=300)

    assert intervals["f1_macro"] == Interval(1.0, 1.0, 0.95, "bootstrap")
    assert intervals["balanced_accuracy"].low == 1.0


def test_invalid_options_are_refused() -> None:
    pred = some_classification()

    with pytest.raises(ValueError, match="confidence"):
        metric_intervals(pred, "classification", confidence=95)
    with pytest.raises(ValueError, match="resamples"):
        metric_intervals(pred, "classification", resamples=0)
    with pytest.raises(ValueError, match="task"):
        compute_metrics(pred, "ranking")  # type: ignore[arg-type]


# -- DeLong ------------------------------------------------------------------------------


def delong_textbook(y: Any, first: Any, second: Any) -> tuple[float, float, float]:
    """DeLong et al. (1988) from the pairwise kernel: var(A1), var(A2), cov(A1, A2)."""
    positive = y == 1

    def placements(score: Any) -> tuple[Any, Any]:
        pos, neg = score[positive][:, None], score[~positive][None, :]
        kernel = (pos > neg) + 0.5 * (pos == neg)
        return kernel.mean(axis=1), kernel.mean(axis=0)

    v10_a, v01_a = placements(first)
    v10_b, v01_b = placements(second)
    m, n = positive.sum(), (~positive).sum()
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    covariance = s10 / m + s01 / n
    return covariance[0, 0], covariance[1, 1], covariance[0, 1]


def binary_scores(rng: np.random.Generator, y: Any, separation: float) -> Any:
    raw = rng.normal(size=len(y)) + separation * y
    return np.round(1 / (1 + np.exp(-raw)), 2)  # rounded: ties, as real scores have


def test_binary_auc_interval_uses_delongs_variance() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300)
    score = binary_scores(rng, y, 1.0)
    pred = classified(y, (score > 0.5).astype(int), np.column_stack([1 - score, score]))

    interval = metric_intervals(pred, "classification")["roc_auc"]

    variance, _, _ = delong_textbook(y, score, score)
    z = NormalDist().inv_cdf(0.975)
    auc = skm.roc_auc_score(y, score)
    assert interval.low == pytest.approx(auc - z * math.sqrt(variance), rel=1e-9)
    assert interval.high == pytest.approx(auc + z * math.sqrt(variance), rel=1e-9)


def test_paired_auc_interval_uses_delongs_paired_covariance() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    first, second = binary_scores(rng, y, 1.2), binary_scores(rng, y, 0.8)
    candidate = classified(y, (first > 0.5).astype(int), np.column_stack([1 - first, first]))
    baseline = classified(y, (second > 0.5).astype(int), np.column_stack([1 - second, second]))

    interval = paired_difference_intervals(candidate, baseline, "classification")["roc_auc"]

    var_a, var_b, cov = delong_textbook(y, first, second)
    difference = skm.roc_auc_score(y, first) - skm.roc_auc_score(y, second)
    margin = NormalDist().inv_cdf(0.975) * math.sqrt(var_a + var_b - 2 * cov)
    assert interval.method == "delong"
    assert interval.low == pytest.approx(difference - margin, rel=1e-9)
    assert interval.high == pytest.approx(difference + margin, rel=1e-9)


# -- Coverage: does a 95% interval cover the true value about 95% of the time? -----------


def coverage(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


def test_accuracy_interval_coverage() -> None:
    rng = np.random.default_rng(10)
    hits = []
    for _ in range(300):
        y = rng.integers(0, 2, 500)
        yp = np.where(rng.random(500) < 0.8, y, 1 - y)
        interval = metric_intervals(classified(y, yp), "classification", resamples=500)
        hits.append(interval["accuracy"].contains(0.8))

    assert 0.91 <= coverage(hits) <= 0.98


def test_paired_accuracy_difference_coverage() -> None:
    # Per row: both right 0.72, only the candidate 0.10, only the baseline 0.06, neither
    # 0.12: accuracies 0.82 and 0.78, difference 0.04.
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(300):
        outcome = rng.choice(4, size=500, p=[0.72, 0.10, 0.06, 0.12])
        y = rng.integers(0, 2, 500)
        candidate = np.where(np.isin(outcome, [0, 1]), y, 1 - y)
        baseline = np.where(np.isin(outcome, [0, 2]), y, 1 - y)
        intervals = paired_difference_intervals(
            classified(y, candidate, classes=[0, 1]),
            classified(y, baseline, classes=[0, 1]),
            "classification",
            resamples=500,
        )
        hits.append(intervals["accuracy"].contains(0.04))

    assert 0.91 <= coverage(hits) <= 0.98


def test_auc_interval_coverage() -> None:
    # Scores N(0, 1) for negatives and N(1, 1) for positives: AUC = Phi(1 / sqrt(2)).
    rng = np.random.default_rng(12)
    true_auc = NormalDist().cdf(1 / math.sqrt(2))
    hits = []
    for _ in range(300):
        y = rng.integers(0, 2, 300)
        score = 1 / (1 + np.exp(-(rng.normal(size=300) + y)))
        pred = classified(y, (score > 0.5).astype(int), np.column_stack([1 - score, score]))
        interval = metric_intervals(pred, "classification", resamples=1)
        hits.append(interval["roc_auc"].contains(true_auc))

    assert 0.91 <= coverage(hits) <= 0.98


@pytest.mark.parametrize("n", [200, stats.BOOTSTRAP_MAX_ROWS + 1])
def test_mae_interval_coverage_bootstrap_and_normal(n: int) -> None:
    # Errors N(0, 1): E|e| = sqrt(2 / pi).
    rng = np.random.default_rng(13)
    hits = []
    for _ in range(300):
        y = rng.normal(size=n)
        interval = metric_intervals(
            regressed(y, y + rng.normal(size=n)), "regression", resamples=200
        )
        hits.append(interval["mae"].contains(math.sqrt(2 / math.pi)))

    assert 0.91 <= coverage(hits) <= 0.98


# -- Paired differences ------------------------------------------------------------------


def test_identical_models_differ_by_exactly_zero_unlike_unpaired_intervals() -> None:
    pred = some_classification()

    intervals = paired_difference_intervals(pred, pred, "classification", resamples=200)
    alone = metric_intervals(pred, "classification", resamples=200)

    assert set(intervals) == set(compute_metrics(pred, "classification"))
    for name, interval in intervals.items():
        assert interval.low == interval.high == 0.0, name
    assert alone["accuracy"].high - alone["accuracy"].low > 0.05


def test_paired_interval_of_close_models_is_narrower_than_unpaired() -> None:
    # The candidate fixes 20 of the baseline's mistakes and makes 20 new ones: same accuracy.
    baseline = some_classification(n=2000)
    right = np.flatnonzero(baseline.y_pred == baseline.y_true)[:20]
    wrong = np.flatnonzero(baseline.y_pred != baseline.y_true)[:20]
    changed = baseline.y_pred.copy()
    changed[right] = (baseline.y_true[right] + 1) % 3
    changed[wrong] = baseline.y_true[wrong]
    candidate = classified(baseline.y_true, changed, baseline.scores)

    paired = paired_difference_intervals(candidate, baseline, "classification", resamples=500)
    alone = [metric_intervals(p, "classification", resamples=500) for p in (candidate, baseline)]

    assert paired["accuracy"].contains(0.0)
    for name in ("accuracy", "f1_macro", "recall.1"):
        unpaired = math.hypot(*(i[name].high - i[name].low for i in alone))
        assert paired[name].high - paired[name].low < unpaired / 3, name


def test_paired_difference_finds_a_better_model() -> None:
    rng = np.random.default_rng(15)
    y = rng.integers(0, 3, 3000)
    good = np.where(rng.random(3000) < 0.9, y, (y + 1) % 3)
    bad = np.where(rng.random(3000) < 0.8, y, (y + 1) % 3)

    intervals = paired_difference_intervals(
        classified(y, good), classified(y, bad), "classification", resamples=500
    )

    assert intervals["accuracy"].low > 0.05
    assert intervals["accuracy"].contains(float(np.mean(good == y) - np.mean(bad == y)))


def test_paired_regression_differences() -> None:
    rng = np.random.default_rng(16)
    y = rng.normal(size=400)
    noise = rng.normal(size=400)
    baseline = regressed(y, y + noise)
    candidate = regressed(y, y + 0.5 * noise)  # half the error on every row

    intervals = paired_difference_intervals(candidate, baseline, "regression", resamples=500)
    same = paired_difference_intervals(baseline, baseline, "regression", resamples=100)

    assert set(intervals) == {"mae", "rmse", "r2", "mape"}
    assert intervals["mae"].high < 0 and intervals["rmse"].high < 0 and intervals["r2"].low > 0
    assert all(i.low == i.high == 0.0 for i in same.values())


def test_paired_regression_accepts_y_true_rounded_differently() -> None:
    y = np.array([0.1, 1.7, 2.5, 3.3])
    candidate, baseline = regressed(y, y + 0.1), regressed(y * (1 + 1e-9), y + 0.2)

    intervals = paired_difference_intervals(candidate, baseline, "regression", resamples=50)

    assert intervals["mae"].high < 0


def test_paired_regression_uses_the_normal_interval_for_many_rows() -> None:
    rng = np.random.default_rng(17)
    n = stats.BOOTSTRAP_MAX_ROWS + 1
    y = rng.normal(size=n)
    noise = rng.normal(size=n)

    intervals = paired_difference_intervals(
        regressed(y, y + 0.9 * noise), regressed(y, y + noise), "regression"
    )

    assert {i.method for i in intervals.values()} == {"normal"}
    expected = -0.1 * float(np.mean(np.abs(noise)))
    assert intervals["mae"].contains(expected)
    assert intervals["mae"].high - intervals["mae"].low < 0.01  # the noise cancels


def test_paired_leaves_out_what_one_model_lacks() -> None:
    candidate = classified(
        [0, 1, 1, 0], [0, 1, 2, 0], [[0.9, 0.1, 0], [0.2, 0.8, 0], [0, 0, 1], [1, 0, 0]]
    )
    baseline = classified([0, 1, 1, 0], [0, 1, 1, 1])  # no scores, never says 2

    intervals = paired_difference_intervals(candidate, baseline, "classification", resamples=50)

    assert "f1.2" not in intervals
    assert "roc_auc" not in intervals and "log_loss" not in intervals
    assert {"accuracy", "f1.0", "f1.1"} <= set(intervals)


def test_paired_needs_aligned_predictions() -> None:
    first = classified([0, 1, 1], [0, 1, 1])
    second = classified([1, 1, 0], [0, 1, 1])

    with pytest.raises(ValueError, match="align"):
        paired_difference_intervals(first, second, "classification")
