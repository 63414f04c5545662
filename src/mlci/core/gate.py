"""The gate: rules applied to a candidate's metrics and a baseline's -> `GateResult`.

Arithmetic on thresholds uses `Decimal` built from each float's shortest repr, so a
rule like `max_drop: 0.01` with baseline 0.95 accepts a candidate of exactly 0.94
(binary floats would say 0.95 - 0.01 = 0.9400000000000001 and fail it).

A rule with `confidence` is decided on an interval instead of a point: it fails only
when the interval lies wholly beyond the limit, passes "within noise" when the interval
straddles it, and with `require_proof` passes only when the interval clears the limit.
A `min` or `max` the value misses is never passed within noise: an interval that reaches
back to the floor only says the evaluation set is too small to tell ("inconclusive").

The evaluation's size is checked too (`Rows`): fewer rows than `evaluate.min_rows`, or
far fewer than the baseline was evaluated on, fails the gate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from mlci.core.intervals import Interval, scaled_rows, wilson_rows
from mlci.core.metrics import MetricValue, is_number
from mlci.core.numbers import format_number
from mlci.errors import shown

Direction = Literal["higher", "lower"]
Verdict = Literal["pass", "fail", "warn", "skip"]
Severity = Literal["fail", "warn"]
MissingBaseline = Literal["pass", "fail"]
MissingMetric = Literal["fail", "skip"]

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

Correction = Literal["holm", "bh"]
CORRECTIONS: dict[str, str] = {"holm": "Holm", "bh": "Benjamini–Hochberg"}

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
# Metrics that are a proportion of all the rows: the Wilson interval says how many they need.
_PROPORTIONS = frozenset(["accuracy", "precision_micro", "recall_micro", "f1_micro"])


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
class Binning:
    """How one column makes slices: each value (neither set), or numeric bins."""

    column: str
    edges: tuple[float, ...] = ()
    quantiles: int | None = None


@dataclass(frozen=True)
class SliceSpec:
    """One entry of evaluate.slices: a column, or a cross of two."""

    columns: tuple[Binning, ...]
    min_rows: int | None = None  # None: evaluate.slice_min_rows

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(binning.column for binning in self.columns)


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
    confidence: float | None = None
    require_proof: bool = False
    on_missing_metric: MissingMetric = "fail"
    # Judged in each slice of evaluate.slices too: True (all), or the slices' columns.
    slices: bool | tuple[str, ...] = False

    @property
    def better(self) -> Direction | None:
        return self.direction or infer_direction(self.metric)

    def thresholds(self) -> list[tuple[str, float]]:
        """The checks this rule declares, in a stable order."""
        names = (*ABSOLUTE_CHECKS, *RELATIVE_CHECKS)
        return [(name, value) for name in names if (value := getattr(self, name)) is not None]

    def describe(self) -> str:
        """Short text for the report's rule column, e.g. `≥ 0.9, drop ≤ 0.01 at 95%`."""
        text = ", ".join(describe_check(name, value) for name, value in self.thresholds())
        if self.confidence is not None:
            text += f" at {format_number(self.confidence * 100)}%"
            text += ", proven" if self.require_proof else ""
        if self.slices:
            text += ", per slice"
        return text


@dataclass(frozen=True)
class MetricIntervals:
    """Intervals at one confidence level: of each candidate value, and of each change."""

    value: Mapping[str, Interval] = field(default_factory=dict)
    change: Mapping[str, Interval] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """What the candidate is compared against."""

    source: str  # "registry", "git", "file", ...
    label: str  # e.g. "digits-classifier v3 (@champion)"
    metrics: Mapping[str, MetricValue]


@dataclass(frozen=True)
class Check:
    """One threshold of a rule, applied. `passed` is None when it could not apply."""

    name: str
    threshold: float
    passed: bool | None
    message: str
    interval: Interval | None = None
    within_noise: bool = False
    inconclusive: bool = False  # failed: the value misses a floor its interval reaches


