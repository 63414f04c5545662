"""What the report says: `ReportInput`, and what every format shows of it.

The tables, headline and run facts here are plain text; each format (Markdown, HTML)
escapes and decorates them itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlci.core.device import DeviceInfo, Where
from mlci.core.flipped_text import Flipped
from mlci.core.gate import GateResult, RuleResult, SliceResult
from mlci.core.metrics import MetricChange, MetricValue, diff_metrics, is_number
from mlci.core.numbers import format_number

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "error": "💥"}
HEADLINES = {
    "pass": "gate passed",
    "fail": "gate failed",
    "warn": "gate passed with warnings",
    "error": "run failed",
}
_VERDICT_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}


@dataclass(frozen=True)
class Promotion:
    """What happened (or will not happen) in the registry for this run."""

    eligible: bool
    reason: str
    version: str | None = None
    alias: str | None = None
    previous: str | None = None
    created: bool | None = None
    kept: str | None = None  # why the alias was not moved to this version
    role: str = "champion"  # or "challenger": a candidate from outside registry.promote_on
    forced: bool = False  # eligible only because of --force-promote

    def describe(self) -> str:
        if self.version is None:
            return ("will promote if the gate passes: " if self.eligible else "not promoted: ") + (
                self.reason
            )
        verb = "registered" if self.created else "reused (already registered for this commit)"
        if self.forced:
            verb += f" ({self.reason})"
        if self.kept is not None:
            return f"version {self.version} {verb}; {self.kept}"
        moved = f"; @{self.alias} moved from v{self.previous}" if self.previous else ""
        if self.previous == self.version:
            moved = f"; @{self.alias} already pointed at it"
        elif self.previous is None and self.alias:
            moved = f"; @{self.alias} set (first {self.role})"
        return f"version {self.version} {verb}{moved}"


@dataclass(frozen=True)
class Figure:
    """A plot: what renders without hosting in Markdown, and a PNG for the HTML report."""

    key: str  # "confusion_matrix", "roc", "pr", "calibration", "residuals", "training"
    title: str
    markdown: str  # a table or a ```mermaid block, already safe for Markdown
    pngs: tuple[bytes, ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class ReportSection:
    """A file the training wrote, listed in `report.sections`: shown after the gate table."""

    path: str  # as mlci.yaml lists it; the section's title
    markdown: str | None = None  # a Markdown file's text: untrusted, made safe when rendered
    png: bytes | None = None  # an image
    note: str | None = None  # why there is nothing to show (not written, too large)
    image_url: str | None = None  # where the publisher hosted the PNG (None: not hosted)


@dataclass(frozen=True)
class ReportInput:
    """Everything the report shows; plain values, so this module stays pure."""

    model: str
    gate: GateResult | None
    candidate: Mapping[str, MetricValue] = field(default_factory=dict)
    metric_sources: Mapping[str, str] = field(default_factory=dict)
    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    ci: str = "local"
    event: str = "local"
    run_url: str | None = None
    report_url: str | None = None  # where the full report.html can be found
    training_command: str | None = None
    training_seconds: float | None = None
    device: DeviceInfo | None = None  # what the training ran on
    where: Where | None = None  # where, when off the runner (train.on: ray | skypilot)
    stopped_by: str | None = None  # "timeout" or "stall": why mlci stopped the training
    promotion: Promotion | None = None
    error: str | None = None
    error_stage: str | None = None
    exit_code: int = 0
    output_tail: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    baseline_params: Mapping[str, str] | None = None  # None: the baseline's are unknown
    figures: tuple[Figure, ...] = ()
    data: Mapping[str, str] = field(default_factory=dict)  # dataset path -> DVC hash
    baseline_data: Mapping[str, str] | None = None  # None: the baseline's are unknown
    data_pull: str | None = None  # what `dvc pull` did, one line
    training_reused: str | None = None  # "training reused from cache: ..." (dvc repro)
    training_skipped: str | None = None  # why the command did not run (a fork, off the runner)
    sections: tuple[ReportSection, ...] = ()  # report.sections, in the order listed
    flipped: Flipped | None = None  # the rows the change broke and fixed (core/flipped.py)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return self.gate.verdict if self.gate is not None else "error"


# -- What every format shows ----------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A table as plain-text cells; each format escapes and decorates them itself."""

    header: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: tuple[tuple[str, ...], ...]
    verdicts: tuple[str, ...] = ()  # per row, for the verdict table
    note: str = ""  # under the table: what it leaves out


