"""Read a predictions file: the true values, the model's predictions, and class probabilities.

One row per evaluated example, in CSV, TSV, JSON Lines (`.jsonl`, `.ndjson`) or Parquet:

- `y_true`, `y_pred`: labels (classification) or numbers (regression);
- `id` (optional): pairs the candidate's rows with the baseline's (see `align`);
- classification only, optional: one probability column per class named `p_<label>` or
  `proba_<label>` (`p_0` ... `p_9`, `p_cat`, `p_dog`), or for two classes a single `score`
  column holding the probability of the positive class (the larger label).

Labels are integers when every y_true and y_pred value is one (`3`, `3.0` or `"3"`), text
otherwise. Rows are counted from 1, not counting a header. Numbers stay in numpy arrays and
pyarrow (used when installed; required for Parquet) reads the columns, so ten million rows
fit in memory; without pyarrow the csv and json modules read the file in chunks. When
pyarrow refuses a file, it is read again with those modules, which say which row is wrong.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import re
import stat
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from mlci.core.filetypes import COMPRESSED, predictions_suffix
from mlci.core.predictions import Predictions, present, take
from mlci.core.stats import MAX_CLASSES
from mlci.errors import MetricsError, UsageError

Task = Literal["classification", "regression"]
Array = npt.NDArray[Any]
_Row = TypeVar("_Row")

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
SCORE_PREFIXES = ("p_", "proba_")
# Probabilities written with 4 decimals still sum to 1 within this, for up to 20 classes.
SUM_TOLERANCE = 1e-3
_CHUNK_ROWS = 100_000
# read_batches: rows per batch, about 25 MB for 10 classes: numpy's temporaries of a batch
# this size are reused from the heap, where a million rows' are mapped and faulted in afresh
# (at 1M rows, page faults took a third of the CPU time)
BATCH_ROWS = 1 << 18
WHOLE_GROUP_ROWS = 4_000_000  # Parquet row groups up to this size are read whole, then cut
_BLOCK_BYTES = 64 << 20  # a CSV block read at once: about a million rows of 10 classes
_LABELS = ("y_true", "y_pred")


@dataclass(frozen=True)
class _Table:
    """The columns mlci reads from a file, and the names of all its columns."""

    found: tuple[str, ...]
    columns: dict[str, Array]
    rows: int


def load_predictions(
    path: Path,
    *,
    task: Task,
    id_column: str = "id",
    extra_columns: int = 0,
    columns: tuple[str, ...] = (),
) -> Predictions:
    """Read and check a predictions file; errors name the file, the problem and the fix.

    `columns` are other columns to read as they are (evaluate.slices), into `extra`; a
    file may hold more columns than mlci reads (a segment, a country): they are ignored.

    `id_column` names the column that pairs rows with the baseline's (evaluate.id_column).
    The first `extra_columns` other columns (a segment, a country: neither labels nor
    probabilities) are kept as text in `Predictions.extra`, out of the metrics.
    """
    spec = _Spec(task, id_column, extra_columns, columns)
    key = _ahead_key(path, spec)
    started = _AHEAD.pop(key[0], None) if key is not None else None
    if started is not None and started[0] == key:
        return started[1].result()  # raises what reading raised
    return _load(path, spec)


def read_ahead(
    path: Path,
    *,
    task: Task,
    id_column: str = "id",
    then: Callable[[Predictions], None] | None = None,
) -> None:
    """Start reading `path` on a thread, for the next `load_predictions` of the same file
    with the same arguments to take: the baseline's predictions while the candidate's
    metrics are computed (pyarrow and numpy let go of the GIL for most of a read). A file
    changed since, or asked for with other arguments, is read again (the read ahead let
    go); one that is not a regular file is not read ahead. `then` is called on that
    thread with what was read, before `load_predictions` can take it (a file that could
    not be read: not called)."""
    key = _ahead_key(path, _Spec(task, id_column))
    if key is None:
        return
    from concurrent.futures import ThreadPoolExecutor

    reader = ThreadPoolExecutor(1, thread_name_prefix="mlci-read")
    _AHEAD[key[0]] = (key, reader.submit(_load_then, path, _Spec(task, id_column), then))
    reader.shutdown(wait=False)  # the thread ends with its read


def _load_then(path: Path, spec: _Spec, then: Callable[[Predictions], None] | None) -> Predictions:
    loaded = _load(path, spec)
    if then is not None:
        then(loaded)
    return loaded


def hand_on(path: Path, loaded: Predictions, *, task: Task, id_column: str = "id") -> None:
    """Have the next `load_predictions` of `path` with these arguments take `loaded`, read
    from it already, instead of reading it again (unless the file changed since): the
    baseline's predictions, read for its metrics, then read by the gate."""
    key = _ahead_key(path, _Spec(task, id_column))
    if key is not None:
        done: Future[Predictions] = Future()
        done.set_result(loaded)
        _AHEAD[key[0]] = (key, done)


# Reads started by read_ahead (or done: hand_on), by the file's resolved path: what
# identifies the file and the read (path, size, modification time, spec), and the read.
_AHEAD: dict[str, tuple[tuple[object, ...], Future[Predictions]]] = {}


def _ahead_key(path: Path, spec: _Spec) -> tuple[str, int, int, _Spec] | None:
    try:
        where = path.resolve()
        found = where.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return (str(where), found.st_size, found.st_mtime_ns, spec)


def _load(path: Path, spec: _Spec) -> Predictions:
    _tune_memory()
    source = str(path)
    fmt = _readable(path)
    try:
        table = _read(path, fmt, spec=spec, source=source)
    except UnicodeDecodeError:
        raise MetricsError(
            f"{source}: the file is not UTF-8 text; write the predictions file as UTF-8"
        ) from None
    return _build(table, spec=spec, source=source)


