"""The report's files in .mlci/out/: report.md, report.html, gate.json, report.json, plots.

They are written before anything is published or promoted, so the report exists
whatever happens next.
"""

from __future__ import annotations

from pathlib import Path

from mlci.core import report as report_module
from mlci.core.report import ReportInput

OUT_DIR = Path(".mlci") / "out"


def write_outputs(report: ReportInput, out_dir: Path) -> dict[str, Path]:
    """report.md, report.html, gate.json, report.json and plots/*.png into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = out_dir / "plots"
    for old in plots.glob("*.png"):
        old.unlink()
    for figure in report.figures:
        for name, png in zip(report_module.png_names(figure), figure.pngs, strict=True):
            plots.mkdir(exist_ok=True)
            (plots / name).write_bytes(png)
    for index, section in enumerate(report.sections):
        if section.png is not None:
            plots.mkdir(exist_ok=True)
            (plots / report_module.section_png_name(index)).write_bytes(section.png)
    files = {
        "report.md": report_module.render_markdown(report),
        "report.html": report_module.render_html(report),
        "gate.json": report_module.dumps(report_module.render_json(report)),
        "report.json": report_module.dumps(report_module.to_document(report)),
    }
    written = {}
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written