def gate_table(gate: GateResult) -> Table:
    """One row per rule, failures first; an Interval column when any rule has one."""
    ordered = sorted(gate.results, key=lambda r: _VERDICT_ORDER[r.verdict])
    with_intervals = any(r.interval is not None for r in ordered)
    header: tuple[str, ...] = ("", "Metric", "Baseline", "Candidate", "Change", "Rule", "Verdict")
    numeric: tuple[bool, ...] = (False, False, True, True, True, False, False)
    if with_intervals:
        header = (*header[:5], "Interval", *header[5:])
        numeric = (*numeric[:5], True, *numeric[5:])
    rows = []
    for r in ordered:
        cells = [
            ICONS[r.verdict],
            r.metric,
            format_value(r.baseline),
            format_value(r.candidate),
            _change(r),
            r.rule.describe(),
            _verdict_text(r),
        ]
        if with_intervals:
            cells.insert(5, _interval_text(r))
        rows.append(tuple(cells))
    return Table(header, numeric, tuple(rows), tuple(r.verdict for r in ordered))


@dataclass(frozen=True)
class SliceTables:
    """The Slices section: clearly worse (worst first), clearly better, and the rest."""

    summary: str
    worse: Table | None
    better: Table | None
    rest: Table | None
    rest_count: int


def slice_tables(gate: GateResult) -> SliceTables | None:
    """The per-slice results grouped for the report; None when no rule has `slices`."""
    if not gate.slices:
        return None
    worse = [s for s in gate.slices if s.verdict in ("fail", "warn") or s.trend == "worse"]
    better = [s for s in gate.slices if s.trend == "better" and s not in worse]
    rest = [s for s in gate.slices if s not in worse and s not in better]
    skipped = [s for s in gate.slices if s.verdict == "skip"]
    gated = len(gate.slices) - len(skipped)
    undefined = sum(1 for s in skipped if not math.isfinite(s.candidate))  # roc_auc: one class
    small = len(skipped) - undefined
    summary = (
        f"{gated} slice checks, {gate.slice_correction} correction across the slices of "
        f"each rule: {len(worse)} clearly worse, {len(better)} clearly better, "
        f"{len(rest) - len(skipped)} with no clear change"
    )
    summary += f", {small} too small to gate" if small else ""
    summary += f", {undefined} where the metric is undefined" if undefined else ""
    by_size = sorted(worse, key=lambda s: (_VERDICT_ORDER[s.verdict], -abs(s.change or 0.0)))
    return SliceTables(
        summary=summary,
        worse=_slice_table(by_size) if worse else None,
        better=_slice_table(sorted(better, key=lambda s: -abs(s.change or 0.0)))
        if better
        else None,
        rest=_slice_table(sorted(rest, key=lambda s: (s.metric, -s.rows))) if rest else None,
        rest_count=len(rest),
    )


def _slice_table(results: list[SliceResult]) -> Table:
    header = ("", "Slice", "Metric", "Rows", "Baseline", "Candidate", "Change", "Interval")
    rows = []
    for s in results:
        interval = "—"
        if s.interval is not None:
            level = f"{format_number(s.interval.confidence * 100)}%"
            low, high = _signed(s.interval.low), _signed(s.interval.high)
            interval = f"Δ [{low}, {high}] {level}" if s.change is not None else f"[{low}, {high}]"
        rows.append(
            (
                ICONS[s.verdict],
                s.name,
                s.metric,
                f"{s.rows:,}",
                format_value(s.baseline),
                format_value(s.candidate),
                "—" if s.change is None or math.isnan(s.change) else _signed(s.change),
                interval,
                _slice_verdict(s),
            )
        )
    return Table(
        header=(*header, "Verdict"),
        numeric=(False, False, False, True, True, True, True, True, False),
        rows=tuple(rows),
        verdicts=tuple(s.verdict for s in results),
    )


