"""`distinct`: np.unique's answer, by counting where the labels allow it."""

from __future__ import annotations

import numpy as np
import pytest

from mlci.core.predictions import distinct


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, -2, 3, 7, -2, 0], dtype=np.int64),  # counted: a small range
        np.array([5, 2**40, 5, -(2**40)], dtype=np.int64),  # sorted: too wide to count
        np.array([2, 1, 2], dtype=np.uint8),
        np.array(["b", "a", "b"]),
        np.array([], dtype=np.int64),
    ],
)
def test_distinct_is_np_unique(values: np.ndarray) -> None:
    found, inverse = distinct(values)
    expected, where = np.unique(values, return_inverse=True)
    assert np.array_equal(found, expected)
    assert found.dtype == expected.dtype
    assert np.array_equal(inverse, where)
    assert np.array_equal(found[inverse], values)
