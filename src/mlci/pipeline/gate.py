"""The gate stage: the rules of mlci.yaml applied to the candidate and its baseline.

With predictions, each rule with a `confidence` is judged on intervals (paired with the
baseline's predictions on the same rows when those are known).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.config import Config
from mlci.console import Console
from mlci.core.gate import MetricIntervals, MissingBaseline, evaluate_gate, unchecked_limits
from mlci.core.report.model import Promotion
from mlci.errors import MetricsError
from mlci.pipeline.facts import BaselineChoice, BaselineRequest, Evaluation, Facts, Judged

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
    intervals, interval_notes, paired = _intervals(config, evaluation, choice.predictions, console)
    gate = evaluate_gate(
        config.gate.rules,
        evaluation.metrics.values,
        choice.baseline,
        on_missing_baseline=on_missing,
        intervals=intervals,
    )
    notes = (
        *facts.rules,
        *(facts.training.notes if facts.training else ()),
        *choice.notes,
        *seed_note,
        *evaluation.notes,
        *interval_notes,
        *gate.notes,
    )
    gate = dataclasses.replace(gate, notes=notes)
    unchecked = unchecked_limits(gate.results)
    if choice.baseline is None and unchecked:
        console.warn(f"no baseline: not checked: {', '.join(unchecked)}")
    console.step("gate", gate.summary() if gate.results else "no rules configured")
    candidate, baseline = paired or (evaluation.loaded, None)
    return Judged(gate, candidate, baseline)


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
        if choice.baseline is not None or choice.unreadable is None:
            return "pass", ()
        note = (
            f"The baseline could not be read ({choice.unreadable}), so the relative limits "
            f"fail (gate.on_missing_baseline: auto): make the baseline readable, or set "
            f"gate.on_missing_baseline: pass to judge such builds on their absolute limits."
        )
        return "fail", (note,)
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


def _intervals(
    config: Config, evaluation: Evaluation, baseline_predictions: Path | None, console: Console
) -> tuple[dict[float, MetricIntervals], tuple[str, ...], tuple[Predictions, Predictions] | None]:
    """Intervals at each confidence level the rules use (and 0.95 for the report).

    Also returns the candidate's and the baseline's predictions aligned row by row, when
    the baseline's are known, for the plots.
    """
    if evaluation.loaded is None:
        return {}, (), None
    from mlci.core import stats
    from mlci.predictions import align, load_predictions

    candidate = evaluation.loaded
    task = config.evaluate.task
    paired: tuple[Predictions, Predictions] | None = None
    notes: tuple[str, ...] = ()
    if baseline_predictions is not None:
        try:
            paired = align(candidate, load_predictions(baseline_predictions, task=task))
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