def read_batches(
    path: Path, *, task: Task, id_column: str = "id", batch_rows: int = BATCH_ROWS
) -> Iterator[Predictions]:
    """The file's rows in record batches (Parquet row groups, CSV blocks, JSON Lines chunks
    of at most about `batch_rows`), each checked as `load_predictions` checks a file, with
    row numbers counted from the file's start: memory does not grow with the rows.

    Each batch's `classes` are those it holds (with probability columns: all of them).
    """
    _tune_memory()
    spec = _Spec(task, id_column)
    source = str(path)
    fmt = _readable(path)
    done = 0
    try:
        for table in _blocks(path, fmt, spec=spec, source=source, rows=batch_rows):
            try:
                batch = _build(table, spec=spec, source=source)
            except MetricsError as exc:
                raise _at_row(exc, done) from None
            done += table.rows
            yield batch
    except UnicodeDecodeError:
        raise MetricsError(
            f"{source}: the file is not UTF-8 text; write the predictions file as UTF-8"
        ) from None
    if done == 0:
        raise _empty(source)


def estimate_rows(path: Path) -> int:
    """The file's rows: a Parquet file's count from its metadata; a text file's estimated
    from its size and its first rows' length (a compressed file taken as 4 times its size).
    Only decides between the exact and the summarized path: errors are left to the readers.
    """
    try:
        if format_for(path) == "parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            return int(pq.ParquetFile(path).metadata.num_rows)
        size = path.stat().st_size * (4 if path.suffix.lower() in COMPRESSED else 1)
        with _open(path, str(path)) as file:
            head = file.read(1 << 16)
    except Exception:  # any error, pyarrow's too: the reader reports it with its fix
        return 0
    lines = head.count("\n")
    return int(size // max(len(head.encode()) // max(lines, 1), 1))


def _readable(path: Path) -> str:
    fmt = format_for(path)
    if not path.is_file():
        raise MetricsError(
            f"{path}: predictions file not found; make the training write it, or fix "
            f"the path in mlci.yaml"
        )
    return fmt


def _at_row(exc: MetricsError, done: int) -> MetricsError:
    """A batch's error with its row numbers counted from the file's start."""
    message = re.sub(r"\brow (\d+)\b", lambda found: f"row {int(found[1]) + done}", exc.message)
    return MetricsError(message)


def format_for(path: Path) -> str:
    """`csv`, `tsv`, `jsonl` or `parquet`, from the file's extension."""
    fmt = FORMATS.get(predictions_suffix(path.suffixes))
    if fmt is None:
        known = ", ".join(FORMATS)
        raise MetricsError(
            f"{path}: unknown predictions file type {path.suffix or '(no extension)'!r}; "
            f"use one of {known}"
        )
    return fmt


def align(candidate: Predictions, baseline: Predictions) -> tuple[Predictions, Predictions]:
    """The two models' predictions on the same rows, in the same order.

    Rows are paired by `ids` when both files have an `id` column (the candidate's order is
    kept), else by position. y_true must then agree row by row. When one model's labels are
    integers and the other's text, both become text.

    The last pairing is kept while both its inputs live, and asked again, given again (the
    same objects): the gate pairs the rows on the read-ahead's thread, to start drawing,
    and again when it judges them (by id, a second at a million rows).
    """
    known = _paired(candidate, baseline)
    if known is not None:
        return known
    aligned, realigned = _same_label_type(candidate, baseline)
    by_id = aligned.ids is not None and realigned.ids is not None
    if by_id:
        realigned = _reorder_by_id(aligned, realigned)
    else:
        _check_same_length(aligned, realigned)
    _check_same_truth(aligned, realigned, by_id=by_id)
    # Not the inputs themselves: the weak references let go of the pairing with them.
    kept = (
        None if aligned is candidate else aligned,
        None if realigned is baseline else realigned,
    )
    forget: Callable[[object], None] = lambda _: _PAIRED.clear()  # noqa: E731
    _PAIRED[:] = [(weakref.ref(candidate, forget), weakref.ref(baseline, forget), kept)]
    return aligned, realigned


def _paired(
    candidate: Predictions, baseline: Predictions
) -> tuple[Predictions, Predictions] | None:
    """What `align` gave for these two, if it was its last pairing."""
    for candidate_ref, baseline_ref, paired in _PAIRED:
        if candidate_ref() is candidate and baseline_ref() is baseline:
            return (
                candidate if paired[0] is None else paired[0],
                baseline if paired[1] is None else paired[1],
            )
    return None


# align's last pairing: weak references to its inputs, and what it gave for each (None:
# the input itself).
_PAIRED: list[
    tuple[
        weakref.ref[Predictions],
        weakref.ref[Predictions],
        tuple[Predictions | None, Predictions | None],
    ]
] = []


@dataclass(frozen=True)
class Joined:
    """The rows both models predicted, paired; and the rows only one of them has."""

    candidate: Predictions
    baseline: Predictions
    by_id: bool  # paired by the id column; False: by row order
    only_candidate: int = 0
    only_baseline: int = 0


def join(candidate: Predictions, baseline: Predictions) -> Joined:
    """Like `align`, but an id found on one side only leaves its row out, counted.

    Without ids on both sides, rows pair by position and the lengths must agree.
    Raises MetricsError when they cannot be paired (lengths, repeated ids, y_true).
    Where `align` paired the same two (every row, as the gate does before the flipped
    rows are found), its pairing is taken: by id, pairing again took a second a million.
    """
    known = _paired(candidate, baseline)
    if known is not None:
        first, second = known
        return Joined(first, second, by_id=first.ids is not None and second.ids is not None)
    candidate, baseline = _same_label_type(candidate, baseline)
    by_id = candidate.ids is not None and baseline.ids is not None
    only_candidate = only_baseline = 0
    if by_id:
        found, position = _matches(candidate, baseline)
        kept = np.flatnonzero(found)
        only_candidate = len(candidate) - len(kept)
        only_baseline = len(baseline) - len(kept)
        candidate, baseline = take(candidate, kept), take(baseline, position[kept])
    else:
        _check_same_length(candidate, baseline)
    _check_same_truth(candidate, baseline, by_id=by_id)
    return Joined(candidate, baseline, by_id, only_candidate, only_baseline)


# -- Reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """Which columns to read: the labels, the id, the scores and a few others."""

    task: Task
    id_column: str = "id"
    extra: int = 0  # how many other columns to keep as text, in the file's order
    columns: tuple[str, ...] = ()  # columns to read as they are (evaluate.slices)

    def wanted(self, names: Iterable[str]) -> list[str]:
        names = list(names)
        return [name for name in names if self.used(name)] + self.others(names)

    def used(self, name: str) -> bool:
        if name in (*_LABELS, self.id_column) or name in self.columns:
            return True
        return self.task == "classification" and _is_score(name)

    def others(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name and not self.used(name)][: self.extra]


def _is_score(name: str) -> bool:
    return name == "score" or name.startswith(SCORE_PREFIXES)


def _is_numeric(name: str, task: Task) -> bool:
    if task == "regression":
        return name in _LABELS
    return _is_score(name)


def _blocks(path: Path, fmt: str, *, spec: _Spec, source: str, rows: int) -> Iterator[_Table]:
    if fmt == "parquet":
        return _parquet_blocks(path, spec=spec, source=source, rows=rows)
    if fmt == "jsonl":
        return _jsonl_blocks(path, spec=spec, source=source, rows=rows)
    delimiter = "," if fmt == "csv" else "\t"
    return _delimited_blocks(path, delimiter, spec=spec, source=source)


def _parquet_blocks(path: Path, *, spec: _Spec, source: str, rows: int) -> Iterator[_Table]:
    pa = _arrow()
    if pa is None:
        raise _needs_pyarrow(source)
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        names = tuple(file.schema_arrow.names)
        wanted = spec.wanted(names)
        for table in _row_groups(file, wanted, rows):
            yield _from_arrow(table, found=names, source=source)
    except (pa.ArrowException, OSError) as exc:
        raise MetricsError(f"{source}: cannot read the file as Parquet ({exc})") from None


def _row_groups(file: Any, columns: list[str], rows: int) -> Iterator[Any]:
    """The file's tables of at most `rows` rows, a row group read at a time: pyarrow 25's
    iter_batches keeps what it decoded (60 MB per million rows of ten classes), so it
    serves only files whose row groups are larger than WHOLE_GROUP_ROWS and four batches."""
    import pyarrow as pa

    metadata = file.metadata
    largest = max(
        (metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)),
        default=0,
    )
    if largest > max(4 * rows, WHOLE_GROUP_ROWS):
        for batch in file.iter_batches(batch_size=rows, columns=columns):
            yield pa.Table.from_batches([batch])
        return
    for index in range(metadata.num_row_groups):
        group = file.read_row_group(index, columns=columns)
        for start in range(0, group.num_rows, rows):
            yield group.slice(start, rows)


