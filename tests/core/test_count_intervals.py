"""Intervals of count-based metrics from a count table: the bootstrap, the influence
function, which one the gate uses, and their coverage in simulation."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.coverage import Setting, coverage, dataset

from mlci.core import stats
from mlci.core.stats import (
    INFLUENCE,
    CountMethod,
    CountTable,
    Predictions,
    count_intervals,
    count_table,
    metric_intervals,
    paired_difference_intervals,
    slice_estimates,
)


def predictions(true: np.ndarray, pred: np.ndarray, classes: int) -> Predictions:
    return Predictions(true, pred, None, tuple(range(classes)), None)


@pytest.mark.parametrize("paired", [False, True])
def test_the_influence_interval_agrees_with_the_bootstrap(paired: bool) -> None:
    true, candidate, baseline = dataset(np.random.default_rng(1), 30, 20_000)
    table = count_table(np.arange(30), true, candidate, baseline if paired else None)
    bootstrap = count_intervals(table, method="bootstrap")
    influence = count_intervals(table, method=INFLUENCE)

    assert set(influence) == set(bootstrap)
    for name, interval in influence.items():
        expected = bootstrap[name]
        width = expected.high - expected.low
        assert interval.method == INFLUENCE
        assert interval.high - interval.low == pytest.approx(width, rel=0.15), name
        assert interval.low == pytest.approx(expected.low, abs=0.15 * width), name


def test_the_gate_bootstraps_a_small_table_and_names_the_influence_function_above() -> None:
    true, candidate, baseline = dataset(np.random.default_rng(2), 10, 5_000)
    small = paired_difference_intervals(
        predictions(true, candidate, 10), predictions(true, baseline, 10), "classification"
    )
    true, candidate, baseline = dataset(np.random.default_rng(3), 1000, 100_000)
    large = paired_difference_intervals(
        predictions(true, candidate, 1000), predictions(true, baseline, 1000), "classification"
    )

    assert {interval.method for interval in small.values()} == {"bootstrap"}
    assert {interval.method for interval in large.values()} == {INFLUENCE}
    assert len(large) == 11 + 3 * 1000  # every average and every class's metrics
    assert 0 < large["accuracy"].low < large["accuracy"].high < 0.03  # 0.0194, noisy


def test_a_table_of_many_rows_gets_the_influence_function_even_with_few_cells() -> None:
    """10 classes: at most 1,000 cells, bootstrapped up to BOOTSTRAP_MAX_TABLE_ROWS rows;
    above, the normal interval, which agrees with the bootstrap there."""
    rows = stats.BOOTSTRAP_MAX_TABLE_ROWS
    true, candidate, baseline = dataset(np.random.default_rng(4), 10, rows + 1)
    table = count_table(np.arange(10), true, candidate, baseline)
    at_most = count_table(np.arange(10), true[:-1], candidate[:-1], baseline[:-1])

    above, below = count_intervals(table), count_intervals(at_most)

    assert {interval.method for interval in below.values()} == {"bootstrap"}
    assert {interval.method for interval in above.values()} == {INFLUENCE}
    for name, interval in above.items():
        width = below[name].high - below[name].low
        assert interval.high - interval.low == pytest.approx(width, rel=0.15), name
        assert interval.low < (below[name].low + below[name].high) / 2 < interval.high, name


def test_a_table_summed_from_batches_gives_the_intervals_of_its_rows() -> None:
    true, candidate, baseline = dataset(np.random.default_rng(4), 10, 4_000)
    classes = np.arange(10)
    whole = count_table(classes, true, candidate, baseline)
    halves = [
        count_table(classes, true[part], candidate[part], baseline[part])
        for part in (slice(0, 1500), slice(1500, None))
    ]
    merged = CountTable(
        classes,
        *(
            np.concatenate([getattr(half, field) for half in halves])
            for field in ("true", "pred", "counts", "base")
        ),
    )

    for method in ("bootstrap", INFLUENCE):
        assert count_intervals(merged, method=method) == count_intervals(whole, method=method)


def test_identical_models_differ_by_exactly_zero_with_the_influence_function() -> None:
    true, candidate, _ = dataset(np.random.default_rng(5), 50, 5_000)
    table = count_table(np.arange(50), true, candidate, candidate)

    intervals = count_intervals(table, method=INFLUENCE)

    assert {(i.low, i.high) for i in intervals.values()} == {(0.0, 0.0)}


def test_the_influence_function_leaves_out_a_class_one_model_never_saw() -> None:
    true = np.array([0, 0, 1, 1, 2, 2] * 50)
    candidate = np.array([0, 0, 1, 1, 2, 2] * 50)
    baseline = np.array([0, 1, 1, 1, 3, 3] * 50)  # class 3: only the baseline predicts it
    table = count_table(np.arange(4), true, candidate, baseline)

    intervals = count_intervals(table, method=INFLUENCE)

    assert "f1.3" not in intervals and "f1.2" in intervals
    one = metric_intervals(predictions(true, baseline, 4), "classification")
    assert "f1.3" in one


@pytest.mark.parametrize(
    ("classes", "rows", "method", "paired"),
    [
        (10, 2000, "bootstrap", False),
        (10, 2000, "bootstrap", True),
        (10, 2000, INFLUENCE, False),
        (10, 2000, INFLUENCE, True),
        (200, 40_000, INFLUENCE, True),
        # 1,000 classes of 200 rows: the plug-in macro and weighted averages are biased by
        # about a standard error; the interval is centred on the bias-corrected value.
        (1000, 200_000, INFLUENCE, False),
        # 100 classes of 100 rows: the gate's bootstrap, moved by twice the bias.
        (100, 10_000, "bootstrap", False),
    ],
)
def test_coverage_of_95_percent_intervals(
    classes: int, rows: int, method: CountMethod, paired: bool
) -> None:
    # A small run of benchmarks/coverage.py: 200 repetitions, so about ±3% of noise.
    shares = coverage(Setting(classes, rows, method, paired), 200, resamples=300)

    for name, share in shares.items():
        assert 0.9 <= share <= 0.985, (name, share)


@pytest.mark.parametrize("paired", [False, True])
def test_slice_standard_errors_of_a_large_table_agree_with_the_jackknife(
    paired: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    true, candidate, baseline = dataset(np.random.default_rng(6), 20, 12_000)
    codes = np.random.default_rng(7).integers(0, 3, 12_000)
    metrics = ("accuracy", "f1_macro", "recall_weighted", "precision.4", "f1.7")
    args = (
        predictions(true, candidate, 20),
        predictions(true, baseline, 20) if paired else None,
        "classification",
        codes,
        3,
        metrics,
    )
    jackknife = slice_estimates(*args)
    monkeypatch.setattr(stats, "BOOTSTRAP_MAX_CELLS", 0)  # every table counts as large
    influence = slice_estimates(*args)

    assert set(influence) == set(metrics)
    for name in metrics:
        expected, found = jackknife[name], influence[name]
        assert found.value == pytest.approx(expected.value)
        assert found.value_se == pytest.approx(expected.value_se, rel=0.05)
        if paired:
            assert found.change_se == pytest.approx(expected.change_se, rel=0.05)
        else:
            assert found.change_se is None
