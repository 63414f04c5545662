"""Noise-aware rules: decided on intervals when a rule sets `confidence`."""

from __future__ import annotations

import pytest

from mlci.core.gate import Baseline, MetricIntervals, Rows, Rule, evaluate_gate
from mlci.core.intervals import Interval

BASE = Baseline("registry", "clf v1 (@champion)", {"accuracy": 0.90, "log_loss": 0.30})


def gate_with(
    rule: Rule,
    candidate: dict[str, float],
    change: tuple[float, float] | None = None,
    value: tuple[float, float] | None = None,
    baseline: Baseline | None = BASE,
    rows: int | None = None,
):
    level = rule.confidence or 0.95
    intervals = MetricIntervals(
        value={rule.metric: Interval(*value, level, "bootstrap")} if value else {},
        change={rule.metric: Interval(*change, level, "paired bootstrap")} if change else {},
    )
    return evaluate_gate(
        [rule], candidate, baseline, intervals={level: intervals}, rows=Rows(candidate=rows)
    )


def test_a_drop_beyond_the_margin_but_within_noise_passes() -> None:
    rule = Rule("accuracy", max_drop=0.01, confidence=0.95)
    gate = gate_with(rule, {"accuracy": 0.885}, change=(-0.030, 0.000))

    (result,) = gate.results
    assert result.verdict == "pass"
    assert result.within_noise
    assert "within noise" in result.message
    assert "95% interval of the change [-0.03, 0] straddles the limit -0.01" in result.message
    assert gate.summary() == "passed against clf v1 (@champion): 1 rule met, 1 of them within noise"


def test_the_same_drop_fails_without_confidence() -> None:
    gate = gate_with(Rule("accuracy", max_drop=0.01), {"accuracy": 0.885}, change=(-0.030, 0.0))
    assert gate.results[0].verdict == "fail"


def test_a_clear_drop_fails_even_with_confidence() -> None:
    rule = Rule("accuracy", max_drop=0.01, confidence=0.95)
    (result,) = gate_with(rule, {"accuracy": 0.86}, change=(-0.055, -0.025)).results
    assert result.verdict == "fail"
    assert "is wholly beyond the limit" in result.message


def test_require_proof_fails_a_straddling_interval() -> None:
    rule = Rule("accuracy", max_drop=0.01, confidence=0.95, require_proof=True)
    (result,) = gate_with(rule, {"accuracy": 0.899}, change=(-0.02, 0.018)).results
    assert result.verdict == "fail"
    assert "not proven: 95% interval of the change [-0.02, 0.018] reaches past the limit -0.01" in (
        result.message
    )


def test_require_proof_passes_when_the_interval_clears_the_margin() -> None:
    rule = Rule("accuracy", max_drop=0.01, confidence=0.95, require_proof=True)
    (result,) = gate_with(rule, {"accuracy": 0.905}, change=(-0.004, 0.014)).results
    assert result.verdict == "pass"
    assert not result.within_noise


def test_lower_is_better_rise_uses_the_upper_end() -> None:
    rule = Rule("log_loss", max_rise=0.02, confidence=0.9)
    clear = gate_with(rule, {"log_loss": 0.36}, change=(0.03, 0.09)).results[0]
    noisy = gate_with(rule, {"log_loss": 0.33}, change=(0.01, 0.05)).results[0]
    fine = gate_with(rule, {"log_loss": 0.30}, change=(-0.01, 0.015)).results[0]
    assert (clear.verdict, noisy.verdict, fine.verdict) == ("fail", "pass", "pass")
    assert noisy.within_noise and not fine.within_noise
    assert "90% interval" in noisy.message


def test_min_gain_needs_the_interval_to_reach_the_gain() -> None:
    rule = Rule("accuracy", min_gain=0.01, confidence=0.95, require_proof=True)
    proven = gate_with(rule, {"accuracy": 0.93}, change=(0.012, 0.048)).results[0]
    unproven = gate_with(rule, {"accuracy": 0.915}, change=(-0.004, 0.034)).results[0]
    assert proven.verdict == "pass"
    assert unproven.verdict == "fail"


def test_absolute_minimum_uses_the_value_interval() -> None:
    rule = Rule("accuracy", min=0.9, confidence=0.95)
    (result,) = gate_with(rule, {"accuracy": 0.905}, value=(0.88, 0.93), baseline=None).results
    assert result.verdict == "pass"
    assert result.within_noise
    assert result.interval_of == "value"


