"""`distinct` and `present`: np.unique's answers, by counting where the labels allow it;
`top_label`: np.argmax's."""

from __future__ import annotations

import numpy as np
import pytest

from mlci.core.predictions import distinct, present, top_label

LABELS = [
    np.array([3, -2, 3, 7, -2, 0], dtype=np.int64),  # counted: a small range
    np.array([9, 0, 4, 9], dtype=np.int64),  # counted from 0, as read
    np.array([10**9 + 3, 10**9, 10**9 + 3], dtype=np.int64),  # counted from the lowest
    np.array([5, 2**40, 5, -(2**40)], dtype=np.int64),  # sorted: too wide to count
    np.array([2, 1, 2], dtype=np.uint8),
    np.array(["b", "a", "b"]),
    np.array([], dtype=np.int64),
]


@pytest.mark.parametrize("values", LABELS)
def test_distinct_is_np_unique(values: np.ndarray) -> None:
    found, inverse = distinct(values)
    expected, where = np.unique(values, return_inverse=True)
    assert np.array_equal(found, expected)
    assert found.dtype == expected.dtype
    assert np.array_equal(inverse, where)
    assert np.array_equal(found[inverse], values)


@pytest.mark.parametrize("values", LABELS)
def test_present_is_np_unique(values: np.ndarray) -> None:
    found, expected = present(values), np.unique(values)
    assert np.array_equal(found, expected)
    assert found.dtype == expected.dtype


@pytest.mark.parametrize("classes", [3, 10, 33])
@pytest.mark.parametrize("order", ["C", "F"])
def test_top_label_is_numpys_argmax_with_ties_to_the_first_column(classes: int, order: str) -> None:
    rng = np.random.default_rng(classes)
    # Scores on a coarse grid: many rows tie for their highest score.
    scores = np.asarray(rng.integers(0, 5, (2_000, classes)) / 4, np.float32, order=order)
    top, score = top_label(scores)
    expected = np.argmax(scores, axis=1)
    assert (top == expected).all()
    assert (score == scores[np.arange(len(scores)), expected]).all()
    assert score.dtype == np.float32
