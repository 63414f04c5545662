"""Start-up time of the mlci command line, measured against two references.

Run from the repository root with the Python that has mlci installed:

    .venv/bin/python benchmarks/startup.py [--runs N]

Each command runs in a fresh subprocess, once untimed (to warm the file cache and
write .pyc files), then N times; the table shows the median wall time of each and its
ratio to `python -c pass` (the interpreter alone) and to `python -c "import mlflow"`
(what mlci would cost if it imported MLflow on start-up). The .pyc files go to a
temporary folder (PYTHONPYCACHEPREFIX), written even where PYTHONDONTWRITEBYTECODE is
set: an installed mlci has them. Every command runs in a small project written for the
run, where `mlci gate` judges a few hundred rows of predictions against the baseline's
(files only: no registry, no plots), as on a small project's CI build; the metrics-only
row runs `mlci gate` in a second project, whose training writes metrics.json and no
predictions, against a baseline metrics file. It prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REFERENCE = "python -c pass"
MLFLOW = 'python -c "import mlflow"'
ROWS = 300  # rows of predictions the gate reads, the candidate's and the baseline's each
GATE_ARGS = ["gate", "--baseline-predictions", "baseline.csv"]
METRICS_GATE_ARGS = ["gate", "--baseline", "baseline.json"]
METRICS_GATE = "python -m mlci gate (metrics only)"  # runs in the metrics-only project
COMMANDS: dict[str, list[str]] = {
    REFERENCE: ["-c", "pass"],
    "python -m mlci --help": ["-m", "mlci", "--help"],
    "python -m mlci --version": ["-m", "mlci", "--version"],
    METRICS_GATE: ["-m", "mlci", *METRICS_GATE_ARGS],
    f"python -m mlci gate ({ROWS} rows)": ["-m", "mlci", *GATE_ARGS],
    MLFLOW: ["-c", "import mlflow"],
}
CONFIG = """\
version: 1
model:
  name: startup
evaluate:
  predictions: candidate.csv
gate:
  rules:
    - metric: accuracy
      max_drop: 0.05
report:
  plots: false
"""
METRICS_CONFIG = """\
version: 1
model:
  name: startup
evaluate:
  metrics: [metrics.json]
gate:
  rules:
    - metric: accuracy
      max_drop: 0.05
    - metric: log_loss
      max_rise_pct: 10
"""


def write_project(root: Path, rows: int = ROWS) -> None:
    """A git repository holding mlci.yaml and two predictions files of `rows` rows of two
    classes (id, y_true, y_pred, p_0, p_1): the candidate right on 90% of them, the
    baseline on 88%, so the gate passes."""
    (root / "mlci.yaml").write_text(CONFIG, encoding="utf-8")
    (root / ".gitignore").write_text(".mlci/\n", encoding="utf-8")
    for name, right in (("candidate.csv", 0.90), ("baseline.csv", 0.88)):
        draw = random.Random(7)  # the same labels in both files
        lines = ["id,y_true,y_pred,p_0,p_1"]
        for row in range(rows):
            label = draw.randint(0, 1)
            predicted = label if draw.random() < right else 1 - label
            confidence = round(0.5 + draw.random() / 2, 4)
            p_1 = confidence if predicted else round(1 - confidence, 4)
            lines.append(f"{row},{label},{predicted},{round(1 - p_1, 4)},{p_1}")
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    _commit(root)


def write_metrics_project(root: Path) -> None:
    """A git repository holding mlci.yaml (evaluate.metrics, two rules, plots left on),
    metrics.json as a training writes it (not committed) and baseline.json, the metrics
    of the model it replaces: the gate passes."""
    (root / "mlci.yaml").write_text(METRICS_CONFIG, encoding="utf-8")
    (root / ".gitignore").write_text(".mlci/\nmetrics.json\n", encoding="utf-8")
    for name, accuracy, log_loss in (("metrics.json", 0.91, 0.29), ("baseline.json", 0.9, 0.3)):
        metrics = f'{{"accuracy": {accuracy}, "log_loss": {log_loss}}}\n'
        (root / name).write_text(metrics, encoding="utf-8")
    _commit(root)


def _commit(root: Path) -> None:
    git = ["git", "-c", "user.name=mlci", "-c", "user.email=mlci@example.com"]
    git += ["-c", "commit.gpgsign=false"]  # the user's own settings must not stop the commit
    commit = ["commit", "-q", "--no-verify", "-m", "init"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], commit):
        subprocess.run([*git, *command], cwd=root, check=True, capture_output=True)


def child_environment(pycache: Path) -> dict[str, str]:
    """This environment, with bytecode written to and read from `pycache`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def time_once(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> float | None:
    """Seconds one run of `python ARGS` in `cwd` took, or None when it failed."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - started
    return elapsed if completed.returncode == 0 else None


def median_time(args: Sequence[str], runs: int, cwd: Path, env: Mapping[str, str]) -> float | None:
    """Median seconds of `runs` timed runs after one warm-up; None if any run failed."""
    if time_once(args, cwd, env) is None:
        return None
    times = [time_once(args, cwd, env) for _ in range(runs)]
    if any(t is None for t in times):
        return None
    return statistics.median(t for t in times if t is not None)


def _ms(seconds: float | None) -> str:
    return "failed" if seconds is None else f"{seconds * 1000:.0f} ms"


def _ratio(seconds: float | None, reference: float | None) -> str:
    if seconds is None or reference is None:
        return "—"
    return f"{seconds / reference:.2f}x"


def table(medians: dict[str, float | None]) -> list[str]:
    """The result as aligned text rows: command, median, ratio to each reference."""
    rows = [("command", "median", f"vs {REFERENCE}", f"vs {MLFLOW}")]
    for name, seconds in medians.items():
        rows.append(
            (
                name,
                _ms(seconds),
                _ratio(seconds, medians[REFERENCE]),
                _ratio(seconds, medians[MLFLOW]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        name, *numbers = row
        cells = [name.ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(numbers, widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return lines


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=_positive, default=7, help="timed runs per command (default: 7)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlci-startup-") as folder:
        project, metrics = Path(folder, "project"), Path(folder, "metrics")
        project.mkdir()
        write_project(project)
        metrics.mkdir()
        write_metrics_project(metrics)
        env = child_environment(Path(folder, "pycache"))
        medians = {
            name: median_time(command, args.runs, metrics if name == METRICS_GATE else project, env)
            for name, command in COMMANDS.items()
        }
    print(
        f"mlci start-up: median of {args.runs} runs each, after one warm-up run\n"
        f"Python {platform.python_version()} ({sys.executable}) on {platform.platform()}\n"
        f"gate: mlci {' '.join(GATE_ARGS)}, {ROWS} rows each, report.plots false\n"
        f"gate (metrics only): mlci {' '.join(METRICS_GATE_ARGS)}, evaluate.metrics only\n"
    )
    print("\n".join(table(medians)))
    if medians[MLFLOW] is None:
        print("\nimport mlflow failed: install it (pip install 'mlci[mlflow]') for that column.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