def test_a_missed_minimum_is_inconclusive_not_within_noise() -> None:
    """20 rows at 0.75 against min 0.90: the interval reaches 0.9 only because it is wide."""
    rule = Rule("accuracy", min=0.9, confidence=0.95)
    gate = gate_with(rule, {"accuracy": 0.75}, value=(0.55, 0.95), baseline=None, rows=20)

    (result,) = gate.results
    assert result.verdict == "fail"
    assert not result.within_noise
    (check,) = result.checks
    assert check.inconclusive
    assert gate.summary() == (
        "failed with no baseline: inconclusive: accuracy 0.75 is below the minimum 0.9, but "
        "the 95% interval of the value [0.55, 0.95] reaches the limit: 20 rows cannot tell "
        "0.75 from 0.9; about 30 rows would give an interval of ±0.15"
    )


def test_a_missed_maximum_says_how_many_rows_by_the_square_root_rule() -> None:
    # rmse is no proportion: ±0.2 on 100 rows becomes ±0.05 on 16 times as many.
    rule = Rule("rmse", max=1.0, confidence=0.95)
    (result,) = gate_with(rule, {"rmse": 1.05}, value=(0.85, 1.25), baseline=None, rows=100).results
    assert result.verdict == "fail"
    assert result.message.startswith("inconclusive: rmse 1.05 is above the maximum 1")
    assert result.message.endswith(
        "100 rows cannot tell 1.05 from 1; about 1,600 rows would give an interval of ±0.05"
    )


def test_a_missed_floor_with_unknown_rows_asks_for_more_rows() -> None:
    rule = Rule("r2", min=0.8, confidence=0.95)
    (result,) = gate_with(rule, {"r2": 0.7}, value=(0.5, 0.85), baseline=None).results
    assert result.verdict == "fail"
    assert result.message.endswith(
        "the evaluation set cannot tell 0.7 from 0.8; more rows would narrow the interval"
    )


def test_a_floor_that_the_whole_interval_misses_is_not_inconclusive() -> None:
    rule = Rule("accuracy", min=0.9, confidence=0.95)
    (result,) = gate_with(rule, {"accuracy": 0.8}, value=(0.75, 0.85), baseline=None).results
    assert result.verdict == "fail"
    assert not result.checks[0].inconclusive
    assert "is wholly beyond the limit" in result.message


def test_without_a_paired_interval_the_baseline_is_taken_as_exact() -> None:
    rule = Rule("accuracy", max_drop=0.01, confidence=0.95)
    (result,) = gate_with(rule, {"accuracy": 0.885}, value=(0.86, 0.91)).results
    assert result.interval is not None
    assert result.interval.low == pytest.approx(-0.04)
    assert result.interval.high == pytest.approx(0.01)
    assert "baseline taken as exact" in result.interval.method
    assert result.verdict == "pass"


def test_a_confidence_rule_without_any_interval_says_it_used_points() -> None:
    gate = evaluate_gate(
        [Rule("accuracy", max_drop=0.01, confidence=0.95)], {"accuracy": 0.95}, BASE
    )
    assert gate.results[0].verdict == "pass"
    assert gate.notes[-1].startswith("No interval for accuracy: decided on point values")


def test_intervals_are_shown_even_for_rules_without_confidence() -> None:
    (result,) = gate_with(
        Rule("accuracy", max_drop=0.01), {"accuracy": 0.91}, change=(0.0, 0.02)
    ).results
    assert result.verdict == "pass"
    assert result.interval == Interval(0.0, 0.02, 0.95, "paired bootstrap")
    assert result.interval_of == "change"


def test_skipped_missing_metric() -> None:
    gate = evaluate_gate([Rule("auc", min=0.8, on_missing_metric="skip")], {"accuracy": 0.9}, BASE)
    (result,) = gate.results
    assert result.verdict == "skip"
    assert gate.passed
    assert gate.verdict == "pass"
    assert "1 skipped (metric missing)" in gate.summary()


def test_describe_shows_confidence_and_proof() -> None:
    assert Rule("accuracy", max_drop=0.01, confidence=0.95).describe() == "drop ≤ 0.01 at 95%"
    rule = Rule("accuracy", max_drop=0.01, confidence=0.9, require_proof=True)
    assert rule.describe() == "drop ≤ 0.01 at 90%, proven"
