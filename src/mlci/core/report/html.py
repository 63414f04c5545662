"""The report as one self-contained HTML page (report.html)."""

from __future__ import annotations

import base64
import html

from mlci.core.report.model import (
    HEADLINES,
    ReportInput,
    Table,
    data_table,
    error_details,
    flipped_file,
    flipped_summary,
    flipped_tables,
    gate_table,
    headline,
    other_table,
    params_table,
    run_details,
    slice_tables,
)

# Emoji need an emoji font; the HTML report uses symbols every text font has.
_HTML_ICONS = {"pass": "✔", "fail": "✘", "warn": "⚠", "skip": "–", "error": "✘"}

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
        f"{esc(report.model)} · {HEADLINES[status]}</h1>",
        f'<p class="headline {status}">{esc(headline(report))}</p>',
    ]
    if error_details(report):
        items = "".join(f"<li>{esc(line)}</li>" for line in error_details(report))
        body.append(f"<ul>{items}</ul>")
    if report.gate is not None and report.gate.results:
        body.append(_html_table(gate_table(report.gate)))
    if report.gate is not None:
        body += _html_slices(report)
        body += [f'<p class="note">{esc(note)}</p>' for note in report.gate.notes]
    body += _html_flipped(report)
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
    other = other_table(report)
    if other is not None:
        body += ["<h2>Other metrics (not gated)</h2>", _html_table(other)]
    if report.training_reused and report.error is None:
        body.append(f'<p class="note">{esc(report.training_reused)}</p>')
    if report.training_skipped:
        body.append(f'<p class="note">{esc(report.training_skipped)}</p>')
    data = data_table(report)
    if data is not None:
        table, summary = data
        body += [f"<h2>{esc(summary)}</h2>", _html_table(table) if table.rows else ""]
    params = params_table(report)
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
    facts = "".join(f"<li>{esc(line)}</li>" for line in run_details(report))
    body += ["<h2>Run details</h2>", f"<ul>{facts}</ul>"]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>mlci report · {esc(report.model)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _html_slices(report: ReportInput) -> list[str]:
    assert report.gate is not None
    tables = slice_tables(report.gate)
    if tables is None:
        return []
    body = ["<h2>Slices</h2>", f'<p class="note">{html.escape(tables.summary)}</p>']
    if tables.worse is not None:
        body += ["<h3>Clearly worse, worst first</h3>", _html_table(tables.worse)]
    if tables.better is not None:
        body += ["<h3>Clearly better</h3>", _html_table(tables.better)]
    if tables.rest is not None:
        summary = f"The other {tables.rest_count} slices"
        body.append(f"<details><summary>{summary}</summary>{_html_table(tables.rest)}</details>")
    return body


def _html_flipped(report: ReportInput) -> list[str]:
    if report.flipped is None:
        return []
    esc = html.escape
    body = [f"<h2>{esc(flipped_summary(report.flipped))}</h2>"]
    for title, table in flipped_tables(report.flipped):
        body += [f"<h3>{esc(title)}</h3>", _html_table(table)]
    where = flipped_file(report.flipped)
    return body + ([f'<p class="note">{esc(where)}</p>'] if where else [])


def _html_table(table: Table) -> str:
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
    if table.note:
        rows.append(f'<p class="note">{esc(table.note)}</p>')
    return "".join(rows)
