"""flipped.csv in .mlci/out/: every flipped row (`core/flipped.py`'s `CsvTable`), the job's
secrets masked in its text.

Array code (numpy, and pyarrow where it is installed): `outputs.write_outputs` imports it
only when rows flipped, so a report without predictions does without numpy.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlci.core.flipped import CsvTable
from mlci.core.predictions import Array
from mlci.core.redact import mask_text


def write_csv(table: CsvTable, path: Path, secrets: Sequence[str]) -> Path:
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
