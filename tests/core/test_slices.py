"""Per-slice gating: simulations whose truth is known, the correction, the estimates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score

from mlci.core.gate import Binning, Correction, Rule, SliceResult, SliceSpec
from mlci.core.predictions import Predictions
from mlci.core.slices import SliceGroup, adjust, assign, judge_slices
from mlci.core.stats import (
    SliceEstimates,
    metric_intervals,
    paired_difference_intervals,
    slice_estimates,
)

CLASSES = (0, 1, 2)


def models(truth: np.ndarray, accuracy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Predictions right with each row's probability `accuracy`, else the next class."""
    right = rng.random(len(truth)) < accuracy
    return np.where(right, truth, (truth + 1) % len(CLASSES))


def judge(
    segments: np.ndarray,
    truth: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    rule: Rule,
    correction: Correction = "holm",
    min_rows: int = 100,
):  # type: ignore[no-untyped-def]
    """`rule` judged per segment; each model given by its labels, or by its probabilities
    (n, classes), its labels then their argmax."""
    spec = SliceSpec((Binning("segment"),))
    cand, base = model(truth, candidate), model(truth, baseline)
    slices = assign(spec, {"segment": segments})
    estimates = slice_estimates(
        cand, base, "classification", slices.codes, len(slices.labels), (rule.metric,)
    )
    return judge_slices([rule], [SliceGroup(slices, estimates, min_rows)], correction)


def model(truth: np.ndarray, given: np.ndarray) -> Predictions:
    if given.ndim == 2:
        return Predictions(truth, given.argmax(axis=1), given, tuple(range(given.shape[1])), None)
    return Predictions(truth, given, None, CLASSES, None)


def test_a_segment_that_loses_ten_points_fails_while_the_whole_gains_one() -> None:
    rng = np.random.default_rng(7)
    rows = 40_000
    segments = np.array([f"s{i % 19}" for i in range(rows)], dtype="U8")
    segments[: rows // 20] = "hurt"  # 5% of the rows
    truth = rng.integers(0, 3, rows)
    # The same draw decides both models' rows (their mistakes are correlated, as two
    # versions of one model's are): hurt goes from 0.85 to 0.75, the other 95% from 0.85
    # to 0.8658, so the whole gains a point.
    difficulty = rng.random(rows)
    baseline = np.where(difficulty < 0.85, truth, (truth + 1) % 3)
    accuracy = np.where(segments == "hurt", 0.75, 0.8658)
    candidate = np.where(difficulty < accuracy, truth, (truth + 1) % 3)
    overall = (candidate == truth).mean() - (baseline == truth).mean()
    assert overall == pytest.approx(0.01, abs=0.002)
    rule = Rule("accuracy", max_drop=0.02, confidence=0.95, slices=True)

    results = judge(segments, truth, candidate, baseline, rule)

    failed = [r for r in results if r.verdict == "fail"]
    assert [r.slice for r in failed] == [(("segment", "hurt"),)]
    (hurt,) = failed
    assert hurt.change == pytest.approx(-0.10, abs=0.03)
    assert hurt.trend == "worse"
    assert "accuracy in segment=hurt (2,000 rows): dropped" in hurt.message
    assert "Holm-adjusted p" in hurt.message
    assert hurt.interval is not None and hurt.interval.high < -0.02
    assert hurt.interval.method == "paired jackknife normal, per slice"


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_with_no_real_change_in_50_slices_at_most_5_percent_of_200_pull_requests_fail(
    correction: Correction,
) -> None:
    # Each pull request: a candidate exactly as good as the baseline in every slice, 200
    # rows per slice. `max_drop: 0` is the strictest rule: any drop is a regression, and
    # the true change (0) sits on the limit, where false alarms are likeliest.
    rng = np.random.default_rng(20)
    slices, per_slice, pull_requests = 50, 200, 200
    segments = np.repeat(np.array([f"s{i:02}" for i in range(slices)]), per_slice)
    rule = Rule("accuracy", max_drop=0.0, confidence=0.95, slices=True)
    failed = naive = 0
    for _ in range(pull_requests):
        truth = rng.integers(0, 3, len(segments))
        accuracy = np.full(len(segments), 0.85)
        baseline, candidate = models(truth, accuracy, rng), models(truth, accuracy, rng)
        results = judge(segments, truth, candidate, baseline, rule, correction)
        failed += any(r.verdict == "fail" for r in results)
        naive += any((r.change or 0) < 0 for r in results)  # a point-value per-slice gate
    assert failed <= 0.05 * pull_requests
    assert naive == pull_requests  # what the correction saves the team from


def test_holm_and_benjamini_hochberg_adjust_as_defined() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    # Holm: sorted p × (m - rank), made non-decreasing, capped at 1.
    ranked = np.sort(p) * (len(p) - np.arange(len(p)))
    holm = np.maximum.accumulate(ranked)[np.argsort(np.argsort(p))]
    assert adjust(p, "holm") == pytest.approx(holm)
    assert adjust(p, "bh") == pytest.approx(false_discovery_control(p, method="bh"))


def test_the_jackknife_on_count_tables_gives_the_textbook_standard_errors() -> None:
    rng = np.random.default_rng(3)
    rows = 30_000
    truth = rng.integers(0, 3, rows)
    segments = rng.integers(0, 4, rows)
    cand = Predictions(truth, models(truth, np.full(rows, 0.9), rng), None, CLASSES, None)
    base = Predictions(truth, models(truth, np.full(rows, 0.8), rng), None, CLASSES, None)

    (found,) = slice_estimates(cand, base, "classification", segments, 4, ("accuracy",)).values()

    for index in range(4):
        inside = segments == index
        n = inside.sum()
        ours = cand.y_pred[inside] == truth[inside]
        theirs = base.y_pred[inside] == truth[inside]
        p = ours.mean()
        assert found.value[index] == pytest.approx(p)
        assert found.value_se[index] == pytest.approx(np.sqrt(p * (1 - p) / n), rel=1e-3)
        # A paired difference of proportions: var = (p10 + p01 - (p10 - p01)²) / n.
        p10, p01 = (ours & ~theirs).mean(), (~ours & theirs).mean()
        paired = np.sqrt((p10 + p01 - (p10 - p01) ** 2) / n)
        assert found.change_se is not None
        assert found.change_se[index] == pytest.approx(paired, rel=1e-3)


def test_a_slice_below_its_min_rows_is_listed_but_not_gated() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 1_050)
    segments = np.array(["big"] * 1_000 + ["tiny"] * 50)
    baseline = truth.copy()
    candidate = np.where(segments == "tiny", (truth + 1) % 3, truth)  # tiny: all wrong
    rule = Rule("accuracy", max_drop=0.02, confidence=0.95, slices=True)

    results = judge(segments, truth, candidate, baseline, rule)

    by_name = {r.name: r for r in results}
    assert by_name["segment=tiny"].verdict == "skip"
    assert "too few to gate" in by_name["segment=tiny"].message
    assert by_name["segment=tiny"].skipped == "few rows"
    assert by_name["segment=big"].skipped is None
    assert by_name["segment=big"].verdict == "pass"


