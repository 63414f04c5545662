"""Summaries merge by adding counts and sums: two halves merged equal the whole."""

from __future__ import annotations

import numpy as np

from mlci.core import summary


def _rows(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    scores = rng.dirichlet(np.ones(k), n)
    scores[np.arange(n), true] += 1.0
    scores /= scores.sum(axis=1, keepdims=True)
    base = rng.dirichlet(np.ones(k), n)
    return true, scores, base, rng.normal(size=n)


def _summary(true, scores, base) -> summary.ClassificationSummary:
    return summary.summarize_classification(
        tuple(range(scores.shape[1])),
        true,
        scores.argmax(axis=1),
        scores,
        baseline_predicted=base.argmax(axis=1),
        baseline_scores=base,
        bins=50,
    )


def _assert_same(first: summary.ClassificationSummary, second: summary.ClassificationSummary):
    assert np.array_equal(first.joint.cells, second.joint.cells)
    assert np.array_equal(first.joint.counts, second.joint.counts)
    for one, other in ((first.candidate, second.candidate), (first.baseline, second.baseline)):
        assert one is not None and other is not None
        assert np.array_equal(one.positives, other.positives)
        assert np.array_equal(one.negatives, other.negatives)
    assert first.joint_bins is not None and second.joint_bins is not None
    assert np.array_equal(first.joint_bins.cells, second.joint_bins.cells)
    assert np.array_equal(first.joint_bins.counts, second.joint_bins.counts)
    assert first.moments is not None and second.moments is not None
    assert first.moments.rows == second.moments.rows
    assert np.allclose(first.moments.sums, second.moments.sums)
    assert np.allclose(first.moments.products, second.moments.products)


def test_classification_halves_merged_equal_the_whole() -> None:
    true, scores, base, _ = _rows(3_000, 4)
    whole = _summary(true, scores, base)
    half = 1_234
    merged = _summary(true[:half], scores[:half], base[:half]).merge(
        _summary(true[half:], scores[half:], base[half:])
    )
    _assert_same(merged, whole)
    assert merged.rows == 3_000


def test_regression_halves_merged_equal_the_whole() -> None:
    _, _, _, y = _rows(2_000, 2)
    pred, base = y * 0.9 + 0.1, y + 0.3
    whole = summary.summarize_regression(y, pred, base)
    merged = summary.summarize_regression(y[:700], pred[:700], base[:700]).merge(
        summary.summarize_regression(y[700:], pred[700:], base[700:])
    )
    assert merged.rows == whole.rows == 2_000
    assert np.allclose(merged.moments.sums, whole.moments.sums)
    assert np.allclose(merged.moments.products, whole.moments.products)


def test_summaries_of_different_classes_do_not_merge() -> None:
    true, scores, base, _ = _rows(100, 3)
    first = _summary(true, scores, base)
    other = summary.summarize_classification(("a", "b", "c"), true, true, None)
    try:
        first.merge(other)
    except ValueError as exc:
        assert "different classes" in str(exc)
    else:
        raise AssertionError("merged summaries of different classes")
