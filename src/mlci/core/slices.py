"""Slices: the rows grouped by the values of a column (or two), and the gate's rules
applied in each group with the false alarms across groups under control.

A slice spec names one column, or two for a cross. A column is categorical (each value a
slice) or numeric, binned by given `edges` or by `quantiles` of the candidate's values.

A rule with `slices` is judged in every slice with at least `min_rows` rows; smaller
slices, and those where the metric is undefined (roc_auc where y_true holds one class),
are listed, not gated. Each check of the rule gives each slice a one-sided p-value from
the normal approximation with the slice's standard error (`core.stats.slice_estimates`:
a jackknife on the count tables, the delta method for means, DeLong's variance for
roc_auc) — the same normal the slice's interval is drawn from, so a lone slice fails
exactly when its interval lies wholly beyond the limit. Across the slices the p-values
are corrected (Holm or Benjamini–Hochberg) and a slice fails only when its corrected
p-value is at most (1 - confidence) / 2. `require_proof` needs every slice's own interval
to clear the limit: an intersection of tests, which needs no correction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

import numpy as np

from mlci.core.gate import (
    ABSOLUTE_CHECKS,
    CORRECTIONS,
    Binning,
    Correction,
    Rule,
    SkipReason,
    SliceResult,
    SliceSpec,
    Trend,
    Verdict,
    describe_check,
    movement,
    slice_name,
)
from mlci.core.intervals import Interval
from mlci.core.numbers import format_number
from mlci.core.predictions import Array, FloatArray, IntArray
from mlci.core.stats import SliceEstimates

MISSING = "(missing)"
_ONE_CLASS = "one class only in y_true: no AUC"  # as overall: roc_auc needs two classes
_ONE_ROW_CLASS = "a class with a single row in y_true: too few to gate its AUC"
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Slices:
    """A spec applied to the rows: each row's slice and each slice's values."""

    spec: SliceSpec
    codes: IntArray  # each row's slice, 0 to len(labels) - 1
    labels: tuple[tuple[tuple[str, str], ...], ...]  # per slice: ((column, value), ...)
    rows: IntArray  # per slice


@dataclass(frozen=True)
class SliceGroup:
    """A spec's slices and the estimates of each metric in them."""

    slices: Slices
    estimates: Mapping[str, SliceEstimates]
    min_rows: int


def assign(spec: SliceSpec, columns: Mapping[str, Array]) -> Slices:
    """Each row's slice under `spec`; ValueError naming the column when a binned one
    holds text."""
    codes: IntArray | None = None
    labels: list[tuple[tuple[str, str], ...]] = [()]
    for binning in spec.columns:
        column_codes, names = _column_codes(binning, columns[binning.column])
        codes = column_codes if codes is None else codes * len(names) + column_codes
        labels = [(*label, (binning.column, name)) for label in labels for name in names]
    assert codes is not None
    present, compact = np.unique(codes, return_inverse=True)
    compact = np.asarray(compact, dtype=np.int64).reshape(-1)
    rows = np.bincount(compact, minlength=len(present)).astype(np.int64)
    return Slices(spec, compact, tuple(labels[int(code)] for code in present), rows)


def _column_codes(binning: Binning, values: Array) -> tuple[IntArray, list[str]]:
    if not binning.edges and binning.quantiles is None:
        text = _as_text(values)
        names, codes = np.unique(text, return_inverse=True)
        shown = [str(name) if str(name) else MISSING for name in names]
        return np.asarray(codes, dtype=np.int64).reshape(-1), shown
    numbers = _as_numbers(values, binning.column)
    finite = numbers[np.isfinite(numbers)]
    edges = np.asarray(binning.edges, dtype=np.float64)
    if binning.quantiles is not None:
        cuts = np.linspace(0, 1, binning.quantiles + 1)[1:-1]
        edges = np.unique(np.quantile(finite, cuts)) if len(finite) else np.array([])
    codes = np.searchsorted(edges, numbers, side="right").astype(np.int64)
    codes[~np.isfinite(numbers)] = len(edges) + 1
    return codes, [*_bin_names(edges), MISSING]


