"""The gate: rules applied to a candidate's metrics and a baseline's -> `GateResult`.

Arithmetic on thresholds uses `Decimal` built from each float's shortest repr, so a
rule like `max_drop: 0.01` with baseline 0.95 accepts a candidate of exactly 0.94
(binary floats would say 0.95 - 0.01 = 0.9400000000000001 and fail it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from mlci.core.metrics import MetricValue, is_number

Direction = Literal["higher", "lower"]
Verdict = Literal["pass", "fail", "warn"]
Severity = Literal["fail", "warn"]
MissingBaseline = Literal["pass", "fail"]

# Names whose words say which way is better; anything else needs `direction:`.
_LOWER_WORDS = frozenset(
    [
        "loss",
        "error",
        "err",
        "mae",
        "mse",
        "rmse",
        "mape",
        "smape",
        "latency",
        "time",
        "duration",
        "seconds",
        "ms",
        "wer",
        "cer",
        "perplexity",
        "ece",
        "brier",
    ]
)
_HIGHER_WORDS = frozenset(
    [
        "accuracy",
        "acc",
        "f1",
        "precision",
        "recall",
        "auc",
        "roc",
        "pr",
        "r2",
        "score",
        "iou",
        "dice",
        "map",
        "bleu",
        "rouge",
        "specificity",
        "sensitivity",
        "kappa",
        "mcc",
    ]
)

# Each relative check: which direction it belongs to (None: both), and its wording.
RELATIVE_CHECKS: dict[str, Direction | None] = {
    "max_drop": "higher",
    "max_drop_pct": "higher",
    "max_rise": "lower",
    "max_rise_pct": "lower",
    "min_gain": None,
    "min_gain_pct": None,
}
ABSOLUTE_CHECKS = ("min", "max")


def infer_direction(metric: str) -> Direction | None:
    """`lower` for names like `log_loss` or `latency_ms`, `higher` for `accuracy`, else None."""
    words = set(re.split(r"[^a-z0-9]+", metric.lower()))
    found: Direction | None = None
    if words & _LOWER_WORDS:
        found = "lower"
    elif words & _HIGHER_WORDS:
        found = "higher"
    if found is not None and "neg" in words:  # scikit-learn's negated scorers: neg_log_loss
        return "higher" if found == "lower" else "lower"
    return found


@dataclass(frozen=True)
class Rule:
    """One line of `gate.rules`: bounds and allowed changes for one metric."""

    metric: str
    direction: Direction | None = None
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    max_drop_pct: float | None = None
    max_rise: float | None = None
    max_rise_pct: float | None = None
    min_gain: float | None = None
    min_gain_pct: float | None = None
    severity: Severity = "fail"

    @property
    def better(self) -> Direction | None:
        return self.direction or infer_direction(self.metric)

    def thresholds(self) -> list[tuple[str, float]]:
        """The checks this rule declares, in a stable order."""
        names = (*ABSOLUTE_CHECKS, *RELATIVE_CHECKS)
        return [(name, value) for name in names if (value := getattr(self, name)) is not None]

    def describe(self) -> str:
        """Short text for the report's rule column, e.g. `≥ 0.9, drop ≤ 0.01`."""
        return ", ".join(_describe_check(name, value) for name, value in self.thresholds())


@dataclass(frozen=True)
class Baseline:
    """What the candidate is compared against."""

    source: str  # "registry", "file", ...
    label: str  # e.g. "digits-classifier v3 (@champion)"
    metrics: Mapping[str, MetricValue]


@dataclass(frozen=True)
class Check:
    """One threshold of a rule, applied. `passed` is None when it could not apply."""

    name: str
    threshold: float
    passed: bool | None
    message: str


@dataclass(frozen=True)
class RuleResult:
    metric: str
    rule: Rule
    candidate: MetricValue
    baseline: MetricValue
    verdict: Verdict
    checks: tuple[Check, ...]
    message: str
    change: float | None = None
    change_pct: float | None = None

    @property
    def unchecked(self) -> bool:
        """True when every check of a passing rule waited for a baseline."""
        return bool(self.checks) and all(check.passed is None for check in self.checks)


