"""Per-slice gating: what evaluate.slices adds to the gate of a large evaluation.

Run from the repository root with the Python that has mlci installed:

    .venv/bin/python benchmarks/slices.py [--rows 1000000] [--classes 10] [--slices 200]

It writes two CSV predictions files (candidate and baseline, with a `segment` column of
--slices values and an `id`) and times, in the same process, the same gate work twice:

- without slices: read both files, pair them, and compute the intervals of every metric,
  paired with the baseline (`gate.resamples` 2000, as `mlci gate` does at 95%);
- with slices: the same, reading the `segment` column too, plus the rule `accuracy` and
  `f1_macro` judged in every slice (jackknife standard errors on the slices' count tables,
  Holm's correction).

It prints the median of --repeat runs of each, the seconds slices add and the ratio. The
issue's budget is under 2 s more; it asserts nothing (a time depends on the machine).
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlci.core import slices, stats
from mlci.core.gate import Binning, Rule, SliceSpec
from mlci.predictions import align, load_predictions

RULES = (
    Rule("accuracy", max_drop=0.01, confidence=0.95, slices=True),
    Rule("f1_macro", max_drop=0.01, confidence=0.95, slices=True),
)


def write_files(folder: Path, rows: int, classes: int, segments: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, rows)
    segment = rng.integers(0, segments, rows)
    hard = rng.random(rows) < 0.15
    for name, right in (("candidate", 0.888), ("baseline", 0.874)):
        correct = np.where(hard, rng.random(rows) < 0.3, rng.random(rows) < right)
        wrong = (truth + rng.integers(1, classes, rows)) % classes
        pred = np.where(correct, truth, wrong)
        with (folder / f"{name}.csv").open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["id", "y_true", "y_pred", "segment"])
            writer.writerows(
                zip(range(rows), truth.tolist(), pred.tolist(), segment.tolist(), strict=True)
            )


def gate_work(folder: Path, *, sliced: bool) -> float:
    """Seconds of what `mlci gate` does with the predictions, with or without slices."""
    started = time.perf_counter()
    columns = ("segment",) if sliced else ()
    candidate = load_predictions(folder / "candidate.csv", task="classification", columns=columns)
    baseline = load_predictions(folder / "baseline.csv", task="classification")
    candidate, baseline = align(candidate, baseline)
    stats.metric_intervals(candidate, "classification")
    stats.paired_difference_intervals(candidate, baseline, "classification")
    if sliced:
        assigned = slices.assign(SliceSpec((Binning("segment"),)), candidate.extra)
        metrics = tuple(rule.metric for rule in RULES)
        estimates = stats.slice_estimates(
            candidate, baseline, "classification", assigned.codes, len(assigned.labels), metrics
        )
        group = slices.SliceGroup(assigned, estimates, 100)
        slices.judge_slices(RULES, [group], "holm")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_files(folder, args.rows, args.classes, args.slices, args.seed)
        gate_work(folder, sliced=True)  # warm the file cache and the imports
        plain, sliced = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            plain.append(gate_work(folder, sliced=False))
            sliced.append(gate_work(folder, sliced=True))
    without, with_slices = statistics.median(plain), statistics.median(sliced)
    print(
        f"{args.rows:,} rows, {args.classes} classes, {args.slices} slices, 2 per-slice rules "
        f"(Python {platform.python_version()}, numpy {np.__version__})"
    )
    print(f"gate without slices: {without:.2f} s (median of {args.repeat})")
    print(f"gate with slices:    {with_slices:.2f} s (median of {args.repeat})")
    print(f"slices add {with_slices - without:.2f} s: ratio {with_slices / without:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