@dataclass(frozen=True)
class Rows:
    """The evaluation's size: the rows of the candidate's and the baseline's predictions
    (None where unknown: metrics files only), and the limits evaluate.min_rows and
    evaluate.min_row_fraction (0: off). `method`: how the metrics were computed from the
    rows, "exact" or, above evaluate.exact_rows, "binned, 1000 bins", with roc_auc within
    `auc_bound` of its exact value and each average precision of the candidate's
    precision-recall curves within `ap_bound` of its exact value."""

    candidate: int | None = None
    baseline: int | None = None
    minimum: int = 0
    fraction: float = 0.0
    method: str = "exact"
    auc_bound: float = 0.0
    ap_bound: float = 0.0


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
    interval: Interval | None = None  # of the change when known, else of the value
    interval_of: Literal["change", "value"] | None = None

    @property
    def unchecked(self) -> bool:
        """True when every check of a passing rule waited for a baseline."""
        return bool(self.checks) and all(check.passed is None for check in self.checks)

    @property
    def within_noise(self) -> bool:
        return self.verdict == "pass" and any(check.within_noise for check in self.checks)


Trend = Literal["worse", "better", "unclear"]


# Why a slice is listed but not gated: fewer rows than its min_rows; the metric undefined
# there (roc_auc where y_true holds one class); a class of a single row (roc_auc's
# standard error would be too small).
SkipReason = Literal["few rows", "undefined", "one-row class"]


@dataclass(frozen=True)
class SliceResult:
    """A rule applied in one slice (core/slices.py). `slice` is ((column, value), ...);
    `verdict` is `skip` for a slice listed but not gated (fewer rows than its min_rows, or
    no value there: roc_auc in a slice whose y_true holds one class, `candidate` NaN).
    `trend` says whether the change is clearly worse or better after the correction for
    the many slices; `p_value` is the corrected p-value of the check that decided."""

    metric: str
    slice: tuple[tuple[str, str], ...]
    rows: int
    candidate: float
    baseline: float | None
    change: float | None
    interval: Interval | None  # of the change when paired, else of the value
    verdict: Verdict
    trend: Trend
    message: str
    p_value: float | None = None
    rule: str = ""  # the rule's description
    skipped: SkipReason | None = None  # why a slice is not gated (verdict `skip`)

    @property
    def name(self) -> str:
        """`country=fr, device=ios`, each value shown safely (`slice_name`)."""
        return slice_name(self.slice)


SLICE_VALUE_CHARS = 60  # a slice's value comes from the predictions file: shown this long


def slice_name(label: tuple[tuple[str, str], ...]) -> str:
    """`country=fr, device=ios`: control and bidi characters made visible, each value cut
    to SLICE_VALUE_CHARS (a value is the pull request's data; it cannot reverse or flood
    the line it is shown in). Markdown and HTML escape the result as they escape all text."""
    return ", ".join(f"{_short(shown(column))}={_short(shown(value))}" for column, value in label)


def _short(text: str) -> str:
    return text if len(text) <= SLICE_VALUE_CHARS else text[: SLICE_VALUE_CHARS - 1] + "…"


@dataclass(frozen=True)
class GateResult:
    results: tuple[RuleResult, ...]
    baseline: Baseline | None
    notes: tuple[str, ...] = field(default=())
    rows: Rows | None = None
    row_checks: tuple[Check, ...] = ()  # evaluate.min_rows and min_row_fraction, applied
    slices: tuple[SliceResult, ...] = ()  # rules with `slices`, in each slice
    slice_correction: str = ""  # "Holm" or "Benjamini–Hochberg", when slices were judged

    @property
    def passed(self) -> bool:
        return self.verdict != "fail"

    @property
    def verdict(self) -> Verdict:
        verdicts = {result.verdict for result in self.results}
        verdicts |= {result.verdict for result in self.slices}
        if "fail" in verdicts or self._row_failures():
            return "fail"
        return "warn" if "warn" in verdicts else "pass"

    def summary(self) -> str:
        """One line: the verdict and the metrics (or the evaluation's size) that decided it."""
        against = f"against {self.baseline.label}" if self.baseline else "with no baseline"
        if self.verdict == "pass":
            return f"passed {against}: {self._pass_counts()}"
        deciding = [
            *self._row_failures(),
            *(r.message for r in self.results if r.verdict == self.verdict),
            *(s.message for s in self._worst_slices() if s.verdict == self.verdict),
        ]
        head = "failed" if self.verdict == "fail" else "passed with warnings"
        more = f" (and {len(deciding) - 1} more)" if len(deciding) > 1 else ""
        return f"{head} {against}: {deciding[0]}{more}"

    def _worst_slices(self) -> list[SliceResult]:
        return sorted(self.slices, key=lambda s: -abs(s.change or 0.0))

    def _row_failures(self) -> list[str]:
        return [check.message for check in self.row_checks if check.passed is False]

    def _pass_counts(self) -> str:
        judged = [r for r in self.results if r.verdict == "pass"]
        unchecked = sum(1 for r in judged if r.unchecked)
        noisy = sum(1 for r in judged if r.within_noise)
        met = len(judged) - unchecked
        parts = [f"{met} rule{'s' if met != 1 else ''} met"]
        if noisy:
            parts.append(f"{noisy} of them within noise")
        if unchecked:
            parts.append(f"{unchecked} not checked (no baseline value)")
        skipped = len(self.results) - len(judged)
        if skipped:
            parts.append(f"{skipped} skipped (metric missing)")
        gated = sum(1 for s in self.slices if s.verdict != "skip")
        if gated:
            parts.append(f"{gated} slice checks within limits ({self.slice_correction})")
        return ", ".join(parts)


