"""Each class's scores sorted once per model, for every result that ranks them.

ROC AUC and its DeLong variance (`core.stats`) and the ROC and precision-recall curves
(`core.curves`) all read one class's scores the same way: how many positive and negative
rows (one-vs-rest) have each distinct score. `ranking(pred, column)` sorts that score
column once and keeps the counts while `pred` lives, so a gate with figures sorts each
class of each model once, however many results use it. Exact: every distinct score is
its own step, nothing is binned.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlci.core.predictions import Array, FloatArray, Predictions

Counts = npt.NDArray[np.unsignedinteger[Any]]


@dataclass(frozen=True, eq=False)
class Ranking:
    """One score column against one-vs-rest labels, by distinct score, lowest first:
    `positives[i]` and `negatives[i]` count the rows whose score is the i-th lowest
    distinct one (in the smallest unsigned dtype that holds them). `average_precision`:
    sklearn's, where `rank` computed it on the way (None for a `curves.coarse` one)."""

    positives: Counts
    negatives: Counts
    average_precision: float | None = None

    def at_or_above(self) -> tuple[FloatArray, FloatArray]:
        """False and true positives when predicting positive at score >= each distinct
        score, from the highest down (sklearn's `confusion_matrix_at_thresholds`)."""
        # Summed as integers, then made floats: three times faster than summing floats.
        fps = np.cumsum(self.negatives[::-1], dtype=np.int64).astype(np.float64)
        tps = np.cumsum(self.positives[::-1], dtype=np.int64).astype(np.float64)
        return fps, tps


@dataclass(frozen=True, eq=False)
class Places:
    """Where each row's score falls in a `Ranking`: `order` lists the rows by ascending
    score, `hit` says which of them are positives, and `seen` counts the rows of each
    distinct score (the first seen[0] rows of `order` have the lowest, and so on).
    `below` counts the positives, and `ends + 1` all rows, at or below each distinct
    score (sums `rank` has at hand, which the ROC AUC's placements are made of)."""

    order: Array
    hit: Array
    seen: Array
    below: Array
    ends: Array


_RANKINGS: weakref.WeakKeyDictionary[Predictions, dict[int, Ranking]] = weakref.WeakKeyDictionary()
_AREAS: weakref.WeakKeyDictionary[Ranking, float] = weakref.WeakKeyDictionary()


def remember_area(ranked: Ranking, area: float) -> None:
    """Keep the area under `ranked`'s ROC curve, computed on the way by the ROC AUC
    (`core.stats`), for the ROC figure (`core.curves`) to read, not sum again."""
    _AREAS[ranked] = area


def known_area(ranked: Ranking) -> float | None:
    """The area `remember_area` kept for `ranked`, if any."""
    return _AREAS.get(ranked)


def ranking(pred: Predictions, column: int) -> Ranking:
    """The ranking of score column `column` against y_true == classes[column], computed
    once per Predictions and column (`pred.scores` must not be None)."""
    done = _RANKINGS.get(pred, {})
    return done[column] if column in done else ranking_and_rows(pred, column)[0]


def ranking_and_rows(
    pred: Predictions, column: int, sorted_: tuple[Array, Array] | None = None
) -> tuple[Ranking, Places]:
    """`ranking(pred, column)`, and where each row falls in it. The places are not kept
    (n integers per class): ask for them before the ranking alone, as `stats` does for
    the ROC AUC, and the column is sorted once. `sorted_`: the column's `sort`, if done."""
    assert pred.scores is not None
    positive = np.asarray(pred.y_true) == np.asarray(pred.classes[column])
    found, places = rank(positive, pred.scores[:, column], sorted_)
    _RANKINGS.setdefault(pred, {})[column] = found
    return found, places


# Sorting the next column in a thread while this one is ranked pays from this many rows.
SORT_AHEAD_ROWS = 100_000


def sorts_ahead(
    pred: Predictions, columns: Sequence[int]
) -> Iterator[tuple[int, tuple[Array, Array] | None]]:
    """(column, its `sort` or None) for each of `columns`, the next column sorted on a
    second thread while the caller ranks this one: numpy's sort lets go of the GIL, and
    the thread holds one column's sort at a time (12 bytes a row), so the memory stays
    what one class's ranking needs. In this thread where there is one core or few rows."""
    assert pred.scores is not None
    scores = pred.scores
    if len(columns) < 2 or len(scores) < SORT_AHEAD_ROWS or _cores() < 2:
        yield from ((column, None) for column in columns)
        return
    from concurrent.futures import ThreadPoolExecutor  # 10 ms of imports (logging)

    with ThreadPoolExecutor(1, thread_name_prefix="mlci-sort") as pool:
        coming = pool.submit(sort, scores[:, columns[0]])
        for index, column in enumerate(columns):
            done = coming.result()
            if index + 1 < len(columns):
                coming = pool.submit(sort, scores[:, columns[index + 1]])
            yield column, done


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # macOS and Windows
        return os.cpu_count() or 1


