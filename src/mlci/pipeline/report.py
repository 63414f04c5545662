"""The report stage: the figures, drawn from what the run provides, and report.sections.

The figures are computed by `figures.py`, with numpy: it is imported when there is
something to draw (predictions, their summary, or report.training_log), so a gate on
metrics files alone does without numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from mlci.config import Config
from mlci.pipeline.facts import Facts

if TYPE_CHECKING:
    from mlci.core.predictions import Predictions
    from mlci.core.report.model import Figure
    from mlci.core.summary import Summary
    from mlci.pipeline.figures import Started


def add(
    config: Config,
    facts: Facts,
    candidate: Predictions | None,
    baseline: Predictions | None,
    summary: Summary | None = None,
    early: Early | None = None,
) -> Facts:
    """The figures (from the predictions, or above evaluate.exact_rows their `summary`, and
    the training log) and report.sections; `early`: what the gate started drawing."""
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()
    if candidate is not None or summary is not None or config.report.training_log is not None:
        from mlci.pipeline.figures import build_figures

        started = None if early is None else early.started
        meanwhile = None if early is None else early.meanwhile
        figures, notes = build_figures(config, candidate, baseline, summary, started, meanwhile)
    sections = facts.sections
    if config.report.sections:
        from mlci.pipeline.sections import read_sections

        sections = read_sections(config.root, config.report.sections)
    gate = facts.gate
    if notes and gate is not None:
        gate = replace(gate, notes=(*gate.notes, *notes))
    return replace(facts, figures=figures, sections=sections, gate=gate)


@dataclasses.dataclass
class Early:
    """The figures of a gate with predictions, their PNGs started while the gate computes,
    and `add` takes them for the same rows: the confusion matrices as soon as both models'
    rows are read (`ahead`) or the gate has paired them (`rows`); the curve figures in
    `rows` (`gate.judge`'s on_rows, before the intervals), after both models' classes
    are ranked. `meanwhile`: work for this process while the worker draws the last PNGs
    (writing flipped.csv), which `add` does before it waits for them."""

    config: Config
    started: Started | None = None
    meanwhile: Callable[[], None] | None = None

    def rows(self, candidate: Predictions, baseline: Predictions | None) -> None:
        self._confusion(candidate, baseline)
        if self.started is not None:
            from mlci.pipeline.figures import start_curves

            self.started = start_curves(self.started)

    def ahead(self, candidate: Predictions, baseline: Predictions) -> None:
        """The baseline's predictions, read ahead (`evaluate`'s on_baseline, on the
        reader's thread while the candidate's metrics are computed): paired now (by id,
        a second at a million rows: `align` keeps the pairing for the gate), and the
        confusion matrices' drawing started (the curves wait for the rankings)."""
        from mlci.errors import MetricsError
        from mlci.predictions import align

        try:
            paired = align(candidate, baseline)
        except MetricsError:  # the gate says why
            return
        self._confusion(*paired)

    def _confusion(self, candidate: Predictions, baseline: Predictions | None) -> None:
        if self.config.evaluate.task != "classification":
            return
        started = self.started
        if started is not None and started.candidate is candidate and started.baseline is baseline:
            return  # started by `ahead`
        from mlci.pipeline.figures import start

        self.started = start(self.config, candidate, baseline)
