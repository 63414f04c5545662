"""The report: one run's outcome, a `ReportInput`, rendered four ways.

- Markdown (`render_markdown`): the PR comment and the CI job summary, cut to a forge's
  size limit by folding optional sections first;
- HTML (`render_html`): report.html, one self-contained page with the plots as PNGs;
- gate.json (`render_json`): the public contract for machines (docs/gate-json.md);
- report.json (`to_document` / `from_document`): everything, to render it again later.

Everything a pull request controls (metric names, branch names, commands, error text,
training output) is escaped for the format it goes into: Markdown cells cannot break
the table, inject HTML or mention people; HTML is escaped; code blocks use a fence
longer than any backtick run inside them.

Modules: `model` (the input and the plain-text tables every format shows), `escape`
(Markdown escaping), `markdown`, `html`, `json` (gate.json), `document` (report.json),
`figures` (figures that need no image hosting: Markdown tables). `figures` computes with
numpy and is not imported here: a report without predictions does without numpy.
"""

from __future__ import annotations

from mlci.core.report.document import (
    DOCUMENT_VERSION,
    from_document,
    png_names,
    section_png_name,
    to_document,
)
from mlci.core.report.escape import md_code_block, md_text
from mlci.core.report.html import render_html
from mlci.core.report.json import SCHEMA_VERSION, dumps, render_json
from mlci.core.report.markdown import render_markdown
from mlci.core.report.model import (
    Figure,
    Promotion,
    ReportInput,
    ReportSection,
    data_changed,
    data_changes,
    format_value,
    headline,
)

__all__ = [
    "DOCUMENT_VERSION",
    "SCHEMA_VERSION",
    "Figure",
    "Promotion",
    "ReportInput",
    "ReportSection",
    "data_changed",
    "data_changes",
    "dumps",
    "format_value",
    "from_document",
    "headline",
    "md_code_block",
    "md_text",
    "png_names",
    "render_html",
    "render_json",
    "render_markdown",
    "section_png_name",
    "to_document",
]
