"""The gate: each check kind, bad values, first runs, the summary line, number formatting.

Every expected number here was worked out by hand from the rule, the baseline and the
candidate; the comment next to a case shows the arithmetic.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from mlci.core.gate import (
    Baseline,
    GateResult,
    Rule,
    RuleResult,
    evaluate_gate,
    format_number,
    infer_direction,
)

BASELINE_LABEL = "digits-classifier v3 (@champion)"


def baseline(**metrics: object) -> Baseline:
    return Baseline(source="registry", label=BASELINE_LABEL, metrics=metrics)  # type: ignore[arg-type]


def judge(rule: Rule, candidate: object, base: object = None) -> RuleResult:
    """One rule against one candidate value and (unless None) one baseline value."""
    against = None if base is None else baseline(**{rule.metric: base})
    gate = evaluate_gate([rule], {rule.metric: candidate}, against)  # type: ignore[dict-item]
    (result,) = gate.results
    return result


# -- Every check kind, passing and failing ----------------------------------------------
# Each row: rule, baseline, a candidate that passes, a candidate that fails, and the
# failure message. Higher-is-better metrics first, then lower-is-better ones.

CHECK_CASES = [
    pytest.param(
        Rule("accuracy", min=0.85),
        None,
        0.85,  # at the minimum is enough
        0.84,
        "accuracy 0.84 is below the minimum 0.85",
        id="min-higher",
    ),
    pytest.param(
        Rule("log_loss", min=0.01),
        None,
        0.02,
        0.005,
        "log_loss 0.005 is below the minimum 0.01",
        id="min-lower",
    ),
    pytest.param(
        Rule("latency_ms", max=100),
        None,
        100,  # at the maximum is allowed
        101,
        "latency_ms 101 is above the maximum 100",
        id="max-lower",
    ),
    pytest.param(
        Rule("accuracy", max=0.99),
        None,
        0.98,
        0.995,
        "accuracy 0.995 is above the maximum 0.99",
        id="max-higher",
    ),
    pytest.param(
        Rule("accuracy", max_drop=0.02),
        0.90,
        0.88,  # 0.90 - 0.02 = 0.88, exactly the limit
        0.87,  # dropped 0.03
        "accuracy dropped 0.03 from 0.9 to 0.87 (allowed: drop ≤ 0.02)",
        id="max_drop",
    ),
    pytest.param(
        Rule("accuracy", max_drop_pct=5),
        0.80,
        0.76,  # 5% of 0.80 = 0.04; 0.80 - 0.04 = 0.76
        0.75,  # dropped 0.05 / 0.80 = 6.25%
        "accuracy dropped 6.25% from 0.8 to 0.75 (allowed: drop ≤ 5%)",
        id="max_drop_pct",
    ),
    pytest.param(
        Rule("log_loss", max_rise=0.05),
        0.30,
        0.35,  # 0.30 + 0.05
        0.36,  # rose 0.06
        "log_loss rose 0.06 from 0.3 to 0.36 (allowed: rise ≤ 0.05)",
        id="max_rise",
    ),
    pytest.param(
        Rule("log_loss", max_rise_pct=10),
        0.30,
        0.33,  # 10% of 0.30 = 0.03
        0.34,  # rose 0.04 / 0.30 = 13.33%
        "log_loss rose 13.33% from 0.3 to 0.34 (allowed: rise ≤ 10%)",
        id="max_rise_pct",
    ),
    pytest.param(
        Rule("accuracy", min_gain=0.01),
        0.90,
        0.91,  # gained exactly 0.01
        0.905,  # gained only 0.005
        "accuracy rose 0.005 from 0.9 to 0.905 (required: gain ≥ 0.01)",
        id="min_gain-higher",
    ),
    pytest.param(
        Rule("log_loss", min_gain=0.05),
        0.30,
        0.25,  # for a loss a gain is a drop: 0.30 - 0.25 = 0.05
        0.26,  # gained only 0.04
        "log_loss dropped 0.04 from 0.3 to 0.26 (required: gain ≥ 0.05)",
        id="min_gain-lower",
    ),
    pytest.param(
        Rule("accuracy", min_gain_pct=5),
        0.80,
        0.84,  # 5% of 0.80 = 0.04
        0.83,  # gained 0.03 / 0.80 = 3.75%
        "accuracy rose 3.75% from 0.8 to 0.83 (required: gain ≥ 5%)",
        id="min_gain_pct-higher",
    ),
    pytest.param(
        Rule("latency_ms", min_gain_pct=10),
        200,
        180,  # 10% of 200 = 20 ms faster
        181,  # only 19 / 200 = 9.5% faster
        "latency_ms dropped 9.5% from 200 to 181 (required: gain ≥ 10%)",
        id="min_gain_pct-lower",
    ),
]


@pytest.mark.parametrize(("rule", "base", "good", "bad", "message"), CHECK_CASES)
def test_check_passes(
    rule: Rule, base: float | None, good: float, bad: float, message: str
) -> None:
    result = judge(rule, good, base)

    assert result.verdict == "pass"
    assert result.message == "within limits"
    assert [check.passed for check in result.checks] == [True]


@pytest.mark.parametrize(("rule", "base", "good", "bad", "message"), CHECK_CASES)
def test_check_fails(rule: Rule, base: float | None, good: float, bad: float, message: str) -> None:
    result = judge(rule, bad, base)

    assert result.verdict == "fail"
    assert result.message == message
    assert [check.passed for check in result.checks] == [False]


@pytest.mark.parametrize(("rule", "base", "good", "bad", "message"), CHECK_CASES)
def test_a_warn_rule_warns_instead_of_failing(
    rule: Rule, base: float | None, good: float, bad: float, message: str
) -> None:
    warn_rule = dataclasses.replace(rule, severity="warn")

    result = judge(warn_rule, bad, base)

    assert result.verdict == "warn"
    assert result.message == message


def test_improvements_pass_the_limits_on_getting_worse() -> None:
    assert judge(Rule("accuracy", max_drop=0.01), 0.99, 0.90).verdict == "pass"
    assert judge(Rule("log_loss", max_rise=0.01), 0.10, 0.30).verdict == "pass"


def test_min_gain_fails_when_a_loss_gets_worse() -> None:
    result = judge(Rule("log_loss", min_gain=0.01), 0.35, 0.30)

    assert result.verdict == "fail"
    assert result.message == "log_loss rose 0.05 from 0.3 to 0.35 (required: gain ≥ 0.01)"


def test_min_gain_fails_when_nothing_changed() -> None:
    result = judge(Rule("accuracy", min_gain=0.01), 0.9, 0.9)

    assert result.verdict == "fail"
    assert result.message == "accuracy is unchanged at 0.9 (required: gain ≥ 0.01)"


def test_explicit_direction_overrides_the_name() -> None:
    # "error_budget_used" reads as lower-is-better; the rule says higher.
    rule = Rule("error_budget_used", direction="higher", min_gain=1)

    assert judge(rule, 12, 10).verdict == "pass"
    assert judge(rule, 8, 10).verdict == "fail"


def test_every_failed_check_of_a_rule_is_in_its_message() -> None:
    rule = Rule("accuracy", min=0.9, max_drop=0.01)

    result = judge(rule, 0.85, 0.95)

    assert result.verdict == "fail"
    assert result.message == (
        "accuracy 0.85 is below the minimum 0.9; "
        "accuracy dropped 0.1 from 0.95 to 0.85 (allowed: drop ≤ 0.01)"
    )
    assert [(c.name, c.threshold, c.passed) for c in result.checks] == [
        ("min", 0.9, False),
        ("max_drop", 0.01, False),
    ]


def test_change_and_change_pct_are_candidate_minus_baseline() -> None:
    result = judge(Rule("accuracy", max_drop=0.05), 0.87, 0.90)

    assert result.candidate == 0.87
    assert result.baseline == 0.90
    assert result.change == pytest.approx(-0.03)
    assert result.change_pct == pytest.approx(-10 / 3)  # -0.03 / 0.90 * 100


# -- Exact decimals -----------------------------------------------------------------------


def test_a_candidate_exactly_at_the_allowed_drop_passes() -> None:
    # In binary floats 0.95 - 0.01 is 0.9400000000000001, which would fail 0.94.
    rule = Rule("accuracy", max_drop=0.01)

    assert judge(rule, 0.94, 0.95).verdict == "pass"
    assert judge(rule, 0.9399, 0.95).verdict == "fail"


def test_a_candidate_exactly_at_the_allowed_rise_passes() -> None:
    # In binary floats 0.7 + 0.1 is 0.7999999999999999, which would fail 0.8.
    rule = Rule("log_loss", max_rise=0.1)

    assert judge(rule, 0.8, 0.7).verdict == "pass"
    assert judge(rule, 0.8001, 0.7).verdict == "fail"


# -- Negative and zero baselines with percentages -----------------------------------------


def test_drop_pct_of_a_negative_baseline_uses_its_size() -> None:
    # r2 can be negative. 10% of |-0.5| = 0.05, so the floor is -0.55.
    rule = Rule("r2", max_drop_pct=10)

    assert judge(rule, -0.5, -0.5).verdict == "pass"
    assert judge(rule, -0.55, -0.5).verdict == "pass"
    failed = judge(rule, -0.56, -0.5)
    assert failed.verdict == "fail"
    assert failed.message == "r2 dropped 12% from -0.5 to -0.56 (allowed: drop ≤ 10%)"
    assert failed.change_pct == pytest.approx(-12)  # -0.06 / |-0.5| * 100


def test_gain_pct_of_a_negative_baseline_uses_its_size() -> None:
    # 10% of |-2| = 0.2 of gain required: -1.8 or better.
    rule = Rule("r2", min_gain_pct=10)

    assert judge(rule, -1.8, -2.0).verdict == "pass"
    failed = judge(rule, -1.9, -2.0)
    assert failed.verdict == "fail"
    assert failed.message == "r2 rose 5% from -2 to -1.9 (required: gain ≥ 10%)"
    assert failed.change_pct == pytest.approx(5)


def test_pct_rule_with_a_zero_baseline_allows_no_worsening() -> None:
    # 10% of 0 is 0: staying at 0 passes, any rise fails; there is no percentage to show.
    rule = Rule("error_rate", max_rise_pct=10)

    unchanged = judge(rule, 0, 0.0)
    assert unchanged.verdict == "pass"
    assert unchanged.change == 0
    assert unchanged.change_pct is None

    worse = judge(rule, 0.01, 0.0)
    assert worse.verdict == "fail"
    assert worse.message == "error_rate rose 0.01 from 0 to 0.01 (allowed: rise ≤ 10%)"
    assert worse.change == pytest.approx(0.01)
    assert worse.change_pct is None


# -- Values that are not numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (math.nan, "accuracy is NaN, not a number"),
        (math.inf, "accuracy is infinite, not a number"),
        (-math.inf, "accuracy is infinite, not a number"),
        ("n/a", "accuracy is the text 'n/a', not a number"),
        ("x" * 60, f"accuracy is the text {'x' * 40!r}, not a number"),
        (True, "accuracy is a boolean (true), not a number"),
        (False, "accuracy is a boolean (false), not a number"),
        (None, "accuracy is empty (null), not a number"),
    ],
)
def test_a_candidate_that_is_not_a_number_fails(value: object, problem: str) -> None:
    rule = Rule("accuracy", min=0.5)
    gate = evaluate_gate([rule], {"accuracy": value}, baseline(accuracy=0.9))  # type: ignore[dict-item]

    (result,) = gate.results
    assert result.verdict == "fail"
    assert result.message == problem
    assert result.checks == ()
    assert result.baseline == 0.9
    assert not gate.passed


def test_a_missing_candidate_metric_fails() -> None:
    gate = evaluate_gate([Rule("f1", min=0.5)], {"accuracy": 0.9}, baseline(f1=0.8))

    (result,) = gate.results
    assert result.verdict == "fail"
    assert result.message == "f1 is missing from the candidate's metrics"
    assert result.candidate is None
    assert result.baseline == 0.8
    assert gate.summary() == f"failed against {BASELINE_LABEL}: {result.message}"


@pytest.mark.parametrize("candidate", [{}, {"f1": math.nan}, {"f1": "oops"}])
def test_a_broken_warn_rule_only_warns(candidate: dict[str, object]) -> None:
    gate = evaluate_gate([Rule("f1", min=0.5, severity="warn")], candidate, None)  # type: ignore[arg-type]

    assert gate.results[0].verdict == "warn"
    assert gate.passed
    assert gate.verdict == "warn"


# -- First run: no baseline ---------------------------------------------------------------

FIRST_RUN_RULES = [Rule("accuracy", min=0.9, max_drop=0.01), Rule("f1", max_drop=0.01)]


def test_first_run_applies_only_absolute_checks() -> None:
    gate = evaluate_gate(FIRST_RUN_RULES, {"accuracy": 0.95, "f1": 0.1}, None)

    accuracy, f1 = gate.results
    assert gate.verdict == "pass"
    assert [(c.name, c.passed) for c in accuracy.checks] == [("min", True), ("max_drop", None)]
    assert not accuracy.unchecked  # its min was checked
    assert f1.unchecked
    assert f1.message == "within limits (no baseline: drop ≤ 0.01 not checked)"
    assert f1.change is None and f1.change_pct is None
    assert gate.notes == (
        "No baseline: only absolute rules (min, max) were applied; not checked: "
        "accuracy drop ≤ 0.01, f1 drop ≤ 0.01.",
    )
    assert gate.summary() == (
        "passed with no baseline: 1 rule met, 1 not checked (no baseline value)"
    )


def test_first_run_still_fails_an_absolute_check() -> None:
    gate = evaluate_gate(FIRST_RUN_RULES, {"accuracy": 0.85, "f1": 0.9}, None)

    assert gate.verdict == "fail"
    assert gate.results[0].message == "accuracy 0.85 is below the minimum 0.9"
    assert gate.summary() == "failed with no baseline: accuracy 0.85 is below the minimum 0.9"


def test_no_note_when_every_rule_is_absolute() -> None:
    gate = evaluate_gate([Rule("accuracy", min=0.9)], {"accuracy": 0.95}, None)

    assert gate.notes == ()
    assert gate.summary() == "passed with no baseline: 1 rule met"


def test_on_missing_baseline_fail_fails_relative_checks() -> None:
    gate = evaluate_gate(
        FIRST_RUN_RULES, {"accuracy": 0.95, "f1": 0.9}, None, on_missing_baseline="fail"
    )

    accuracy, f1 = gate.results
    assert gate.verdict == "fail"
    assert accuracy.verdict == "fail" and f1.verdict == "fail"
    assert f1.message == "f1: no baseline to compare with (on_missing_baseline: fail)"
    assert not f1.unchecked
    assert gate.notes == ("No baseline, and gate.on_missing_baseline is fail.",)
    assert gate.summary().startswith("failed with no baseline: ")
    assert gate.summary().endswith("(and 1 more)")


def test_on_missing_baseline_fail_summary_names_the_metric() -> None:
    gate = evaluate_gate([Rule("f1", max_drop=0.01)], {"f1": 0.9}, None, on_missing_baseline="fail")

    assert "f1" in gate.summary()


def test_on_missing_baseline_fail_leaves_absolute_rules_alone() -> None:
    gate = evaluate_gate(
        [Rule("accuracy", min=0.9)], {"accuracy": 0.95}, None, on_missing_baseline="fail"
    )

    assert gate.verdict == "pass"
    assert gate.notes == ()


@pytest.mark.parametrize("base_value", [None, math.nan, "n/a"])
def test_a_baseline_without_a_numeric_value_skips_relative_checks(base_value: object) -> None:
    metrics = {"accuracy": 0.9} if base_value is None else {"accuracy": 0.9, "f1": base_value}
    gate = evaluate_gate(
        [Rule("f1", min=0.5, max_drop=0.01)],
        {"f1": 0.3},
        baseline(**metrics),
    )

    (result,) = gate.results
    assert result.verdict == "fail"  # the min still applies: 0.3 < 0.5
    assert result.message == "f1 0.3 is below the minimum 0.5"
    assert result.checks[1].passed is None
    assert result.checks[1].message == "the baseline has no numeric f1: drop ≤ 0.01 not checked"
    assert gate.notes == ()  # there is a baseline; it only lacks this metric


def test_a_baseline_lacking_the_metric_passes_unchecked() -> None:
    gate = evaluate_gate([Rule("f1", max_drop=0.01)], {"f1": 0.3}, baseline(accuracy=0.9))

    (result,) = gate.results
    assert result.verdict == "pass"
    assert result.unchecked
    assert (
        result.message == "within limits (the baseline has no numeric f1: drop ≤ 0.01 not checked)"
    )


def test_a_baseline_lacking_the_metric_fails_when_told_to() -> None:
    gate = evaluate_gate(
        [Rule("f1", max_drop=0.01)],
        {"f1": 0.3},
        baseline(accuracy=0.9),
        on_missing_baseline="fail",
    )

    (result,) = gate.results
    assert result.verdict == "fail"
    assert result.message == (
        "f1: the baseline has no numeric f1 to compare with (on_missing_baseline: fail)"
    )


# -- GateResult: passed, verdict, summary -------------------------------------------------

RULES = [
    Rule("accuracy", max_drop=0.01),
    Rule("f1_macro", max_drop=0.01),
    Rule("log_loss", max_rise_pct=10, severity="warn"),
]
BASE = baseline(accuracy=0.95, f1_macro=0.94, log_loss=0.20)


def test_all_pass() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.95, "f1_macro": 0.94, "log_loss": 0.2}, BASE)

    assert gate.passed
    assert gate.verdict == "pass"
    assert gate.summary() == f"passed against {BASELINE_LABEL}: 3 rules met"


def test_a_warning_passes_and_says_so() -> None:
    # log_loss 0.2 -> 0.25 rose 25% (> 10%), a warn rule.
    gate = evaluate_gate(RULES, {"accuracy": 0.95, "f1_macro": 0.94, "log_loss": 0.25}, BASE)

    assert gate.passed
    assert gate.verdict == "warn"
    assert gate.summary() == (
        f"passed with warnings against {BASELINE_LABEL}: "
        "log_loss rose 25% from 0.2 to 0.25 (allowed: rise ≤ 10%)"
    )


def test_one_failure_is_named_in_the_summary() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.95, "f1_macro": 0.92, "log_loss": 0.25}, BASE)

    assert not gate.passed
    assert gate.verdict == "fail"
    # Only failures decide a failed gate; the warning is not counted in "(and N more)".
    assert gate.summary() == (
        f"failed against {BASELINE_LABEL}: "
        "f1_macro dropped 0.02 from 0.94 to 0.92 (allowed: drop ≤ 0.01)"
    )


def test_several_failures_name_the_first_and_count_the_rest() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.90, "f1_macro": 0.92, "log_loss": 0.2}, BASE)

    assert gate.summary() == (
        f"failed against {BASELINE_LABEL}: "
        "accuracy dropped 0.05 from 0.95 to 0.9 (allowed: drop ≤ 0.01) (and 1 more)"
    )


def test_results_keep_the_order_of_the_rules() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.9, "f1_macro": 0.9, "log_loss": 0.9}, BASE)

    assert [r.metric for r in gate.results] == ["accuracy", "f1_macro", "log_loss"]
    assert [r.verdict for r in gate.results] == ["fail", "fail", "warn"]


def test_no_rules_passes() -> None:
    gate = GateResult(results=(), baseline=None)

    assert gate.passed
    assert gate.verdict == "pass"


# -- infer_direction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("log_loss", "lower"),
        ("val_loss", "lower"),
        ("mean_absolute_error", "lower"),
        ("latency_ms", "lower"),
        ("test.rmse", "lower"),
        ("inference-time-seconds", "lower"),
        ("WER", "lower"),
        ("accuracy", "higher"),
        ("f1_macro", "higher"),
        ("roc_auc", "higher"),
        ("test.acc", "higher"),
        ("r2", "higher"),
        ("mAP", "higher"),
        ("epochs", None),
        ("throughput", None),
        ("lossless_ratio", None),  # whole words only: "lossless" is not "loss"
    ],
)
def test_infer_direction(name: str, direction: str | None) -> None:
    assert infer_direction(name) == direction


@pytest.mark.parametrize("name", ["neg_log_loss", "test_neg_mean_squared_error"])
def test_infer_direction_of_negated_sklearn_scorers(name: str) -> None:
    assert infer_direction(name) == "higher"


def test_rule_better_prefers_the_explicit_direction() -> None:
    assert Rule("log_loss").better == "lower"
    assert Rule("log_loss", direction="higher").better == "higher"
    assert Rule("epochs").better is None


# -- format_number --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0000123, "0.0000123"),  # not rounded to 0
        (1.2e-07, "1.2e-7"),
        (0.95123456, "0.9512"),  # 4 significant digits
        (0.95, "0.95"),
        (12, "12"),
        (12.0, "12"),
        (0, "0"),
        (0.0, "0"),
        (-0.5, "-0.5"),
        (-0.0000123, "-0.0000123"),
        (-1234.5678, "-1235"),
        (123456.7, "1.235e5"),
        (1e20, "1e20"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_format_number_never_shows_a_nonzero_value_as_zero() -> None:
    for exponent in range(-12, 0):
        value = 1.5 * 10**exponent
        assert format_number(value) != "0"
        assert float(format_number(value)) == pytest.approx(value)


# -- Rule.describe ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Rule("accuracy", min=0.9, max_drop=0.01), "≥ 0.9, drop ≤ 0.01"),
        (Rule("log_loss", max=1, max_rise_pct=10), "≤ 1, rise ≤ 10%"),
        (Rule("accuracy", max_drop_pct=2.5), "drop ≤ 2.5%"),
        (Rule("log_loss", max_rise=0.0001), "rise ≤ 0.0001"),
        (Rule("accuracy", min_gain=0.01), "gain ≥ 0.01"),
        (Rule("accuracy", min_gain_pct=1), "gain ≥ 1%"),
        # Always min, max, then the relative checks, whatever order they were given in.
        (Rule("accuracy", max_drop=0.01, max=1, min=0.5), "≥ 0.5, ≤ 1, drop ≤ 0.01"),
        (Rule("accuracy"), ""),
    ],
)
def test_rule_describe(rule: Rule, text: str) -> None:
    assert rule.describe() == text
