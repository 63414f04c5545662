"""The data behind the report's plots: ROC, precision-recall and calibration curves,
regression residuals, and per-epoch training logs.

Points and areas follow scikit-learn (the tests compare them with sklearn):

- `roc_curves`: `roc_curve`'s points (with its default `drop_intermediate=True`) and
  `roc_auc_score` as the area.
- `pr_curves`: `precision_recall_curve`'s points, in the opposite order (recall rising,
  from the (0, 1) point sklearn appends), and `average_precision_score` as the area.
- `calibration`: `calibration.calibration_curve(strategy="uniform")`, non-empty bins only.

Two classes: one curve, for the larger label (the positive class, as in `stats`). More:
one curve per class, one-vs-rest, for each class that has both positive and negative rows
in y_true (ROC) or positive rows (PR); a class that cannot have a curve is left out, where
sklearn would warn and return NaN. Without `scores` there are no curves.

Every curve's x is non-decreasing, so a chart can resample it (see `mermaid.line_chart`).

`by_class` pairs two models' curves class by class, and `most_changed` picks the classes
whose area moved most, for a chart that cannot show them all.
"""

from __future__ import annotations

import csv
import json
import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mlci.core.predictions import Array, FloatArray, IntArray, Predictions, top_label
from mlci.core.ranking import Ranking, known_area, ranking
from mlci.errors import MetricsError

LOG_FORMATS = ("csv", "json")
# A figure's curve is thinned from its points at this many times as many thresholds.
COARSE = 10


@dataclass(frozen=True)
class Curve:
    """A named line of (x, y) points; `area` is its AUC or average precision, if any."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    area: float | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"curve {self.name!r} has {len(self.x)} x and {len(self.y)} y")

    def __len__(self) -> int:
        return len(self.x)


def _curve(
    name: str, x: FloatArray, y: FloatArray, area: float | None, points: int | None = None
) -> Curve:
    if points is not None:
        x, y = _thinned(x, y, points)
    return Curve(name, tuple(x.tolist()), tuple(y.tolist()), area)


# -- ROC and precision-recall -----------------------------------------------------------


def roc_curves(pred: Predictions, *, points: int | None = None) -> list[Curve]:
    """ROC curves (x: false positive rate, y: true positive rate), area = ROC AUC.

    With `points`, each curve keeps at most that many of its points (`downsample`), picked
    from its points at `COARSE` times as many thresholds spread evenly over the distinct
    scores (`coarse`): a figure's line, every point of it on the exact curve. The area is
    always the full curve's.
    """
    curves = []
    for label, ranked in _one_vs_rest(pred):
        if not ranked.positives.any() or not ranked.negatives.any():
            continue
        fpr, tpr = _roc_points(ranked if points is None else coarse(ranked, COARSE * points))
        curves.append(_curve(f"class {label}", fpr, tpr, _roc_area(ranked), points))
    return curves


def pr_curves(pred: Predictions, *, points: int | None = None) -> list[Curve]:
    """Precision-recall curves (x: recall, y: precision), area = average precision.

    `points` as for `roc_curves`.
    """
    curves = []
    for label, ranked in _one_vs_rest(pred):
        if not ranked.positives.any():
            continue
        drawn = ranked if points is None else coarse(ranked, COARSE * points)
        recall, precision = _pr_points(drawn)
        curves.append(
            _curve(f"class {label}", recall, precision, _average_precision(ranked), points)
        )
    return curves


def _average_precision(ranked: Ranking) -> float:
    """sklearn's average precision: over the distinct scores from the highest down, each
    one's recall gain times the precision at it; only scores with positives gain recall,
    so only their precisions are computed. Taken from the ranking where `rank` computed it."""
    if ranked.average_precision is not None:
        return ranked.average_precision
    positives = ranked.positives[::-1]
    tps = np.cumsum(positives, dtype=np.int64)
    fps = np.cumsum(ranked.negatives[::-1], dtype=np.int64)
    gain = np.flatnonzero(positives)
    hits = tps[gain].astype(np.float64)
    precision = hits / (hits + fps[gain])
    total = float(tps[-1])
    return max(
        0.0, float(np.einsum("i,i->", positives[gain].astype(np.float64), precision)) / total
    )


@dataclass(frozen=True)
class ClassCurves:
    """One class's curve from the candidate and from the baseline; None where it has none."""

    name: str  # the curves' name, "class 3"
    candidate: Curve | None
    baseline: Curve | None

    @property
    def change(self) -> float | None:
        """The candidate's area minus the baseline's, when both have a finite one."""
        if self.candidate is None or self.baseline is None:
            return None
        if self.candidate.area is None or self.baseline.area is None:
            return None
        change = self.candidate.area - self.baseline.area
        return change if math.isfinite(change) else None


