"""Predictions files summarized batch by batch (`core.summary`): bounded memory at any size.

What mlci computes from predictions above evaluate.exact_rows. The files are read in
record batches (`predictions.read_batches`, every check of `load_predictions` kept), each
batch summarized and merged, so memory depends on the batch size and the classes, not the
rows. A baseline's file is paired with the candidate's row by row, in order; files with an
id column are paired by id only in memory (`predictions.align`) or by the DuckDB engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from mlci.core.predictions import Array, IntArray, Predictions, distinct, take
from mlci.core.stats import MAX_CLASSES
from mlci.core.summary import (
    BINS,
    ClassificationSummary,
    RegressionSummary,
    Summary,
    Table,
    grid_for,
    summarize_classification,
    summarize_regression,
)
from mlci.errors import MetricsError
from mlci.predictions import (
    BATCH_ROWS,
    Task,
    align,
    estimate_rows,
    load_predictions,
    read_ahead,
    read_batches,
)

_WIDTH = MAX_CLASSES  # cells are coded with this many classes until the labels are known


# Reading the baseline's predictions ahead pays from this many rows (the thread's start
# and the GIL it takes cost more than a small file's read).
READ_AHEAD_ROWS = 100_000


def compute_metrics(
    path: Path,
    *,
    task: Task,
    exact_rows: int,
    id_column: str = "id",
    extra_columns: int = 0,
    columns: tuple[str, ...] = (),
    baseline: Path | None = None,
    on_baseline: Callable[[Predictions, Predictions], None] | None = None,
) -> tuple[dict[str, float], Predictions | None, Summary | None]:
    """The metrics of the predictions in `path`, and what they were computed from: the
    rows in memory (`load_predictions`, with `extra_columns` and `columns`) up to
    `exact_rows` (evaluate.exact_rows), else the file's summary, read batch by batch.

    Up to `exact_rows`, `baseline` is read ahead on a thread while the metrics are
    computed (`predictions.read_ahead`; the gate's `load_predictions` of it takes that),
    and given to `on_baseline` with the candidate's rows, on that thread, once read.
    Above `exact_rows`, the summary is taken from the summary of `path` paired with
    `baseline`'s predictions when given (and kept: the baseline's metrics and the gate's
    paired intervals come from it too, so each file is read once), or from the paired
    summary kept whose baseline `path` is."""
    from mlci.core import stats, summary_stats

    if estimate_rows(path) > exact_rows:
        summary = _summary(path, task=task, id_column=id_column, baseline=baseline)
        return summary_stats.compute_metrics(summary), None, summary
    loaded = load_predictions(
        path, task=task, id_column=id_column, extra_columns=extra_columns, columns=columns
    )
    if baseline is not None and len(loaded) >= READ_AHEAD_ROWS:
        # The gate reads the baseline's next: on a thread now, beside these metrics.
        then = None if on_baseline is None else partial(on_baseline, loaded)
        read_ahead(baseline, task=task, id_column=id_column, then=then)
    return stats.compute_metrics(loaded, task), loaded, None


def _summary(path: Path, *, task: Task, id_column: str, baseline: Path | None) -> Summary:
    if baseline is not None:
        try:
            return paired_summary(path, baseline, task=task, id_column=id_column).side(
                baseline=False
            )
        except MetricsError:
            pass  # the gate says why they do not pair; the candidate's metrics stand alone
    elif _KEPT and _KEPT[0][0][1:] == (_identity(path), task, id_column):
        kept = _KEPT[0][1]
        if not isinstance(kept, MetricsError):
            return kept.side(baseline=True)
    return summarize(path, task=task, id_column=id_column)


# The last paired summary asked for, or why it failed: the evaluate, baseline and gate
# stages each need it (the candidate's metrics, the baseline's, the paired intervals).
_KEPT: list[tuple[tuple[object, ...], Summary | MetricsError]] = []


def paired_summary(candidate: Path, baseline: Path, *, task: Task, id_column: str) -> Summary:
    """`summarize(candidate, baseline)`, kept while the files are unchanged."""
    key = (_identity(candidate), _identity(baseline), task, id_column)
    if not _KEPT or _KEPT[0][0] != key:
        try:
            found: Summary | MetricsError = summarize(
                candidate, baseline, task=task, id_column=id_column
            )
        except MetricsError as exc:
            found = exc
        _KEPT[:] = [(key, found)]
    kept = _KEPT[0][1]
    if isinstance(kept, MetricsError):
        raise kept
    return kept


def _identity(path: Path) -> tuple[str, int, int]:
    try:
        status = path.stat()
    except OSError:  # summarize says what is wrong with the file
        return str(path), -1, -1
    return str(path.resolve()), status.st_size, status.st_mtime_ns


def summarize(
    candidate: Path,
    baseline: Path | None = None,
    *,
    task: Task,
    id_column: str = "id",
    bins: int = BINS,
    batch_rows: int = BATCH_ROWS,
) -> Summary:
    """The summary of `candidate`'s predictions, paired with `baseline`'s row by row when
    given. Raises MetricsError for a file `load_predictions` would refuse (same messages),
    and for files that pair by id (the DuckDB engine joins them)."""
    first = read_batches(candidate, task=task, id_column=id_column, batch_rows=batch_rows)
    batches: Iterator[tuple[Predictions, Predictions | None]]
    if baseline is None:
        batches = ((batch, None) for batch in first)
    else:
        second = read_batches(baseline, task=task, id_column=id_column, batch_rows=batch_rows)
        batches = _paired(first, second, candidate, baseline)
    if task == "regression":
        return _regression(batches)
    return _classification(batches, bins)


def _regression(batches: Iterator[tuple[Predictions, Predictions | None]]) -> RegressionSummary:
    total: RegressionSummary | None = None
    for candidate, baseline in batches:
        part = summarize_regression(
            candidate.y_true, candidate.y_pred, None if baseline is None else baseline.y_pred
        )
        total = part if total is None else total.merge(part)
    assert total is not None  # read_batches yields at least one batch
    return total


def _classification(
    batches: Iterator[tuple[Predictions, Predictions | None]], bins: int
) -> ClassificationSummary:
    codes = _Codes()
    total: ClassificationSummary | None = None
    for candidate, baseline in batches:
        for pred in (candidate, baseline):
            if pred is not None and pred.scores is not None:
                codes.start(pred.classes)
        scores = candidate.scores
        base_scores = None if baseline is None else baseline.scores
        if baseline is not None and (scores is None or base_scores is None):
            scores = base_scores = None  # paired probability metrics need both models'
        part = summarize_classification(
            tuple(range(_WIDTH)),
            codes.of(candidate.y_true),
            codes.of(candidate.y_pred),
            scores,
            baseline_predicted=None if baseline is None else codes.of(baseline.y_pred),
            baseline_scores=base_scores,
            bins=bins,
            grid=grid_for(len(codes.labels)),
        )
        total = part if total is None else total.merge(part)
    assert total is not None
    return _recoded(total, codes.labels)


class _Codes:
    """Labels coded in the order first seen; with probability columns, their classes."""

    def __init__(self) -> None:
        self.labels: list[object] = []
        self._index: dict[object, int] = {}

    def start(self, classes: tuple[object, ...]) -> None:
        if self.labels == list(classes):
            return
        if self.labels:
            raise MetricsError(
                f"the predictions' classes change between record batches ({self.labels} "
                f"then {list(classes)}); write the same p_<label> columns in every row group"
            )
        self.labels = list(classes)
        self._index = {label: index for index, label in enumerate(classes)}

    def of(self, values: Array) -> IntArray:
        found, inverse = distinct(values)
        for label in found.tolist():
            if label not in self._index:
                self._index[label] = len(self.labels)
                self.labels.append(label)
        if len(self.labels) > MAX_CLASSES:
            raise MetricsError(
                f"the predictions hold more than {MAX_CLASSES:,} classes; mlci computes "
                f"metrics for at most {MAX_CLASSES:,}. If the labels are numbers to "
                f"predict, set evaluate.task: regression in mlci.yaml"
            )
        table = np.array([self._index[label] for label in found.tolist()], dtype=np.int64)
        return np.asarray(table[inverse], dtype=np.int64)


def _recoded(summary: ClassificationSummary, labels: list[object]) -> ClassificationSummary:
    """The summary with its classes coded 0..k-1 in sorted label order."""
    k = len(labels)
    order = sorted(range(k), key=lambda index: labels[index])  # type: ignore[arg-type,return-value]
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    cells = summary.joint.cells
    if summary.paired:
        true, rest = np.divmod(cells, _WIDTH * _WIDTH)
        pred, base = np.divmod(rest, _WIDTH)
        recoded = (rank[true] * k + rank[pred]) * k + rank[base]
    else:
        true, pred = np.divmod(cells, _WIDTH)
        recoded = rank[true] * k + rank[pred]
    found, inverse = np.unique(recoded, return_inverse=True)
    counts = np.bincount(inverse, weights=summary.joint.counts).astype(np.int64)
    classes = tuple(labels[index] for index in order)
    return replace(summary, classes=classes, joint=Table(found, counts))


def _paired(
    first: Iterator[Predictions], second: Iterator[Predictions], candidate: Path, baseline: Path
) -> Iterator[tuple[Predictions, Predictions]]:
    """The two files' batches cut to the same rows, in order; y_true checked per batch."""
    ours: Predictions | None = None
    theirs: Predictions | None = None
    counted = [0, 0]
    while True:
        ours = ours if ours is not None and len(ours) else next(first, None)
        theirs = theirs if theirs is not None and len(theirs) else next(second, None)
        if ours is None or theirs is None:
            break
        if ours.ids is not None and theirs.ids is not None:
            raise MetricsError(
                f"{candidate} and {baseline} have id columns: above evaluate.exact_rows mlci "
                f"pairs rows by order only; set evaluate.engine: duckdb in mlci.yaml to join "
                f"them by id, or raise evaluate.exact_rows to pair them in memory"
            )
        size = min(len(ours), len(theirs))
        paired = align(_rows(ours, 0, size), _rows(theirs, 0, size))
        counted[0] += size
        counted[1] += size
        yield paired
        ours, theirs = _rows(ours, size, len(ours)), _rows(theirs, size, len(theirs))
    if ours is not None or theirs is not None:
        for left, rest, index in ((ours, first, 0), (theirs, second, 1)):
            counted[index] += (len(left) if left is not None else 0) + sum(map(len, rest))
        raise MetricsError(
            f"the candidate ({candidate}) has {counted[0]} rows but the baseline ({baseline}) "
            f"has {counted[1]}; paired comparison needs the same rows: evaluate both models "
            f"on the same rows in the same order"
        )


def _rows(pred: Predictions, start: int, stop: int) -> Predictions:
    return take(pred, slice(start, stop))
