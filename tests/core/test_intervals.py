"""The rows an interval needs: Wilson's for proportions (checked against scipy)."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from mlci.core.intervals import scaled_rows, wilson_half_width, wilson_rows


@pytest.mark.parametrize(
    ("successes", "rows", "confidence"),
    [(15, 20, 0.95), (0, 30, 0.95), (540, 600, 0.9), (1, 2, 0.99), (9990, 10000, 0.95)],
)
def test_wilson_half_width_matches_scipy(successes: int, rows: int, confidence: float) -> None:
    low, high = binomtest(successes, rows).proportion_ci(confidence, method="wilson")
    assert wilson_half_width(successes / rows, rows, confidence) == pytest.approx(
        (high - low) / 2, rel=1e-9
    )


@pytest.mark.parametrize(
    ("proportion", "half_width", "confidence"),
    [
        (0.75, 0.15, 0.95),
        (0.895, 0.005, 0.95),
        (0.5, 0.05, 0.95),
        (0.99, 0.01, 0.9),
        (1.0, 0.1, 0.95),
    ],
)
def test_wilson_rows_is_the_fewest_that_reach_the_width(
    proportion: float, half_width: float, confidence: float
) -> None:
    rows = wilson_rows(proportion, half_width, confidence)
    assert wilson_half_width(proportion, rows, confidence) <= half_width
    assert rows == 1 or wilson_half_width(proportion, rows - 1, confidence) > half_width


def test_wilson_rows_known_values() -> None:
    # The textbook sample size for ±0.05 at 95% around 0.5 is about 385 (Wald: 1.96² / 4 / 0.05²).
    assert wilson_rows(0.5, 0.05, 0.95) == 381
    assert wilson_rows(0.75, 0.15, 0.95) == 30


def test_scaled_rows_follows_the_square_root_rule() -> None:
    assert scaled_rows(100, 0.2, 0.05) == 1600
    assert scaled_rows(100, 0.2, 0.1) == 400
    assert scaled_rows(540, 0.025, 0.01) == 3375