def by_class(candidate: Sequence[Curve], baseline: Sequence[Curve]) -> list[ClassCurves]:
    """The two models' curves paired by name: the candidate's in its order, then the
    classes only the baseline has a curve for (a class missing from one model's scores)."""
    left = {curve.name: curve for curve in baseline}
    pairs = [ClassCurves(curve.name, curve, left.pop(curve.name, None)) for curve in candidate]
    return pairs + [ClassCurves(name, None, curve) for name, curve in left.items()]


def most_changed(pairs: Sequence[ClassCurves], count: int) -> list[ClassCurves]:
    """At most `count` of `pairs`, kept in their order: a class with a curve from only one
    model first, then those whose area changed most (the earlier class on a tie)."""
    if len(pairs) <= count:
        return list(pairs)

    def rank(index: int) -> tuple[int, float, int]:
        change = pairs[index].change
        return (0, 0.0, index) if change is None else (1, -abs(change), index)

    return [pairs[index] for index in sorted(sorted(range(len(pairs)), key=rank)[:count])]


def _one_vs_rest(pred: Predictions) -> Iterable[tuple[str, Ranking]]:
    """(label, its score column's ranking) for each class that may have a curve."""
    if pred.scores is None or len(pred.classes) < 2:
        return
    columns = [1] if len(pred.classes) == 2 else range(len(pred.classes))
    for column in columns:
        yield str(pred.classes[column]), ranking(pred, column)


def coarse(ranked: Ranking, thresholds: int) -> Ranking:
    """`ranked` with at most `thresholds` distinct scores: runs of neighbouring scores
    merged, evenly over the distinct scores, the highest kept on its own. A curve drawn
    from it has its points at those thresholds, each on the full ranking's curve."""
    distinct = len(ranked.positives)
    if distinct <= thresholds:
        return ranked
    made = _COARSE.setdefault(ranked, {})  # the ROC and the precision-recall curves' both
    if thresholds not in made:
        starts = np.linspace(0, distinct - 1, thresholds).astype(np.int64)  # rising: no sort
        starts = starts[np.concatenate(([True], starts[1:] != starts[:-1]))]
        made[thresholds] = Ranking(
            np.add.reduceat(ranked.positives, starts, dtype=np.uint64),
            np.add.reduceat(ranked.negatives, starts, dtype=np.uint64),
        )
    return made[thresholds]


_COARSE: weakref.WeakKeyDictionary[Ranking, dict[int, Ranking]] = weakref.WeakKeyDictionary()


def _roc_area(ranked: Ranking) -> float:
    """The area under the full ROC curve: the share of (positive, negative) pairs the
    positive outscores, ties counting half (the trapezoids' sum, without the points).
    Taken from `core.stats` where it computed the ROC AUC from the same ranking."""
    known = known_area(ranked)
    if known is not None:
        return known
    positives, negatives = ranked.positives, ranked.negatives
    below = np.cumsum(negatives, dtype=np.int64) - negatives * 0.5
    pairs = float(positives.sum(dtype=np.int64)) * float(negatives.sum(dtype=np.int64))
    return float(np.einsum("i,i->", positives.astype(np.float64), below) / pairs)  # no BLAS


def _roc_points(ranked: Ranking) -> tuple[FloatArray, FloatArray]:
    fps, tps = ranked.at_or_above()
    if len(fps) > 2:  # drop the points inside straight segments, as sklearn does
        # Where the counts' second difference is not zero: the step to the next score
        # differs from the step to this one.
        negatives, positives = ranked.negatives[::-1], ranked.positives[::-1]
        corner = (negatives[2:] != negatives[1:-1]) | (positives[2:] != positives[1:-1])
        keep = np.concatenate([[True], corner, [True]])
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.append(0.0, fps), np.append(0.0, tps)
    return fps / fps[-1], tps / tps[-1]


def _pr_points(ranked: Ranking) -> tuple[FloatArray, FloatArray]:
    fps, tps = ranked.at_or_above()
    precision = tps / (tps + fps)  # tps + fps >= 1: each threshold is some row's score
    return np.append(0.0, tps / tps[-1]), np.append(1.0, precision)


# -- Calibration ------------------------------------------------------------------------