def test_numbers_are_binned_by_edges_and_quantiles_and_missing_values_get_a_slice() -> None:
    ages = np.array(["17", "18", "29.5", "30", "64", "65", "", "90"])
    by_edges = assign(SliceSpec((Binning("age", edges=(18, 30, 65)),)), {"age": ages})
    names = [label[0][1] for label in by_edges.labels]
    assert names == ["< 18", "[18, 30)", "[30, 65)", "≥ 65", "(missing)"]
    assert by_edges.rows.tolist() == [1, 2, 2, 2, 1]

    values = np.arange(100, dtype=np.float64)
    quartiles = assign(SliceSpec((Binning("x", quantiles=4),)), {"x": values})
    assert quartiles.rows.tolist() == [25, 25, 25, 25]

    crossed = assign(
        SliceSpec((Binning("a"), Binning("b"))),
        {"a": np.array(["x", "x", "y"]), "b": np.array(["1", "2", "1"])},
    )
    assert crossed.labels == (
        (("a", "x"), ("b", "1")),
        (("a", "x"), ("b", "2")),
        (("a", "y"), ("b", "1")),
    )


def test_a_binned_column_holding_text_names_the_column_and_the_row() -> None:
    with pytest.raises(ValueError, match=r"column age holds 'old' in row 2, not a number"):
        assign(SliceSpec((Binning("age", edges=(30,)),)), {"age": np.array(["20", "old"])})


