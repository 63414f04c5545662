"""`Predictions`: one model's predictions on an evaluation set, as numpy arrays.

What `core.stats` computes metrics and intervals from, and `core.curves` draws curves
from; `mlci.predictions` reads them from a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class Predictions:
    """One model's predictions on an evaluation set, one entry per row.

    `y_true` and `y_pred` hold int64 or str labels (classification) or float64 values
    (regression). `scores` is an (n, k) array of class probabilities, columns in `classes`
    order (float32 when the file's probability columns are float32, else float64), or
    None. `classes` is the sorted labels seen in y_true, y_pred and the score columns; ()
    for regression. `ids` is a str array, or None when the file has no id
    column (evaluate.id_column). `source` names the file in messages. `extra` holds other
    columns of the file, by name, that no metric uses: those evaluate.slices names, read as
    they are, and a few more (a segment, a country) as str arrays, for people to read.
    """

    y_true: Array
    y_pred: Array
    scores: Array | None
    classes: tuple[object, ...]
    ids: Array | None
    source: str = field(default="", compare=False)
    extra: Mapping[str, Array] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.y_true)


def take(pred: Predictions, index: Array | slice) -> Predictions:
    """The rows of `pred` at `index` (positions, a mask or a slice)."""
    return replace(
        pred,
        y_true=pred.y_true[index],
        y_pred=pred.y_pred[index],
        scores=None if pred.scores is None else pred.scores[index],
        ids=None if pred.ids is None else pred.ids[index],
        extra={name: column[index] for name, column in pred.extra.items()},
    )


_COUNTED = 1 << 20  # integer labels spanning at most this many values are counted, not sorted


def distinct(values: Array) -> tuple[Array, IntArray]:
    """np.unique(values, return_inverse=True): the sorted distinct values and each row's
    index among them. Integer labels in a small range are counted (one bincount), not
    sorted: a record batch of a million rows in milliseconds."""
    low = _counted_from(values)
    if low is None:
        found, inverse = np.unique(values, return_inverse=True)
        return found, np.asarray(inverse.ravel(), dtype=np.int64)
    shifted = values.astype(np.int64) - low if low else values.astype(np.int64, copy=False)
    counts = np.bincount(shifted)
    present = np.flatnonzero(counts)
    index = np.zeros(len(counts), dtype=np.int64)
    index[present] = np.arange(len(present))
    return (present + low).astype(values.dtype), index[shifted]


def present(values: Array) -> Array:
    """The sorted distinct values: `distinct` without each row's index. Integer labels in
    a small range, counted."""
    low = _counted_from(values)
    if low is None:
        return np.unique(values)
    ints = values.astype(np.intp, copy=False)
    offset = 0 if 0 <= low < _COUNTED else low  # labels from 0 up: no copy
    counts = np.bincount(ints - offset if offset else ints)
    return (np.flatnonzero(counts) + offset).astype(values.dtype)


def _counted_from(values: Array) -> int | None:
    """The lowest of `values` where they are integers spanning fewer than _COUNTED values
    (counted), else None (sorted)."""
    if values.dtype.kind not in "iu" or not len(values):
        return None
    low, high = int(values.min()), int(values.max())
    return low if high - low < _COUNTED else None


def top_label(scores: FloatArray) -> tuple[IntArray, FloatArray]:
    """Each row's top label (its highest score's column, the first one on a tie, as
    np.argmax) and that score. Column by column where the classes are few: an argmax
    along the rows of a column-ordered (n, k) array copies it first, and is slower
    than k passes over the columns."""
    k = scores.shape[1]
    if k > 32:
        top = np.argmax(scores, axis=1)
        return top, np.take_along_axis(scores, top[:, None], axis=1)[:, 0]
    best = np.array(scores[:, 0])
    top = np.zeros(len(scores), np.min_scalar_type(k - 1))
    higher = np.empty(len(scores), bool)
    for column in range(1, k):
        score = scores[:, column]
        np.greater(score, best, out=higher)  # strictly: a tie keeps the first column
        # `column` where higher, in whole-array arithmetic: 4x a masked assignment's speed
        top ^= (top ^ column) * higher
        np.maximum(best, score, out=best)
    return top, best
