"""One sort per class and model: the ranking against numpy's sort and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlci.core import ranking as ranking_module
from mlci.core.curves import _average_precision, pr_curves, roc_curves
from mlci.core.predictions import Predictions
from mlci.core.ranking import Ranking, rank, ranking
from mlci.core.stats import compute_metrics

RNG = np.random.default_rng(7)
SCORES = {
    "float32 probabilities": RNG.random(2000).astype(np.float32),
    "float32, tied": np.round(RNG.random(2000), 2).astype(np.float32),
    "float32, signed zeros and negatives": np.array(
        [0.0, -0.0, 0.5, -0.0, -1.5, 1e-45, -1e-45, np.inf, -np.inf, 0.0, 3.0, -1.5],
        dtype=np.float32,
    ),
    "float64, tied": np.round(RNG.normal(size=2000), 1),
    "float64, signed zeros": np.array([0.0, -0.0, 0.25, -0.0, -2.0]),
}


@pytest.fixture(params=[True, False], ids=["packed vector sort", "radix sort"])
def sort_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 scores go through either sort, by the CPU: each must give the same ranking."""
    monkeypatch.setattr(ranking_module, "_VECTOR_SORT", request.param)


@pytest.mark.usefixtures("sort_path")
@pytest.mark.parametrize("score", SCORES.values(), ids=SCORES.keys())
def test_counts_and_places_are_those_of_the_distinct_scores(score: np.ndarray) -> None:
    positive = np.arange(len(score)) % 3 == 0
    found, places = rank(positive, score)
    distinct = np.unique(score)  # ascending; -0.0 and 0.0 are one score, as in sklearn
    assert len(found.positives) == len(found.negatives) == len(distinct)
    index = np.repeat(np.arange(len(distinct)), places.seen)  # each sorted row's score
    np.testing.assert_array_equal(distinct[index], score[places.order])
    assert sorted(places.order.tolist()) == list(range(len(score)))
    np.testing.assert_array_equal(places.hit, positive[places.order])
    where = index[np.argsort(places.order)]  # each row's distinct score
    rows = np.bincount(where, minlength=len(distinct))
    positives = np.bincount(where[positive], minlength=len(distinct))
    assert found.positives.tolist() == positives.tolist()
    assert (found.positives + found.negatives).tolist() == rows.tolist()


@pytest.mark.parametrize("score", SCORES.values(), ids=SCORES.keys())
def test_the_average_precision_on_the_way_is_the_one_summed_from_the_counts(
    score: np.ndarray,
) -> None:
    """`rank` computes the average precision from its cumulative counts; summed from the
    ranking's counts alone (as for a coarse ranking) it is the same float, and sklearn's."""
    for share in (3, 7):
        positive = np.arange(len(score)) % share == 0
        found, _ = rank(positive, score)
        from_counts = Ranking(found.positives, found.negatives)
        assert found.average_precision is not None and from_counts.average_precision is None
        assert found.average_precision == _average_precision(from_counts)
        wide = score.astype(np.float64)
        finite = np.where(np.isfinite(wide), wide, np.sign(wide) * 1e300)  # sklearn: no inf
        expected = skm.average_precision_score(positive, finite)
        assert found.average_precision == pytest.approx(expected, rel=1e-12)


def test_no_rows_no_scores() -> None:
    found, places = rank(np.zeros(0, bool), np.zeros(0, np.float32))
    assert len(found.positives) == len(found.negatives) == len(places.order) == 0


def tied_float32(k: int, n: int = 3000) -> Predictions:
    rng = np.random.default_rng(k)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[true]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scores = np.round(scores, 2).astype(np.float32)  # ties, as float32 probabilities
    return Predictions(true, scores.argmax(axis=1), scores, tuple(range(k)), None)


@pytest.mark.parametrize("k", [2, 4])
def test_float32_auc_and_curves_are_sklearns(k: int) -> None:
    pred = tied_float32(k)
    assert pred.scores is not None
    columns = [1] if k == 2 else list(range(k))
    # One-vs-rest macro AUC, class by class (rounded rows no longer sum to 1 for sklearn).
    aucs = [skm.roc_auc_score(pred.y_true == c, pred.scores[:, c]) for c in columns]
    expected = float(np.mean(aucs))
    assert compute_metrics(pred, "classification")["roc_auc"] == pytest.approx(expected)
    for column, roc, pr in zip(columns, roc_curves(pred), pr_curves(pred), strict=True):
        truth, score = pred.y_true == column, pred.scores[:, column]
        fpr, tpr, _ = skm.roc_curve(truth, score)
        precision, recall, _ = skm.precision_recall_curve(truth, score)
        np.testing.assert_allclose(roc.x, fpr, rtol=0, atol=1e-12)
        np.testing.assert_allclose(roc.y, tpr, rtol=0, atol=1e-12)
        np.testing.assert_allclose(pr.x, recall[::-1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(pr.y, precision[::-1], rtol=0, atol=1e-12)
        assert pr.area == pytest.approx(skm.average_precision_score(truth, score))


def test_the_auc_and_the_curves_read_one_ranking_per_class() -> None:
    pred = tied_float32(3)
    compute_metrics(pred, "classification")
    first = [ranking(pred, column) for column in range(3)]
    roc_curves(pred)
    pr_curves(pred)
    assert all(ranking(pred, column) is first[column] for column in range(3))


@pytest.mark.parametrize("rows", [50, ranking_module.SORT_AHEAD_ROWS])
def test_sorting_the_next_class_ahead_gives_the_same_auc_and_rankings(rows: int) -> None:
    rng = np.random.default_rng(rows)
    true = rng.integers(0, 4, rows)
    scores = np.asfortranarray(rng.dirichlet(np.ones(4), rows).astype(np.float32))
    pred = Predictions(true, scores.argmax(axis=1), scores, (0, 1, 2, 3), None)

    ahead = list(ranking_module.sorts_ahead(pred, [0, 1, 2, 3]))

    assert [column for column, _ in ahead] == [0, 1, 2, 3]
    sorted_ = [done for _, done in ahead]
    if rows < ranking_module.SORT_AHEAD_ROWS or ranking_module._cores() < 2:
        assert sorted_ == [None] * 4  # sorted in place, as the ranking goes
    else:
        for column, done in ahead:
            assert done is not None
            order, steps = done
            expected_order, expected_steps = ranking_module.sort(scores[:, column])
            np.testing.assert_array_equal(scores[order, column], scores[expected_order, column])
            np.testing.assert_array_equal(steps, expected_steps)
    auc = compute_metrics(pred, "classification")["roc_auc"]
    assert auc == pytest.approx(skm.roc_auc_score(true, scores, multi_class="ovr"), abs=1e-12)