def rank(
    positive: Array, score: Array, sorted_: tuple[Array, Array] | None = None
) -> tuple[Ranking, Places]:
    """The ranking of `score` (any real dtype) with `positive` (bool) marking the
    positives, and where each row falls in it (`sorted_`: `sort(score)`, if done)."""
    if not len(score):
        nothing, none = np.zeros(0, np.uint8), np.zeros(0, np.intp)
        return Ranking(nothing, nothing), Places(none, np.zeros(0, bool), nothing, none, none)
    order, steps = sorted_ if sorted_ is not None else sort(score)
    ends = np.flatnonzero(np.append(steps, True))  # each distinct score's last row
    counted = np.int32 if len(order) < 2**31 else np.int64  # half the memory of int64
    seen = np.diff(ends, prepend=-1)
    hit = positive[order]
    below = np.cumsum(hit, dtype=counted)[ends]  # positives at or below each
    positives = np.empty_like(below)
    positives[0] = below[0]
    np.subtract(below[1:], below[:-1], out=positives[1:])
    small = np.min_scalar_type(int(seen.max(initial=0)))
    precision = _average_precision(below, positives, ends, seen)
    found = Ranking(positives.astype(small), (seen - positives).astype(small), precision)
    return found, Places(order, hit, seen, below, ends)


def _average_precision(below: Array, positives: Array, ends: Array, seen: Array) -> float:
    """sklearn's average precision, from the highest distinct score down: each one's
    recall gain times the precision at it, only where there are positives to gain. From
    the counts `rank` has at hand, in the order and with the numbers
    `curves._average_precision` would sum (the same float)."""
    total = int(below[-1])
    if not total:
        return 0.0
    gain = np.flatnonzero(positives)[::-1]
    # At or above each gaining score: the positives, and all rows (those from its first).
    hits = (total - below[gain] + positives[gain]).astype(np.float64)
    precision = hits / (int(ends[-1]) - ends[gain] + seen[gain])
    gained = positives[gain].astype(np.float64)
    return max(0.0, float(np.einsum("i,i->", gained, precision)) / total)


def sort(score: Array) -> tuple[Array, Array]:
    """The rows in ascending score order, and where the sorted score steps up.

    float32 scores (probabilities read as float32) as their bits, unsigned integers that
    sort as the scores do: where numpy's sort is vectorised (x86-simd-sort: AVX-512 or
    AVX2), each score's bits and its row number packed into one 64-bit integer and those
    sorted, values only, which is the argsort and the sorted scores at once (1M rows in
    16 ms, where argsort and the sorted scores' gather took 29); else by radix sort,
    a stable sort of the low and of the high 16 bits (numpy sorts 16-bit integers by
    counting: twice as fast as a scalar argsort of the floats). Tied rows come in row order
    packed, in any order else: the ranking counts them as one score. Other scores by
    numpy's argsort.
    """
    if score.dtype != np.float32:
        order = np.argsort(score)
        ranked = score[order]
        return order, ranked[1:] != ranked[:-1]  # -0.0 == 0.0, as in sklearn
    key = _sortable(score)
    if _VECTOR_SORT and len(key) < 2**32:
        packed = key.astype(np.uint64) << np.uint64(32)
        packed |= np.arange(len(key), dtype=np.uint64)
        packed.sort()
        order = (packed & np.uint64(0xFFFFFFFF)).view(np.int64)
        packed >>= np.uint64(32)  # the scores' bits, ascending
        return order, packed[1:] != packed[:-1]
    order = np.argsort(key.astype(np.uint16), kind="stable")
    order = order[np.argsort((key[order] >> np.uint32(16)).astype(np.uint16), kind="stable")]
    ranked = key[order]
    return order, ranked[1:] != ranked[:-1]


def _vector_sort() -> bool:
    """Whether numpy's sort of 64-bit integers is vectorised (x86-simd-sort in numpy 2, on
    AVX-512 or AVX2): 1M in 7 ms here, where a scalar sort takes several times that."""
    if int(np.__version__.split(".")[0]) < 2:
        return False
    try:
        from numpy._core._multiarray_umath import (  # type: ignore[import-not-found]
            __cpu_features__ as features,
        )
    except ImportError:  # a numpy that moved it: the radix sort is never wrong
        return False
    return bool(features.get("AVX512_SKX") or features.get("AVX2"))


_VECTOR_SORT = _vector_sort()


def _sortable(score: Array) -> Array:
    """uint32 in the order of the float32 scores (IEEE 754 bits, negatives flipped)."""
    values = score + np.float32(0)  # -0.0 becomes 0.0
    bits: npt.NDArray[np.uint32] = values.view(np.uint32)
    sign = np.uint32(1 << 31)
    if bool(values.min() >= 0):  # probabilities: set the sign bit, nothing to flip
        flagged: Array = bits | sign
        return flagged
    return np.where(np.bitwise_and(bits, sign), np.invert(bits), np.bitwise_or(bits, sign))