def evaluate_gate(
    rules: tuple[Rule, ...] | list[Rule],
    candidate: Mapping[str, MetricValue],
    baseline: Baseline | None,
    *,
    on_missing_baseline: MissingBaseline = "pass",
    intervals: Mapping[float, MetricIntervals] | None = None,
    rows: Rows | None = None,
) -> GateResult:
    """Apply every rule; the result says per metric what passed, failed, warned or skipped.

    `intervals` maps a confidence level (0.95) to the intervals computed at that level;
    rules with that `confidence` are decided on them. `rows`, the evaluation's size, is
    checked against its limits and says how many rows an inconclusive floor would need.
    """
    intervals = intervals or {}
    results = tuple(
        _evaluate_rule(
            rule,
            candidate,
            baseline,
            on_missing_baseline,
            intervals.get(rule.confidence or 0.95, MetricIntervals()),
            rows.candidate if rows else None,
        )
        for rule in rules
    )
    row_checks = check_rows(rows) if rows else ()
    notes = [check.message for check in row_checks if not check.passed]
    if baseline is None and any(_relative(rule) for rule in rules):
        if on_missing_baseline == "pass":
            notes.append(
                "No baseline: only absolute rules (min, max) were applied; not checked: "
                + ", ".join(unchecked_limits(results))
                + "."
            )
        else:
            notes.append("No baseline, and gate.on_missing_baseline is fail.")
    pointwise = [
        r.metric
        for r in results
        if r.rule.confidence is not None and r.checks and all(c.interval is None for c in r.checks)
    ]
    if pointwise:
        notes.append(
            f"No interval for {', '.join(pointwise)}: decided on point values. Intervals come "
            f"from evaluate.predictions for the metrics mlci computes from predictions."
        )
    return GateResult(
        results=results, baseline=baseline, notes=tuple(notes), rows=rows, row_checks=row_checks
    )


def check_rows(rows: Rows) -> tuple[Check, ...]:
    """evaluate.min_rows and evaluate.min_row_fraction applied to the evaluation's size;
    `passed` is None where the candidate's rows are unknown."""
    checks = []
    counted = f"the candidate was evaluated on {rows.candidate or 0:,} rows"
    if rows.minimum:
        setting = f"evaluate.min_rows ({rows.minimum:,})"
        if rows.candidate is None:
            message = (
                f"{setting} could not be applied: the number of rows is known only from "
                f"evaluate.predictions, and this candidate has metrics files only"
            )
            checks.append(Check("min_rows", rows.minimum, None, message))
        elif rows.candidate < rows.minimum:
            message = f"{counted}, fewer than {setting}: evaluate it on more rows"
            checks.append(Check("min_rows", rows.minimum, False, message))
        else:
            checks.append(Check("min_rows", rows.minimum, True, f"{counted}, {setting}"))
    if rows.fraction and rows.candidate is not None and rows.baseline:
        needed = math.ceil(_dec(rows.fraction) * rows.baseline)
        setting = f"evaluate.min_row_fraction: {format_number(rows.fraction)}"
        if rows.candidate < needed:
            message = (
                f"{counted}, far fewer than the baseline's {rows.baseline:,} ({setting} asks "
                f"for at least {needed:,}): a smaller evaluation set can hide a regression"
            )
            checks.append(Check("min_row_fraction", rows.fraction, False, message))
        else:
            message = f"{counted}, the baseline on {rows.baseline:,} ({setting})"
            checks.append(Check("min_row_fraction", rows.fraction, True, message))
    return tuple(checks)


