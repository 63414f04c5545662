"""The same paired predictions summarised three ways, each in a process of its own: mlci's
streaming summaries, DuckDB and Spark local[2]; wall time per 1M rows and peak memory.

Run from the repository root with the Python that has mlci, pyarrow, duckdb and pyspark
(and Java 17+ for Spark):

    .venv/bin/python benchmarks/engines.py [--rows 1000000] [--classes 10] [--dir DIR]
        [--paths mlci,duckdb,spark] [--duckdb-memory-limit 1GB]
        [--spark-conf spark.driver.memory=4g ...] [--reuse]

It writes three Parquet files, in row groups of a million rows, one row group at a time
(the writer never holds more), into a temporary folder, or into DIR where they are kept
(and used again by a run with the same --rows and --classes):

- candidate.parquet: id, y_true, y_pred, p_0..p_{k-1}, the ids 0..N-1 in order;
- baseline.parquet: the baseline model's rows in the same order, without an id: mlci's
  streaming path pairs a baseline by row order (above evaluate.exact_rows it refuses two
  id columns, and asks for evaluate.engine to join them);
- baseline-by-id.parquet: the same baseline rows with their id, in the order
  id = (a * i + b) mod N (a coprime with N, about 0.618 N): every row group spans the
  whole id range, so the engines' join can neither pair rows by position nor skip row
  groups by their min/max, and no permutation is held in memory.

Every value of a row is a function of its id (a counter-based hash, splitmix64, of the id
and the column), so the rows can be written in any order, batch by batch, and the three
files agree row for row. Then each path runs in a subprocess of its own, which reports
its peak resident memory (its ru_maxrss; for Spark the JVM's VmHWM as well, the JVM being
a second process), the wall time of the summary, and the most disk its temporary folder
held (TMPDIR and the working folder of the child; SPARK_LOCAL_DIRS for Spark):

- mlci: `mlci.streaming.summarize` of candidate.parquet and baseline.parquet, what
  `mlci gate` computes above evaluate.exact_rows (record batches into `core.summary`);
- duckdb: `mlci.scan.run.scan` with evaluate.engine: duckdb, of candidate.parquet and
  baseline-by-id.parquet (the join in SQL), with mlci's settings of DuckDB;
- spark: the same with evaluate.engine: spark on local[2], in the session mlci starts
  (`scan.spark.session_for`, mlci's settings of Spark and then `--spark-conf`'s, as
  evaluate.spark.conf), started before the scan so that its start-up is timed apart, as
  a cluster's would be paid once; the scan runs in it. The JVM's heap is printed, to show
  that `spark.driver.memory` took (PYSPARK_SUBMIT_ARGS' --driver-memory would win).

It checks that the three summaries agree: counts exactly (the joint table, the score
histograms, the reliability bins, the paired coarse bins, the rows), sums (of the log
losses and their products, of the probabilities per reliability bin) to a relative 1e-9
(each adds in its own order). Then the metrics computed from them
(`core.summary_stats`, as the gate does), for both models: accuracy, f1_macro and
log_loss to a relative 1e-9, roc_auc within the stated `auc_bound` (gate.json's). All
three bin a probability p at min(floor(p * 1000), 999) in float64, so with equal
histograms their roc_auc are equal; the bound is how far that binned AUC may be from the
exact one, the same for the three. It prints the times and memory, and exits 1 when the
summaries or the metrics disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GROUP = 1_000_000  # rows per row group, and per batch written
PATHS = ("mlci", "duckdb", "spark")
METRICS = ("accuracy", "f1_macro", "log_loss", "roc_auc")
SKILL = {"candidate": 2.0, "baseline": 1.8}
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# -- the files ------------------------------------------------------------------------


def _uniform(keys: np.ndarray) -> np.ndarray:
    """A float64 in (0, 1) per uint64 key: splitmix64's finalizer, a counter-based RNG."""
    z = keys * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return np.asarray(((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53)


def rows_of(ids: np.ndarray, k: int, model: str) -> dict[str, np.ndarray]:
    """The rows of `ids` as `model` predicted them: y_true shared by both models, each
    model's probabilities a softmax of Gumbel noise plus its skill on the true class."""
    ids = ids.astype(np.uint64)
    streams = np.uint64(1 + 2 * k)  # y_true, then k columns of noise per model
    y_true = (_uniform(ids * streams) * k).astype(np.int64)
    first = 1 + k * list(SKILL).index(model)
    noise = np.arange(first, first + k, dtype=np.uint64)
    logits = -np.log(-np.log(_uniform(ids[:, None] * streams + noise)))
    logits[np.arange(len(ids)), y_true] += SKILL[model]
    logits -= logits.max(axis=1, keepdims=True)
    scores = np.exp(logits)
    scores /= scores.sum(axis=1, keepdims=True)
    columns = {"y_true": y_true, "y_pred": scores.argmax(axis=1)}
    return columns | {f"p_{c}": scores[:, c] for c in range(k)}


def shuffled(rows: int) -> tuple[int, int]:
    """(a, b) of the order id = (a * i + b) mod rows: a bijection, far from the identity."""
    a = max(1, round(rows * (math.sqrt(5) - 1) / 2))
    while math.gcd(a, rows) != 1:
        a += 1
    return a, rows // 3


def write(folder: Path, rows: int, k: int) -> dict[str, Path]:
    """candidate.parquet, baseline.parquet and baseline-by-id.parquet, a row group at a
    time; files already there with `rows` rows of `k` classes are kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b = shuffled(rows)
    files = {
        "candidate": ("candidate", True, False),
        "baseline": ("baseline", False, False),
        "baseline-by-id": ("baseline", True, True),
    }
    paths = {}
    for name, (model, with_id, by_id) in files.items():
        path = paths[name] = folder / f"{name}.parquet"
        if _written(path, rows, k):
            continue
        writer: Any = None
        for start in range(0, rows, GROUP):
            at = np.arange(start, min(start + GROUP, rows), dtype=np.int64)
            ids = (a * at + b) % rows if by_id else at
            columns = ({"id": ids} if with_id else {}) | rows_of(ids, k, model)
            table = pa.table(columns)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=GROUP)
        writer.close()
    return paths


def _written(path: Path, rows: int, k: int) -> bool:
    """Whether `path` is a whole file of `rows` rows and `k` classes (a run cut short
    leaves a file without its footer)."""
    import pyarrow.parquet as pq

    try:
        found = pq.ParquetFile(path)
    except (OSError, ValueError):  # absent, or no footer (pyarrow's ArrowInvalid)
        return False
    names = found.schema_arrow.names
    return found.metadata.num_rows == rows and f"p_{k - 1}" in names and f"p_{k}" not in names


# -- one path, in its own process -------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The engines' settings: evaluate.duckdb.memory_limit and evaluate.spark.conf."""

    memory_limit: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = ()

    def arguments(self) -> list[str]:
        """The command-line options that give a child process these settings."""
        found = ["--duckdb-memory-limit", self.memory_limit] if self.memory_limit else []
        for name, value in self.spark_conf:
            found += ["--spark-conf", f"{name}={value}"]
        return found


def child(path: str, folder: Path, settings: Settings) -> int:
    """Summarise the files in `folder` by `path`; write what was measured to
    folder/<path>.pickle."""
    candidate, spark_start, jvm_peak, heap = folder / "candidate.parquet", 0.0, 0.0, 0.0
    started = time.perf_counter()
    if path == "mlci":
        from mlci.streaming import summarize

        summary = summarize(candidate, folder / "baseline.parquet", task="classification")
        only = (0, 0)
    else:
        from mlci.config import EvaluateConfig
        from mlci.scan.run import scan

        session = None
        if path == "spark":
            from mlci.scan.spark import LOCAL, session_for

            # As scan would start it, with evaluate.spark.conf, but timed apart; scan then
            # runs in it, the active session (so evaluate.spark.conf is not set again).
            session = session_for(LOCAL, settings.spark_conf)
            spark_start = time.perf_counter() - started
            heap = session.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20
            started = time.perf_counter()
        evaluate = EvaluateConfig(
            (),
            engine=path,  # type: ignore[arg-type]
            duckdb_memory_limit=settings.memory_limit,
        )
        found = scan(evaluate, str(candidate), str(folder / "baseline-by-id.parquet"))
        summary, only = found.summary, (found.only_candidate, found.only_baseline)
        if session is not None:
            jvm_peak = _jvm_peak(session)
            session.stop()
    seconds = time.perf_counter() - started
    measured = {
        "summary": summary,
        "only": only,
        "seconds": seconds,
        "start": spark_start,
        "peak_mb": _peak(),
        "jvm_peak_mb": jvm_peak,
        "heap_mb": heap,
        "spark_conf": settings.spark_conf if path == "spark" else (),
    }
    (folder / f"{path}.pickle").write_bytes(pickle.dumps(measured))
    return 0


def _jvm_peak(session: Any) -> float:
    """The Spark JVM's peak resident memory, MB: the gateway process pyspark started."""
    return _peak(session.sparkContext._gateway.proc.pid)


def _peak(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM), MB. Its ru_maxrss would also hold the
    parent's peak, which Linux carries across exec (scale.py's probe process avoids it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Run:
    path: str
    wall: float  # the child process, start to exit
    seconds: float  # the summary itself
    start: float  # Spark's session, apart
    peak_mb: float
    jvm_peak_mb: float
    disk_mb: float  # the most its temporary folder held
    heap_mb: float  # the Spark JVM's largest heap (spark.driver.memory's)
    spark_conf: tuple[tuple[str, str], ...]  # the Spark session's evaluate.spark.conf
    summary: Any
    only: tuple[int, int]


def run(path: str, folder: Path, settings: Settings) -> Run:
    """`path` in a fresh process, its temporary files in a folder of its own."""
    scratch = folder.resolve() / f"tmp-{path}"  # TMPDIR must be absolute: cwd is scratch
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    env = os.environ | {"TMPDIR": str(scratch), "SPARK_LOCAL_DIRS": str(scratch)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", path]
    command += ["--dir", str(folder.resolve()), *settings.arguments()]
    disk = 0
    started = time.perf_counter()
    with (folder / f"{path}.log").open("w") as log:
        process = subprocess.Popen(command, cwd=scratch, env=env, stdout=log, stderr=log)
        while process.poll() is None:
            disk = max(disk, _disk(scratch))
            time.sleep(0.5)
    wall = time.perf_counter() - started
    if process.returncode:
        tail = (folder / f"{path}.log").read_text()[-4000:]
        raise SystemExit(f"{path} exited {process.returncode}:\n{tail}")
    shutil.rmtree(scratch, ignore_errors=True)
    return _measured(path, folder / f"{path}.pickle", wall, disk / 2**20)


def _measured(path: str, kept: Path, wall: float = math.nan, disk_mb: float = math.nan) -> Run:
    """`path`'s run from what its child wrote to `kept`; without `wall` and `disk_mb` (an
    earlier run's, --reuse), its process's time and disk unknown."""
    found = pickle.loads(kept.read_bytes())
    keys = ("seconds", "start", "peak_mb", "jvm_peak_mb", "summary", "only")
    known = {"heap_mb": 0.0, "spark_conf": ()}  # not kept by an earlier engines.py
    known |= {key: found[key] for key in (*keys, *known) if key in found}
    return Run(path, wall, disk_mb=disk_mb, **known)


def _disk(folder: Path) -> int:
    """Bytes on disk under `folder` (files vanish while counted: skipped)."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):  # a file removed since it was listed
                total += (Path(parent) / name).stat().st_blocks * 512
    return total


# -- the comparison -----------------------------------------------------------------------


def differences(first: Any, second: Any) -> list[str]:
    """What differs between two paired classification summaries: counts exactly, sums to
    a relative 1e-9; [] when they agree."""
    found = []
    if first.classes != second.classes:
        found.append(f"classes {first.classes} != {second.classes}")
    tables = {"joint table": (first.joint, second.joint)}
    tables["paired coarse bins"] = (first.joint_bins, second.joint_bins)
    for name, (one, other) in tables.items():
        if (one is None) != (other is None) or (
            one is not None
            and not (
                np.array_equal(one.cells, other.cells) and np.array_equal(one.counts, other.counts)
            )
        ):
            found.append(name)
    for side in ("candidate", "baseline"):
        one, other = getattr(first, side), getattr(second, side)
        if (one is None) != (other is None) or (
            one is not None
            and not (
                np.array_equal(one.positives, other.positives)
                and np.array_equal(one.negatives, other.negatives)
            )
        ):
            found.append(f"the {side}'s score histograms")
        elif one is not None and not (
            np.array_equal(one.reliability.rows, other.reliability.rows)
            and np.array_equal(one.reliability.hits, other.reliability.hits)
            and np.allclose(one.reliability.sums, other.reliability.sums, rtol=1e-9, atol=0)
        ):
            found.append(f"the {side}'s reliability bins")
    one, other = first.moments, second.moments
    if one is None or other is None:
        if one is not other:
            found.append("log loss sums")
    elif one.rows != other.rows:
        found.append(f"rows {one.rows:,} != {other.rows:,}")
    elif not (
        np.allclose(one.sums, other.sums, rtol=1e-9, atol=0)
        and np.allclose(one.products, other.products, rtol=1e-9, atol=0)
    ):
        found.append("log loss sums (beyond a relative 1e-9)")
    return found


def metrics_of(summary: Any) -> dict[str, dict[str, float]]:
    """Both models' metrics from a paired summary, as the gate computes them."""
    from mlci.core import summary_stats

    found = {}
    for side in ("candidate", "baseline"):
        one = summary.side(baseline=side == "baseline")
        values = summary_stats.compute_metrics(one)
        found[side] = {name: values[name] for name in METRICS}
        found[side]["auc_bound"] = summary_stats.approximation(one).auc_bound
    return found


def compare_metrics(runs: list[Run]) -> list[str]:
    """A line per metric and model; the disagreements appended after a line "DISAGREE"."""
    table = {run.path: metrics_of(run.summary) for run in runs}
    lines, wrong = [], []
    header = "".join(f"{run.path:>14}" for run in runs)
    lines.append(f"{'model':<10}{'metric':<10}{header}{'largest |diff|':>16}{'allowed':>11}")
    for side in ("candidate", "baseline"):
        bound = table[runs[0].path][side]["auc_bound"]
        for name in METRICS:
            values = [table[run.path][side][name] for run in runs]
            spread = max(values) - min(values)
            allowed = bound if name == "roc_auc" else 1e-9 * max(abs(v) for v in values)
            shown = "".join(f"{value:>14.8f}" for value in values)
            note = "auc_bound" if name == "roc_auc" else "rel 1e-9"
            lines.append(f"{side:<10}{name:<10}{shown}{spread:>16.2g}{allowed:>11.2g} ({note})")
            if spread > allowed:
                wrong.append(f"{side} {name}: {values} differ by {spread:.3g} > {allowed:.3g}")
    return lines + (["DISAGREE", *wrong] if wrong else [])


# -- the run ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--dir", type=Path, help="write the files here, and keep them")
    parser.add_argument("--paths", default=",".join(PATHS), help="e.g. mlci,duckdb")
    parser.add_argument(
        "--duckdb-memory-limit", help="evaluate.duckdb.memory_limit, e.g. 1GB (default DuckDB's)"
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="evaluate.spark.conf, one setting each (e.g. spark.driver.memory=4g), applied "
        "to the session the Spark path starts",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --dir: take a path's results from an earlier run's DIR/<path>.pickle where "
        "there is one (its process time and disk unknown), run the others",
    )
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    conf = [setting.partition("=") for setting in args.spark_conf]
    wrong = [name for name, equals, _ in conf if not equals or not name.startswith("spark.")]
    if wrong:
        parser.error(f"--spark-conf: {', '.join(wrong)}: give spark.NAME=VALUE")
    settings = Settings(args.duckdb_memory_limit, tuple((n, v) for n, _, v in conf))
    if args.child:
        return child(args.child, args.dir, settings)
    paths = [path.strip() for path in args.paths.split(",")]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown or not paths:
        parser.error(f"--paths: unknown {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        return _measure(args.dir, args.rows, args.classes, paths, settings, args.reuse)
    with tempfile.TemporaryDirectory() as scratch:
        return _measure(Path(scratch), args.rows, args.classes, paths, settings)


def _measure(
    folder: Path,
    rows: int,
    k: int,
    paths: list[str],
    settings: Settings,
    reuse: bool = False,
) -> int:
    import duckdb
    import pyspark

    print(
        f"{rows:,} rows, {k} classes, paired; Python {platform.python_version()}, duckdb "
        f"{duckdb.__version__}, pyspark {pyspark.__version__}, {os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    files = write(folder, rows, k)
    size = sum(path.stat().st_size for path in files.values()) / 2**30
    took = time.perf_counter() - started
    print(f"files: {size:.2f} GB in {folder}, written (or kept) in {took:.0f} s", flush=True)
    runs = []
    for path in paths:
        kept = folder / f"{path}.pickle"
        runs.append(
            _measured(path, kept) if reuse and kept.exists() else run(path, folder, settings)
        )
        print(f"  {path}: {runs[-1].wall:.1f} s", file=sys.stderr)
    millions = rows / 1e6
    print(
        f"\n{'path':<30}{'process':>9}{'summary':>9}{'per 1M rows':>13}{'peak memory':>24}"
        f"{'temp disk':>11}"
    )
    for found in runs:
        limit = settings.memory_limit
        duck = f"DuckDB ({limit})" if limit else "DuckDB"
        name = {"mlci": "mlci streaming", "duckdb": duck, "spark": "Spark local[2]"}
        label = name[found.path] + (f" (+{found.start:.1f} s start)" if found.start else "")
        memory = f"{found.peak_mb:,.0f} MB"
        if found.jvm_peak_mb:
            memory += f" + JVM {found.jvm_peak_mb:,.0f} MB"
        print(
            f"{label:<30}{found.wall:>8.1f}s{found.seconds:>8.1f}s"
            f"{found.seconds / millions:>12.2f}s{memory:>24}{found.disk_mb:>8,.0f} MB"
        )
    for found in runs:
        if found.heap_mb:
            given = ", ".join(f"{n}={v}" for n, v in found.spark_conf) or "none"
            print(
                f"{found.path}: evaluate.spark.conf {given}; its JVM's heap {found.heap_mb:,.0f} MB"
            )
    agree = True
    for found in runs:
        if found.only != (0, 0):
            print(f"{found.path}: rows of one model only: {found.only}")
            agree = False
    for found in runs[1:]:
        differ = differences(runs[0].summary, found.summary)
        verdict = "the same" if not differ else "DIFFERENT: " + ", ".join(differ)
        print(f"summary of {found.path} against {runs[0].path}: {verdict}")
        agree = agree and not differ
    lines = compare_metrics(runs)
    print("\n" + "\n".join(lines))
    return 0 if agree and "DISAGREE" not in lines else 1


if __name__ == "__main__":
    raise SystemExit(main())
