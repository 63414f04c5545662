"""`mlci gate` on N rows of 10-class paired predictions: wall time per 1M rows, peak memory.

Writes two Parquet files (candidate, baseline) of `--rows` rows (default 100M) in row
groups of a million, never holding them in memory, then runs
`mlci gate --predictions ... --baseline-predictions ...` in a subprocess and reports its
wall time and its peak resident memory (ru_maxrss, read by a small probe process that
starts it, so the writer's memory is not counted). Above evaluate.exact_rows
(`--exact-rows`, default mlci's) the gate reads the files batch by batch into summaries.

    python benchmarks/stream.py --rows 10000000 [--dir /tmp/stream-bench] [--keep]

With `--compare-exact` the gate runs a second time with evaluate.exact_rows above the
rows (the exact, in-memory path) and the two gate.json files are compared: each metric's
difference, against roc_auc's stated bound (the others are exact on both paths).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CLASSES = 10
GROUP = 1_000_000


def _write(path: Path, rows: int, skill: float, seed: int) -> None:
    """y_true from one seed shared by both files, the model's scores from its own."""
    truth = np.random.default_rng(0)
    model = np.random.default_rng(seed)
    writer: pq.ParquetWriter | None = None
    for start in range(0, rows, GROUP):
        size = min(GROUP, rows - start)
        y_true = truth.integers(0, CLASSES, size)
        logits = model.standard_normal((size, CLASSES), dtype=np.float32)
        logits[np.arange(size), y_true] += skill
        scores = np.exp(logits)
        scores /= scores.sum(axis=1, keepdims=True)
        columns = {"y_true": y_true, "y_pred": scores.argmax(axis=1)}
        columns |= {f"p_{c}": scores[:, c].astype(np.float64) for c in range(CLASSES)}
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def _project(folder: Path, exact_rows: int | None) -> None:
    exact = f"  exact_rows: {exact_rows}\n" if exact_rows is not None else ""
    (folder / "mlci.yaml").write_text(
        "version: 1\nmodel:\n  name: stream-bench\nevaluate:\n  predictions: candidate.parquet\n"
        f"{exact}gate:\n  rules:\n    - {{metric: accuracy, max_drop: 0.01, confidence: 0.95}}\n"
        "    - {metric: roc_auc, max_drop: 0.01, confidence: 0.95}\n"
        "    - {metric: log_loss, max_rise_pct: 5, confidence: 0.95}\nreport:\n  plots: false\n"
    )


_PROBE = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def _gate(folder: Path) -> tuple[dict[str, Any] | None, float, float, int]:
    """gate.json, wall seconds and peak MB of `mlci gate` in `folder`, and its exit code."""
    command = [sys.executable, "-m", "mlci", "gate", "--json"]
    command += ["--predictions", "candidate.parquet", "--baseline-predictions", "baseline.parquet"]
    shutil.rmtree(folder / ".mlci", ignore_errors=True)
    # The gate runs under a small probe process: a child forked from this one, which held
    # the written rows, would report this process's peak as its own (Linux carries it
    # across fork and exec in ru_maxrss).
    peak_file = folder / "peak.txt"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(peak_file), *command],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    peak_mb = int(peak_file.read_text()) / 1024
    if done.returncode not in (0, 1):
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        return None, wall, peak_mb, done.returncode
    gate = json.loads((folder / ".mlci" / "out" / "gate.json").read_text())
    return gate, wall, peak_mb, done.returncode


def _compare(binned: dict[str, Any], exact: dict[str, Any]) -> None:
    bound = binned["rows"]["auc_bound"]
    worst = {}
    for name, value in exact["metrics"].items():
        other = binned["metrics"].get(name)
        if isinstance(value, float) and isinstance(other, float):
            worst[name] = abs(value - other)
    auc = worst.pop("roc_auc", None)
    print(f"roc_auc: |binned - exact| = {auc:.2g}, stated bound {bound:.2g}")
    name = max(worst, key=worst.__getitem__)
    print(f"other metrics: largest |summary - exact| = {worst[name]:.2g} ({name})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mlci-stream-bench"))
    parser.add_argument("--exact-rows", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--compare-exact", action="store_true", help="run the exact path too")
    args = parser.parse_args(argv)
    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    _project(folder, args.exact_rows)
    started = time.perf_counter()
    for name, skill, seed in (("candidate", 1.6, 1), ("baseline", 1.5, 2)):
        path = folder / f"{name}.parquet"
        if not path.exists() or pq.ParquetFile(path).metadata.num_rows != args.rows:
            _write(path, args.rows, skill, seed)
    generated = time.perf_counter() - started
    gate, wall, peak_mb, code = _gate(folder)
    if gate is None:
        return code
    millions = args.rows / 1e6
    print(
        f"mlci gate, {args.rows:,} rows x {CLASSES} classes, paired (Parquet, generated in "
        f"{generated:.0f} s)"
    )
    print(f"wall {wall:.1f} s, {wall / millions:.2f} s per 1M rows, peak memory {peak_mb:,.0f} MB")
    print(f"exit {code}; rows: {json.dumps(gate['rows'])[:300]}")
    if args.compare_exact:
        _project(folder, args.rows)
        exact, wall, peak_mb, code = _gate(folder)
        if exact is None:
            return code
        print(f"exact path: wall {wall:.1f} s, peak memory {peak_mb:,.0f} MB, exit {code}")
        _compare(gate, exact)
    if not args.keep:
        shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