@dataclass(frozen=True)
class GateResult:
    results: tuple[RuleResult, ...]
    baseline: Baseline | None
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(result.verdict != "fail" for result in self.results)

    @property
    def verdict(self) -> Verdict:
        verdicts = {result.verdict for result in self.results}
        if "fail" in verdicts:
            return "fail"
        return "warn" if "warn" in verdicts else "pass"

    def summary(self) -> str:
        """One line: the verdict and the metrics that decided it."""
        against = f"against {self.baseline.label}" if self.baseline else "with no baseline"
        deciding = [r for r in self.results if r.verdict == self.verdict]
        if self.verdict == "pass":
            count = len(self.results)
            unchecked = sum(1 for r in self.results if r.unchecked)
            if unchecked:
                return (
                    f"passed {against}: {count - unchecked} of {count} rules met, {unchecked} "
                    f"not checked until there is a baseline"
                )
            return f"passed: {count} rule{'s' if count != 1 else ''} met {against}"
        head = "failed" if self.verdict == "fail" else "passed with warnings"
        more = f" (and {len(deciding) - 1} more)" if len(deciding) > 1 else ""
        return f"{head} {against}: {deciding[0].message}{more}"


def evaluate_gate(
    rules: tuple[Rule, ...] | list[Rule],
    candidate: Mapping[str, MetricValue],
    baseline: Baseline | None,
    *,
    on_missing_baseline: MissingBaseline = "pass",
) -> GateResult:
    """Apply every rule; the result says per metric what passed, failed or warned."""
    results = tuple(
        _evaluate_rule(rule, candidate, baseline, on_missing_baseline) for rule in rules
    )
    notes: tuple[str, ...] = ()
    if baseline is None and any(_relative(rule) for rule in rules):
        if on_missing_baseline == "pass":
            notes = ("No baseline yet (first run): only absolute rules (min, max) were applied.",)
        else:
            notes = ("No baseline, and gate.on_missing_baseline is fail.",)
    return GateResult(results=results, baseline=baseline, notes=notes)


def _relative(rule: Rule) -> bool:
    return any(name in RELATIVE_CHECKS for name, _ in rule.thresholds())


def _evaluate_rule(
    rule: Rule,
    candidate: Mapping[str, MetricValue],
    baseline: Baseline | None,
    on_missing_baseline: MissingBaseline,
) -> RuleResult:
    name = rule.metric
    base_value = baseline.metrics.get(name) if baseline else None
    if name not in candidate:
        return _broken(rule, None, base_value, f"{name} is missing from the candidate's metrics")
    value = candidate[name]
    if not is_number(value):
        return _broken(rule, value, base_value, f"{name} is {_describe_bad(value)}, not a number")
    cand = _dec(value)
    base = _dec(base_value) if is_number(base_value) else None
    checks = [
        _check(rule, check, threshold, cand, base, baseline, on_missing_baseline)
        for check, threshold in rule.thresholds()
    ]
    failed = [c for c in checks if c.passed is False]
    verdict: Verdict = ("fail" if rule.severity == "fail" else "warn") if failed else "pass"
    if failed:
        message = "; ".join(c.message for c in failed)
    else:
        skipped = [c.message for c in checks if c.passed is None]
        message = "within limits" + (f" ({skipped[0]})" if skipped else "")
    change = change_pct = None
    if base is not None:
        change = float(cand - base)
        change_pct = float((cand - base) / abs(base) * 100) if base != 0 else None
    return RuleResult(
        metric=name,
        rule=rule,
        candidate=value,
        baseline=base_value,
        verdict=verdict,
        checks=tuple(checks),
        message=message,
        change=change,
        change_pct=change_pct,
    )


