"""Evaluation at scale: `mlci gate` with both models' predictions against a plain script.

Run from the repository root with the Python that has mlci installed:

    .venv/bin/python benchmarks/scale.py [--rows 1000000] [--classes 10] [--keep DIR]

It writes a pair of Parquet prediction files (y_true, y_pred, p_0..p_K-1; the baseline a
bit worse) and times, each in a fresh subprocess, with its peak memory (the sum of the
peaks of its processes: `mlci gate` draws its PNGs in a worker process):

- the plain script: read both files with pyarrow into pandas, then scikit-learn's
  accuracy, macro F1, log loss, ROC AUC (one-vs-rest), confusion matrix, and `roc_curve`
  and `precision_recall_curve` for each class, for both models;
- `mlci gate --predictions cand.parquet --baseline base.json --baseline-predictions
  base.parquet`: metrics, intervals, paired intervals, every figure (PNGs included).

It prints both, and mlci's time and memory as a ratio of the script's (issue #19's target
at 1M rows and 10 classes: at most 0.15x the time, at most 1x the memory). It asserts
nothing: a ratio, not a time, is what to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

import mlci as mlci_module

_SCRIPT = """
import sys
import numpy as np
import pyarrow.parquet as pq
from sklearn import metrics

k = int(sys.argv[3])
for path in sys.argv[1:3]:
    frame = pq.read_table(path).to_pandas()
    y_true, y_pred = frame["y_true"].to_numpy(), frame["y_pred"].to_numpy()
    scores = frame[[f"p_{c}" for c in range(k)]].to_numpy()
    metrics.accuracy_score(y_true, y_pred)
    metrics.f1_score(y_true, y_pred, average="macro")
    metrics.log_loss(y_true, scores, labels=list(range(k)))
    metrics.roc_auc_score(y_true, scores, multi_class="ovr", labels=list(range(k)))
    metrics.confusion_matrix(y_true, y_pred, labels=list(range(k)))
    for c in range(k):
        metrics.roc_curve(y_true == c, scores[:, c])
        metrics.precision_recall_curve(y_true == c, scores[:, c])
"""

_CONFIG = """\
version: 1
model: {name: scale}
evaluate:
  predictions: cand.parquet
  task: classification
gate:
  rules:
    - {metric: accuracy, max_drop: 0.01}
    - {metric: f1_macro, max_drop: 0.01}
    - {metric: roc_auc, max_drop: 0.01}
report:
  plots: true
"""


def write_pair(folder: Path, rows: int, classes: int, seed: int = 0) -> None:
    """cand.parquet and base.parquet (float32 probabilities), base.json, mlci.yaml."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, rows)
    for name, signal in (("cand", 2.2), ("base", 2.0)):
        logits = rng.standard_normal((rows, classes), dtype=np.float32)
        logits[np.arange(rows), truth] += signal
        logits -= logits.max(axis=1, keepdims=True)
        scores = np.exp(logits)
        scores /= scores.sum(axis=1, keepdims=True)
        columns = {"y_true": truth, "y_pred": scores.argmax(axis=1)}
        columns |= {f"p_{c}": scores[:, c] for c in range(classes)}
        pq.write_table(pa.table(columns), folder / f"{name}.parquet")
        del logits, scores, columns
    (folder / "base.json").write_text(json.dumps({"accuracy": 0.0}), encoding="utf-8")
    (folder / "mlci.yaml").write_text(_CONFIG, encoding="utf-8")


_PROBE = """
import os, resource, subprocess, sys, time

def tree(root):
    \"\"\"root and its descendants (the gate's drawing worker), from each thread's list
    of children: cheaper than reading every process's stat every 20 ms.\"\"\"
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                with open(f"/proc/{pid}/task/{thread}/children") as file:
                    todo += [int(child) for child in file.read().split()]
            except OSError:
                pass
    return found

def command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except OSError:
        return b""

def high_water(pid):
    try:
        with open(f"/proc/{pid}/status") as file:
            return next(int(line.split()[1]) for line in file if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return 0

start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peaks = {}
while child.poll() is None:
    own = command(child.pid)
    for pid in tree(child.pid):
        # A child still running the gate's own program is a fork between fork and exec
        # (a subprocess starting): its pages are the gate's, not counted twice.
        if pid == child.pid or command(pid) != own:
            peaks[pid] = max(peaks.get(pid, 0), high_water(pid))
    time.sleep(0.02)
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(wall, use.ru_utime + use.ru_stime, max(sum(peaks.values()), use.ru_maxrss), child.returncode)
"""


def timed(
    command: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[float, float, float]:
    """Wall and CPU seconds and peak resident memory (MB) of `command`, in a fresh process.

    Each call runs in a subprocess of its own that runs `command`, so one measurement's
    peak never hides another's. The peak is the sum of each process's own peak (VmHWM,
    sampled every 20 ms) over the command and its children (`mlci gate`'s drawing
    worker): what they could hold at once, at most. A child caught between fork and exec
    (still the command's own program, sharing its pages) is not counted: it counted the
    gate's 75 MB at its start a second time in 3 runs of 22.
    """
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *command], cwd=cwd, env=env, capture_output=True, text=True
    )
    wall, cpu, peak, code = done.stdout.split()
    if code not in ("0", "1"):  # 1: the gate failed, a value like any other
        raise SystemExit(f"{' '.join(command)} exited {code}:\n{done.stderr}")
    return float(wall), float(cpu), int(peak) / 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="e.g. 10000000")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--only", choices=("script", "mlci"), help="time one side only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        write_pair(folder, args.rows, args.classes)
        print(f"wrote {args.rows:,} rows x 2 in {time.perf_counter() - start:.1f} s")
        script = [sys.executable, "-c", _SCRIPT, "cand.parquet", "base.parquet"]
        mlci = [sys.executable, "-m", "mlci", "gate", "--predictions", "cand.parquet"]
        mlci += ["--baseline", "base.json", "--baseline-predictions", "base.parquet"]
        sides = {"plain script": [*script, str(args.classes)], "mlci gate": mlci}
        if args.only:
            sides = {k: v for k, v in sides.items() if args.only in k}
        # Both sides with their bytecode, as installed packages have it (pip compiles them):
        # mlci's compiled first, where PYTHONDONTWRITEBYTECODE would recompile it each run.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        package = str(Path(mlci_module.__file__).parent)
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=env, check=True)
        results = {name: timed(command, folder, env) for name, command in sides.items()}
    _print(args.rows, args.classes, results)
    return 0


def _print(rows: int, classes: int, results: dict[str, tuple[float, float, float]]) -> None:
    import sklearn

    print(
        f"{rows:,} rows, {classes} classes, two models (Python {platform.python_version()}, "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs)"
    )
    print(f"{'':14}{'wall':>9}{'CPU':>9}{'peak memory':>13}")
    for name, (wall, cpu, peak) in results.items():
        print(f"{name:14}{wall:8.2f}s{cpu:8.2f}s{peak:10.0f} MB")
    if len(results) == 2:
        (s_wall, s_cpu, s_peak), (m_wall, m_cpu, m_peak) = results.values()
        ratios = f"{m_wall / s_wall:8.2f}x{m_cpu / s_cpu:8.2f}x{m_peak / s_peak:11.2f}x"
        print(f"{'mlci / script':14}{ratios}")


if __name__ == "__main__":
    sys.exit(main())