def calibration(pred: Predictions, bins: int = 10) -> Curve | None:
    """Reliability diagram: mean predicted probability (x) vs observed frequency (y).

    Two classes: the positive class's probability vs how often it is the true label.
    More: the top-label confidence (highest probability) vs how often that class (the
    first column on a tie) is the true label. `bins` equal-width bins over [0, 1]; only
    the non-empty ones give a point. None without scores or rows.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    if pred.scores is None or len(pred.classes) < 2 or len(pred) == 0:
        return None
    classes = np.asarray(pred.classes)
    if len(classes) == 2:
        name, probability = f"class {classes[1]}", pred.scores[:, 1]
        hit = np.asarray(pred.y_true) == classes[1]
    else:
        top, probability = top_label(pred.scores)
        name = "top label"
        hit = np.asarray(pred.y_true) == classes[top]
    return _reliability(name, probability, hit, bins)


def _reliability(name: str, probability: FloatArray, hit: Array, bins: int) -> Curve:
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], probability)
    total = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=probability, minlength=bins)
    hits = np.bincount(index, weights=hit.astype(np.float64), minlength=bins)
    filled = total != 0
    return _curve(name, sums[filled] / total[filled], hits[filled] / total[filled], None)


# -- Regression -------------------------------------------------------------------------


def residuals(
    pred: Predictions, *, max_points: int | None = None
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Regression: (y_pred, y_true - y_pred), row by row.

    With `max_points`, a random sample of that many rows (the same rows every time, kept
    in file order), so a plot of millions of rows stays small.
    """
    if pred.classes:
        raise ValueError("residuals need a regression model's predictions, not a classifier's")
    y_pred = np.asarray(pred.y_pred, dtype=np.float64)
    error = np.asarray(pred.y_true, dtype=np.float64) - y_pred
    if max_points is not None and len(y_pred) > max_points:
        rows = np.sort(np.random.default_rng(0).choice(len(y_pred), max_points, replace=False))
        y_pred, error = y_pred[rows], error[rows]
    return tuple(y_pred.tolist()), tuple(error.tolist())


# -- Downsampling -----------------------------------------------------------------------


def downsample(curve: Curve, points: int = 50) -> Curve:
    """At most `points` of the curve's points, chosen to keep its shape.

    Points with a NaN or infinite coordinate are dropped first. Then, when more are left,
    Largest-Triangle-Three-Buckets (Steinarsson, 2013) in the variant that picks every
    bucket at once: the first and last points stay, and each of `points - 2` buckets of
    the points between keeps the one that makes the largest triangle with the means of
    the buckets before and after it. `area` is the full curve's, unchanged.
    """
    x, y = _thinned(np.asarray(curve.x, dtype=np.float64), np.asarray(curve.y), points)
    return replace(curve, x=tuple(x.tolist()), y=tuple(y.tolist()))


def _thinned(x: FloatArray, y: FloatArray, points: int) -> tuple[FloatArray, FloatArray]:
    if points < 2:
        raise ValueError(f"a curve needs at least 2 points, not {points}")
    x, y = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        x, y = x[finite], y[finite]
    if len(x) <= points:
        return x, y
    keep = _largest_triangles(x, y, points)
    return x[keep], y[keep]


def _largest_triangles(x: FloatArray, y: FloatArray, points: int) -> IntArray:
    n = len(x)
    if points == 2:
        return np.array([0, n - 1])
    starts = np.linspace(1, n - 1, points - 1).astype(np.int64)[:-1]  # points - 2 buckets
    sizes = np.diff(np.append(starts, n - 1))
    # The anchors of bucket b: the mean of bucket b - 1 (the first point for the first
    # bucket) and of bucket b + 1 (the last point for the last).
    mean_x = np.concatenate([x[:1], np.add.reduceat(x[1:-1], starts - 1) / sizes, x[-1:]])
    mean_y = np.concatenate([y[:1], np.add.reduceat(y[1:-1], starts - 1) / sizes, y[-1:]])
    before_x, before_y = np.repeat(mean_x[:-2], sizes), np.repeat(mean_y[:-2], sizes)
    after_x, after_y = np.repeat(mean_x[2:], sizes), np.repeat(mean_y[2:], sizes)
    inner_x, inner_y = x[1:-1], y[1:-1]
    area = np.abs(
        (before_x - after_x) * (inner_y - before_y) - (before_x - inner_x) * (after_y - before_y)
    )
    largest = np.repeat(np.maximum.reduceat(area, starts - 1), sizes)
    index = np.where(area == largest, np.arange(1, n - 1), n)
    chosen = np.minimum.reduceat(index, starts - 1)  # the first largest of each bucket
    return np.concatenate([[0], chosen, [n - 1]])


