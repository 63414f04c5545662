"""The evaluation's size: evaluate.min_rows and evaluate.min_row_fraction (issue #23)."""

from __future__ import annotations

import pytest

from mlci.core.gate import Baseline, Rows, Rule, evaluate_gate

BASE = Baseline("registry", "clf v1 (@champion)", {"accuracy": 0.90})
RULES = [Rule("accuracy", max_drop=0.01)]


def test_fewer_rows_than_min_rows_fail_a_gate_whose_rules_pass() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.95}, BASE, rows=Rows(candidate=20, minimum=100))

    assert gate.results[0].verdict == "pass"
    assert not gate.passed
    assert gate.verdict == "fail"
    message = "the candidate was evaluated on 20 rows, fewer than evaluate.min_rows (100): "
    assert gate.summary() == f"failed against clf v1 (@champion): {message}evaluate it on more rows"
    assert gate.notes == (f"{message}evaluate it on more rows",)
    (check,) = gate.row_checks
    assert (check.name, check.threshold, check.passed) == ("min_rows", 100, False)


def test_enough_rows_pass_and_leave_no_note() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.95}, BASE, rows=Rows(candidate=100, minimum=100))
    assert gate.passed
    assert gate.notes == ()
    assert [check.passed for check in gate.row_checks] == [True]


def test_min_rows_without_predictions_says_it_could_not_be_applied() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.95}, BASE, rows=Rows(candidate=None, minimum=100))
    assert gate.passed
    (check,) = gate.row_checks
    assert check.passed is None
    assert gate.notes == (
        "evaluate.min_rows (100) could not be applied: the number of rows is known only from "
        "evaluate.predictions, and this candidate has metrics files only",
    )


@pytest.mark.parametrize(
    ("candidate", "passed"), [(269, False), (270, True), (540, True), (1000, True)]
)
def test_far_fewer_rows_than_the_baseline_fail(candidate: int, passed: bool) -> None:
    rows = Rows(candidate=candidate, baseline=540, fraction=0.5)
    gate = evaluate_gate(RULES, {"accuracy": 0.95}, BASE, rows=rows)
    assert gate.passed is passed
    (check,) = gate.row_checks
    assert check.name == "min_row_fraction"
    if not passed:
        assert gate.summary().endswith(
            "the candidate was evaluated on 269 rows, far fewer than the baseline's 540 "
            "(evaluate.min_row_fraction: 0.5 asks for at least 270): a smaller evaluation set "
            "can hide a regression"
        )


def test_the_fraction_is_not_applied_without_the_baselines_rows() -> None:
    gate = evaluate_gate(RULES, {"accuracy": 0.95}, BASE, rows=Rows(candidate=5, fraction=0.5))
    assert gate.passed
    assert gate.row_checks == ()


def test_a_failing_row_check_and_a_failing_rule_are_both_counted() -> None:
    rows = Rows(candidate=20, minimum=100)
    gate = evaluate_gate(RULES, {"accuracy": 0.5}, BASE, rows=rows)
    assert gate.summary().endswith("evaluate it on more rows (and 1 more)")