def _broken(rule: Rule, value: MetricValue, base: MetricValue, message: str) -> RuleResult:
    verdict: Verdict = "fail" if rule.severity == "fail" else "warn"
    return RuleResult(
        metric=rule.metric,
        rule=rule,
        candidate=value,
        baseline=base,
        verdict=verdict,
        checks=(),
        message=message,
    )


def _check(
    rule: Rule,
    name: str,
    threshold: float,
    cand: Decimal,
    base: Decimal | None,
    baseline: Baseline | None,
    on_missing_baseline: MissingBaseline,
) -> Check:
    metric = rule.metric
    limit = _dec(threshold)
    if name == "min":
        ok = cand >= limit
        relation = "is at least" if ok else "is below"
        return Check(name, threshold, ok, f"{metric} {_n(cand)} {relation} the minimum {_n(limit)}")
    if name == "max":
        ok = cand <= limit
        relation = "is at most" if ok else "is above"
        return Check(name, threshold, ok, f"{metric} {_n(cand)} {relation} the maximum {_n(limit)}")
    if base is None:
        why = "no baseline" if baseline is None else f"the baseline has no numeric {metric}"
        if on_missing_baseline == "pass":
            return Check(
                name, threshold, None, f"{why}: {_describe_check(name, threshold)} not checked"
            )
        return Check(
            name, threshold, False, f"{metric}: {why} to compare with (on_missing_baseline: fail)"
        )
    return _relative_check(rule, name, threshold, cand, base)


def _relative_check(rule: Rule, name: str, threshold: float, cand: Decimal, base: Decimal) -> Check:
    margin = _dec(threshold)
    if name.endswith("_pct"):
        margin = abs(base) * margin / 100
    if name.startswith("max_drop"):
        ok = cand >= base - margin
        word = "allowed"
    elif name.startswith("max_rise"):
        ok = cand <= base + margin
        word = "allowed"
    else:
        higher = rule.better != "lower"
        gain = cand - base if higher else base - cand
        ok = gain >= margin
        word = "required"
    moved = _movement(rule.metric, cand, base, name)
    return Check(name, threshold, ok, f"{moved} ({word}: {_describe_check(name, threshold)})")


def _movement(metric: str, cand: Decimal, base: Decimal, name: str) -> str:
    """`accuracy dropped 0.05 from 0.96 to 0.91`, in the unit the rule uses."""
    if cand == base:
        return f"{metric} is unchanged at {_n(cand)}"
    verb = "rose" if cand > base else "dropped"
    return f"{metric} {verb} {_change(abs(cand - base), base, name)} from {_n(base)} to {_n(cand)}"


def _change(amount: Decimal, base: Decimal, name: str) -> str:
    if name.endswith("_pct") and base != 0:
        return f"{_n(amount / abs(base) * 100)}%"
    return _n(amount)


def _describe_amount(name: str, threshold: float) -> str:
    return f"{format_number(threshold)}%" if name.endswith("_pct") else format_number(threshold)


def _describe_check(name: str, threshold: float) -> str:
    amount = _describe_amount(name, threshold)
    return {
        "min": f"≥ {amount}",
        "max": f"≤ {amount}",
        "max_drop": f"drop ≤ {amount}",
        "max_drop_pct": f"drop ≤ {amount}",
        "max_rise": f"rise ≤ {amount}",
        "max_rise_pct": f"rise ≤ {amount}",
        "min_gain": f"gain ≥ {amount}",
        "min_gain_pct": f"gain ≥ {amount}",
    }[name]


def _describe_bad(value: MetricValue) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float):
        return "infinite"
    return f"the text {str(value)[:40]!r}"


def _dec(value: MetricValue) -> Decimal:
    return Decimal(repr(value))


def _n(value: Decimal) -> str:
    return format_number(float(value))


def format_number(value: float | int) -> str:
    """Readable precision: 4 significant digits, never rounding a small number to 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.4g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        exp = int(exponent)
        if -5 <= exp < 0:
            return f"{value:.{3 - exp}f}".rstrip("0").rstrip(".")
        return f"{mantissa}e{exp}"
    return text
