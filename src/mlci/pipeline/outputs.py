"""The report's files in .mlci/out/: report.md, report.html, gate.json, report.json, plots,
and a copy of the candidate's predictions (`keep_predictions`).

They are written before anything is published or promoted, so the report exists
whatever happens next.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlci.core.flipped import FILE, CsvTable
from mlci.core.predictions import Array
from mlci.core.redact import mask_text
from mlci.core.report.document import png_names, section_png_name, to_document
from mlci.core.report.html import render_html
from mlci.core.report.json import dumps, render_json
from mlci.core.report.markdown import render_markdown
from mlci.core.report.model import ReportInput
from mlci.errors import ExternalError

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


def write_outputs(
    report: ReportInput,
    out_dir: Path,
    *,
    flipped: CsvTable | None = None,
    secrets: Sequence[str] = (),
) -> dict[str, Path]:
    """report.md, report.html, gate.json, report.json and plots/*.png into `out_dir`;
    with `flipped`, flipped.csv too (and a report without flipped examples removes it).

    A disk that refuses (full, read-only, not a folder) raises ReportNotWritten (exit 3).
    """
    try:
        written = _write(report, out_dir)
        if flipped is not None:
            written[FILE] = _write_csv(flipped, out_dir / FILE, secrets)
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


def _write_csv(table: CsvTable, path: Path, secrets: Sequence[str]) -> Path:
    """The table as CSV, the job's secrets masked in its text (ids and columns of the
    predictions file come from the pull request's code). Text cells are quoted, numbers
    not. Through pyarrow where it is installed: five times faster than the csv module
    (a gate on a million rows may flip 400,000)."""
    header = [mask_text(name, secrets) for name in table.header]
    columns = [_csv_column(column, secrets) for column in table.columns]
    if _write_with_arrow(header, columns, path):
        return path
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(header)
        writer.writerows(zip(*(column.tolist() for column in columns), strict=True))
    return path


def _csv_column(column: Array, secrets: Sequence[str]) -> Array:
    """`column` as both writers write it: floats as float64, booleans as true/false, text
    with the job's secrets masked."""
    if column.dtype.kind == "f":
        return column.astype(np.float64)  # float32 too: the digits Python prints for it
    if column.dtype.kind == "b":  # as text, the same in both writers
        return np.where(column, "true", "false")
    if not secrets or column.dtype.kind not in "UO":
        return column
    cells = [mask_text(c, secrets) if isinstance(c, str) else c for c in column.tolist()]
    return np.array(cells, dtype=column.dtype if column.dtype.kind == "O" else str)


def _write_with_arrow(header: list[str], columns: list[Array], path: Path) -> bool:
    """Whether pyarrow wrote the CSV (not when it is missing or a column is neither numbers
    nor text). The arrays are made from their buffers: pa.array would import pandas
    (a fifth of a second) to ask whether they are pandas objects."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.csv as arrow_csv  # type: ignore[import-untyped]
    except ImportError:
        return False
    arrays = []
    for column in columns:
        if column.dtype.kind in "iuf":
            numbers = np.ascontiguousarray(column)
            kind = pa.from_numpy_dtype(numbers.dtype)
            arrays.append(pa.Array.from_buffers(kind, len(numbers), [None, pa.py_buffer(numbers)]))
        elif column.dtype.kind == "U":
            offsets, data = _utf8(column)
            kind = pa.large_string()  # 64-bit offsets: any size
            buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
            arrays.append(pa.Array.from_buffers(kind, len(column), buffers))
        else:  # objects (an id column of mixed types): the csv module writes them
            return False
    arrow_csv.write_csv(pa.Table.from_arrays(arrays, names=header), path)
    return True


def _utf8(column: Array) -> tuple[Array, bytes | Array]:
    """A text column as Arrow's string buffers: each cell's end offset (after a 0) and
    the UTF-8 bytes. ASCII text (labels, "broken"/"fixed") straight from numpy's 4-byte
    characters, without a Python string per cell; other text cell by cell."""
    width = column.dtype.itemsize // 4
    offsets = np.zeros(len(column) + 1, np.int64)
    characters = np.ascontiguousarray(column).view(np.uint32).reshape(len(column), width)
    if width and int(characters.max(initial=0)) < 128:
        filled = characters != 0
        # numpy pads with NULs at the end only: a cell ends after its last non-NUL
        lengths = np.where(filled.any(axis=1), width - np.argmax(filled[:, ::-1], axis=1), 0)
        np.cumsum(lengths, out=offsets[1:])
        kept = np.arange(width) < lengths[:, None]
        return offsets, characters[kept].astype(np.uint8)
    encoded = [cell.encode("utf-8") for cell in column.tolist()]
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    return offsets, b"".join(encoded)
