"""Summaries merge by adding counts and sums: two halves merged equal the whole."""

from __future__ import annotations

import numpy as np
import pytest

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
        assert np.array_equal(one.reliability.rows, other.reliability.rows)
        assert np.array_equal(one.reliability.hits, other.reliability.hits)
        assert np.allclose(one.reliability.sums, other.reliability.sums, rtol=1e-12, atol=0)
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
    assert merged.candidate is not None and merged.baseline is not None
    for found, model in ((merged.candidate, scores), (merged.baseline, base)):
        assert found.reliability.rows.sum() == 3_000
        hits = (model.argmax(axis=1) == true).sum()  # the top label is the true class
        assert found.reliability.hits.sum() == hits
        assert found.reliability.sums.sum() == pytest.approx(model.max(axis=1).sum(), rel=1e-12)


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


def test_joint_table_counted_or_sorted_gives_the_same_cells() -> None:
    # k = 1000 codes spanning 0..999: counting would need 10^9 cells, so they are sorted;
    # the same rows coded 0..9 are counted; both tables name the same (true, pred, base).
    rng = np.random.default_rng(3)
    labels = [rng.integers(0, 10, 5000) for _ in range(3)]
    counted = summary.joint_table(labels, 1000)
    wide = [codes * 111 for codes in labels]  # same rows, codes up to 999
    sorted_ = summary.joint_table(wide, 1000)
    true, rest = np.divmod(sorted_.cells, 1000 * 1000)
    pred, base = np.divmod(rest, 1000)
    assert np.array_equal(counted.cells, ((true // 111) * 1000 + pred // 111) * 1000 + base // 111)
    assert np.array_equal(counted.counts, sorted_.counts)
    cells = (labels[0] * 1000 + labels[1]) * 1000 + labels[2]
    expected, counts = np.unique(cells, return_counts=True)
    assert np.array_equal(counted.cells, expected)
    assert np.array_equal(counted.counts, counts)


def test_each_side_of_a_paired_summary_is_that_models_summary_alone() -> None:
    true, scores, base, _ = _rows(3000, 4, seed=7)
    paired = _summary(true, scores, base)
    for side, model in ((False, scores), (True, base)):
        alone = summary.summarize_classification(
            tuple(range(4)), true, model.argmax(axis=1), model, bins=50
        )
        found = paired.side(baseline=side)
        assert not found.paired and found.classes == alone.classes
        assert np.array_equal(found.joint.cells, alone.joint.cells)
        assert np.array_equal(found.joint.counts, alone.joint.counts)
        assert found.candidate is not None and alone.candidate is not None
        assert np.array_equal(found.candidate.positives, alone.candidate.positives)
        assert np.array_equal(found.candidate.reliability.hits, alone.candidate.reliability.hits)
        assert found.moments is not None and alone.moments is not None
        assert found.moments.names == alone.moments.names
        assert np.allclose(found.moments.products, alone.moments.products)


def test_a_class_only_the_other_model_predicts_is_not_in_a_sides_classes() -> None:
    true = np.array([0, 1, 0, 1])
    paired = summary.summarize_classification(
        ("a", "b", "c"),
        true,
        np.array([0, 1, 1, 1]),
        None,
        baseline_predicted=np.array([2, 1, 0, 1]),
    )
    candidate = paired.side(baseline=False)
    assert candidate.classes == ("a", "b")
    assert np.array_equal(candidate.joint.cells, [0, 1, 3])
    assert np.array_equal(candidate.joint.counts, [1, 1, 2])
    assert paired.side(baseline=True).classes == ("a", "b", "c")


def test_the_baseline_side_of_a_paired_regression_summary() -> None:
    rng = np.random.default_rng(2)
    y, ours, theirs = rng.normal(size=(3, 500))
    paired = summary.summarize_regression(y, ours, theirs).side(baseline=True)
    alone = summary.summarize_regression(y, theirs)
    assert paired.moments.names == alone.moments.names
    assert np.allclose(paired.moments.sums, alone.moments.sums)
    assert np.allclose(paired.moments.products, alone.moments.products)


def test_float32_probabilities_are_binned_as_their_float64_values() -> None:
    """As DuckDB and Spark bin them (in double): float32 * 1000 rounded in float32 put
    some probabilities just under an edge in the next bin, so the engines' histograms
    and mlci's differed by a few counts."""
    probability = np.random.default_rng(0).random(2_000_000).astype(np.float32)
    exact = np.floor(probability.astype(np.float64) * 1000).astype(np.int64)
    np.testing.assert_array_equal(summary.bin_of(probability, 1000), np.minimum(exact, 999))
