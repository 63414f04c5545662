"""Flipped examples: what counting and listing them adds to the paired intervals.

Run from the repository root with the Python that has mlci installed:

    .venv/bin/python benchmarks/flipped.py [--rows 1000000] [--classes 10] [--repeat 3]

It makes a candidate and a baseline in memory (ids, 90% right, the candidate with
probabilities) and times, in the same process: the paired intervals of every metric
(`gate.resamples` 2000, the reference: the work a gate with baselines' predictions does
anyway), and the flipped examples (find the broken and fixed rows, McNemar's test, the
top 10, the table of flipped.csv). It prints the median of --repeat runs of each and the
ratio; the issue's budget is "well under a second" at 1M rows. It asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from mlci.core import stats
from mlci.core.flipped import Pairing, csv_table, find_flips, summarise
from mlci.core.predictions import Predictions


def _pair(rows: int, classes: int) -> tuple[Predictions, Predictions]:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, classes, rows)
    scores = rng.dirichlet(np.ones(classes), rows)
    candidate_pred = np.where(rng.random(rows) < 0.9, truth, scores.argmax(axis=1))
    baseline_pred = np.where(rng.random(rows) < 0.9, truth, rng.integers(0, classes, rows))
    labels = tuple(range(classes))
    ids = np.char.add("row", np.arange(rows).astype(str))
    candidate = Predictions(truth, candidate_pred, scores, labels, ids)
    baseline = Predictions(truth, baseline_pred, None, labels, ids)
    return candidate, baseline


def _median(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    candidate, baseline = _pair(args.rows, args.classes)

    def intervals() -> object:
        return stats.paired_difference_intervals(
            candidate, baseline, "classification", resamples=2000
        )

    def flipped() -> object:
        flips = find_flips(candidate, baseline, "classification")
        summarise(candidate, baseline, flips, Pairing(by_id=True), shown=10)
        return csv_table(candidate, baseline, flips)

    reference = _median(intervals, args.repeat)
    measured = _median(flipped, args.repeat)
    print(
        f"{args.rows:,} rows, {args.classes} classes "
        f"(Python {platform.python_version()}, numpy {np.__version__})"
    )
    print(f"paired intervals (reference): {reference:.2f} s (median of {args.repeat})")
    print(f"flipped examples:             {measured:.2f} s (median of {args.repeat})")
    print(f"ratio: {measured / reference:.2f}x the paired intervals")
    return 0


if __name__ == "__main__":
    sys.exit(main())