def _slice_verdict(result: SliceResult) -> str:
    if result.skipped == "few rows":
        return "not gated (too few rows)"
    if result.verdict == "skip":  # roc_auc undefined there, or a class of one row: says why
        return f"not gated: {result.message}"
    if result.verdict == "pass":
        return "pass"
    return f"{result.verdict}: {result.message}"


def _interval_text(result: RuleResult) -> str:
    """`Δ [-0.012, +0.006] 95%` for a change, `[0.93, 0.95] 95%` for a value."""
    interval = result.interval
    if interval is None:
        return "—"
    level = f"{format_number(interval.confidence * 100)}%"
    if result.interval_of == "change":
        return f"Δ [{_signed(interval.low)}, {_signed(interval.high)}] {level}"
    return f"{interval.describe()} {level}"


def _verdict_text(result: RuleResult) -> str:
    if result.verdict == "pass":
        if result.unchecked:
            return "pass (no baseline yet)"
        return "pass (within noise)" if result.within_noise else "pass"
    return f"{result.verdict}: {result.message}"


def other_table(report: ReportInput) -> Table | None:
    """The metrics no rule gates, against the baseline; None when there are none."""
    gated = {r.metric for r in report.gate.results} if report.gate else set()
    rows = [change for change in metric_changes(report) if change.name not in gated]
    if not rows:
        return None
    rows, note = _most_changed(rows, MAX_OTHER_ROWS)
    return Table(
        header=("Metric", "Baseline", "Candidate", "Change"),
        numeric=(False, True, True, True),
        rows=tuple(
            (
                change.name,
                format_value(change.old) if change.status != "new" else "—",
                format_value(change.new) if change.status != "removed" else "—",
                _signed(change.diff)
                if change.diff is not None
                else _STATUS_WORDS.get(change.status, "—"),
            )
            for change in rows
        ),
        note=note,
    )


# Rows of the other metrics' table: with 1,000 classes there are 3,000 per-class metrics.
MAX_OTHER_ROWS = 50


def _most_changed(rows: list[MetricChange], limit: int) -> tuple[list[MetricChange], str]:
    """Past `limit` rows: every metric without a dot in its name, then the ones with a dot
    (a class's, an element's) whose value changed most; and a line saying what is left out."""
    if len(rows) <= limit:
        return rows, ""
    whole = [change for change in rows if "." not in change.name]
    parts = [change for change in rows if "." in change.name]
    ranked = sorted(parts, key=_how_much)
    kept = {change.name for change in whole + ranked[: max(limit - len(whole), 0)]}
    shown = [change for change in rows if change.name in kept]
    left = len(rows) - len(shown)
    changed = len({_how_much(change) for change in parts}) > 1
    why = "the ones that changed least" if changed else "the last in name order"
    note = (
        f"{left:,} more metrics with a dot in their name (per class) are left out, "
        f"{why}; gate.json lists them all (metrics)."
    )
    return shown, note


def _how_much(change: MetricChange) -> float:
    """Sorts the most changed first: a metric only one side has, then by |change|."""
    if change.diff is not None:
        return -abs(change.diff)
    return -math.inf if change.status in ("new", "removed") else 0.0


_STATUS_WORDS = {"new": "new", "removed": "removed"}


def metric_changes(report: ReportInput) -> list[MetricChange]:
    """Each candidate metric against the baseline's (status "no baseline" without one)."""
    baseline = report.gate.baseline.metrics if report.gate and report.gate.baseline else None
    if baseline is None:
        return [
            MetricChange(name, None, value, "no baseline")
            for name, value in report.candidate.items()
        ]
    return diff_metrics(baseline, report.candidate)


