"""What `mlci run`, `mlci gate` and `mlci report` print about a report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from mlci.console import Console, columns
from mlci.core.metrics import MetricValue
from mlci.core.numbers import format_number
from mlci.core.report.json import dumps, render_json
from mlci.core.report.model import ReportInput, format_value, headline
from mlci.pipeline.outputs import ReportNotWritten


def print_outcome(
    report: ReportInput, out_dir: Path, *, as_json: bool, out: TextIO | None = None
) -> None:
    """gate.json with --json, else the short summary (for `mlci run`, `gate`, `report`)."""
    out = out or sys.stdout
    if as_json:
        out.write(dumps(render_json(report)))
        return
    out.write(summary_text(report, out_dir, Console(out)))


def print_unwritten(
    error: ReportNotWritten, *, as_json: bool, out: TextIO | None = None, err: TextIO | None = None
) -> None:
    """The verdict of a run whose report the disk refused: the gate's result is known."""
    out, err = out or sys.stdout, err or sys.stderr
    if error.report.error != error.message:  # the run did not say it yet
        Console(err).error(error.message)
    if as_json:
        out.write(dumps(render_json(error.report)))
        return
    out.write(summary_text(error.report, error.out_dir, Console(out), written=False))


def summary_text(
    report: ReportInput, out_dir: Path, console: Console, *, written: bool = True
) -> str:
    """The short human summary printed after a run: verdict, table, where the files are."""
    icon = {"pass": "✔", "warn": "!", "fail": "✘", "error": "✘"}[report.status]
    kind = {"pass": "ok", "warn": "warn"}.get(report.status, "fail")
    lines = [console.paint(f"{icon} {headline(report)}", kind)]
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
    if written:
        lines.append(f"report: {out_dir / 'report.md'} (also report.html, gate.json)")
    else:
        if report.gate is not None and report.gate.results:
            lines.append(f"gate: {report.gate.summary()}")
        lines.append(f"report: not written, {out_dir} refused it")
    if report.promotion is not None:
        lines.append(f"registry: {report.promotion.describe()}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def plain(value: MetricValue) -> str:
    """A metric value for a terminal table's cell."""
    return format_value(value)[:30]
