"""Coverage of the 95% intervals of count-based classification metrics, in simulation.

Run from the repository root with the Python that has mlci installed:

    .venv/bin/python benchmarks/coverage.py [--repetitions 1000] [--resamples 1000]

Each repetition draws a dataset whose true metrics are known: y_true uniform over k classes;
per row, the candidate is right with probability 0.7998 and the baseline 0.7804, their
mistakes correlated (15% of the rows are hard for both); a wrong label is any other class,
uniformly. By symmetry every class's precision, recall and F1 then equal the model's
probability of being right, so every count-based metric (accuracy, balanced accuracy, the
macro, micro and weighted averages, each class's) has that true value, and every paired
difference is 0.0194. It prints, for each method (`bootstrap`, `normal (influence
function)`) and each setting (10, 100 and 1,000 classes), the share of intervals that hold
the true value: for the candidate alone and for the paired difference. It asserts nothing;
tests/core/test_count_intervals.py runs a small version with tolerant bounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlci.core.stats import CountMethod, count_intervals, count_table

CANDIDATE_RIGHT = 0.15 * 0.30 + 0.85 * 0.888
BASELINE_RIGHT = 0.15 * 0.25 + 0.85 * 0.874
SHOWN = ("accuracy", "balanced_accuracy", "f1_macro", "precision_weighted", "per class")


@dataclass(frozen=True)
class Setting:
    classes: int
    rows: int
    method: CountMethod
    paired: bool


def dataset(
    rng: np.random.Generator, classes: int, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y_true, the candidate's and the baseline's labels (class indices)."""
    true = rng.integers(0, classes, rows)
    hard = rng.random(rows) < 0.15
    labels = []
    for hard_right, easy_right in ((0.30, 0.888), (0.25, 0.874)):
        right = np.where(hard, rng.random(rows) < hard_right, rng.random(rows) < easy_right)
        labels.append(np.where(right, true, (true + rng.integers(1, classes, rows)) % classes))
    return true, labels[0], labels[1]


def coverage(
    setting: Setting, repetitions: int, *, resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """The share of 95% intervals that hold the true value, per metric in SHOWN ("per
    class": over every class's precision, recall and F1)."""
    rng = np.random.default_rng(seed)
    truth = CANDIDATE_RIGHT - BASELINE_RIGHT if setting.paired else CANDIDATE_RIGHT
    classes = np.arange(setting.classes)
    hits: dict[str, list[float]] = {name: [] for name in SHOWN}
    for repetition in range(repetitions):
        true, candidate, baseline = dataset(rng, setting.classes, setting.rows)
        table = count_table(classes, true, candidate, baseline if setting.paired else None)
        intervals = count_intervals(
            table, resamples=resamples, seed=repetition, method=setting.method
        )
        held = {name: interval.contains(truth) for name, interval in intervals.items()}
        for name in SHOWN[:-1]:
            hits[name].append(float(held[name]))
        own = [held[name] for name in held if "." in name]
        hits["per class"].append(sum(own) / len(own))
    return {name: float(np.mean(values)) for name, values in hits.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000, help="of the bootstrap")
    parser.add_argument("--rows-10", type=int, default=5_000, help="rows with 10 classes")
    parser.add_argument("--rows-100", type=int, default=20_000, help="with 100 classes")
    parser.add_argument("--rows-1000", type=int, default=200_000, help="with 1,000 classes")
    parser.add_argument(
        "--bootstrap-repetitions-1000",
        type=int,
        default=40,
        help="the bootstrap of a 1,000-class table takes seconds: fewer repetitions",
    )
    args = parser.parse_args(argv)
    print(f"95% intervals; share holding the true value ({', '.join(SHOWN)})")
    for classes, rows in ((10, args.rows_10), (100, args.rows_100), (1000, args.rows_1000)):
        for method in ("bootstrap", "normal (influence function)"):
            repetitions = args.repetitions
            if classes == 1000 and method == "bootstrap":
                repetitions = min(repetitions, args.bootstrap_repetitions_1000)
            for paired in (False, True):
                started = time.perf_counter()
                shares = coverage(
                    Setting(classes, rows, method, paired), repetitions, resamples=args.resamples
                )
                seconds = time.perf_counter() - started
                shown = "  ".join(f"{shares[name]:.3f}" for name in SHOWN)
                kind = "paired" if paired else "single"
                print(
                    f"{classes:>5} classes {rows:>9,} rows  {method:<28} {kind:<6} "
                    f"{repetitions:>5} reps  {shown}  ({seconds:.0f} s)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