def headline(report: ReportInput) -> str:
    """The one-line verdict: what decided it, or why the run failed."""
    if report.error is not None:
        stage = f" at {report.error_stage}" if report.error_stage else ""
        return f"failed{stage}: {report.error.splitlines()[0]}"
    assert report.gate is not None
    if not report.gate.results and report.gate.passed:
        return "no gate rules configured: add gate.rules to mlci.yaml to decide pass or fail"
    return report.gate.summary()


def error_details(report: ReportInput) -> list[str]:
    """The lines of a multi-line error after the first (e.g. each problem in mlci.yaml)."""
    if report.error is None:
        return []
    return [line.strip() for line in report.error.splitlines()[1:] if line.strip()]


def params_table(report: ReportInput) -> tuple[Table, str] | None:
    """The params that changed since the baseline, and a one-line summary."""
    if not report.params and not report.baseline_params:
        return None
    if report.baseline_params is None:
        return Table(("Param", "Value"), (False, False), tuple(report.params.items())), (
            f"Params ({len(report.params)}; the baseline's are unknown)"
        )
    changes = [
        c for c in diff_metrics(report.baseline_params, report.params) if c.status != "unchanged"
    ]
    same = len(set(report.params) & set(report.baseline_params)) - sum(
        1 for c in changes if c.status == "changed"
    )
    rows = tuple(
        (c.name, "—" if c.old is None else str(c.old), "—" if c.new is None else str(c.new))
        for c in changes
    )
    summary = f"Params: {len(changes)} changed since the baseline, {same} unchanged"
    return Table(("Param", "Baseline", "Candidate"), (False, False, False), rows), summary


def data_changes(report: ReportInput) -> list[MetricChange]:
    """Each dataset, candidate against baseline (status "unchanged" when the hash is the same)."""
    if report.baseline_data is None:
        return [MetricChange(path, None, new, "no baseline") for path, new in report.data.items()]
    return diff_metrics(report.baseline_data, report.data)


def data_changed(report: ReportInput) -> bool | None:
    """Whether any dataset changed since the baseline; None when that is unknown."""
    if report.baseline_data is None or not (report.data or report.baseline_data):
        return None
    return any(change.status != "unchanged" for change in data_changes(report))


def _short(value: MetricValue) -> str:
    if not isinstance(value, str):
        return "—"
    return value[:8] + ("/" if value.endswith(".dir") else "")


def data_table(report: ReportInput) -> tuple[Table, str] | None:
    """The datasets with short hashes, and "Data changed since the baseline: yes/no"."""
    if not report.data and not report.baseline_data:
        return None
    changes = data_changes(report)
    if report.baseline_data is None:
        hashes = tuple((c.name, _short(c.new)) for c in changes)
        count = f"{len(hashes)} dataset{'s' if len(hashes) != 1 else ''}"
        return Table(("Dataset", "Hash"), (False, False), hashes), (
            f"Data: {count}; the baseline's hashes are unknown"
        )
    names = {"new": "added", "removed": "removed", "changed": "changed", "unchanged": "same"}
    rows: tuple[tuple[str, ...], ...] = tuple(
        (c.name, _short(c.old), _short(c.new), names[c.status]) for c in changes
    )
    differing = [c.name for c in changes if c.status != "unchanged"]
    total = f"{len(changes)} dataset{'s' if len(changes) != 1 else ''}"
    named = ", ".join(differing[:3]) + (f" and {len(differing) - 3} more" if differing[3:] else "")
    summary = (
        f"Data changed since the baseline: yes ({len(differing)} of {total}: {named})"
        if differing
        else f"Data changed since the baseline: no ({total})"
    )
    header = ("Dataset", "Baseline", "Candidate", "Change")
    return Table(header, (False, False, False, False), rows), summary