def _bin_names(edges: FloatArray) -> list[str]:
    shown = [format_number(float(edge)) for edge in edges]
    if not shown:
        return ["all"]
    middle = [f"[{low}, {high})" for low, high in itertools.pairwise(shown)]
    return [f"< {shown[0]}", *middle, f"≥ {shown[-1]}"]


def _as_text(values: Array) -> Array:
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (np.mod(values, 1) == 0)
        text = np.where(whole, np.char.mod("%d", np.where(whole, values, 0)), values.astype(str))
        return np.where(np.isnan(values), "", text)
    return values.astype(str)


def _as_numbers(values: Array, column: str) -> FloatArray:
    if values.dtype.kind in "iufb":
        return np.asarray(values, dtype=np.float64)
    text = np.char.strip(values.astype(str))
    distinct, inverse = np.unique(text, return_inverse=True)
    numbers = np.empty(len(distinct))
    for index, item in enumerate(distinct.tolist()):
        try:
            numbers[index] = float(item) if item else math.nan
        except ValueError:
            row = int(np.argmax(inverse.reshape(-1) == index)) + 1
            raise ValueError(
                f"column {column} holds {item[:40]!r} in row {row}, not a number: bins "
                f"(edges, quantiles) need numbers; drop them to slice by each value"
            ) from None
    return np.asarray(numbers[inverse.reshape(-1)], dtype=np.float64)


def applies(rule: Rule, spec: SliceSpec) -> bool:
    """Whether `rule` is judged in the slices of `spec`: `slices: true`, or a list
    naming every column of the spec."""
    if isinstance(rule.slices, bool):
        return rule.slices
    return set(spec.names) <= set(rule.slices)


def adjust(p_values: FloatArray, correction: Correction) -> FloatArray:
    """Holm's or Benjamini–Hochberg's adjusted p-values, in the input's order."""
    count = len(p_values)
    if count == 0:
        return p_values
    order = np.argsort(p_values, kind="stable")
    ranked = p_values[order]
    rank = np.arange(count)
    if correction == "holm":
        adjusted = np.maximum.accumulate((count - rank) * ranked)
    else:
        adjusted = np.minimum.accumulate((count / (rank + 1) * ranked)[::-1])[::-1]
    out = np.empty(count)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def judge_slices(
    rules: tuple[Rule, ...] | list[Rule],
    groups: list[SliceGroup],
    correction: Correction,
) -> tuple[SliceResult, ...]:
    """Every rule with `slices` in every slice of the groups it applies to."""
    results: list[SliceResult] = []
    for rule in rules:
        if not rule.slices:
            continue
        chosen = [g for g in groups if applies(rule, g.slices.spec) and rule.metric in g.estimates]
        if chosen:
            results += _judge_rule(rule, chosen, correction)
    return tuple(results)


@dataclass(frozen=True)
class _Flat:
    """One rule's metric in every slice of its groups, side by side."""

    labels: list[tuple[tuple[str, str], ...]]
    rows: IntArray
    minimum: IntArray  # each slice's min_rows
    gated: Array  # bool
    value: FloatArray
    value_se: FloatArray
    baseline: FloatArray | None
    change_se: FloatArray | None
    method: str  # how the standard errors were found: "jackknife", "delta method", ...