def _delimited_blocks(path: Path, delimiter: str, *, spec: _Spec, source: str) -> Iterator[_Table]:
    header = _csv_header(path, delimiter, source)
    wanted = spec.wanted(header)

    def options() -> dict[str, Any]:
        return _csv_options(delimiter, header, wanted, spec, block_size=_BLOCK_BYTES)

    return _arrow_first(
        lambda: _arrow_csv_blocks(path, options(), header, source),
        lambda: _python_csv_blocks(path, delimiter, wanted, spec=spec, source=source),
    )


def _jsonl_blocks(path: Path, *, spec: _Spec, source: str, rows: int) -> Iterator[_Table]:
    return _arrow_first(
        lambda: _arrow_jsonl_blocks(path, spec=spec, source=source),
        lambda: _python_jsonl_blocks(path, spec=spec, source=source, rows=rows),
    )


def _arrow_first(
    arrow: Callable[[], Iterator[_Table]], python: Callable[[], Iterator[_Table]]
) -> Iterator[_Table]:
    """pyarrow's streaming reader's tables; from the first block it refuses on, the csv or
    json module's reader (from the file's start, the rows read already skipped), which
    says which row is wrong."""
    pa = _arrow()
    done = 0
    if pa is not None:
        try:
            for table in arrow():
                yield table
                done += table.rows
            return
        except pa.ArrowInvalid:
            pass
    for block in python():
        skip, done = min(done, block.rows), done - min(done, block.rows)
        if skip < block.rows:
            columns = {name: values[skip:] for name, values in block.columns.items()}
            yield _Table(block.found, columns, block.rows - skip)


def _arrow_csv_blocks(
    path: Path, options: dict[str, Any], header: tuple[str, ...], source: str
) -> Iterator[_Table]:
    import pyarrow as pa
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    for batch in pacsv.open_csv(str(path), **options):
        yield _from_arrow(pa.Table.from_batches([batch]), found=header, source=source)


