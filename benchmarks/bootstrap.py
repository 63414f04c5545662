"""Paired intervals of count-based metrics: mlci against its old k x k path and a naive loop.

Run from the repository root with the Python that has mlci and scikit-learn installed:

    .venv/bin/python benchmarks/bootstrap.py [--rows 1000000] [--classes 10] [--resamples 2000]
    .venv/bin/python benchmarks/bootstrap.py --classes 1000   # many classes

It makes synthetic labels (the candidate right 80% of the time, the baseline 78%, their
mistakes correlated) and times:

- mlci: `paired_difference_intervals` on the two models' predictions without probabilities,
  which gives a paired interval for every count-based metric (accuracy, balanced accuracy,
  precision, recall and F1 averaged three ways and per class): the median of --repeat runs.
- k x k: mlci's bootstrap as it was until 2026-12 (each resample's cells summed into the
  candidate's and the baseline's k x k confusion tables, then every metric from those):
  only --kxk-resamples resamples are timed; the total is extrapolated to --resamples. With
  many classes mlci now uses the influence function instead (the method is printed).
- naive: per resample, draw row indices with numpy and call sklearn's `accuracy_score` and
  `f1_score(average="macro")` for both models (two metrics, not all of them). Only
  --naive-resamples resamples are timed; the total is extrapolated to --resamples.

It prints the times, their ratios (naive / mlci, k x k / mlci) and the peak memory of the mlci path
(numpy's allocations as tracemalloc sees them). It asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, f1_score

from mlci.core import stats
from mlci.core.intervals import Interval
from mlci.core.stats import paired_difference_intervals
from mlci.predictions import Predictions


def synthetic(rows: int, classes: int, seed: int) -> tuple[Predictions, Predictions]:
    """Candidate and baseline predictions on the same rows, with correlated mistakes."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, rows)
    hard = rng.random(rows) < 0.15  # rows both models tend to get wrong
    candidate_right = np.where(hard, rng.random(rows) < 0.3, rng.random(rows) < 0.888)
    baseline_right = np.where(hard, rng.random(rows) < 0.25, rng.random(rows) < 0.874)
    labels = tuple(range(classes))

    def predictions(right: np.ndarray) -> Predictions:
        wrong = (y_true + rng.integers(1, classes, rows)) % classes
        return Predictions(y_true, np.where(right, y_true, wrong), None, labels, None)

    return predictions(candidate_right), predictions(baseline_right)


def time_mlci(
    candidate: Predictions, baseline: Predictions, resamples: int, repeat: int
) -> tuple[float, dict[str, Interval]]:
    """Median seconds of `repeat` runs of mlci's paired intervals, and the intervals."""
    times = []
    intervals: dict[str, Interval] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        intervals = paired_difference_intervals(
            candidate, baseline, "classification", resamples=resamples
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times), intervals


def peak_memory_mlci(candidate: Predictions, baseline: Predictions, resamples: int) -> int:
    """Bytes allocated at the peak of one run of mlci's paired intervals."""
    tracemalloc.start()
    paired_difference_intervals(candidate, baseline, "classification", resamples=resamples)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def time_kxk(candidate: Predictions, baseline: Predictions, resamples: int) -> float:
    """Seconds for `resamples` resamples of the joint table, scattered into k x k tables."""
    classes = np.union1d(candidate.y_true, np.union1d(candidate.y_pred, baseline.y_pred))
    k = len(classes)
    cells, counts = np.unique(
        (candidate.y_true * k + candidate.y_pred) * k + baseline.y_pred, return_counts=True
    )
    ours = [(index, str(index)) for index in range(k)]
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    chunk = max(1, (1 << 22) // max(len(cells), k * k))
    for done in range(0, resamples, chunk):
        draws = rng.multinomial(
            len(candidate), counts / len(candidate), min(chunk, resamples - done)
        )
        first = stats._scatter(draws, cells // k, k * k).reshape(-1, k, k)
        second = stats._scatter(draws, (cells // (k * k)) * k + cells % k, k * k)
        stats._confusion_metrics(first, ours)
        stats._confusion_metrics(second.reshape(-1, k, k), ours)
    return time.perf_counter() - started


def time_naive(candidate: Predictions, baseline: Predictions, resamples: int) -> float:
    """Seconds for `resamples` resamples of the naive loop (accuracy and macro F1 of both)."""
    rng = np.random.default_rng(0)
    rows = len(candidate)
    y_true, first, second = candidate.y_true, candidate.y_pred, baseline.y_pred
    started = time.perf_counter()
    for _ in range(resamples):
        index = rng.integers(0, rows, rows)
        truth = y_true[index]
        accuracy_score(truth, first[index]) - accuracy_score(truth, second[index])
        (
            f1_score(truth, first[index], average="macro", zero_division=0)
            - f1_score(truth, second[index], average="macro", zero_division=0)
        )
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--naive-resamples", type=int, default=10, help="timed, then scaled")
    parser.add_argument("--kxk-resamples", type=int, default=20, help="timed, then scaled")
    parser.add_argument("--repeat", type=int, default=3, help="runs of mlci (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    candidate, baseline = synthetic(args.rows, args.classes, args.seed)
    mlci_seconds, intervals = time_mlci(candidate, baseline, args.resamples, args.repeat)
    accuracy = intervals["accuracy"]
    peak = peak_memory_mlci(candidate, baseline, args.resamples)
    kxk_sample = time_kxk(candidate, baseline, args.kxk_resamples)
    kxk_seconds = kxk_sample / args.kxk_resamples * args.resamples
    naive_sample = time_naive(candidate, baseline, args.naive_resamples)
    naive_seconds = naive_sample / args.naive_resamples * args.resamples

    versions = (
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )
    print(f"{args.rows:,} rows, {args.classes} classes, {args.resamples:,} resamples ({versions})")
    print(
        f"mlci, paired intervals of {len(intervals)} count-based metrics: "
        f"{mlci_seconds:.3f} s (median of {args.repeat}, {accuracy.method})"
    )
    print(
        f"k x k tables per resample (mlci until 2026-12): {kxk_seconds:.1f} s "
        f"(extrapolated from {args.kxk_resamples} resamples: {kxk_sample:.2f} s), "
        f"ratio {kxk_seconds / mlci_seconds:,.0f}x"
    )
    print(
        f"naive, accuracy and macro F1 only: {naive_seconds:.1f} s "
        f"(extrapolated from {args.naive_resamples} resamples: {naive_sample:.2f} s)"
    )
    print(f"ratio naive / mlci: {naive_seconds / mlci_seconds:,.0f}x")
    print(f"peak memory of the mlci path: {peak / 2**20:.1f} MiB (tracemalloc)")
    print(
        f"accuracy difference, 95% interval: [{accuracy.low:+.4f}, {accuracy.high:+.4f}] "
        f"({accuracy.method})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
