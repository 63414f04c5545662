"""Flipped examples: the counts, McNemar's test against scipy, the order of the rows shown,
and text from the files made safe for a table cell and a spreadsheet."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as oracle  # test-only: mlci does not depend on scipy

from mlci.core.flipped import (
    EXACT_BELOW,
    Pairing,
    csv_safe,
    csv_table,
    find_flips,
    mcnemar,
    summarise,
    top,
    visible_text,
)
from mlci.core.predictions import Predictions


def classification(
    y_true: list[int],
    y_pred: list[int],
    p_1: list[float] | None = None,
    ids: list[str] | None = None,
) -> Predictions:
    scores = None if p_1 is None else np.column_stack([1 - np.array(p_1), np.array(p_1)])
    return Predictions(
        np.array(y_true),
        np.array(y_pred),
        scores,
        (0, 1),
        None if ids is None else np.array(ids),
    )


def regression(y_true: list[float], y_pred: list[float]) -> Predictions:
    return Predictions(np.array(y_true, dtype=float), np.array(y_pred, dtype=float), None, (), None)


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [(0, 0), (1, 0), (0, 3), (3, 10), (12, 12), (7, 17), (20, 4), (30, 10), (13, 12), (400, 350)],
)
def test_mcnemar_matches_scipy(broken: int, fixed: int) -> None:
    result = mcnemar(broken, fixed)
    pairs = broken + fixed
    if pairs < EXACT_BELOW:
        assert result.test == "mcnemar-exact"
        expected = 1.0 if pairs == 0 else oracle.binomtest(broken, pairs, 0.5).pvalue
        assert result.statistic is None
    else:
        assert result.test == "mcnemar-chi2"
        statistic = (abs(broken - fixed) - 1) ** 2 / pairs
        expected = oracle.chi2.sf(statistic, df=1)
        assert result.statistic == pytest.approx(statistic)
    assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_matches_statsmodels() -> None:
    from statsmodels.stats import contingency_tables as contingency

    for broken, fixed in [(3, 10), (9, 2), (40, 25), (100, 130)]:
        exact = broken + fixed < EXACT_BELOW
        table = [[50, broken], [fixed, 50]]
        expected = contingency.mcnemar(table, exact=exact, correction=True).pvalue
        assert mcnemar(broken, fixed).p_value == pytest.approx(expected)


def test_counts_match_a_direct_count_on_random_rows() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    truth = rng.integers(0, 4, n)
    candidate = np.where(rng.random(n) < 0.8, truth, rng.integers(0, 4, n))
    baseline = np.where(rng.random(n) < 0.78, truth, rng.integers(0, 4, n))
    classes = (0, 1, 2, 3)
    flips = find_flips(
        Predictions(truth, candidate, None, classes, None),
        Predictions(truth, baseline, None, classes, None),
        "classification",
    )
    broken = sum(b == t != c for t, c, b in zip(truth, candidate, baseline, strict=True))
    fixed = sum(c == t != b for t, c, b in zip(truth, candidate, baseline, strict=True))
    assert (len(flips.broken), len(flips.fixed)) == (broken, fixed)
    assert broken > EXACT_BELOW  # the chi-square branch
    assert np.all(baseline[flips.broken] == truth[flips.broken])
    assert np.all(candidate[flips.fixed] == truth[flips.fixed])


def test_broken_rows_are_listed_by_the_candidates_confidence_in_its_wrong_label() -> None:
    ids = ["a", "b", "c", "d", "e", "f"]
    candidate = classification(
        [0, 0, 1, 1, 0, 1], [1, 1, 0, 1, 1, 0], [0.6, 0.9, 0.2, 0.8, 0.7, 0.45], ids
    )
    baseline = classification([0, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 1])
    flips = find_flips(candidate, baseline, "classification")

    shown = summarise(candidate, baseline, flips, Pairing(by_id=True), shown=3)

    # broken: a (p1 .6), b (.9), c (p0 .8), f (p0 .55); d fixed; e wrong for both
    assert (shown.broken, shown.fixed) == (4, 1)
    assert [row[0] for row in shown.worst] == ["b", "c", "a"]
    assert shown.worst[0] == ("b", "0", "1", "0", "0.9")
    assert shown.header == ("id", "y_true", "candidate", "baseline", "confidence")
    assert shown.test == "mcnemar-exact"
    assert shown.p_value == pytest.approx(oracle.binomtest(4, 5, 0.5).pvalue)


def test_top_keeps_row_order_among_ties_and_without_probabilities() -> None:
    rows = np.arange(10)
    tied = np.array([0.5] * 10)
    assert top(rows, tied, 3).tolist() == [0, 1, 2]
    assert top(rows, np.full(10, np.nan), 4).tolist() == [0, 1, 2, 3]
    weights = np.array([0.1, 0.9, 0.3, 0.9, 0.2, 0.8, 0.9, 0.0, 0.5, 0.6])
    assert top(rows, weights, 4).tolist() == [1, 3, 6, 5]
    assert top(rows, weights, 2, largest=False).tolist() == [7, 0]
    assert top(rows, weights, 0).tolist() == []


def test_regression_lists_the_rows_whose_error_grew_and_shrank_most() -> None:
    truth = [10.0, 10.0, 10.0, 10.0, 10.0]
    candidate = regression(truth, [13.0, 10.5, 9.0, 10.0, 4.0])
    baseline = regression(truth, [10.0, 10.0, 5.0, 10.0, 10.0])
    flips = find_flips(candidate, baseline, "regression")

    shown = summarise(candidate, baseline, flips, Pairing(by_id=False), shown=2)

    assert (shown.broken, shown.fixed) == (3, 1)  # rows 1, 2, 5 grew; row 3 shrank
    assert shown.test is None and shown.p_value is None
    assert [row[0] for row in shown.worst] == ["5", "1"]  # +6, then +3
    assert shown.worst[0][4] == "+6"
    assert [row[0] for row in shown.best] == ["3"]
    assert shown.best[0][4] == "-4"
    assert shown.header[0] == "row" and shown.header[4] == "error change"


def test_the_csv_has_every_flipped_row_and_no_formula() -> None:
    ids = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "plain", "\tTAB"]
    candidate = classification([0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], None, ids)
    baseline = classification([0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1])
    flips = find_flips(candidate, baseline, "classification")

    table = csv_table(candidate, baseline, flips)

    assert table.header[:3] == ("change", "id", "y_true")
    assert table.columns[0].tolist() == ["broken"] * 4 + ["fixed"] * 2
    assert table.columns[1].tolist() == [
        "'=cmd|' /C calc'!A0",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "plain",
        "'\tTAB",
    ]


def test_negative_numbers_stay_numbers_in_the_csv() -> None:
    candidate = regression([-1.0, -2.0], [-3.0, -2.0])
    baseline = regression([-1.0, -2.0], [-1.0, -2.5])
    table = csv_table(candidate, baseline, find_flips(candidate, baseline, "regression"))
    assert table.columns[2].tolist() == [-1.0, -2.0]
    assert table.columns[5].tolist() == [2.0, -0.5]
    assert csv_safe(np.array(["-x", "y"])).tolist() == ["'-x", "y"]


def test_visible_text_shows_hidden_characters_and_cuts_huge_values() -> None:
    assert (
        visible_text("abc\u202edef\u2066g\x00h\x1b[31m") == "abc\ufffddef\ufffdg\ufffdh\ufffd[31m"
    )
    cut = visible_text("x" * 10_000)
    assert len(cut) == 80 and cut.endswith("…")


def test_the_regression_csv_keeps_the_rows_whose_error_changed_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("mlci.core.flipped.REGRESSION_CSV_ROWS", 2)
    truth = [0.0] * 6
    candidate = regression(truth, [1.0, 5.0, 3.0, 0.0, 0.0, 0.0])
    baseline = regression(truth, [0.0, 0.0, 0.0, 1.0, 4.0, 2.0])
    table = csv_table(candidate, baseline, find_flips(candidate, baseline, "regression"))
    assert table.columns[1].tolist() == [2, 3, 5, 6]  # grew +5, +3; shrank -4, -2
    assert table.columns[0].tolist() == ["broken", "broken", "fixed", "fixed"]
