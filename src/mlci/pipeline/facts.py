"""The facts of one run, grouped once; the report and the registry's lineage are built here.

Also the values the stages hand each other (the baseline request and choice, the
evaluation, the gate's judgement), so a stage imports this module, never another stage.
Each stage returns its group (the data pulled, the training, the metrics, the gate, the
promotion); `Facts` holds what the run has learned so far, so a run that stops at any
stage still has everything for its report. A new fact goes into its group, and into
`report()` and `lineage()` below: nowhere else. Both mask the job's secrets (`secrets`):
whatever the training printed or a file held, no secret value reaches a report, a
comment or a registry tag (docs/security.md#secrets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlci.ci import CiContext
from mlci.config import BaselineMode
from mlci.core.device import DeviceInfo, Where
from mlci.core.flipped_text import Flipped
from mlci.core.gate import Baseline, GateResult
from mlci.core.metrics import Metrics, is_number
from mlci.core.redact import mask
from mlci.core.report.model import Figure, Promotion, ReportInput, ReportSection
from mlci.errors import MlciError, TrainingError

if TYPE_CHECKING:
    from mlci.core.flipped import CsvTable
    from mlci.core.predictions import Predictions
    from mlci.core.summary import Summary
    from mlci.registry.base import Lineage

PromoteMode = Literal["auto", "never", "force"]  # `mlci run`: --no-promote, --force-promote


@dataclass(frozen=True)
class DataVersions:
    """The datasets (DVC hashes) of this run and of its baseline, and what `dvc pull` did."""

    pull: str | None = None
    datasets: Mapping[str, str] = field(default_factory=dict)
    baseline: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Training:
    """How the model was trained; `failure` is set when the training did not finish."""

    command: str
    seconds: float | None = None
    device: DeviceInfo | None = None
    where: Where | None = None  # off the runner (train.on: ray | skypilot): the engine's word
    reused: str | None = None  # what `dvc repro` reused instead of training
    skipped: str | None = None  # why the command was not run (pipeline/offrunner.py)
    notes: tuple[str, ...] = ()
    failure: MlciError | None = None


@dataclass(frozen=True)
class Params:
    """The training's parameters (params.yaml), and the baseline's when known."""

    current: Mapping[str, str] = field(default_factory=dict)
    baseline: Mapping[str, str] | None = None


@dataclass(frozen=True)
class BaselineRequest:
    """Where to look: from mlci.yaml, or overridden on the command line."""

    mode: BaselineMode
    file: Path | None = None
    ref: str | None = None
    # The baseline's predictions, with mode "file": a file, or an s3://, gs://, az:// URL
    predictions: Path | str | None = None


@dataclass(frozen=True)
class BaselineChoice:
    baseline: Baseline | None
    # The baseline's predictions when known: on disk, or a URL (`mlci gate`'s, read in place)
    predictions: Path | str | None = None
    notes: tuple[str, ...] = ()
    params: Mapping[str, str] | None = None  # the baseline's params (report.params), if known
    data: Mapping[str, str] | None = None  # the baseline's dataset hashes (DVC), if known
    # Why a baseline that should exist could not be read (a registry refusing a fork's
    # pull request, a DVC output missing from the remote); None when none was expected.
    unreadable: str | None = None


@dataclass(frozen=True)
class Evaluation:
    metrics: Metrics
    predictions: Path | None = None  # the candidate's predictions file
    loaded: Predictions | None = None  # loaded once, for the metrics and the intervals
    notes: tuple[str, ...] = ()
    # Above evaluate.exact_rows, instead of `loaded`: the predictions' summary
    summary: Summary | None = None
    scanned: str | None = None  # evaluate.engine: what it scanned, a file or a URL


@dataclass(frozen=True)
class Judged:
    """The gate's result, and the predictions the figures compare (aligned row by row)."""

    result: GateResult
    candidate: Predictions | None = None
    baseline: Predictions | None = None
    flipped: Flipped | None = None  # the flipped examples, for the report
    flipped_csv: CsvTable | None = None  # all of them, for .mlci/out/flipped.csv
    # Above evaluate.exact_rows, instead of the predictions: their summary (paired with the
    # baseline's when the gate could pair them), what the figures are drawn from
    summary: Summary | None = None


@dataclass(frozen=True)
class Facts:
    """What the run has learned so far: becomes the report at any stage."""

    model: str = "(unknown model)"
    source: CiContext | None = None  # the commit, branch, event and CI run
    rules: tuple[str, ...] = ()  # whose mlci.yaml judges a pull request (mlci.pipeline.trust)
    data: DataVersions = DataVersions()
    training: Training | None = None
    metrics: Metrics | None = None
    params: Params = Params()
    gate: GateResult | None = None
    flipped: Flipped | None = None
    promotion: Promotion | None = None
    figures: tuple[Figure, ...] = ()
    sections: tuple[ReportSection, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)  # mlci.secrets.secret_values

    def report(self, error: MlciError | None = None, stage: str | None = None) -> ReportInput:
        """The report of the run so far; with `error`, of a run that stopped at `stage`."""
        return mask(self._report(error, stage), self.secrets)

    def _report(self, error: MlciError | None, stage: str | None) -> ReportInput:
        source, training = self.source, self.training or Training(command="")
        return ReportInput(
            model=self.model,
            gate=self.gate,
            candidate=dict(self.metrics.values) if self.metrics else {},
            metric_sources=dict(self.metrics.sources) if self.metrics else {},
            commit=source.sha if source else None,
            branch=source.branch if source else None,
            dirty=source.dirty if source else False,
            ci=source.ci if source else "local",
            event=source.event if source else "local",
            run_url=source.run_url if source else None,
            report_url=source.report_url if source else None,
            training_command=training.command or None,
            training_seconds=training.seconds,
            device=training.device,
            where=training.where,
            stopped_by=error.stopped_by if isinstance(error, TrainingError) else None,
            promotion=self.promotion,
            error=error.message if error else None,
            error_stage=stage if error else None,
            exit_code=error.exit_code if error else 0,
            output_tail=error.output_tail if isinstance(error, TrainingError) else (),
            params=dict(self.params.current),
            baseline_params=self.params.baseline,
            figures=self.figures,
            sections=self.sections,
            data=dict(self.data.datasets),
            baseline_data=self.data.baseline,
            data_pull=self.data.pull,
            training_reused=training.reused,
            training_skipped=training.skipped,
            flipped=self.flipped,
        )

    def lineage(self) -> Lineage:
        """What the registry records on the version it registers (a gated, committed run)."""
        from mlci.registry.base import Lineage  # the registry's seam: only when promoting

        source, gate, metrics = self.source, self.gate, self.metrics
        assert source is not None and source.sha is not None
        assert gate is not None and metrics is not None and self.promotion is not None
        training = self.training or Training(command="")
        lineage = Lineage(
            commit=source.sha,
            branch=source.branch,
            dirty=source.dirty,
            ci=source.ci,
            event=source.event,
            metrics={k: float(v) for k, v in metrics.values.items() if is_number(v)},  # type: ignore[arg-type]
            gate_verdict=gate.verdict,
            gate_summary=gate.summary(),
            baseline=gate.baseline.label if gate.baseline else None,
            run_url=source.run_url,
            pr_number=source.pr_number,
            training_seconds=training.seconds,
            device=training.device,
            where=training.where,
            params=dict(self.params.current),
            forced=self.promotion.forced,
            data=dict(self.data.datasets),
            training_reused=training.reused is not None,
        )
        return mask(lineage, self.secrets)