def run_details(report: ReportInput) -> list[str]:
    """Run facts as plain-text lines (escaped by each format)."""
    lines = []
    if report.commit:
        dirty = " (with uncommitted changes)" if report.dirty else ""
        on = f" on {report.branch}" if report.branch else ""
        lines.append(f"Commit: {report.commit[:12]}{on}{dirty}")
    lines.append(f"Build: {report.event} ({report.ci})")
    if report.gate is not None:
        baseline = report.gate.baseline
        lines.append(f"Baseline: {baseline.label if baseline else 'none (first run)'}")
    if report.training_command is not None:
        took = f", {report.training_seconds:.1f} s" if report.training_seconds is not None else ""
        reused = f" ({report.training_reused})" if report.training_reused else ""
        reused = " (not run)" if report.training_skipped else reused
        lines.append(f"Training: {report.training_command}{took}{reused}")
    if report.device is not None:
        lines.append(f"Device: {report.device.describe()}")
    if report.where is not None:
        lines.append(f"Ran on: {report.where.describe()}")
    if report.data_pull:
        lines.append(f"Data: {report.data_pull}")
    if report.metric_sources:
        lines.append(f"Metrics files: {', '.join(sorted(set(report.metric_sources.values())))}")
    if report.promotion is not None:
        lines.append(f"Registry: {report.promotion.describe()}")
    if report.run_url:
        lines.append(f"CI run: {report.run_url}")
    if report.report_url and report.report_url != report.run_url:
        lines.append(f"Full report: {report.report_url}")
    elif report.report_url:
        lines.append("Full report: report.html in the CI run's artifacts")
    return lines


def format_value(value: MetricValue) -> str:
    """A metric value for people: 4 significant digits, NaN and inf spelled out."""
    if value is None:
        return "—"
    if is_number(value):
        assert isinstance(value, int | float)
        return format_number(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def _signed(value: float) -> str:
    text = format_number(value)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def _change(result: RuleResult) -> str:
    if result.change is None:
        return "—"
    text = _signed(result.change)
    if result.change_pct is not None:
        text += f" ({_signed(round(result.change_pct, 2))}%)"
    return text


# -- Flipped examples -----------------------------------------------------------------

_TESTS = {"mcnemar-exact": "McNemar's exact test", "mcnemar-chi2": "McNemar's chi-square test"}


def flipped_summary(flipped: Flipped) -> str:
    """One line: the counts, how the rows were paired, and McNemar's test."""
    paired = f"of {flipped.rows:,} rows paired by {flipped.paired_by}"
    if flipped.task == "regression":
        return (
            f"Flipped examples: the absolute error grew on {flipped.broken:,} rows and shrank "
            f"on {flipped.fixed:,}, {paired}"
        )
    test = ""
    if flipped.test is not None and flipped.p_value is not None:
        test = f"; {_TESTS.get(flipped.test, flipped.test)}: p = {format_number(flipped.p_value)}"
    return (
        f"Flipped examples: {flipped.broken:,} broken (the baseline right, the candidate "
        f"wrong), {flipped.fixed:,} fixed, {paired}{test}"
    )


def flipped_tables(flipped: Flipped) -> list[tuple[str, Table]]:
    """The listed rows under their titles: the broken ones (regression: the error grew
    most, then shrank most)."""
    numeric = tuple(name in ("confidence", "error change") for name in flipped.header)
    if flipped.task == "regression":
        titled = [
            (f"The {len(flipped.worst)} rows whose error grew most", flipped.worst),
            (f"The {len(flipped.best)} rows whose error shrank most", flipped.best),
        ]
    else:
        what = "by the candidate's confidence in its wrong label"
        titled = [(f"The {len(flipped.worst)} broken rows listed first, {what}", flipped.worst)]
    return [(title, Table(flipped.header, numeric, rows)) for title, rows in titled if rows]


def flipped_file(flipped: Flipped) -> str | None:
    """Where every flipped row is, when it was written."""
    if flipped.file is None:
        return None
    return f"Every flipped row: {flipped.file} in .mlci/out/ (the CI run's artifacts)"
