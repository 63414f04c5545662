"""The gate stage: the rules of mlci.yaml applied to the candidate and its baseline.

With predictions, each rule with a `confidence` is judged on intervals (paired with the
baseline's predictions on the same rows when those are known), and the evaluation's size
is checked against evaluate.min_rows and the baseline's (evaluate.min_row_fraction).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from mlci.config import Config
from mlci.console import Console
from mlci.core.gate import MetricIntervals, MissingBaseline, Rows, evaluate_gate
from mlci.core.report.model import Promotion
from mlci.errors import MetricsError
from mlci.pipeline.facts import BaselineChoice, BaselineRequest, Evaluation, Facts, Judged
from mlci.pipeline.flipped import compare

if TYPE_CHECKING:
    from mlci.core.predictions import Predictions


def judge(
    config: Config,
    request: BaselineRequest,
    choice: BaselineChoice,
    plan: Promotion,
    evaluation: Evaluation,
    facts: Facts,
    console: Console,
) -> Judged:
    """Apply gate.rules; the notes of the stages before are collected into the result."""
    on_missing, seed_note = _missing_baseline_policy(config, request, choice, plan)
    baseline_predictions, load_notes = _baseline_predictions(config, evaluation, choice)
    intervals, interval_notes, paired = _intervals(
        config, evaluation, baseline_predictions, console
    )
    flipped = compare(config, evaluation.loaded, baseline_predictions)
    rows = Rows(
        candidate=len(evaluation.loaded) if evaluation.loaded is not None else None,
        baseline=len(baseline_predictions) if baseline_predictions is not None else None,
        minimum=config.evaluate.min_rows,
        fraction=config.evaluate.min_row_fraction,
    )
    gate = evaluate_gate(
        config.gate.rules,
        evaluation.metrics.values,
        choice.baseline,
        on_missing_baseline=on_missing,
        intervals=intervals,
        rows=rows,
    )
    notes = (
        *facts.rules,
        *(facts.training.notes if facts.training else ()),
        *choice.notes,
        *seed_note,
        *evaluation.notes,
        *load_notes,
        *interval_notes,
        *flipped.notes,
        *gate.notes,
    )
    gate = dataclasses.replace(gate, notes=notes)
    shown = gate.summary() if gate.results or not gate.passed else "no rules configured"
    console.step("gate", shown)
    candidate, baseline = paired or (evaluation.loaded, None)
    return Judged(gate, candidate, baseline, flipped.summary, flipped.table)


def _missing_baseline_policy(
    config: Config, request: BaselineRequest, choice: BaselineChoice, plan: Promotion
) -> tuple[MissingBaseline, tuple[str, ...]]:
    """gate.on_missing_baseline, except for the build that seeds an empty registry.

    With `fail`, a registry without a champion could never get one: the first build of
    the main branch would fail for want of a baseline. That build is judged on its
    absolute limits and becomes the first champion.
    """
    policy = config.gate.on_missing_baseline
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


def _baseline_predictions(
    config: Config, evaluation: Evaluation, choice: BaselineChoice
) -> tuple[Predictions | None, tuple[str, ...]]:
    """The baseline's predictions, when the candidate has some to compare them with."""
    if evaluation.loaded is None or choice.predictions is None:
        return None, ()
    from mlci.predictions import load_predictions

    try:
        loaded = load_predictions(
            choice.predictions, task=config.evaluate.task, id_column=config.evaluate.id_column
        )
    except MetricsError as exc:
        return None, (f"Intervals are not paired: {exc.message}",)
    return loaded, ()


def _intervals(
    config: Config,
    evaluation: Evaluation,
    baseline_predictions: Predictions | None,
    console: Console,
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
    levels = sorted({rule.confidence for rule in config.gate.rules if rule.confidence} | {0.95})
    shown = ", ".join(f"{level:.0%}" for level in levels)
    kind = "paired with the baseline" if paired else "candidate only"
    console.step("gate", f"intervals at {shown}, {config.gate.resamples} resamples, {kind}")
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