def _csv_options(
    delimiter: str,
    header: tuple[str, ...],
    wanted: list[str],
    spec: _Spec,
    block_size: int | None = None,
) -> dict[str, Any]:
    """pyarrow.csv's options: the header's names, the columns mlci reads and their types."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {name: pa.float64() if _is_numeric(name, spec.task) else pa.string() for name in wanted}
    return {
        "read_options": pacsv.ReadOptions(
            column_names=list(header), skip_rows=1, block_size=block_size
        ),
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(column_types=types, include_columns=wanted),
    }


def _arrow_jsonl_blocks(path: Path, *, spec: _Spec, source: str) -> Iterator[_Table]:
    import pyarrow as pa
    import pyarrow.json as pajson  # type: ignore[import-untyped]

    try:
        reader = pajson.open_json(
            str(path), read_options=pajson.ReadOptions(block_size=_BLOCK_BYTES)
        )
    except OSError as exc:
        raise MetricsError(f"{source}: cannot read the predictions file ({exc})") from None
    found = tuple(reader.schema.names)
    wanted = spec.wanted(found)
    for batch in reader:
        yield _from_arrow(pa.Table.from_batches([batch]).select(wanted), found=found, source=source)


def _read(path: Path, fmt: str, *, spec: _Spec, source: str) -> _Table:
    if fmt == "parquet":
        return _read_parquet(path, spec=spec, source=source)
    if fmt == "jsonl":
        return _read_jsonl(path, spec=spec, source=source)
    return _read_delimited(path, "," if fmt == "csv" else "\t", spec=spec, source=source)


def _arrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def _tune_memory() -> None:
    """How the arrays of a read are allocated, set once per process before the first
    read; ARROW_DEFAULT_MEMORY_POOL and NUMPY_MADVISE_HUGEPAGE, when set, still decide.

    pyarrow's buffers come from jemalloc, not mimalloc (its default on Linux): measured
    on 1M rows of 10 classes, numpy's first copy out of mimalloc's buffers stalled on the
    kernel compacting memory for huge pages (0.1 s per file), and jemalloc gives memory
    back sooner (the gate's peak 615 -> 560 MB); at once, not after pyarrow's second of
    decay, so that a file's table, freed once its columns are copied, is not held while
    the next one's metrics are computed (the gate's process 480-507 -> 450-469 MB). A
    pyarrow built without jemalloc (Windows) keeps its default.

    numpy's large arrays get the kernel's 4 KB pages, not the 2 MB huge pages numpy asks
    for (madvise): a gate allocates and frees arrays of a million rows by the dozen, and
    each huge page is zeroed whole when first touched. Measured on this VM: the first
    model's AUC 0.51 -> 0.14 s of system time; a paired gate 2.50 -> 2.33 s (medians of
    10 runs), the user time unchanged.

    glibc's malloc keeps freed arrays for the next ones (`_keep_freed_memory`), where
    MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES do not say otherwise.
    """
    global _TUNED
    if _TUNED:
        return
    _TUNED = True
    if not any(name in os.environ for name in _MALLOC_SETTINGS):
        _keep_freed_memory()
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
        core = getattr(np, "_core", None) or getattr(np, "core", None)  # numpy 2, 1
        set_huge = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
        if set_huge is not None:  # numpy's own switch, which that variable sets at import
            set_huge(False)
    pa = _arrow()
    if pa is None or os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)


_TUNED = False
# glibc's own settings of what `_keep_freed_memory` sets: a user's, when set, stand.
_MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for the threshold it adapts
_TRIM_THRESHOLD = 64 << 20


def _keep_freed_memory() -> None:
    """glibc's malloc (Linux): arrays under 32 MB from the heap, and up to 64 MB of freed
    heap kept for the next ones, instead of each array of a million rows mapped afresh
    from the kernel and unmapped when freed (and its pages zeroed again on first touch).
    By default glibc adapts both limits to what was freed last, and with arrays of many
    sizes it mapped and unmapped them all along: a paired gate of 1M rows took 75,000 to
    95,000 page faults per model's AUC (0.1 s of system time). Measured on that gate
    (scale.py, six alternating runs each): 2.31 -> 2.15 s, 4.04 -> 3.84 s of CPU, 10 MB
    more at the peak. Setting only one of the two limits turns glibc's adapting off for
    both, and is slower than neither. Nothing on other C libraries."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return
    except (AttributeError, ValueError, OSError):  # not glibc, or no confstr (Windows)
        return
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def _read_delimited(path: Path, delimiter: str, *, spec: _Spec, source: str) -> _Table:
    header = _csv_header(path, delimiter, source)
    wanted = spec.wanted(header)
    pa = _arrow()
    if pa is not None:
        try:
            return _arrow_csv(path, delimiter, header, wanted, spec=spec, source=source)
        except pa.ArrowInvalid:
            pass  # the csv module's reader below says which row is wrong
    return _python_csv(path, delimiter, wanted, spec=spec, source=source)


def _csv_header(path: Path, delimiter: str, source: str) -> tuple[str, ...]:
    with _open(path, source) as file:
        rows = (row for row in csv.reader(file, delimiter=delimiter) if row)
        header = next(rows, None)
    if header is None:
        raise _empty(source)
    names = tuple(name.strip() for name in header)
    duplicated = sorted({name for name in names if names.count(name) > 1 and name})
    if duplicated:
        raise MetricsError(
            f"{source}: the header names {', '.join(duplicated)} more than once; "
            f"give each column a distinct name"
        )
    return names


def _open(path: Path, source: str) -> Any:
    """The file as text; a .gz or .zst file decompressed as it is read."""
    try:
        if path.suffix.lower() not in COMPRESSED:
            return path.open(newline="", encoding="utf-8")
        pa = _arrow()
        if pa is None and path.suffix.lower() == ".gz":
            return gzip.open(path, "rt", newline="", encoding="utf-8")
        if pa is None:
            raise UsageError(
                f"{source}: reading a .zst file needs pyarrow, which is not installed; "
                f"run `pip install pyarrow`"
            )
        stream = pa.input_stream(str(path), compression="detect")
        return io.TextIOWrapper(stream, encoding="utf-8", newline="")
    except OSError as exc:
        raise MetricsError(f"{source}: cannot read the predictions file ({exc})") from None


def _arrow_csv(
    path: Path,
    delimiter: str,
    header: tuple[str, ...],
    wanted: list[str],
    *,
    spec: _Spec,
    source: str,
) -> _Table:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(str(path), **_csv_options(delimiter, header, wanted, spec))
    return _from_arrow(table, found=header, source=source)


def _python_csv(
    path: Path, delimiter: str, wanted: list[str], *, spec: _Spec, source: str
) -> _Table:
    return _joined(_python_csv_blocks(path, delimiter, wanted, spec=spec, source=source), wanted)


def _python_csv_blocks(
    path: Path, delimiter: str, wanted: list[str], *, spec: _Spec, source: str
) -> Iterator[_Table]:
    """The file's rows, _CHUNK_ROWS at a time, checked with row numbers from the start."""
    with _open(path, source) as file:
        rows = (row for row in csv.reader(file, delimiter=delimiter) if row)
        header = [name.strip() for name in next(rows)]
        positions = {name: header.index(name) for name in wanted}
        count = 0
        for block in _batched(rows, _CHUNK_ROWS):
            for offset, row in enumerate(block, start=count + 1):
                if len(row) != len(header):
                    raise MetricsError(
                        f"{source}: row {offset} has {_count(len(row), 'value')} but the header "
                        f"has {len(header)} columns ({', '.join(header)}); write one value per "
                        f"column in every row"
                    )
            columns = {
                name: _cells(
                    [row[position] for row in block],
                    name,
                    spec.task,
                    first=count + 1,
                    source=source,
                )
                for name, position in positions.items()
            }
            yield _Table(tuple(header), columns, len(block))
            count += len(block)