def _flatten(metric: str, groups: list[SliceGroup]) -> _Flat:
    estimates = [g.estimates[metric] for g in groups]
    paired = all(e.baseline is not None and e.change_se is not None for e in estimates)

    def joined(pick: Callable[[SliceEstimates], FloatArray | None]) -> FloatArray:
        return np.concatenate([np.asarray(pick(e), dtype=np.float64) for e in estimates])

    rows = np.concatenate([g.slices.rows for g in groups])
    value_se = joined(lambda e: e.value_se)
    change_se = joined(lambda e: e.change_se) if paired else None
    spread = change_se if change_se is not None else value_se
    minimum = np.concatenate([np.full(len(g.slices.rows), g.min_rows) for g in groups])
    return _Flat(
        labels=[label for g in groups for label in g.slices.labels],
        rows=rows,
        minimum=minimum,
        gated=(rows >= minimum) & np.isfinite(spread) & np.isfinite(joined(lambda e: e.value)),
        value=joined(lambda e: e.value),
        value_se=value_se,
        baseline=joined(lambda e: e.baseline) if paired else None,
        change_se=change_se,
        method=" and ".join(dict.fromkeys(e.method for e in estimates)),
    )


def _judge_rule(rule: Rule, groups: list[SliceGroup], correction: Correction) -> list[SliceResult]:
    flat = _flatten(rule.metric, groups)
    confidence = rule.confidence or 0.95
    alpha = (1 - confidence) / 2
    z = _NORMAL.inv_cdf(1 - alpha)
    higher = rule.better != "lower"
    change = None if flat.baseline is None else flat.value - flat.baseline
    failed = np.zeros(len(flat.rows), dtype=bool)
    reasons: list[list[str]] = [[] for _ in flat.rows]
    deciding = np.full(len(flat.rows), np.nan)
    for name, threshold in rule.thresholds():
        check = _check_arrays(rule, name, threshold, flat, change)
        if check is None:
            continue
        point, se, limit, at_least = check
        fails = _decide(point, se, limit, at_least, flat.gated, correction, alpha, rule)
        p_fail, bad = fails
        for index in np.flatnonzero(bad).tolist():
            failed[index] = True
            reasons[index].append(_reason(rule, name, threshold, flat, index))
        deciding = np.fmin(deciding, np.where(flat.gated, p_fail, np.nan))
    trend = _trends(change, flat, higher, correction, alpha)
    severity: Verdict = "fail" if rule.severity == "fail" else "warn"
    results = []
    name = CORRECTIONS[correction]
    families = int(flat.gated.sum())
    for index, label in enumerate(flat.labels):
        spread = flat.change_se if flat.change_se is not None else flat.value_se
        centre = change[index] if change is not None else flat.value[index]
        interval = None
        if math.isfinite(spread[index]):
            interval = Interval(
                float(centre - z * spread[index]),
                float(centre + z * spread[index]),
                confidence,
                f"{'paired ' if flat.change_se is not None else ''}{flat.method} normal, per slice",
            )
        where = slice_name(label)
        rows = int(flat.rows[index])
        verdict: Verdict
        skipped: SkipReason | None = None
        if not flat.gated[index]:
            verdict, skipped = "skip", "few rows"
            message = f"{rule.metric} in {where}: {rows:,} rows, too few to gate"
            if rule.metric == "roc_auc" and math.isnan(flat.value[index]):
                skipped = "undefined"
                message = f"{rule.metric} in {where}: {rows:,} rows, {_ONE_CLASS}"
            elif rule.metric == "roc_auc" and rows >= flat.minimum[index]:
                skipped = "one-row class"
                message = f"{rule.metric} in {where}: {rows:,} rows, {_ONE_ROW_CLASS}"
        elif failed[index]:
            verdict = severity
            p = f"{name}-adjusted p {_p(deciding[index])} across {families} slices"
            message = f"{rule.metric} in {where} ({rows:,} rows): {'; '.join(reasons[index])} ({p})"
        else:
            verdict = "pass"
            message = f"{rule.metric} in {where}: within limits"
        results.append(
            SliceResult(
                metric=rule.metric,
                slice=label,
                rows=rows,
                candidate=float(flat.value[index]),
                baseline=None if flat.baseline is None else float(flat.baseline[index]),
                change=None if change is None else float(change[index]),
                interval=interval,
                verdict=verdict,
                trend=trend[index],
                message=message,
                p_value=None if math.isnan(deciding[index]) else float(deciding[index]),
                rule=rule.describe(),
                skipped=skipped,
            )
        )
    return results