def test_regression_metrics_get_per_slice_values_and_delta_method_errors() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(size=5_000)
    segments = rng.integers(0, 3, 5_000)
    cand = Predictions(truth, truth + rng.normal(0, 0.5, 5_000), None, (), None)
    base = Predictions(truth, truth + rng.normal(0, 0.6, 5_000), None, (), None)

    found = slice_estimates(cand, base, "regression", segments, 3, ("mae", "rmse"))

    for index in range(3):
        inside = segments == index
        ours = np.abs(truth - cand.y_pred)[inside]
        theirs = np.abs(truth - base.y_pred)[inside]
        assert found["mae"].value[index] == pytest.approx(ours.mean())
        assert found["mae"].value_se[index] == pytest.approx(
            ours.std(ddof=1) / np.sqrt(inside.sum())
        )
        assert found["mae"].change_se is not None
        assert found["mae"].change_se[index] == pytest.approx(
            (ours - theirs).std(ddof=1) / np.sqrt(inside.sum())
        )
        squared = (truth - cand.y_pred)[inside] ** 2
        assert found["rmse"].value[index] == pytest.approx(np.sqrt(squared.mean()))


def test_each_slice_interval_names_the_method_that_made_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counts: the jackknife, or the influence function above BOOTSTRAP_MAX_CELLS cells;
    means (log loss, regression): the delta method. gate.json and the report show it."""
    from mlci.core import stats

    rng = np.random.default_rng(5)
    rows = 6_000
    segments = np.array([f"s{i % 4}" for i in range(rows)], dtype="U4")
    truth = rng.integers(0, 3, rows)
    candidate, baseline = models(truth, 0.8, rng), models(truth, 0.8, rng)
    rule = Rule("accuracy", max_drop=0.05, confidence=0.95, slices=True)
    methods = {r.interval.method for r in judge(segments, truth, candidate, baseline, rule)}
    assert methods == {"paired jackknife normal, per slice"}

    monkeypatch.setattr(stats, "BOOTSTRAP_MAX_CELLS", 10)
    methods = {r.interval.method for r in judge(segments, truth, candidate, baseline, rule)}
    assert methods == {"paired influence function normal, per slice"}

    cand = Predictions(truth.astype(float), truth + rng.normal(0, 0.5, rows), None, (), None)
    slices = assign(SliceSpec((Binning("segment"),)), {"segment": segments})
    found = slice_estimates(cand, None, "regression", slices.codes, len(slices.labels), ("mae",))
    mae = Rule("mae", max=1.0, confidence=0.95, slices=True)
    results = judge_slices([mae], [SliceGroup(slices, found, 100)], "holm")
    assert {r.interval.method for r in results} == {"delta method normal, per slice"}


# -- roc_auc: DeLong per slice -----------------------------------------------------------


def probabilities(
    truth: np.ndarray, k: int, separation: float, rng: np.random.Generator
) -> np.ndarray:
    """Each row's class probabilities, the true class's raised by `separation`, in
    hundredths that sum to 1 (the rest to the likeliest class): ties, as real scores have."""
    logits = rng.normal(size=(len(truth), k)) + separation * np.eye(k)[truth]
    exp = np.exp(logits)
    hundredths = np.floor(100 * exp / exp.sum(axis=1, keepdims=True))
    hundredths[np.arange(len(truth)), hundredths.argmax(axis=1)] += 100 - hundredths.sum(axis=1)
    return hundredths / 100


def delong(truth: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """DeLong et al. (1988) from the pairwise kernel, one-vs-rest macro over the classes
    present (the larger label's column alone for two classes): the AUC and each row's
    share of its error, Σ over classes of (placement - AUC) / (the row's side's size)."""
    present = [c for c in range(k) if (truth == c).any()]
    used = [1] if k == 2 else present
    aucs, shares = [], np.zeros(len(truth))
    for c in used:
        positive = truth == c
        pos, neg = scores[positive, c][:, None], scores[~positive, c][None, :]
        kernel = (pos > neg) + 0.5 * (pos == neg)
        auc = kernel.mean()
        shares[positive] += (kernel.mean(axis=1) - auc) / positive.sum()
        shares[~positive] += (kernel.mean(axis=0) - auc) / (~positive).sum()
        aucs.append(auc)
    return float(np.mean(aucs)), shares / len(used)


def within_class_se(shares: np.ndarray, truth: np.ndarray) -> float:
    """sqrt(Σ over true classes of n_c/(n_c - 1) · Σ (share - class mean)²)."""
    total = 0.0
    for c in np.unique(truth):
        part = shares[truth == c]
        total += len(part) / (len(part) - 1) * ((part - part.mean()) ** 2).sum()
    return float(np.sqrt(total))


@pytest.mark.parametrize("k", [2, 4])
def test_roc_auc_per_slice_is_sklearns_with_delongs_standard_errors(k: int) -> None:
    rng = np.random.default_rng(11 + k)
    rows = 1_500
    truth = rng.integers(0, k, rows)
    segments = rng.integers(0, 3, rows)
    ours, theirs = probabilities(truth, k, 1.0, rng), probabilities(truth, k, 0.7, rng)
    classes = tuple(range(k))
    cand = Predictions(truth, ours.argmax(axis=1), ours, classes, None)
    base = Predictions(truth, theirs.argmax(axis=1), theirs, classes, None)

    found = slice_estimates(cand, base, "classification", segments, 3, ("roc_auc",))["roc_auc"]

    assert found.method == "delong"
    assert found.baseline is not None and found.change_se is not None
    z = 1.959963984540054
    for index in range(3):
        inside = segments == index
        y = truth[inside]

        def sklearn(scores: np.ndarray, y: np.ndarray = y) -> float:
            return float(roc_auc_score(y, scores[:, 1] if k == 2 else scores, multi_class="ovr"))

        assert found.value[index] == pytest.approx(sklearn(ours[inside]), abs=1e-12)
        assert found.baseline[index] == pytest.approx(sklearn(theirs[inside]), abs=1e-12)
        auc, share = delong(y, ours[inside], k)
        base_auc, base_share = delong(y, theirs[inside], k)
        assert found.value[index] == pytest.approx(auc, abs=1e-12)
        assert found.baseline[index] == pytest.approx(base_auc, abs=1e-12)
        assert found.value_se[index] == pytest.approx(within_class_se(share, y), rel=1e-9)
        change = within_class_se(share - base_share, y)
        assert found.change_se[index] == pytest.approx(change, rel=1e-9)
        # The overall computation on the slice's rows alone gives the same intervals.
        alone = Predictions(y, cand.y_pred[inside], ours[inside], classes, None)
        base_alone = Predictions(y, base.y_pred[inside], theirs[inside], classes, None)
        interval = metric_intervals(alone, "classification")["roc_auc"]
        assert (interval.high - interval.low) / (2 * z) == pytest.approx(found.value_se[index])
        paired = paired_difference_intervals(alone, base_alone, "classification")["roc_auc"]
        assert (paired.high - paired.low) / (2 * z) == pytest.approx(found.change_se[index])


def test_a_slice_missing_a_class_gets_the_auc_the_whole_would_on_its_rows() -> None:
    """As overall: two classes need both; more average over the classes present and need
    two of them. Where it is undefined the slice is NaN, listed but not gated."""
    rng = np.random.default_rng(21)
    # Binary: slice 1 holds negatives only.
    truth = np.r_[rng.integers(0, 2, 300), np.zeros(200, dtype=np.int64)]
    segments = np.repeat([0, 1], [300, 200])
    scores = probabilities(truth, 2, 1.0, rng)
    binary = Predictions(truth, scores.argmax(axis=1), scores, (0, 1), None)
    found = slice_estimates(binary, binary, "classification", segments, 2, ("roc_auc",))["roc_auc"]
    assert found.value[0] == pytest.approx(roc_auc_score(truth[:300], scores[:300, 1]))
    assert np.isnan([found.value[1], found.value_se[1]]).all()
    assert found.change_se is not None and found.change_se[0] == 0.0  # the same model
    assert np.isnan(found.change_se[1])

    # Three classes: slice 0 lacks class 2 (macro over 0 and 1), slice 1 holds class 0 only.
    truth = np.r_[rng.integers(0, 2, 300), np.zeros(200, dtype=np.int64), np.arange(300) % 3]
    segments = np.repeat([0, 1, 2], [300, 200, 300])
    scores = probabilities(truth, 3, 1.0, rng)
    three = Predictions(truth, scores.argmax(axis=1), scores, (0, 1, 2), None)
    found = slice_estimates(three, None, "classification", segments, 3, ("roc_auc",))["roc_auc"]
    with pytest.warns(UndefinedMetricWarning):  # sklearn: NaN for the absent class
        per_class = roc_auc_score(
            truth[:300], scores[:300], multi_class="ovr", labels=[0, 1, 2], average=None
        )
    assert found.value[0] == pytest.approx(np.nanmean(per_class))
    assert np.isfinite(found.value_se[0])
    assert np.isnan([found.value[1], found.value_se[1]]).all()
    assert np.isfinite([found.value[2], found.value_se[2]]).all()

    by_name = judged_by_segment(
        Rule("roc_auc", min=0.6, confidence=0.95, slices=True), segments, found
    )
    assert by_name["segment=1"].verdict == "skip"
    assert "200 rows, one class only in y_true: no AUC" in by_name["segment=1"].message
    assert by_name["segment=1"].skipped == "undefined"
    assert by_name["segment=0"].verdict == by_name["segment=2"].verdict == "pass"


def judged_by_segment(
    rule: Rule, segments: np.ndarray, found: SliceEstimates
) -> dict[str, SliceResult]:
    """Each slice's result of `rule` on the roc_auc estimates `found`, by slice name."""
    slices = assign(SliceSpec((Binning("segment"),)), {"segment": segments.astype(str)})
    results = judge_slices([rule], [SliceGroup(slices, {"roc_auc": found}, 100)], "holm")
    return {r.name: r for r in results}


def test_a_slice_with_a_single_positive_has_an_auc_but_is_not_gated() -> None:
    """DeLong's variance sums over each class's rows: a class of one row in a slice has
    none to estimate, and the slice's standard error would be too small (a false failure
    waiting to happen). Its AUC is shown; it is listed as too few to gate."""
    rng = np.random.default_rng(22)
    truth = np.r_[rng.integers(0, 2, 400), np.zeros(299, dtype=np.int64), [1]]
    segments = np.repeat([0, 1], [400, 300])
    scores = probabilities(truth, 2, 1.0, rng)
    binary = Predictions(truth, scores.argmax(axis=1), scores, (0, 1), None)
    found = slice_estimates(binary, binary, "classification", segments, 2, ("roc_auc",))["roc_auc"]

    assert found.value[1] == pytest.approx(roc_auc_score(truth[400:], scores[400:, 1]))
    assert found.baseline is not None and found.baseline[1] == found.value[1]
    assert found.change_se is not None
    assert np.isnan([found.value_se[1], found.change_se[1]]).all()
    assert np.isfinite([found.value_se[0], found.change_se[0]]).all()

    rule = Rule("roc_auc", max_drop=0.0, confidence=0.95, slices=True)
    by_name = judged_by_segment(rule, segments, found)
    assert by_name["segment=1"].verdict == "skip"
    assert "300 rows, a class with a single row in y_true: too few to gate its AUC" in (
        by_name["segment=1"].message
    )
    assert by_name["segment=1"].skipped == "one-row class"
    assert by_name["segment=0"].verdict == "pass"


def scored(truth: np.ndarray, separation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two-class probabilities: a logistic of a normal shifted by `separation` for positives."""
    score = 1 / (1 + np.exp(-(rng.normal(size=len(truth)) + separation * truth)))
    return np.column_stack([1 - score, score])


def test_a_segment_whose_auc_drops_fails_while_the_whole_holds() -> None:
    rng = np.random.default_rng(30)
    rows = 20_000
    segments = np.array([f"s{i % 19}" for i in range(rows)], dtype="U8")
    segments[: rows // 20] = "hurt"
    truth = rng.integers(0, 2, rows)
    baseline = scored(truth, np.full(rows, 1.5), rng)
    candidate = scored(truth, np.where(segments == "hurt", 0.8, 1.6), rng)
    rule = Rule("roc_auc", max_drop=0.02, confidence=0.95, slices=True)
    cand = Predictions(truth, candidate.argmax(axis=1), candidate, (0, 1), None)
    base = Predictions(truth, baseline.argmax(axis=1), baseline, (0, 1), None)
    overall = paired_difference_intervals(cand, base, "classification")["roc_auc"]
    assert overall.low > -0.02  # the overall rule passes

    results = judge(segments, truth, candidate, baseline, rule)

    failed = [r for r in results if r.verdict == "fail"]
    assert [r.slice for r in failed] == [(("segment", "hurt"),)]
    (hurt,) = failed
    assert hurt.change is not None and hurt.change < -0.1
    assert "roc_auc in segment=hurt (1,000 rows): dropped" in hurt.message
    assert hurt.interval is not None and hurt.interval.high < -0.02
    assert hurt.interval.method == "paired delong normal, per slice"


def test_with_no_real_auc_change_in_50_slices_at_most_5_percent_of_pull_requests_fail() -> None:
    rng = np.random.default_rng(31)
    slices, per_slice, pull_requests = 50, 200, 100
    segments = np.repeat(np.array([f"s{i:02}" for i in range(slices)]), per_slice)
    rule = Rule("roc_auc", max_drop=0.0, confidence=0.95, slices=True)
    separation = np.full(len(segments), 1.2)
    failed = naive = 0
    for _ in range(pull_requests):
        truth = rng.integers(0, 2, len(segments))
        baseline, candidate = scored(truth, separation, rng), scored(truth, separation, rng)
        results = judge(segments, truth, candidate, baseline, rule)
        failed += any(r.verdict == "fail" for r in results)
        naive += any((r.change or 0) < 0 for r in results)
    assert failed <= 0.05 * pull_requests
    assert naive == pull_requests