def unchecked_limits(results: tuple[RuleResult, ...]) -> list[str]:
    """The limits that waited for a baseline value, e.g. `f1 drop ≤ 0.01`."""
    return [
        f"{result.metric} {describe_check(check.name, check.threshold)}"
        for result in results
        for check in result.checks
        if check.passed is None
    ]


def _relative(rule: Rule) -> bool:
    return any(name in RELATIVE_CHECKS for name, _ in rule.thresholds())


def _evaluate_rule(
    rule: Rule,
    candidate: Mapping[str, MetricValue],
    baseline: Baseline | None,
    on_missing_baseline: MissingBaseline,
    intervals: MetricIntervals,
    rows: int | None,
) -> RuleResult:
    name = rule.metric
    base_value = baseline.metrics.get(name) if baseline else None
    if name not in candidate:
        if rule.on_missing_metric == "skip":
            message = f"{name} is missing from the candidate's metrics: skipped"
            return _broken(rule, None, base_value, message, verdict="skip")
        return _broken(rule, None, base_value, f"{name} is missing from the candidate's metrics")
    value = candidate[name]
    if not is_number(value):
        return _broken(rule, value, base_value, f"{name} is {_describe_bad(value)}, not a number")
    cand = _dec(value)
    base = _dec(base_value) if is_number(base_value) else None
    value_interval = intervals.value.get(name)
    change_interval = intervals.change.get(name)
    if change_interval is None and value_interval is not None and base is not None:
        change_interval = _unpaired_change(value_interval, float(base))
    context = _Context(
        rule, cand, base, baseline, on_missing_baseline, value_interval, change_interval, rows
    )
    checks = [_check(context, check, threshold) for check, threshold in rule.thresholds()]
    failed = [c for c in checks if c.passed is False]
    verdict: Verdict = ("fail" if rule.severity == "fail" else "warn") if failed else "pass"
    if failed:
        message = "; ".join(c.message for c in failed)
    else:
        notes = [c.message for c in checks if c.passed is None or c.within_noise]
        message = "within limits" + (f" ({'; '.join(notes)})" if notes else "")
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
        interval=change_interval or value_interval,
        interval_of="change" if change_interval else "value" if value_interval else None,
    )


def _unpaired_change(value: Interval, base: float) -> Interval:
    """The change's interval when only the candidate's is known (baseline taken as exact)."""
    return Interval(
        low=value.low - base,
        high=value.high - base,
        confidence=value.confidence,
        method=f"{value.method}, baseline taken as exact",
    )


def _broken(
    rule: Rule, value: MetricValue, base: MetricValue, message: str, verdict: Verdict | None = None
) -> RuleResult:
    return RuleResult(
        metric=rule.metric,
        rule=rule,
        candidate=value,
        baseline=base,
        verdict=verdict or ("fail" if rule.severity == "fail" else "warn"),
        checks=(),
        message=message,
    )


@dataclass(frozen=True)
class _Context:
    rule: Rule
    cand: Decimal
    base: Decimal | None
    baseline: Baseline | None
    on_missing_baseline: MissingBaseline
    value_interval: Interval | None
    change_interval: Interval | None
    rows: int | None  # of the candidate's predictions, when known


