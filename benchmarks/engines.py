"""The same paired predictions summarised three ways: mlci in memory, DuckDB, Spark local.

Run from the repository root with the Python that has mlci, pyarrow, duckdb and pyspark
(and Java 17+ for Spark):

    .venv/bin/python benchmarks/engines.py [--rows 1000000] [--classes 10] [--no-spark]

It writes a candidate's and a baseline's Parquet predictions (y_true, y_pred, p_0..p_{k-1},
an id; the baseline's rows shuffled) into a temporary folder, then times, in one run:

- memory: `mlci.predictions.load_predictions` of both files, `join` by id, and
  `core.summary.summarize_classification` (what mlci does without an engine);
- duckdb: `scan.run.scan` with evaluate.engine: duckdb (the join in SQL);
- spark: the same with evaluate.engine: spark on local[2] (the session's start-up is
  timed apart, as a cluster's would be paid once).

It checks that the three summaries agree (counts exactly, sums to 1e-9) and prints the
times and their ratios to the in-memory path. It asserts nothing else.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlci.config import EvaluateConfig
from mlci.core.summary import ClassificationSummary, codes, summarize_classification
from mlci.predictions import join, load_predictions
from mlci.scan.run import scan


def write(folder: Path, rows: int, k: int, seed: int = 0) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, rows)
    ids = np.arange(rows)
    paths = []
    for name, skill in (("candidate", 2.0), ("baseline", 1.5)):
        logits = rng.normal(size=(rows, k)).astype(np.float64)
        logits[ids, y] += skill
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        order = rng.permutation(rows) if name == "baseline" else ids
        columns = {"id": ids[order], "y_true": y[order], "y_pred": p.argmax(axis=1)[order]}
        columns |= {f"p_{c}": p[order, c] for c in range(k)}
        path = folder / f"{name}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=100_000)
        paths.append(path)
    return paths[0], paths[1]


def in_memory(candidate: Path, baseline: Path) -> ClassificationSummary:
    joined = join(
        load_predictions(candidate, task="classification"),
        load_predictions(baseline, task="classification"),
    )
    one, other = joined.candidate, joined.baseline
    classes = np.asarray(one.classes)
    return summarize_classification(
        one.classes,
        codes(one.y_true, classes),
        codes(one.y_pred, classes),
        one.scores,
        baseline_predicted=codes(other.y_pred, classes),
        baseline_scores=other.scores,
    )


def agree(first: ClassificationSummary, second: object) -> bool:
    if not isinstance(second, ClassificationSummary):
        return False
    pairs = [(first.joint, second.joint), (first.joint_bins, second.joint_bins)]
    for one, other in pairs:
        if one is None or other is None:
            return one is other
        if not (
            np.array_equal(one.cells, other.cells) and np.array_equal(one.counts, other.counts)
        ):
            return False
    for one, other in ((first.candidate, second.candidate), (first.baseline, second.baseline)):
        if one is None or other is None:
            return one is other
        if not (
            np.array_equal(one.positives, other.positives)
            and np.array_equal(one.negatives, other.negatives)
            and np.array_equal(one.reliability.rows, other.reliability.rows)
            and np.array_equal(one.reliability.hits, other.reliability.hits)
            and np.allclose(one.reliability.sums, other.reliability.sums, rtol=1e-9)
        ):
            return False
    if first.moments is None or second.moments is None:
        return first.moments is second.moments
    return bool(np.allclose(first.moments.products, second.moments.products, rtol=1e-9))


def timed(what: str, action: object) -> tuple[float, object]:
    assert callable(action)
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    print(f"  {what}: {seconds:.2f} s", file=sys.stderr)
    return seconds, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"{args.rows:,} rows, {args.classes} classes, paired by id; Python "
        f"{platform.python_version()} on {platform.platform()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        candidate, baseline = write(Path(folder), args.rows, args.classes)
        rows: list[tuple[str, float, bool]] = []
        seconds, reference = timed("memory", lambda: in_memory(candidate, baseline))
        assert isinstance(reference, ClassificationSummary)
        rows.append(("mlci in memory (pyarrow, numpy)", seconds, True))
        duck = EvaluateConfig((), engine="duckdb")
        seconds, found = timed("duckdb", lambda: scan(duck, str(candidate), str(baseline)))
        rows.append(("DuckDB embedded", seconds, agree(reference, found.summary)))  # type: ignore[attr-defined]
        if not args.no_spark:
            from mlci.scan.spark import session_for

            started, session = timed("spark start", lambda: session_for("local[2]"))
            spark = EvaluateConfig((), engine="spark")
            seconds, found = timed("spark", lambda: scan(spark, str(candidate), str(baseline)))
            same = agree(reference, found.summary)  # type: ignore[attr-defined]
            rows.append((f"Spark local[2] (+{started:.1f} s start)", seconds, same))
            session.stop()  # type: ignore[attr-defined]
    base = rows[0][1]
    print(f"\n{'path':<40}{'seconds':>9}{'vs memory':>11}  same summary")
    for name, seconds, same in rows:
        print(f"{name:<40}{seconds:>9.2f}{seconds / base:>10.2f}x  {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