# -- Training logs ----------------------------------------------------------------------


def read_training_log(
    text: str, fmt: str, *, source: str = "training log"
) -> dict[str, tuple[float, ...]]:
    """Per-epoch columns (`epoch`, `loss`, `val_loss`, ...) from a training log's text.

    `fmt` is `csv` (a header row naming the columns, then one row per epoch, as Keras'
    CSVLogger and Lightning's CSVLogger write) or `json`: a list of objects (one per epoch)
    or an object of equally long lists (Keras' `history.history`). Empty cells, missing
    keys and nulls are NaN (Lightning logs training and validation on separate rows).
    Columns keep the file's order. `source` names the file in error messages.
    """
    if fmt not in LOG_FORMATS:
        raise MetricsError(
            f"{source}: unknown training log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}"
        )
    columns = _read_csv_log(text, source) if fmt == "csv" else _read_json_log(text, source)
    if not columns or not next(iter(columns.values())):
        raise MetricsError(f"{source}: the training log has no epochs; write one row per epoch")
    return {name: tuple(values) for name, values in columns.items()}


def _read_csv_log(text: str, source: str) -> dict[str, list[float]]:
    reader = csv.reader(text.splitlines())
    header = next((row for row in reader if row), None)
    if header is None:
        return {}
    names = _column_names([cell.strip() for cell in header], source)
    columns: dict[str, list[float]] = {name: [] for name in names}
    for row in reader:
        if not row:
            continue
        where = f"{source}, line {reader.line_num}"
        if len(row) != len(names):
            raise MetricsError(
                f"{where}: {len(row)} cells where the header names {len(names)} columns; "
                f"write one value per column (an empty cell for a missing one)"
            )
        for name, cell in zip(names, row, strict=True):
            columns[name].append(_csv_number(cell, name, where))
    return columns


def _column_names(names: list[str], source: str) -> list[str]:
    if all(_is_number_text(name) for name in names):
        raise MetricsError(
            f"{source}: the first line holds numbers, not column names; start the log "
            f"with a header such as epoch,loss,val_loss"
        )
    for index, name in enumerate(names):
        if not name:
            raise MetricsError(f"{source}: column {index + 1} of the header has no name")
        if name in names[:index]:
            raise MetricsError(f"{source}: the header names column {name!r} twice")
    return names


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_number(cell: str, name: str, where: str) -> float:
    if not cell.strip():
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise MetricsError(
            f"{where}: {name} is {cell!r}, not a number; write numbers (or leave the cell empty)"
        ) from None


def _read_json_log(text: str, source: str) -> dict[str, list[float]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetricsError(
            f"{source}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if isinstance(data, list):
        return _json_records(data, source)
    if isinstance(data, dict):
        return _json_columns(data, source)
    raise MetricsError(
        f'{source}: a JSON training log is a list of objects ([{{"epoch": 1, "loss": '
        f'0.5}}, ...]) or an object of lists ({{"loss": [0.5, 0.4]}}), not a '
        f"{_json_type(data)}"
    )


def _json_records(records: list[Any], source: str) -> dict[str, list[float]]:
    names: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise MetricsError(
                f"{source}: item {index + 1} of the list is a {_json_type(record)}, not an "
                f'object of numbers such as {{"epoch": 1, "loss": 0.5}}'
            )
        names.update(dict.fromkeys(record))
    return {
        name: [
            _json_number(record.get(name), name, f"{source}, item {index + 1}")
            for index, record in enumerate(records)
        ]
        for name in names
    }


def _json_columns(data: dict[str, Any], source: str) -> dict[str, list[float]]:
    columns: dict[str, list[float]] = {}
    for name, values in data.items():
        if not isinstance(values, list):
            raise MetricsError(
                f"{source}: {name!r} is a {_json_type(values)}; in an object of lists each "
                f"key holds a list of per-epoch numbers"
            )
        where = f"{source}, {name!r}"
        columns[name] = [
            _json_number(value, name, f"{where}[{i}]") for i, value in enumerate(values)
        ]
    _check_lengths(columns, source)
    return columns


def _check_lengths(columns: dict[str, list[float]], source: str) -> None:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise MetricsError(
            f"{source}: the lists have different lengths ({described}); write one value "
            f"per epoch in each (null for a missing one)"
        )


def _json_number(value: object, name: str, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetricsError(f"{where}: {name} is {json.dumps(value)[:60]}, not a number")
    return float(value)


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
