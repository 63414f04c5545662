"""The report as GitHub/GitLab-flavoured Markdown: the PR comment and the job summary."""

from __future__ import annotations

import re

from mlci.core.markdown import untrusted_markdown
from mlci.core.report.escape import md_code_block, md_text
from mlci.core.report.model import (
    HEADLINES,
    ICONS,
    ReportInput,
    ReportSection,
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

# Optional sections, dropped in this order when the Markdown is over the forge's limit.
_FOLDABLE = ("figures", "slices", "flipped", "sections", "other", "params", "data", "output")


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
        f"## {ICONS[status]} mlci · {md_text(report.model)} · {HEADLINES[status]}",
        "",
        f"**{md_text(headline(report))}**",
        "",
    ]
    if error_details(report):
        parts += [*(f"- {md_text(line)}" for line in error_details(report)), ""]
    if report.gate is not None and report.gate.results:
        parts += [_markdown_table(gate_table(report.gate)), ""]
    if report.gate is not None:
        parts += _markdown_slices(report, "slices" in omit)
    if report.gate is not None and report.gate.notes:
        parts += [*(f"> {md_text(note)}" for note in report.gate.notes), ""]
    folded = []
    if report.flipped is not None:
        if "flipped" in omit:
            folded.append("the flipped examples")
            parts += [md_text(flipped_summary(report.flipped)), ""]
        else:
            parts += _md_details(md_text(flipped_summary(report.flipped)), _md_flipped(report))
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
    other = other_table(report)
    if other is not None:
        if "other" in omit:
            folded.append("the other metrics")
        else:
            parts += _md_details("Other metrics (not gated)", _markdown_table(other))
    if report.training_reused and report.error is None:
        parts += [f"♻️ {md_text(report.training_reused)}", ""]
    if report.training_skipped:
        parts += [f"⏭️ {md_text(report.training_skipped)}", ""]
    data = data_table(report)
    if data is not None:
        table, summary = data
        if table.rows and "data" not in omit:
            parts += _md_details(md_text(summary), _markdown_table(table))
        else:
            parts += [md_text(summary), ""]
    params = params_table(report)
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
    facts = "\n".join(f"- {md_text(line)}" for line in run_details(report))
    parts += _md_details("Run details", facts)
    return "\n".join(parts).rstrip("\n") + "\n"


def _markdown_slices(report: ReportInput, fold: bool) -> list[str]:
    """Who got worse: the clearly worse slices, then the better, the rest folded (or, to
    fit the page, left to report.html)."""
    assert report.gate is not None
    tables = slice_tables(report.gate)
    if tables is None:
        return []
    parts = ["### Slices", "", md_text(tables.summary), ""]
    if tables.worse is not None:
        parts += ["**Clearly worse**, worst first:", "", _markdown_table(tables.worse), ""]
    if tables.better is not None:
        parts += ["**Clearly better**:", "", _markdown_table(tables.better), ""]
    if tables.rest is not None:
        title = f"The other {tables.rest_count} slices"
        if fold:
            parts += [f"> {title} are in report.html.", ""]
        else:
            parts += _md_details(title, _markdown_table(tables.rest))
    return parts


def _md_flipped(report: ReportInput) -> str:
    assert report.flipped is not None
    parts = [
        f"**{md_text(title)}**\n\n{_markdown_table(table)}"
        for title, table in flipped_tables(report.flipped)
    ]
    where = flipped_file(report.flipped)
    return "\n\n".join([*parts, *([md_text(where)] if where else [])])


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


def _markdown_table(table: Table) -> str:
    lines = [
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join("--:" if num else "---" for num in table.numeric) + "|",
    ]
    for index, row in enumerate(table.rows):
        cells = [md_text(cell) for cell in row]
        if table.verdicts and table.verdicts[index] != "pass":
            # The verdict in bold, the message after it plain; both escaped: a slice's
            # verdict cell carries the slice's value, which the pull request controls.
            verdict, colon, message = row[-1].partition(": ")
            cells[-1] = f"**{md_text(verdict)}**{colon}{md_text(message)}"
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", md_text(table.note)]
    return "\n".join(lines)
