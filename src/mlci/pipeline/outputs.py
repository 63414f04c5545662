"""The report's files in .mlci/out/: report.md, report.html, gate.json, report.json, plots,
and a copy of the candidate's predictions (`keep_predictions`).

They are written before anything is published or promoted, so the report exists
whatever happens next.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.core.flipped_text import FILE
from mlci.core.report.document import png_names, section_png_name, to_document
from mlci.core.report.html import render_html
from mlci.core.report.json import dumps, render_json
from mlci.core.report.markdown import render_markdown
from mlci.core.report.model import ReportInput
from mlci.errors import ExternalError

if TYPE_CHECKING:
    from mlci.core.flipped import CsvTable

OUT_DIR = Path(".mlci") / "out"
PREDICTIONS = "predictions"  # .mlci/out/predictions.csv (.tsv, .jsonl, .ndjson, .parquet)
# Within the 100 MB that `mlci publish --from` reads of a whole artifact (mlci.pipeline.artifact).
MAX_PREDICTIONS_BYTES = 50_000_000


class ReportNotWritten(ExternalError):
    """The disk refused the report's files; `report` is the report that was not written,
    so the command can still print its verdict."""

    def __init__(self, message: str, report: ReportInput, out_dir: Path) -> None:
        super().__init__(message)
        self.report = report
        self.out_dir = out_dir


@dataclass
class FlippedCsv:
    """flipped.csv, every flipped row, for `out_dir`: `write` writes it (`report.add` calls
    it while the drawing worker finishes the PNGs, when the main thread would wait), and
    `write_outputs` takes the file, written then or by it now, or reports what refused it.
    `secrets`: the job's, masked in its text."""

    table: CsvTable
    out_dir: Path
    secrets: Sequence[str] = ()
    _done: Path | OSError | None = field(default=None, init=False, repr=False)

    def write(self) -> None:
        if self._done is not None:
            return
        from mlci.pipeline.flippedcsv import write_csv

        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._done = write_csv(self.table, self.out_dir / FILE, self.secrets)
        except OSError as exc:  # raised by write_outputs, with the report
            self._done = exc

    def path(self) -> Path:
        self.write()
        if isinstance(self._done, OSError):
            raise self._done
        assert self._done is not None
        return self._done


def write_outputs(
    report: ReportInput, out_dir: Path, *, flipped: FlippedCsv | None = None
) -> dict[str, Path]:
    """report.md, report.html, gate.json, report.json and plots/*.png into `out_dir`;
    with `flipped`, flipped.csv too (and a report without flipped examples removes it).

    A disk that refuses (full, read-only, not a folder) raises ReportNotWritten (exit 3).
    """
    try:
        written = _write(report, out_dir)
        if flipped is not None:
            written[FILE] = flipped.path()
        elif report.flipped is None:  # a previous run's file would pass for this one's
            (out_dir / FILE).unlink(missing_ok=True)
        return written
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ReportNotWritten(
            f"could not write the report into {out_dir}: {exc.strerror or exc}{where}; "
            "free space on that disk, or make it a folder mlci can write",
            report,
            out_dir,
        ) from None


def _write(report: ReportInput, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = out_dir / "plots"
    for old in plots.glob("*.png"):
        old.unlink()
    for figure in report.figures:
        for name, png in zip(png_names(figure), figure.pngs, strict=True):
            plots.mkdir(exist_ok=True)
            (plots / name).write_bytes(png)
    for index, section in enumerate(report.sections):
        if section.png is not None:
            plots.mkdir(exist_ok=True)
            (plots / section_png_name(index)).write_bytes(section.png)
    files = {
        "report.md": render_markdown(report),
        "report.html": render_html(report),
        "gate.json": dumps(render_json(report)),
        "report.json": dumps(to_document(report)),
    }
    written = {}
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written


def keep_predictions(predictions: Path | None, out_dir: Path) -> tuple[str, ...]:
    """A copy of the candidate's predictions file in `out_dir` (`predictions` and its
    extension), byte for byte, so that `mlci publish --from` judges the artifact from its
    predictions; a note when the file is too large to go with it, or cannot be copied."""
    try:
        for old in out_dir.glob(f"{PREDICTIONS}.*"):
            if predictions is None or not old.samefile(predictions):
                old.unlink()
        if predictions is None:
            return ()
        size = predictions.stat().st_size
        if size > MAX_PREDICTIONS_BYTES:
            return (
                f"The predictions ({size:,} bytes) are not in {OUT_DIR}: over the "
                f"{MAX_PREDICTIONS_BYTES:,} bytes mlci copies there, so `mlci publish --from` "
                "judges this report's metrics without them (no intervals or figures).",
            )
        copy = out_dir / f"{PREDICTIONS}{predictions.suffix.lower()}"
        if not (copy.exists() and copy.samefile(predictions)):  # the training wrote it there
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(predictions, copy)
    except OSError as exc:
        return (f"The predictions could not be copied into {out_dir}: {exc.strerror or exc}.",)
    return ()
