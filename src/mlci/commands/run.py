"""`mlci run` and `mlci gate`: the pipeline, then its summary (or gate.json with --json)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from mlci import pipeline
from mlci.config import locate
from mlci.console import Console, columns
from mlci.core import report as report_module
from mlci.core.gate import format_number
from mlci.core.metrics import MetricValue
from mlci.core.report import ReportInput
from mlci.errors import UsageError
from mlci.pipeline.baseline import BaselineRequest


def from_cwd(path: Path | None) -> Path | None:
    """Paths on the command line are relative to where the command runs."""
    return None if path is None else path.resolve()


def run_command(*, config: Path | None, promote: pipeline.PromoteMode, as_json: bool) -> int:
    options = pipeline.RunOptions(promote=promote)
    outcome = pipeline.run(config_path=locate(config), options=options)
    print_outcome(outcome, as_json=as_json)
    return outcome.exit_code


def gate_command(
    *,
    config: Path | None,
    candidate: list[Path] | None,
    predictions: Path | None,
    baseline: Path | None,
    baseline_ref: str | None,
    baseline_registry: bool,
    no_baseline: bool,
    baseline_predictions: Path | None,
    as_json: bool,
) -> int:
    baseline, baseline_predictions = from_cwd(baseline), from_cwd(baseline_predictions)
    predictions = from_cwd(predictions)
    request = None
    if baseline is not None:
        request = BaselineRequest(mode="file", file=baseline, predictions=baseline_predictions)
    elif baseline_ref is not None:
        request = BaselineRequest(mode="git", ref=baseline_ref)
    elif baseline_registry:
        request = BaselineRequest(mode="registry")
    elif no_baseline:
        request = BaselineRequest(mode="none")
    elif baseline_predictions is not None:
        raise UsageError(
            "--baseline-predictions goes with --baseline FILE (the baseline's metrics)"
        )
    options = pipeline.RunOptions(
        train=False,
        promote="never",
        baseline=request,
        metrics=tuple(path.resolve() for path in candidate) if candidate else None,
        predictions=predictions,
    )
    outcome = pipeline.run(config_path=locate(config), options=options)
    print_outcome(outcome, as_json=as_json)
    return outcome.exit_code


def print_outcome(outcome: pipeline.Outcome, *, as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        out.write(report_module.dumps(report_module.render_json(outcome.report)))
        return
    out.write(summary_text(outcome.report, outcome.out_dir, Console(out)))


def summary_text(report: ReportInput, out_dir: Path, console: Console) -> str:
    """The short human summary printed after a run: verdict, table, where the files are."""
    icon = {"pass": "✔", "warn": "!", "fail": "✘", "error": "✘"}[report.status]
    kind = {"pass": "ok", "warn": "warn"}.get(report.status, "fail")
    lines = [console.paint(f"{icon} {report_module.headline(report)}", kind)]
    if report.gate is not None and report.gate.results:
        rows = [("metric", "baseline", "candidate", "change", "verdict")]
        for result in report.gate.results:
            rows.append(
                (
                    result.metric,
                    plain(result.baseline),
                    plain(result.candidate),
                    "—" if result.change is None else format_number(result.change),
                    result.verdict,
                )
            )
        lines += columns(rows)
    lines.append(f"report: {out_dir / 'report.md'} (also report.html, gate.json)")
    if report.promotion is not None:
        lines.append(f"registry: {report.promotion.describe()}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def plain(value: MetricValue) -> str:
    """A metric value for a terminal table's cell."""
    return report_module.format_value(value)[:30]