def _joined(blocks: Iterable[_Table], wanted: list[str]) -> _Table:
    """One table of all the blocks' rows."""
    parts: dict[str, list[Array]] = {name: [] for name in wanted}
    found: tuple[str, ...] = ()
    count = 0
    for block in blocks:
        found = block.found
        for name in wanted:
            parts[name].append(block.columns[name])
        count += block.rows
    return _Table(found, _concatenated(parts, wanted), count)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _cells(cells: list[Any], name: str, task: Task, *, first: int, source: str) -> Array:
    if _is_numeric(name, task):
        return _floats(cells, name, first=first, source=source)
    return np.array([_text(cell) for cell in cells], dtype=str)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _floats(cells: list[Any], name: str, *, first: int, source: str) -> Array:
    try:
        return np.array(cells, dtype=np.float64)
    except (ValueError, TypeError):
        pass
    values = []
    for row, cell in enumerate(cells, start=first):
        try:
            values.append(float("nan") if cell is None else float(cell))
        except (ValueError, TypeError):
            raise _not_a_number(source, name, row, cell) from None
    return np.array(values, dtype=np.float64)


def _batched(rows: Iterable[_Row], size: int) -> Iterator[list[_Row]]:
    iterator = iter(rows)
    while block := list(islice(iterator, size)):
        yield block


def _concatenated(parts: dict[str, list[Array]], names: Iterable[str]) -> dict[str, Array]:
    return {name: np.concatenate(parts[name]) if parts[name] else np.array([]) for name in names}


def _read_jsonl(path: Path, *, spec: _Spec, source: str) -> _Table:
    pa = _arrow()
    if pa is not None:
        import pyarrow.json as pajson

        try:
            table = pajson.read_json(str(path))
        except pa.ArrowInvalid:
            pass  # the json module's reader below says which line is wrong
        except OSError as exc:
            raise MetricsError(f"{source}: cannot read the predictions file ({exc})") from None
        else:
            wanted = spec.wanted(table.column_names)
            found = tuple(table.column_names)
            return _from_arrow(table.select(wanted), found=found, source=source)
    return _python_jsonl(path, spec=spec, source=source)


def _python_jsonl(path: Path, *, spec: _Spec, source: str) -> _Table:
    blocks = _python_jsonl_blocks(path, spec=spec, source=source)
    first = next(blocks)
    wanted = list(first.columns)
    return _joined(_chain(first, blocks), wanted)


def _python_jsonl_blocks(
    path: Path, *, spec: _Spec, source: str, rows: int = _CHUNK_ROWS
) -> Iterator[_Table]:
    """The file's records, _CHUNK_ROWS at a time, checked with row numbers from the start."""
    with _open(path, source) as file:
        records = _json_records(file, source)
        first = next(records, None)
        if first is None:
            raise _empty(source)
        found = tuple(first)
        wanted = spec.wanted(found)
        count = 0
        for block in _batched(_chain(first, records), rows):
            columns = {
                name: _cells(
                    [record.get(name) for record in block],
                    name,
                    spec.task,
                    first=count + 1,
                    source=source,
                )
                for name in wanted
            }
            yield _Table(found, columns, len(block))
            count += len(block)


def _json_records(lines: Iterable[str], source: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MetricsError(
                f"{source}: line {number} is not valid JSON ({exc.msg}); write one JSON "
                f'object per line, e.g. {{"y_true": 1, "y_pred": 0}}'
            ) from None
        if not isinstance(record, dict):
            raise MetricsError(
                f"{source}: line {number} is a JSON {type(record).__name__}, not an object; "
                f'write one object per line, e.g. {{"y_true": 1, "y_pred": 0}}'
            )
        yield record


def _chain(first: _Row, rest: Iterator[_Row]) -> Iterator[_Row]:
    yield first
    yield from rest


def _read_parquet(path: Path, *, spec: _Spec, source: str) -> _Table:
    pa = _arrow()
    if pa is None:
        raise _needs_pyarrow(source)
    import pyarrow.parquet as pq

    try:
        # ParquetFile, not read_table: read_table imports pyarrow.dataset, and that pandas.
        parquet = pq.ParquetFile(path)
        names = tuple(parquet.schema_arrow.names)
        table = parquet.read(columns=spec.wanted(names))
    except (pa.ArrowException, OSError) as exc:
        raise MetricsError(f"{source}: cannot read the file as Parquet ({exc})") from None
    return _from_arrow(table, found=names, source=source)


def _needs_pyarrow(source: str) -> UsageError:
    return UsageError(
        f"{source}: reading Parquet needs pyarrow, which is not installed; "
        f"run `pip install pyarrow`"
    )


def _from_arrow(table: Any, *, found: tuple[str, ...], source: str) -> _Table:
    columns = {
        name: _arrow_column(table.column(index), name, source)
        for index, name in enumerate(table.column_names)
    }
    return _Table(found, columns, table.num_rows)


def _arrow_column(column: Any, name: str, source: str) -> Array:
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan)
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if column.null_count:
            return np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
        return _arrow_numbers(column, np.int64)
    if kind == pa.float32():  # probabilities stay float32: half the memory, sorted faster
        return _arrow_numbers(column, np.float32)
    if pa.types.is_floating(kind):  # a cast, even to its own type, imports pyarrow.compute
        wide = column if kind == pa.float64() else column.cast(pa.float64())
        return _arrow_numbers(wide, np.float64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _arrow_text(column)
    raise MetricsError(f"{source}: column {name} holds {kind} values; write numbers or text in it")


def _arrow_numbers(column: Any, dtype: type[np.generic]) -> Array:
    """A column (or array) of numbers as `dtype`, read from its chunks' buffers:
    pyarrow's own to_numpy imports pandas (a quarter of a second), and needs not be asked."""
    import pyarrow as pa

    kind = column.type
    if column.null_count or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return np.asarray(column.to_numpy(), dtype=dtype)  # nulls as NaN; booleans unpacked
    unsigned = "u" if pa.types.is_unsigned_integer(kind) else ""
    width = np.dtype(
        f"float{kind.bit_width}" if pa.types.is_floating(kind) else f"{unsigned}int{kind.bit_width}"
    )
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [
        np.frombuffer(chunk.buffers()[1], width, len(chunk), chunk.offset * width.itemsize)
        for chunk in chunks
    ]
    whole = parts[0] if len(parts) == 1 else np.concatenate(parts or [np.empty(0, width)])
    return whole.astype(dtype, copy=False)  # one chunk: its buffer, read-only, not copied


# Up to this many rows, text columns are converted value by value: pyarrow.compute, which
# converts each distinct value once, takes 30 ms to import (a small gate's whole reading).
_TEXT_ONE_BY_ONE_ROWS = 10_000


def _arrow_text(column: Any) -> Array:
    """Text as a numpy str array (a null as ""): a small column value by value, a larger
    one converting each distinct value once."""
    if len(column) <= _TEXT_ONE_BY_ONE_ROWS:
        return np.asarray(["" if value is None else value for value in column.to_pylist()], str)
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    # One chunk, so one dictionary: per chunk, pyarrow repeats every value seen so far.
    column = column.combine_chunks()
    if column.null_count:  # only then: fill_null imports pandas
        column = column.fill_null("")
    if len(set(column.slice(0, _DISTINCT_SAMPLE).to_pylist())) == _DISTINCT_SAMPLE:
        text = _ascii_text(column)  # distinct values at first (ids): straight from the bytes
        if text is not None:
            return text
    encoded = pc.dictionary_encode(column)
    distinct = np.asarray(encoded.dictionary.to_pylist(), dtype=str)
    return np.asarray(distinct[_arrow_numbers(encoded.indices, np.intp)])


_DISTINCT_SAMPLE = 64  # a text column whose first values are all distinct: an id column


def _ascii_text(column: Any) -> Array | None:
    """A string column (one chunk, no nulls) of ASCII text as a numpy str array, each
    character put in place from Arrow's buffers, without a Python string per value: an id
    column of a million values in a third of the dictionary's time (each value distinct,
    every one of them made a Python string). None for other text."""
    rows = len(column)
    wide = column.type == _arrow().large_string()
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(
        offsets_buffer, np.int64 if wide else np.int32, count=column.offset + rows + 1
    )[column.offset :].astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, np.uint8, count=end) if end else np.zeros(0, np.uint8)
    characters = data[start:end]
    if characters.size and int(characters.max()) >= 128:
        return None
    lengths = np.diff(offsets)
    width = max(int(lengths.max(initial=0)), 1)
    text = np.zeros(rows * width, np.uint32)  # numpy's str: 4 bytes a character, NUL-padded
    # Each character's place: its value's row times the width, plus its place in the value.
    small = np.int32 if max(end, rows * width) < 2**31 else np.int64  # half the memory
    places = np.arange(start, end, dtype=small)
    places += np.repeat(
        (np.arange(rows, dtype=small) * width - offsets[:-1]).astype(small), lengths
    )
    text[places] = characters
    return text.view(f"<U{width}")