def _check(ctx: _Context, name: str, threshold: float) -> Check:
    """One threshold: as a bound `x >= limit` or `x <= limit` on the value or the change."""
    metric = ctx.rule.metric
    if name in ABSOLUTE_CHECKS:
        at_least = name == "min"
        limit = _dec(threshold)
        word = "minimum" if at_least else "maximum"
        point = f"{metric} {_n(ctx.cand)}"
        ok_text, bad_text = ("is at least", "is below") if at_least else ("is at most", "is above")
        return _decide(
            ctx,
            name,
            threshold,
            at_least=at_least,
            point=ctx.cand,
            limit=limit,
            interval=ctx.value_interval,
            texts=(
                f"{point} {ok_text} the {word} {_n(limit)}",
                f"{point} {bad_text} the {word} {_n(limit)}",
            ),
            of="the value",
            floor=True,
        )
    if ctx.base is None:
        why = "no baseline" if ctx.baseline is None else f"the baseline has no numeric {metric}"
        if ctx.on_missing_baseline == "pass":
            return Check(
                name, threshold, None, f"{why}: {describe_check(name, threshold)} not checked"
            )
        return Check(
            name, threshold, False, f"{metric}: {why} to compare with (on_missing_baseline: fail)"
        )
    base = ctx.base
    margin = _dec(threshold)
    if name.endswith("_pct"):
        margin = abs(base) * margin / 100
    higher = ctx.rule.better != "lower"
    if name.startswith("max_drop"):
        at_least, limit = True, -margin
    elif name.startswith("max_rise"):
        at_least, limit = False, margin
    else:
        at_least, limit = (True, margin) if higher else (False, -margin)
    word = "required" if name.startswith("min_gain") else "allowed"
    moved = movement(metric, ctx.cand, base, name)
    text = f"{moved} ({word}: {describe_check(name, threshold)})"
    return _decide(
        ctx,
        name,
        threshold,
        at_least=at_least,
        point=ctx.cand - base,
        limit=limit,
        interval=ctx.change_interval,
        texts=(text, text),
        of="the change",
    )


def _decide(
    ctx: _Context,
    name: str,
    threshold: float,
    *,
    at_least: bool,
    point: Decimal,
    limit: Decimal,
    interval: Interval | None,
    texts: tuple[str, str],
    of: str,
    floor: bool = False,
) -> Check:
    """Pass or fail a bound, on the point value or, with `confidence`, on the interval.

    A floor (`min`, `max`) whose value misses it fails even when the interval reaches
    back: the evaluation set could not tell the value from the limit.
    """
    if ctx.rule.confidence is None or interval is None:
        ok = point >= limit if at_least else point <= limit
        return Check(name, threshold, ok, texts[0] if ok else texts[1], interval)
    low, high = _dec(interval.low), _dec(interval.high)
    clears = low >= limit if at_least else high <= limit
    beyond = high < limit if at_least else low > limit
    level = f"{format_number(interval.confidence * 100)}% interval of {of} {interval.describe()}"
    if clears:
        return Check(name, threshold, True, f"{texts[0]}; {level} clears the limit", interval)
    if beyond:
        return Check(
            name, threshold, False, f"{texts[1]}; {level} is wholly beyond the limit", interval
        )
    if ctx.rule.require_proof:
        message = f"{texts[1]}; not proven: {level} reaches past the limit {_n(limit)}"
        return Check(name, threshold, False, message, interval)
    if floor and not (point >= limit if at_least else point <= limit):
        seen = f"{ctx.rows:,} rows" if ctx.rows else "the evaluation set"
        message = (
            f"inconclusive: {texts[1]}, but the {level} reaches the limit: {seen} cannot tell "
            f"{_n(point)} from {_n(limit)}; {_rows_needed(ctx, point, limit, interval)}"
        )
        return Check(name, threshold, False, message, interval, inconclusive=True)
    message = f"within noise: {texts[0]}; {level} straddles the limit {_n(limit)}"
    return Check(name, threshold, True, message, interval, within_noise=True)


def _rows_needed(ctx: _Context, point: Decimal, limit: Decimal, interval: Interval) -> str:
    """How many rows would narrow the interval to the distance between value and limit."""
    gap = float(abs(point - limit))
    needed = None
    if ctx.rule.metric in _PROPORTIONS and 0 <= point <= 1:
        needed = wilson_rows(float(point), gap, interval.confidence)
    if ctx.rows and (needed is None or needed <= ctx.rows):
        needed = scaled_rows(ctx.rows, (interval.high - interval.low) / 2, gap)
    if needed is None or (ctx.rows and needed <= ctx.rows):
        return "more rows would narrow the interval"
    return f"about {needed:,} rows would give an interval of ±{format_number(gap)}"


def movement(metric: str, cand: Decimal, base: Decimal, name: str) -> str:
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


def describe_check(name: str, threshold: float) -> str:
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