def _check_arrays(
    rule: Rule, name: str, threshold: float, flat: _Flat, change: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray, bool] | None:
    """(point, standard error, limit, at_least) of one check in every slice; None for a
    change check without the baseline's predictions."""
    size = len(flat.rows)
    if name in ABSOLUTE_CHECKS:
        return flat.value, flat.value_se, np.full(size, threshold), name == "min"
    if change is None or flat.baseline is None or flat.change_se is None:
        return None
    margin = np.full(size, threshold)
    if name.endswith("_pct"):
        margin = np.abs(flat.baseline) * threshold / 100
    if name.startswith("max_drop"):
        return change, flat.change_se, -margin, True
    if name.startswith("max_rise"):
        return change, flat.change_se, margin, False
    higher = rule.better != "lower"
    return change, flat.change_se, margin if higher else -margin, higher


def _decide(
    point: FloatArray,
    se: FloatArray,
    limit: FloatArray,
    at_least: bool,
    gated: Array,
    correction: Correction,
    alpha: float,
    rule: Rule,
) -> tuple[FloatArray, Array]:
    """Each slice's corrected p-value of missing the limit, and whether it fails."""
    distance = point - limit if at_least else limit - point  # > 0: on the right side
    p_fail = _tail(distance, se)
    adjusted = np.full(len(point), np.nan)
    adjusted[gated] = adjust(p_fail[gated], correction)
    bad = gated & (adjusted <= alpha)
    if rule.require_proof:
        # Each slice must clear the limit on its own interval (an intersection-union test).
        bad |= gated & (_tail(-distance, se) > alpha)
    return adjusted, bad


def _tail(distance: FloatArray, se: FloatArray) -> FloatArray:
    """Φ(distance / se): the one-sided p-value of "the truth lies on the limit's good side"
    for a point `distance` on that side of it (negative: past the limit)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(se > 0, distance / np.where(se > 0, se, 1.0), np.sign(distance) * np.inf)
    cdf = np.vectorize(_NORMAL.cdf, otypes=[np.float64])
    return np.asarray(cdf(scaled), dtype=np.float64) if len(scaled) else scaled


def _trends(
    change: FloatArray | None, flat: _Flat, higher: bool, correction: Correction, alpha: float
) -> list[Trend]:
    if change is None or flat.change_se is None:
        return ["unclear"] * len(flat.rows)
    better = change if higher else -change
    found: list[Trend] = ["unclear"] * len(flat.rows)
    for trend, distance in (("worse", better), ("better", -better)):
        adjusted = np.full(len(change), np.nan)
        adjusted[flat.gated] = adjust(_tail(distance, flat.change_se)[flat.gated], correction)
        for index in np.flatnonzero(flat.gated & (adjusted <= alpha)).tolist():
            found[index] = "worse" if trend == "worse" else "better"
    return found


def _reason(rule: Rule, name: str, threshold: float, flat: _Flat, index: int) -> str:
    value = Decimal(repr(float(flat.value[index])))
    if name in ABSOLUTE_CHECKS:
        word = "below the minimum" if name == "min" else "above the maximum"
        return f"{rule.metric} {format_number(float(value))} is {word} {format_number(threshold)}"
    assert flat.baseline is not None
    base = Decimal(repr(float(flat.baseline[index])))
    word = "required" if name.startswith("min_gain") else "allowed"
    moved = movement(rule.metric, value, base, name).removeprefix(f"{rule.metric} ")
    return f"{moved} ({word}: {describe_check(name, threshold)})"


def _p(value: float) -> str:
    return f"= {value:.2g}" if value >= 1e-4 else "< 0.0001"
