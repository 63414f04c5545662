"""The gate stage: the rules of mlci.yaml applied to the candidate and its baseline.

With predictions, each rule with a `confidence` is judged on intervals (paired with the
baseline's predictions on the same rows when those are known), and the evaluation's size
is checked against evaluate.min_rows and the baseline's (evaluate.min_row_fraction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.config import Config
from mlci.console import Console
from mlci.core.gate import (
    CORRECTIONS,
    GateResult,
    MetricIntervals,
    MissingBaseline,
    Rows,
    SliceResult,
    evaluate_gate,
    unchecked_limits,
)
from mlci.core.redact import redact_url
from mlci.core.report.model import Promotion
from mlci.errors import MetricsError
from mlci.pipeline.facts import BaselineChoice, BaselineRequest, Evaluation, Facts, Judged
from mlci.pipeline.flipped import Compared, compare
from mlci.scan.storage import scheme

if TYPE_CHECKING:
    from mlci.core.predictions import Predictions
    from mlci.core.summary import Summary
    from mlci.core.summary_stats import Approximation

# Given the candidate's predictions and the baseline's aligned with them (or None).
RowsReady = Callable[["Predictions", "Predictions | None"], None]


def judge(
    config: Config,
    request: BaselineRequest,
    choice: BaselineChoice,
    plan: Promotion,
    evaluation: Evaluation,
    facts: Facts,
    console: Console,
    on_rows: RowsReady | None = None,
) -> Judged:
    """Apply gate.rules; the notes of the stages before are collected into the result.
    `on_rows` as for `measure`."""
    on_missing, seed_note = _missing_baseline_policy(config, request, choice, plan)
    measured = measure(config, evaluation, choice, console, on_rows)
    gate = apply_rules(config, evaluation, choice, measured, on_missing)
    notes = (
        *facts.rules,
        *(facts.training.notes if facts.training else ()),
        *choice.notes,
        *seed_note,
        *evaluation.notes,
        *measured.notes,
        *gate.notes,
    )
    gate = dataclasses.replace(gate, notes=notes)
    unchecked = unchecked_limits(gate.results)
    if choice.baseline is None and unchecked:
        console.warn(f"no baseline: not checked: {', '.join(unchecked)}")
    shown = gate.summary() if gate.results or not gate.passed else "no rules configured"
    console.step("gate", shown)
    flipped = measured.flipped
    return Judged(
        gate,
        measured.candidate,
        measured.baseline,
        flipped.summary,
        flipped.table,
        measured.summary,
    )


def apply_rules(
    config: Config,
    evaluation: Evaluation,
    choice: BaselineChoice,
    measured: Measured,
    on_missing: MissingBaseline,
) -> GateResult:
    """gate.rules on `evaluation`'s metrics against `choice`, with what `measure` found
    (intervals, rows, the slices' results); `mlci publish` judges an artifact with it too."""
    gate = evaluate_gate(
        config.gate.rules,
        evaluation.metrics.values,
        choice.baseline,
        on_missing_baseline=on_missing,
        intervals=measured.intervals,
        rows=measured.rows,  # without predictions, evaluate.min_rows is noted as not applied
    )
    return dataclasses.replace(
        gate, slices=measured.slices, slice_correction=measured.slice_correction
    )


@dataclass(frozen=True)
class Measured:
    """What the gate judges besides the metrics: the intervals at each confidence level,
    the evaluation's size, and the predictions the figures compare (aligned row by row
    with the baseline's when those are known)."""

    intervals: dict[float, MetricIntervals]
    rows: Rows
    notes: tuple[str, ...] = ()
    candidate: Predictions | None = None
    baseline: Predictions | None = None
    slices: tuple[SliceResult, ...] = ()  # the rules with `slices`, judged in each slice
    slice_correction: str = ""
    flipped: Compared = field(default_factory=Compared)  # rows flipped between the models
    summary: Summary | None = None  # above evaluate.exact_rows: for the figures


def measure(
    config: Config,
    evaluation: Evaluation,
    choice: BaselineChoice,
    console: Console,
    on_rows: RowsReady | None = None,
) -> Measured:
    """The intervals and the rows of `evaluation`'s predictions (none without them),
    paired with `choice`'s predictions where it has some; `mlci publish` measures an
    artifact's predictions with it too. `on_rows` is given the predictions the report
    draws (the candidate's, and the baseline's aligned with them, or None) as soon as
    they are known, before the intervals: the report's first PNGs start there."""
    if evaluation.summary is not None:
        return _measure_summary(config, evaluation, choice, console)
    baseline_predictions, load_notes = _baseline_predictions(config, evaluation, choice)
    intervals, interval_notes, paired = _intervals(
        config, evaluation, baseline_predictions, console, on_rows
    )
    slices, correction, slice_notes = _slices(config, evaluation, paired, console)
    rows = Rows(
        candidate=len(evaluation.loaded) if evaluation.loaded is not None else None,
        baseline=len(baseline_predictions) if baseline_predictions is not None else None,
        minimum=config.evaluate.min_rows,
        fraction=config.evaluate.min_row_fraction,
    )
    candidate, baseline = paired or (evaluation.loaded, None)
    flipped = compare(config, evaluation.loaded, baseline_predictions)
    notes = (*load_notes, *interval_notes, *slice_notes, *flipped.notes)
    return Measured(intervals, rows, notes, candidate, baseline, slices, correction, flipped)


def _missing_baseline_policy(
    config: Config, request: BaselineRequest, choice: BaselineChoice, plan: Promotion
) -> tuple[MissingBaseline, tuple[str, ...]]:
    """gate.on_missing_baseline for this build.

    `auto` (the default) lets a relative limit go unchecked when nothing was recorded
    yet, and fails it when a baseline should exist but could not be read (a fork's pull
    request that the registry refuses): such a build must not pass unjudged.

    With `fail`, a registry without a champion could never get one: the first build of
    the main branch would fail for want of a baseline. That build is judged on its
    absolute limits and becomes the first champion.
    """
    policy = config.gate.on_missing_baseline
    if policy == "auto":
        return auto_policy(choice)
    seeding = (
        plan.eligible
        and plan.alias == config.registry.alias
        and choice.baseline is None
        and request.mode in ("auto", "registry")
    )
    if policy == "fail" and seeding:
        note = (
            "First champion: this build seeds the empty registry on its absolute limits; "
            "gate.on_missing_baseline: fail applies from the next build on."
        )
        return "pass", (note,)
    return policy, ()


def auto_policy(choice: BaselineChoice) -> tuple[MissingBaseline, tuple[str, ...]]:
    """gate.on_missing_baseline: auto, for this baseline: pass where nothing was recorded
    yet, fail where a baseline should exist but could not be read."""
    if choice.baseline is not None or choice.unreadable is None:
        return "pass", ()
    note = (
        f"The baseline could not be read ({choice.unreadable}), so the relative limits "
        f"fail (gate.on_missing_baseline: auto): make the baseline readable, or set "
        f"gate.on_missing_baseline: pass to judge such builds on their absolute limits."
    )
    return "fail", (note,)


def _baseline_predictions(
    config: Config, evaluation: Evaluation, choice: BaselineChoice
) -> tuple[Predictions | None, tuple[str, ...]]:
    """The baseline's predictions, when the candidate has some to compare them with."""
    if evaluation.loaded is None or choice.predictions is None:
        return None, ()
    from mlci.predictions import load_predictions

    try:
        loaded = load_predictions(
            # on disk: a URL's are scanned with the candidate's (evaluate stage)
            Path(choice.predictions),
            task=config.evaluate.task,
            id_column=config.evaluate.id_column,
        )
    except MetricsError as exc:
        return None, (f"Intervals are not paired: {exc.message}",)
    return loaded, ()


def _intervals(
    config: Config,
    evaluation: Evaluation,
    baseline_predictions: Predictions | None,
    console: Console,
    on_rows: RowsReady | None = None,
) -> tuple[dict[float, MetricIntervals], tuple[str, ...], tuple[Predictions, Predictions] | None]:
    """Intervals at each confidence level the rules use (and 0.95 for the report).

    Also returns the candidate's and the baseline's predictions aligned row by row, when
    the baseline's are known, for the plots.
    """
    if evaluation.loaded is None:
        return {}, (), None
    from mlci.core import stats
    from mlci.predictions import align

    candidate = evaluation.loaded
    task = config.evaluate.task
    paired: tuple[Predictions, Predictions] | None = None
    notes: tuple[str, ...] = ()
    if baseline_predictions is not None:
        try:
            paired = align(candidate, baseline_predictions)
        except MetricsError as exc:
            notes = (f"Intervals are not paired: {exc.message}",)
    if on_rows is not None:
        on_rows(*(paired or (candidate, None)))
    levels = _levels(config, console, paired=paired is not None)
    result = {}
    for level in levels:
        draws, seed = config.gate.resamples, config.gate.seed
        value = stats.metric_intervals(
            candidate, task, confidence=level, resamples=draws, seed=seed
        )
        change = {}
        if paired is not None:
            change = stats.paired_difference_intervals(
                *paired, task, confidence=level, resamples=draws, seed=seed
            )
        result[level] = MetricIntervals(value=value, change=change)
    return result, notes, paired


def _levels(config: Config, console: Console, *, paired: bool) -> list[float]:
    """The confidence levels the rules use, and 0.95 for the report; said on the console."""
    levels = sorted({rule.confidence for rule in config.gate.rules if rule.confidence} | {0.95})
    shown = ", ".join(f"{level:.0%}" for level in levels)
    kind = "paired with the baseline" if paired else "candidate only"
    console.step("gate", f"intervals at {shown}, {config.gate.resamples} resamples, {kind}")
    return levels


def _measure_summary(
    config: Config, evaluation: Evaluation, choice: BaselineChoice, console: Console
) -> Measured:
    """`measure` above evaluate.exact_rows: intervals from the predictions' summaries (the
    baseline's file read with the candidate's, row by row, unless the evaluate stage did so
    already); slices and flipped examples, which need the rows, are skipped and the notes
    say so; the figures are drawn from the summaries."""
    from mlci.core import summary_stats
    from mlci.core.summary_stats import approximation

    summary = evaluation.summary
    assert summary is not None
    found = approximation(summary)
    notes = [_approximate(config, summary.rows, found, evaluation.scanned, choice.predictions)]
    paired = None
    if choice.predictions is not None:
        try:
            paired = _paired_summary(config, evaluation, choice.predictions, console)
        except MetricsError as exc:
            notes.append(f"Intervals are not paired: {exc.message}")
    result = {}
    draws, seed = config.gate.resamples, config.gate.seed
    for level in _levels(config, console, paired=paired is not None):
        value = summary_stats.metric_intervals(
            summary, confidence=level, resamples=draws, seed=seed
        )
        change = {}
        if paired is not None:
            change = summary_stats.paired_difference_intervals(
                paired, confidence=level, resamples=draws, seed=seed
            )
        result[level] = MetricIntervals(value=value, change=change)
    rows = Rows(
        candidate=summary.rows,
        baseline=paired.rows if paired is not None else None,
        minimum=config.evaluate.min_rows,
        fraction=config.evaluate.min_row_fraction,
        method=found.method,
        auc_bound=found.auc_bound,
        ap_bound=found.ap_bound,
    )
    return Measured(result, rows, tuple(notes), summary=paired or summary)


def _paired_summary(
    config: Config, evaluation: Evaluation, baseline: Path | str, console: Console
) -> Summary:
    """Both models' predictions summarised together, paired: joined by the engine where
    evaluate.engine scanned the candidate's, else read row by row (once: the evaluate stage
    keeps the summary when it read both files)."""
    if evaluation.scanned is not None:
        from mlci.scan.run import scan

        return scan(config.evaluate, evaluation.scanned, str(baseline), console=console).summary
    from mlci.streaming import paired_summary

    assert evaluation.predictions is not None
    evaluate = config.evaluate
    return paired_summary(  # kept from the evaluate stage when it read both files
        evaluation.predictions, Path(baseline), task=evaluate.task, id_column=evaluate.id_column
    )


def _approximate(
    config: Config,
    rows: int,
    found: Approximation,
    scanned: str | None,
    baseline: Path | str | None,
) -> str:
    """What the summaries' results are, and what the engine scanned (where each model's
    predictions were read from), for the report and gate.json."""
    bound = f", roc_auc within ±{found.auc_bound:.2g} of the exact value" if found.auc_bound else ""
    if found.ap_bound:
        bound += f", the candidate's average precisions (PR) within ±{found.ap_bound:.2g}"
    if scanned is not None:
        return (
            f"{rows:,} rows scanned by evaluate.engine ({config.evaluate.engine or 'duckdb'})"
            f"{_read_from(scanned, baseline)}: metrics and intervals from summaries "
            f"(method: {found.method}{bound}; count metrics, log_loss and regression metrics "
            f"exact). Slices and flipped examples need the rows and are skipped: set "
            f"evaluate.engine: none to get them; the figures are drawn from the summaries."
        )
    return (
        f"{rows:,} rows, more than evaluate.exact_rows ({config.evaluate.exact_rows:,}): "
        f"metrics and intervals from summaries read batch by batch (method: {found.method}"
        f"{bound}; count metrics, log_loss and regression metrics exact). Slices and flipped "
        f"examples need the rows and are skipped: raise evaluate.exact_rows to get them; the "
        f"figures are drawn from the summaries."
    )


def _read_from(candidate: str, baseline: Path | str | None) -> str:
    """Where the engine read predictions in object storage from; nothing for files on disk."""
    found = [f"the candidate's {redact_url(candidate)}"] if scheme(candidate) else []
    if baseline is not None and scheme(str(baseline)):
        found.append(f"the baseline's {redact_url(str(baseline))}")
    return f", read in place from {' and '.join(found)}" if found else ""


def _slices(
    config: Config,
    evaluation: Evaluation,
    paired: tuple[Predictions, Predictions] | None,
    console: Console,
) -> tuple[tuple[SliceResult, ...], str, tuple[str, ...]]:
    """The rules with `slices`, judged in each slice of evaluate.slices (core/slices.py),
    the correction's name, and notes."""
    rules = [rule for rule in config.gate.rules if rule.slices]
    if evaluation.loaded is None or not rules or not config.evaluate.slices:
        return (), "", ()
    from mlci.core import slices as slicing
    from mlci.core import stats

    candidate, baseline = paired or (evaluation.loaded, None)
    task = config.evaluate.task
    metrics = tuple(dict.fromkeys(rule.metric for rule in rules))
    groups = []
    for spec in config.evaluate.slices:
        if not any(slicing.applies(rule, spec) for rule in rules):
            continue
        try:
            assigned = slicing.assign(spec, candidate.extra)
        except ValueError as exc:
            raise MetricsError(f"{candidate.source}: {exc} (evaluate.slices)") from None
        estimates = stats.slice_estimates(
            candidate, baseline, task, assigned.codes, len(assigned.labels), metrics
        )
        minimum = spec.min_rows or config.evaluate.slice_min_rows
        groups.append(slicing.SliceGroup(assigned, estimates, minimum))
    correction = config.gate.slice_correction
    results = slicing.judge_slices(rules, groups, correction)
    notes = []
    unsliced = [m for m in metrics if not any(m in group.estimates for group in groups)]
    if unsliced:
        notes.append(
            f"No per-slice estimate for {', '.join(unsliced)}: those rules were judged "
            f"overall only (per slice: the metrics from labels; roc_auc and log_loss where "
            f"the models have probabilities; regression's)."
        )
    if baseline is None:
        notes.append(
            "Per-slice changes need the baseline's predictions on the same rows: only min "
            "and max were checked in each slice."
        )
    gated = sum(1 for result in results if result.verdict != "skip")
    console.step(
        "gate", f"{gated} slice checks, {CORRECTIONS[correction]} correction across slices"
    )
    return results, CORRECTIONS[correction], tuple(notes)
