"""The report: one run's outcome as Markdown (PR comment, job summary), HTML and JSON.

Everything a pull request controls (metric names, branch names, commands, error text,
training output) is escaped for the format it goes into: Markdown cells cannot break
the table, inject HTML or mention people; HTML is escaped; code blocks use a fence
longer than any backtick run inside them.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlci.core.curves import ClassCurves, Curve, most_changed
from mlci.core.device import DeviceInfo
from mlci.core.gate import (
    Baseline,
    Check,
    GateResult,
    Interval,
    Rule,
    RuleResult,
    format_number,
)
from mlci.core.markdown import untrusted_markdown
from mlci.core.metrics import MetricChange, MetricValue, diff_metrics, is_number

SCHEMA_VERSION = 1
_ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "error": "💥"}
# Emoji need an emoji font; the HTML report uses symbols every text font has.
_HTML_ICONS = {"pass": "✔", "fail": "✘", "warn": "⚠", "skip": "–", "error": "✘"}
_HEADLINES = {
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
    sections: tuple[ReportSection, ...] = ()  # report.sections, in the order listed

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return self.gate.verdict if self.gate is not None else "error"


# -- Escaping --------------------------------------------------------------------------


def md_text(text: str) -> str:
    """Escape untrusted text for Markdown (and the HTML that Markdown allows)."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"([\\`*_\[\]|~#!{}])", r"\\\1", escaped)
    # A zero-width space after @ stops mentions (GitHub decodes &#64; and still pings).
    escaped = escaped.replace("@", "@&#8203;")
    return re.sub(r"[\r\n\t]+", " ", escaped)


def md_code_block(lines: tuple[str, ...] | list[str]) -> str:
    body = "\n".join(lines)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


@dataclass(frozen=True)
class _Table:
    """A table as plain-text cells; each format escapes and decorates them itself."""

    header: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: tuple[tuple[str, ...], ...]
    verdicts: tuple[str, ...] = ()  # per row, for the verdict table


def _gate_table(gate: GateResult) -> _Table:
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
            _ICONS[r.verdict],
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
    return _Table(header, numeric, tuple(rows), tuple(r.verdict for r in ordered))


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


def _other_table(report: ReportInput) -> _Table | None:
    gated = {r.metric for r in report.gate.results} if report.gate else set()
    rows = [change for change in _diff(report) if change.name not in gated]
    if not rows:
        return None
    return _Table(
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
    )


_STATUS_WORDS = {"new": "new", "removed": "removed"}


def _diff(report: ReportInput) -> list[MetricChange]:
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
    if not report.gate.results:
        return "no gate rules configured: add gate.rules to mlci.yaml to decide pass or fail"
    return report.gate.summary()


def _error_details(report: ReportInput) -> list[str]:
    """The lines of a multi-line error after the first (e.g. each problem in mlci.yaml)."""
    if report.error is None:
        return []
    return [line.strip() for line in report.error.splitlines()[1:] if line.strip()]


def _params_table(report: ReportInput) -> tuple[_Table, str] | None:
    """The params that changed since the baseline, and a one-line summary."""
    if not report.params and not report.baseline_params:
        return None
    if report.baseline_params is None:
        return _Table(("Param", "Value"), (False, False), tuple(report.params.items())), (
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
    return _Table(("Param", "Baseline", "Candidate"), (False, False, False), rows), summary


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


def _data_table(report: ReportInput) -> tuple[_Table, str] | None:
    """The datasets with short hashes, and "Data changed since the baseline: yes/no"."""
    if not report.data and not report.baseline_data:
        return None
    changes = data_changes(report)
    if report.baseline_data is None:
        hashes = tuple((c.name, _short(c.new)) for c in changes)
        count = f"{len(hashes)} dataset{'s' if len(hashes) != 1 else ''}"
        return _Table(("Dataset", "Hash"), (False, False), hashes), (
            f"Data: {count}; the baseline's hashes are unknown"
        )
    names = {"new": "added", "removed": "removed", "changed": "changed", "unchanged": "same"}
    rows: tuple[tuple[str, ...], ...] = tuple(
        (c.name, _short(c.old), _short(c.new), names[c.status]) for c in changes
    )
    differing = sum(1 for c in changes if c.status != "unchanged")
    total = f"{len(changes)} dataset{'s' if len(changes) != 1 else ''}"
    summary = (
        f"Data changed since the baseline: yes ({differing} of {total})"
        if differing
        else f"Data changed since the baseline: no ({total})"
    )
    header = ("Dataset", "Baseline", "Candidate", "Change")
    return _Table(header, (False, False, False, False), rows), summary


def _details(report: ReportInput) -> list[str]:
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
        lines.append(f"Training: {report.training_command}{took}{reused}")
    if report.device is not None:
        lines.append(f"Device: {report.device.describe()}")
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


# -- Markdown ---------------------------------------------------------------------------


# Optional sections, dropped in this order when the Markdown is over the forge's limit.
_FOLDABLE = ("figures", "sections", "other", "params", "data", "output")


def render_markdown(report: ReportInput, *, max_chars: int | None = None) -> str:
    """The report as GitHub/GitLab-flavoured Markdown, within `max_chars` when given.

    Over the limit, the optional sections go first (plots, other metrics, params, the
    training output), each replaced by a line pointing at report.html; if it is still too
    long, the text is cut at a line boundary with a note saying so.
    """
    omit: set[str] = set()
    text = _markdown(report, omit)
    for section in _FOLDABLE:
        if max_chars is None or len(text) <= max_chars:
            return text
        omit.add(section)
        text = _markdown(report, omit)
    if max_chars is None or len(text) <= max_chars:
        return text
    return _cut(text, max_chars, report.report_url)


def _cut(text: str, max_chars: int, full_url: str | None = None) -> str:
    where = "report.html in the CI artifacts"
    if full_url:
        where = f"[report.html]({_safe_url(full_url)}) (the CI run's artifacts)"
    note = (
        "\n\n> ✂️ The report was cut to fit this page's limit of "
        f"{max_chars:,} characters; the full report is {where}.\n"
    )
    keep = text[: max(0, max_chars - len(note) - len("</details>\n") * 8)]
    keep = keep[: keep.rfind("\n") + 1] if "\n" in keep else ""
    # Close what the cut left open so the rest of the page renders normally.
    unclosed = keep.count("<details") - keep.count("</details>")
    if keep.count("```") % 2:
        keep += "```\n"
    return keep + "</details>\n" * max(0, unclosed) + note


def _safe_url(url: str) -> str:
    """A URL from the CI's environment, made safe to put inside a Markdown link."""
    return re.sub(r"[\s()<>\[\]`\"']", lambda m: f"%{ord(m.group()):02X}", url)


def _markdown(report: ReportInput, omit: set[str]) -> str:
    status = report.status
    parts = [
        f"## {_ICONS[status]} mlci · {md_text(report.model)} · {_HEADLINES[status]}",
        "",
        f"**{md_text(headline(report))}**",
        "",
    ]
    if _error_details(report):
        parts += [*(f"- {md_text(line)}" for line in _error_details(report)), ""]
    if report.gate is not None and report.gate.results:
        parts += [_markdown_table(_gate_table(report.gate)), ""]
    if report.gate is not None and report.gate.notes:
        parts += [*(f"> {md_text(note)}" for note in report.gate.notes), ""]
    folded = []
    if report.sections and "sections" in omit:
        folded.append("the sections from report.sections")
    for section in () if "sections" in omit else report.sections:
        parts += _md_details(md_text(section.path), _section_markdown(section), opened=True)
    if report.error is not None and report.output_tail:
        if "output" in omit:
            folded.append("the training output")
        else:
            tail = md_code_block(report.output_tail)
            parts += _md_details("Last lines of the training output", tail, opened=True)
    other = _other_table(report)
    if other is not None:
        if "other" in omit:
            folded.append("the other metrics")
        else:
            parts += _md_details("Other metrics (not gated)", _markdown_table(other))
    if report.training_reused and report.error is None:
        parts += [f"♻️ {md_text(report.training_reused)}", ""]
    data = _data_table(report)
    if data is not None:
        table, summary = data
        if table.rows and "data" not in omit:
            parts += _md_details(md_text(summary), _markdown_table(table))
        else:
            parts += [md_text(summary), ""]
    params = _params_table(report)
    if params is not None:
        table, summary = params
        if table.rows and "params" not in omit:
            parts += _md_details(summary, _markdown_table(table))
        else:
            parts += [summary, ""]
    if report.figures and "figures" in omit:
        folded.append("the plots")
    for figure in () if "figures" in omit else report.figures:
        caption = f"\n\n{md_text(figure.caption)}" if figure.caption else ""
        parts += _md_details(md_text(figure.title), figure.markdown + caption)
    if folded:
        parts += [f"> Left out to fit this page: {', '.join(folded)}; see report.html.", ""]
    facts = "\n".join(f"- {md_text(line)}" for line in _details(report))
    parts += _md_details("Run details", facts)
    return "\n".join(parts).rstrip("\n") + "\n"


def _section_markdown(section: ReportSection) -> str:
    if section.note is not None:
        return f"> ⚠️ {md_text(section.note)}"
    if section.png is not None and section.image_url:
        return f"![{md_text(section.path)}]({_safe_url(section.image_url)})"
    if section.png is not None:
        return (
            f"*🖼️ {md_text(section.path)} is not shown here: publish.images is `inline`, "
            "which hosts no images; set it to `branch`, `gitlab`, `gitea` or `s3` to show "
            "it (it is in report.html)*"
        )
    return untrusted_markdown(section.markdown or "").rstrip("\n")


def _md_details(summary: str, body: str, *, opened: bool = False) -> list[str]:
    tag = "<details open>" if opened else "<details>"
    return [f"{tag}<summary>{summary}</summary>", "", body, "", "</details>", ""]


def _markdown_table(table: _Table) -> str:
    lines = [
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join("--:" if num else "---" for num in table.numeric) + "|",
    ]
    for index, row in enumerate(table.rows):
        cells = [md_text(cell) for cell in row]
        if table.verdicts and table.verdicts[index] != "pass":
            verdict, _, message = row[-1].partition(": ")
            cells[-1] = f"**{verdict}**: {md_text(message)}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- HTML -------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1000px;padding:0 1rem;color:#1f2328}
h1{font-size:1.4rem}.headline{font-weight:600;padding:.6rem .8rem;border-radius:6px}
.pass{background:#dafbe1}.fail,.error{background:#ffebe9}.warn{background:#fff8c5}
table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fff5f5}tr.warn td{background:#fffdf0}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}img{max-width:100%}
.note{color:#59636e}.icon.pass{color:#1a7f37}.icon.fail,.icon.error{color:#cf222e}
.icon.warn{color:#9a6700}
tr.fail td:first-child{color:#cf222e}tr.pass td:first-child{color:#1a7f37}
tr.warn td:first-child{color:#9a6700}
"""


def render_html(report: ReportInput) -> str:
    """A self-contained HTML page (no external resources)."""
    esc = html.escape
    status = report.status
    body = [
        f'<h1><span class="icon {status}">{_HTML_ICONS[status]}</span> mlci · '
        f"{esc(report.model)} · {_HEADLINES[status]}</h1>",
        f'<p class="headline {status}">{esc(headline(report))}</p>',
    ]
    if _error_details(report):
        items = "".join(f"<li>{esc(line)}</li>" for line in _error_details(report))
        body.append(f"<ul>{items}</ul>")
    if report.gate is not None and report.gate.results:
        body.append(_html_table(_gate_table(report.gate)))
    if report.gate is not None:
        body += [f'<p class="note">{esc(note)}</p>' for note in report.gate.notes]
    for section in report.sections:
        body.append(f"<h2>{esc(section.path)}</h2>")
        if section.note is not None:
            body.append(f'<p class="note">{esc(section.note)}</p>')
        elif section.png is not None:
            encoded = base64.b64encode(section.png).decode("ascii")
            body.append(f'<img alt="{esc(section.path)}" src="data:image/png;base64,{encoded}">')
        else:
            body.append(f"<pre>{esc(section.markdown or '')}</pre>")
    if report.error is not None and report.output_tail:
        tail = esc("\n".join(report.output_tail))
        body += ["<h2>Last lines of the training output</h2>", f"<pre>{tail}</pre>"]
    other = _other_table(report)
    if other is not None:
        body += ["<h2>Other metrics (not gated)</h2>", _html_table(other)]
    if report.training_reused and report.error is None:
        body.append(f'<p class="note">{esc(report.training_reused)}</p>')
    data = _data_table(report)
    if data is not None:
        table, summary = data
        body += [f"<h2>{esc(summary)}</h2>", _html_table(table) if table.rows else ""]
    params = _params_table(report)
    if params is not None:
        table, summary = params
        body += [f"<h2>{esc(summary)}</h2>", _html_table(table) if table.rows else ""]
    for figure in report.figures:
        body.append(f"<h2>{esc(figure.title)}</h2>")
        for png in figure.pngs:
            encoded = base64.b64encode(png).decode("ascii")
            body.append(f'<img alt="{esc(figure.title)}" src="data:image/png;base64,{encoded}">')
        if not figure.pngs:
            body.append(f"<pre>{esc(figure.markdown)}</pre>")
        if figure.caption:
            body.append(f'<p class="note">{esc(figure.caption)}</p>')
    facts = "".join(f"<li>{esc(line)}</li>" for line in _details(report))
    body += ["<h2>Run details</h2>", f"<ul>{facts}</ul>"]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>mlci report · {esc(report.model)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_table(table: _Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(cell)}</th>" for cell in table.header)
    rows = [f"<table><tr>{head}</tr>"]
    for index, row in enumerate(table.rows):
        verdict = table.verdicts[index] if table.verdicts else ""
        if verdict:
            row = (_HTML_ICONS[verdict], *row[1:])
        cells = "".join(
            f"<td class=num>{esc(cell)}</td>" if num else f"<td>{esc(cell)}</td>"
            for cell, num in zip(row, table.numeric, strict=True)
        )
        rows.append(f'<tr class="{verdict}">{cells}</tr>' if verdict else f"<tr>{cells}</tr>")
    rows.append("</table>")
    return "".join(rows)


# -- JSON -------------------------------------------------------------------------------


def render_json(report: ReportInput) -> dict[str, object]:
    """The public contract written to `.mlci/out/gate.json` (see docs/gate-json.md)."""
    gate = report.gate
    return {
        "schema_version": SCHEMA_VERSION,
        "model": report.model,
        "passed": bool(gate is not None and gate.passed and report.error is None),
        "verdict": report.status,
        "summary": headline(report),
        "baseline": None
        if gate is None or gate.baseline is None
        else {"source": gate.baseline.source, "label": gate.baseline.label},
        "results": [_result_json(r) for r in gate.results] if gate else [],
        "notes": list(gate.notes) if gate else [],
        "metrics": {name: _json_value(value) for name, value in report.candidate.items()},
        "diff": [
            {
                "metric": change.name,
                "old": _json_value(change.old),
                "new": _json_value(change.new),
                "diff": change.diff,
                "status": change.status,
            }
            for change in _diff(report)
        ],
        "commit": report.commit,
        "branch": report.branch,
        "event": report.event,
        "ci": report.ci,
        "run_url": report.run_url,
        "training": None
        if report.training_command is None
        else {
            "command": report.training_command,
            "seconds": report.training_seconds,
            "device": None if report.device is None else report.device.to_json(),
            "stopped_by": report.stopped_by,
            "reused": report.training_reused is not None,
        },
        "data": _data_json(report),
        "promotion": None if report.promotion is None else _promotion_json(report.promotion),
        "error": None
        if report.error is None
        else {"stage": report.error_stage, "message": report.error, "exit_code": report.exit_code},
    }


def _data_json(report: ReportInput) -> dict[str, object] | None:
    if not report.data and not report.baseline_data and report.data_pull is None:
        return None
    return {
        "changed": data_changed(report),
        "pull": report.data_pull,
        "datasets": [
            {
                "path": change.name,
                "hash": change.new,
                "baseline_hash": change.old,
                "status": change.status,
            }
            for change in data_changes(report)
        ],
    }


def _result_json(result: RuleResult) -> dict[str, object]:
    return {
        "metric": result.metric,
        "candidate": _json_value(result.candidate),
        "baseline": _json_value(result.baseline),
        "verdict": result.verdict,
        "change": result.change,
        "change_pct": result.change_pct,
        "rule": result.rule.describe(),
        "severity": result.rule.severity,
        "message": result.message,
        "within_noise": result.within_noise,
        "interval": None
        if result.interval is None
        else {
            "of": result.interval_of,
            "low": result.interval.low,
            "high": result.interval.high,
            "confidence": result.interval.confidence,
            "method": result.interval.method,
        },
        "checks": [
            {"name": c.name, "threshold": c.threshold, "passed": c.passed, "message": c.message}
            for c in result.checks
        ],
    }


def _promotion_json(promotion: Promotion) -> dict[str, object]:
    return {
        "eligible": promotion.eligible,
        "reason": promotion.reason,
        "version": promotion.version,
        "alias": promotion.alias,
        "previous_version": promotion.previous,
        "created": promotion.created,
        "alias_kept": promotion.kept,
        "role": promotion.role,
    }


def _json_value(value: MetricValue) -> MetricValue:
    """JSON has no NaN or infinity: those become the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def dumps(data: Mapping[str, object]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# -- Figures that need no image hosting ---------------------------------------------------


def confusion_markdown(
    classes: Sequence[object],
    candidate: Sequence[Sequence[int]],
    baseline: Sequence[Sequence[int]] | None = None,
) -> str:
    """The confusion matrix as two Markdown tables: counts, and each true class's share.

    Rows are true classes, columns predicted ones; with a baseline each cell reads
    `candidate (baseline)`. The diagonal (correct predictions) is bold.
    """
    names = [md_text(str(label)) for label in classes]
    header = "| true \\\\ predicted | " + " | ".join(names) + " |"
    rule = "|---|" + "--:|" * len(names)
    counts, shares = [header, rule], [header, rule]
    for i, name in enumerate(names):
        count_cells, share_cells = [], []
        total = sum(candidate[i]) or 1
        base_total = (sum(baseline[i]) or 1) if baseline is not None else 1
        for j in range(len(names)):
            count = f"{candidate[i][j]}"
            share = f"{candidate[i][j] / total:.0%}"
            if baseline is not None:
                count += f" ({baseline[i][j]})"
                share += f" ({baseline[i][j] / base_total:.0%})"
            if i == j:
                count, share = f"**{count}**", f"**{share}**"
            count_cells.append(count)
            share_cells.append(share)
        counts.append(f"| {name} | " + " | ".join(count_cells) + " |")
        shares.append(f"| {name} | " + " | ".join(share_cells) + " |")
    legend = "Cells: candidate (baseline). " if baseline is not None else ""
    return "\n".join(counts) + f"\n\n{legend}Share of each true class:\n\n" + "\n".join(shares)


MAX_AREA_ROWS = 50  # classes in a curve figure's table of areas; more: the most changed


def area_table_markdown(
    pairs: Sequence[ClassCurves], *, area_label: str, limit: int = MAX_AREA_ROWS
) -> str:
    """Each class's area under the candidate's and the baseline's curve, and the change.

    One row per class (`| 3 | 0.981 | 0.975 | +0.006 |`), class names escaped; "no curve"
    where a model has none. Over `limit` classes, the `limit` whose area changed most
    (`curves.most_changed`), and a line saying so.
    """
    rows = most_changed(pairs, limit)
    area = md_text(area_label)
    lines = [f"| class | candidate {area} | baseline {area} | change |", "|---|--:|--:|--:|"]
    for pair in rows:
        change = "–" if pair.change is None else f"{pair.change:+.3f}"
        label = md_text(pair.name.removeprefix("class "))
        lines.append(
            f"| {label} | {_area_cell(pair.candidate)} | {_area_cell(pair.baseline)} | {change} |"
        )
    if len(rows) < len(pairs):
        lines.insert(0, f"The {len(rows)} of {len(pairs)} classes whose {area} changed most:\n")
    return "\n".join(lines)


def _area_cell(curve: Curve | None) -> str:
    if curve is None:
        return "no curve"
    return "–" if curve.area is None else f"{curve.area:.3f}"


# -- report.json: everything, to render again later ---------------------------------------

DOCUMENT_VERSION = 1


def png_names(figure: Figure) -> list[str]:
    """The file names of a figure's PNGs in `.mlci/out/plots/`."""
    return [f"{figure.key}{'' if i == 0 else f'-{i + 1}'}.png" for i in range(len(figure.pngs))]


def section_png_name(index: int) -> str:
    """The file name of the image of report.sections[index] in `.mlci/out/plots/`."""
    return f"section-{index + 1}.png"


def to_document(report: ReportInput) -> dict[str, object]:
    """Everything in the report as JSON-ready data (PNGs by their names in plots/)."""
    data = dataclasses.asdict(report)
    for figure, source in zip(data["figures"], report.figures, strict=True):
        figure["pngs"] = png_names(source)
    for index, section in enumerate(data["sections"]):
        section["png"] = None if section["png"] is None else section_png_name(index)
    encoded = _encode(data)
    assert isinstance(encoded, dict)
    return {"document_version": DOCUMENT_VERSION, **encoded}


def from_document(document: Mapping[str, Any], read_png: Callable[[str], bytes]) -> ReportInput:
    """The ReportInput that `to_document` wrote; raises ValueError if it is not one."""
    if document.get("document_version") != DOCUMENT_VERSION:
        raise ValueError(f"not a version {DOCUMENT_VERSION} report document")
    data = _decode(dict(document))
    data.pop("document_version")
    gate = data.pop("gate")
    figures = data.pop("figures")
    promotion = data.pop("promotion")
    device = data.pop("device", None)
    sections = tuple(
        ReportSection(**{**item, "png": None if item["png"] is None else read_png(item["png"])})
        for item in data.pop("sections", [])
    )
    return ReportInput(
        sections=sections,
        device=None if device is None else DeviceInfo.from_json(device),
        gate=None if gate is None else _gate_from(gate),
        figures=tuple(
            Figure(**{**f, "pngs": tuple(read_png(name) for name in f["pngs"])}) for f in figures
        ),
        promotion=None if promotion is None else Promotion(**promotion),
        output_tail=tuple(data.pop("output_tail")),
        **data,
    )


def _gate_from(data: dict[str, Any]) -> GateResult:
    results = []
    for item in data["results"]:
        checks = tuple(Check(**{**c, "interval": _interval(c["interval"])}) for c in item["checks"])
        results.append(
            RuleResult(
                **{
                    **item,
                    "rule": Rule(**item["rule"]),
                    "checks": checks,
                    "interval": _interval(item["interval"]),
                }
            )
        )
    baseline = data["baseline"]
    return GateResult(
        results=tuple(results),
        baseline=None if baseline is None else Baseline(**baseline),
        notes=tuple(data["notes"]),
    )


def _interval(data: dict[str, Any] | None) -> Interval | None:
    return None if data is None else Interval(**data)


def _encode(value: object) -> object:
    """JSON-ready: non-finite floats tagged, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value