# -- Checking and building ---------------------------------------------------------------


def _build(table: _Table, *, spec: _Spec, source: str) -> Predictions:
    task = spec.task
    if table.rows == 0:
        raise _empty(source)
    for name in _LABELS:
        if name not in table.columns:
            raise _missing_column(source, name, table.found, task)
    columns = table.columns
    name = spec.id_column
    ids = _ids(columns[name], name, source) if name in columns else None
    for name in spec.columns:
        if name not in columns:
            shown = ", ".join(table.found)
            raise MetricsError(
                f"{source}: no {name} column for evaluate.slices (columns found: {shown}); "
                f"write it in the predictions file, or remove it from evaluate.slices"
            )
    extra = {name: columns[name] for name in spec.columns}  # as read: slices bin them
    extra |= {name: _extra(columns[name]) for name in spec.others(table.found) if name in columns}
    if task == "regression":
        y_true = _numbers(columns["y_true"], "y_true", source)
        y_pred = _numbers(columns["y_pred"], "y_pred", source)
        return Predictions(y_true, y_pred, None, (), ids, source, extra)
    y_true, y_pred = _label_pair(columns["y_true"], columns["y_pred"], source)
    scores, classes = _scores(columns, y_true, y_pred, source)
    return Predictions(y_true, y_pred, scores, classes, ids, source, extra)


def _extra(values: Array) -> Array:
    """A column kept for people to read, as text (NaN, a missing number, as empty)."""
    if values.dtype.kind == "f":
        return np.where(np.isnan(values), "", values.astype(str))
    return values.astype(str)


def _missing_column(source: str, name: str, found: tuple[str, ...], task: Task) -> MetricsError:
    shown = ", ".join(found) if found else "none"
    what = "true values" if task == "regression" else "true labels"
    return MetricsError(
        f"{source}: no {name} column (columns found: {shown}); write the {what} as y_true "
        f"and the model's predictions as y_pred"
    )


def _empty(source: str) -> MetricsError:
    return MetricsError(
        f"{source}: the file has no predictions; write a header with y_true and y_pred and "
        f"one row per evaluated example"
    )


def _not_a_number(source: str, name: str, row: int, value: object) -> MetricsError:
    if value is None or (isinstance(value, str) and not value.strip()):
        described = "empty"
    elif isinstance(value, float) and np.isnan(value):
        described = "empty or NaN"
    else:
        described = f"{value!r}, not a number"
    return MetricsError(
        f"{source}: {name} in row {row} is {described}; write a finite number in every "
        f"row (drop or fill in the rows the model could not predict)"
    )


def _numbers(values: Array, name: str, source: str, *, keep_float32: bool = False) -> Array:
    if values.dtype.kind in "USO":
        values = _floats(list(values), name, first=1, source=source)
    wide = not (keep_float32 and values.dtype == np.float32)
    numbers = np.asarray(values, dtype=np.float64 if wide else np.float32)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row = int(np.argmax(bad))
        value: object = float(numbers[row]) if np.isnan(numbers[row]) else "infinity"
        raise _not_a_number(source, name, row + 1, value)
    return numbers


def _labels(values: Array, name: str, source: str) -> Array:
    """int64 labels when every value is an integer, else str labels."""
    kind = values.dtype.kind
    if kind in "iub":
        return values.astype(np.int64, copy=False)  # a file's int64 column: read-only, as read
    if kind == "f":
        if np.isnan(values).any():
            raise _empty_label(source, name, int(np.argmax(np.isnan(values))) + 1)
        if np.all(np.mod(values, 1) == 0) and np.all(np.abs(values) < 2**53):
            return values.astype(np.int64)
        return values.astype(str)
    values = values.astype(str)
    distinct, inverse = np.unique(values, return_inverse=True)
    blank = np.char.str_len(np.char.strip(distinct)) == 0
    if blank.any():
        empty = np.flatnonzero(blank)
        raise _empty_label(source, name, int(np.argmax(np.isin(inverse, empty))) + 1)
    numbers = [_as_int(text) for text in distinct]
    if all(number is not None for number in numbers):
        return np.asarray(numbers, dtype=np.int64)[inverse]
    return values


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _empty_label(source: str, name: str, row: int) -> MetricsError:
    return MetricsError(
        f"{source}: {name} in row {row} is empty; write a label in every row (drop the rows "
        f"the model could not predict)"
    )


def _label_pair(y_true: Array, y_pred: Array, source: str) -> tuple[Array, Array]:
    true = _labels(y_true, "y_true", source)
    pred = _labels(y_pred, "y_pred", source)
    if true.dtype.kind != pred.dtype.kind:  # one is text: compare them as text
        true, pred = true.astype(str), pred.astype(str)
    return true, pred


def _ids(values: Array, name: str, source: str) -> Array:
    kind = values.dtype.kind
    if kind == "f":
        if np.isnan(values).any():
            raise _empty_id(source, name, int(np.argmax(np.isnan(values))) + 1)
        values = values.astype(np.int64) if np.all(np.mod(values, 1) == 0) else values
    if values.dtype.kind in "iub":
        width = len(str(int(np.abs(values).max()))) + 1
        return values.astype(f"U{width}")
    values = values.astype(str)
    empty = np.char.str_len(values) == 0
    if empty.any():
        raise _empty_id(source, name, int(np.argmax(empty)) + 1)
    return values


def _empty_id(source: str, name: str, row: int) -> MetricsError:
    return MetricsError(f"{source}: {name} in row {row} is empty; write an id in every row")


def _scores(
    columns: dict[str, Array], y_true: Array, y_pred: Array, source: str
) -> tuple[Array | None, tuple[object, ...]]:
    seen = np.union1d(present(y_true), present(y_pred))
    _check_class_count(len(seen), "y_true and y_pred hold", source)
    named = [name for name in columns if name.startswith(SCORE_PREFIXES)]
    _check_class_count(len(named), "the file has probability columns for", source)
    if "score" in columns and named:
        raise MetricsError(
            f"{source}: has both a score column and {', '.join(named)}; keep the p_<label> "
            f"columns (one per class) or, for two classes, the single score column"
        )
    if "score" in columns:
        return _binary_score(columns["score"], seen, source)
    if not named:
        return None, _as_tuple(seen)
    integer = seen.dtype.kind == "i"
    by_label = _score_labels(named, integer=integer, source=source)
    named_labels = np.asarray(list(by_label))
    classes = np.union1d(seen, named_labels.astype(np.int64 if integer else str))
    _check_class_count(len(classes), "y_true, y_pred and the probability columns name", source)
    missing = [label for label in classes.tolist() if label not in by_label]
    if missing:
        raise MetricsError(
            f"{source}: no probability column for class {', '.join(map(str, missing))} "
            f"(found {', '.join(named)}); write one p_<label> column per class"
        )
    narrow = all(columns[by_label[label]].dtype == np.float32 for label in classes.tolist())
    width = np.float32 if narrow else np.float64
    scores = np.empty((len(y_true), len(classes)), dtype=width, order="F")  # a class per column
    for index, label in enumerate(classes.tolist()):
        name = by_label[label]
        scores[:, index] = _probabilities(columns[name], name, source)
    _check_sums(scores, [by_label[label] for label in classes.tolist()], source)
    return scores, _as_tuple(classes)


def _check_class_count(count: int, what: str, source: str) -> None:
    if count > MAX_CLASSES:
        raise MetricsError(
            f"{source}: {what} {count:,} classes; mlci computes metrics for at most "
            f"{MAX_CLASSES:,}. If the labels are numbers to predict, set evaluate.task: "
            f"regression in mlci.yaml"
        )


def _binary_score(
    values: Array, seen: Array, source: str
) -> tuple[Array | None, tuple[object, ...]]:
    if len(seen) != 2:
        shown = ", ".join(map(str, seen.tolist()))
        raise MetricsError(
            f"{source}: a single score column needs exactly two classes, but y_true and "
            f"y_pred hold {len(seen)} ({shown}); write one p_<label> column per class instead"
        )
    positive = _probabilities(values, "score", source)
    return np.column_stack([1.0 - positive, positive]), _as_tuple(seen)


def _score_labels(names: list[str], *, integer: bool, source: str) -> dict[object, str]:
    by_label: dict[object, str] = {}
    for name in names:
        text = name.split("_", 1)[1]
        label: object = _as_int(text) if integer else text
        if label is None:
            raise MetricsError(
                f"{source}: column {name} does not name a class: the labels in y_true and "
                f"y_pred are integers; name the column p_<integer label>, e.g. p_0"
            )
        if label in by_label:
            raise MetricsError(
                f"{source}: columns {by_label[label]} and {name} are both probabilities of "
                f"class {label}; keep one"
            )
        by_label[label] = name
    return by_label


def _probabilities(values: Array, name: str, source: str) -> Array:
    floats = values.dtype in (np.float32, np.float64) and len(values)
    if floats and values.min() >= 0 and values.max() <= 1:
        return values  # the common case in two reductions: NaN fails both comparisons
    numbers = _numbers(values, name, source, keep_float32=True)
    outside = (numbers < 0) | (numbers > 1)
    if outside.any():
        row = int(np.argmax(outside))
        raise MetricsError(
            f"{source}: {name} in row {row + 1} is {numbers[row]:g}, not a probability; "
            f"write probabilities between 0 and 1 (predict_proba), not raw scores or logits"
        )
    return numbers


def _check_sums(scores: Array, names: list[str], source: str) -> None:
    sums = _row_sums(scores)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        row = int(np.argmax(bad))
        raise MetricsError(
            f"{source}: the probabilities in row {row + 1} sum to {sums[row]:.6g}, not 1 "
            f"({', '.join(names)}); write predict_proba's output with one p_<label> column "
            f"per class, rounded to at least 4 decimals"
        )


def _row_sums(scores: Array) -> Array:
    """Each row's sum, column by column (no (n, k) temporary), in the scores' own float
    width: float32's rounding over MAX_CLASSES columns stays well inside SUM_TOLERANCE,
    and half the bytes to add."""
    sums = np.zeros(len(scores), dtype=scores.dtype)
    for column in scores.T:
        sums += column
    return sums


def _as_tuple(labels: Array) -> tuple[object, ...]:
    return tuple(labels.tolist())


# -- Pairing candidate and baseline ------------------------------------------------------


def _name(pred: Predictions, role: str) -> str:
    return f"the {role} ({pred.source})" if pred.source else f"the {role}"


def _same_label_type(
    candidate: Predictions, baseline: Predictions
) -> tuple[Predictions, Predictions]:
    kinds = {candidate.y_true.dtype.kind, baseline.y_true.dtype.kind}
    if kinds == {"i", "U"}:
        return _as_text_labels(candidate), _as_text_labels(baseline)
    return candidate, baseline


def _as_text_labels(pred: Predictions) -> Predictions:
    if pred.y_true.dtype.kind == "U":
        return pred
    names = [str(label) for label in pred.classes]
    order = sorted(range(len(names)), key=names.__getitem__)
    scores = None if pred.scores is None else pred.scores[:, order]
    return replace(
        pred,
        y_true=pred.y_true.astype(str),
        y_pred=pred.y_pred.astype(str),
        scores=scores,
        classes=tuple(names[index] for index in order),
    )


def _reorder_by_id(candidate: Predictions, baseline: Predictions) -> Predictions:
    found, position = _matches(candidate, baseline)
    only_candidate = int(np.count_nonzero(~found))
    only_baseline = len(baseline) - (len(candidate) - only_candidate)
    if only_candidate or only_baseline:
        assert candidate.ids is not None
        example = candidate.ids[np.argmax(~found)] if only_candidate else None
        shown = f" (e.g. id {str(example)!r})" if example is not None else ""
        raise MetricsError(
            f"{_name(candidate, 'candidate')} has {only_candidate} ids that "
            f"{_name(baseline, 'baseline')} lacks{shown}, and the baseline has "
            f"{only_baseline} the candidate lacks; evaluate both models on the same rows"
        )
    return take(baseline, position)


def _matches(candidate: Predictions, baseline: Predictions) -> tuple[Array, Array]:
    """Whether each candidate row's id is in the baseline, and the baseline's row for it."""
    assert candidate.ids is not None and baseline.ids is not None
    ours, theirs = _id_keys(candidate.ids, baseline.ids)
    _check_unique_ids(candidate, "candidate", ours)
    order = np.argsort(theirs, kind="stable")
    ordered = theirs[order]
    _check_unique_ids(baseline, "baseline", theirs, ordered)
    position = np.minimum(np.searchsorted(ordered, ours), len(ordered) - 1)
    return ordered[position] == ours, order[position]


def _id_keys(first: Array, second: Array) -> tuple[Array, Array]:
    """What two files' ids are sorted and compared by: short ids (8 characters or fewer,
    each below U+0100, as row numbers and most keys are) packed into 64-bit integers that
    sort and compare as their text does, which numpy sorts many times faster (a million
    in 0.03 s, their text in 0.23); other ids as they are."""
    if first.dtype.kind != "U" or second.dtype.kind != "U":
        return first, second
    if max(first.dtype.itemsize, second.dtype.itemsize) > 8 * 4:  # 4 bytes a character
        return first, second
    keys = []
    for ids in (first, second):
        width = ids.dtype.itemsize // 4
        characters = np.ascontiguousarray(ids).view(np.uint32).reshape(len(ids), width)
        if characters.size and int(characters.max()) > 0xFF:
            return first, second
        key = np.zeros(len(ids), np.uint64)
        for place in range(width):  # the first character highest: text order (NUL: none)
            key |= characters[:, place].astype(np.uint64) << np.uint64(8 * (7 - place))
        keys.append(key)
    return keys[0], keys[1]


def _check_unique_ids(
    pred: Predictions, role: str, keys: Array, ordered: Array | None = None
) -> None:
    """`keys`: the ids' (`_id_keys`); `ordered`: those sorted, if they are at hand."""
    assert pred.ids is not None
    ordered = np.sort(keys) if ordered is None else ordered
    repeated = ordered[1:] == ordered[:-1]
    if repeated.any():
        value = str(pred.ids[np.argmax(keys == ordered[1:][repeated][0])])
        raise MetricsError(
            f"{_name(pred, role)}: id {value!r} appears more than once; ids must be unique "
            f"to pair the candidate's rows with the baseline's"
        )


def _check_same_length(candidate: Predictions, baseline: Predictions) -> None:
    if len(candidate) == len(baseline):
        return
    one_side = candidate.ids is not None or baseline.ids is not None
    hint = (
        "write the id column in both files"
        if one_side
        else "write an id column in both files so mlci can pair the rows by id"
    )
    raise MetricsError(
        f"{_name(candidate, 'candidate')} has {len(candidate)} rows but "
        f"{_name(baseline, 'baseline')} has {len(baseline)}; paired comparison needs the "
        f"same rows: {hint}, or evaluate both models on the same rows in the same order"
    )


def _check_same_truth(candidate: Predictions, baseline: Predictions, *, by_id: bool) -> None:
    differs: Callable[[Array, Array], Array]
    if candidate.y_true.dtype.kind == "f" or baseline.y_true.dtype.kind == "f":
        differs = _differ_numbers
    else:
        differs = _differ_labels
    different = differs(candidate.y_true, baseline.y_true)
    count = int(np.count_nonzero(different))
    if not count:
        return
    total = len(candidate)
    if by_id:
        assert candidate.ids is not None
        example = str(candidate.ids[np.argmax(different)])
        raise MetricsError(
            f"y_true differs for {count} of {total} ids between {_name(candidate, 'candidate')} "
            f"and {_name(baseline, 'baseline')} (e.g. id {example!r}); the files disagree "
            f"about the true values: evaluate both models on the same data"
        )
    raise MetricsError(
        f"y_true differs in {count} of {total} rows between {_name(candidate, 'candidate')} "
        f"and {_name(baseline, 'baseline')}: they are not the same rows in the same order; "
        f"write an id column in both files so mlci can pair the rows by id"
    )


def _differ_numbers(first: Array, second: Array) -> Array:
    return ~np.isclose(first, second, rtol=1e-6, atol=1e-12)


def _differ_labels(first: Array, second: Array) -> Array:
    return np.asarray(first != second)
