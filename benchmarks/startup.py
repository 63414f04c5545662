"""Start-up time of the mlci command line, measured against two references.

Run from the repository root with the Python that has mlci installed:

    .venv/bin/python benchmarks/startup.py [--runs N]

Each command runs in a fresh subprocess, once untimed (to warm the file cache and
write .pyc files), then N times; the table shows the median wall time of each and its
ratio to `python -c pass` (the interpreter alone) and to `python -c "import mlflow"`
(what mlci would cost if it imported MLflow on start-up). It prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

REFERENCE = "python -c pass"
MLFLOW = 'python -c "import mlflow"'
COMMANDS: dict[str, list[str]] = {
    REFERENCE: ["-c", "pass"],
    "python -m mlci --help": ["-m", "mlci", "--help"],
    "python -m mlci --version": ["-m", "mlci", "--version"],
    MLFLOW: ["-c", "import mlflow"],
}


def time_once(args: Sequence[str]) -> float | None:
    """Seconds one run of `python ARGS` took, or None when it failed."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - started
    return elapsed if completed.returncode == 0 else None


def median_time(args: Sequence[str], runs: int) -> float | None:
    """Median seconds of `runs` timed runs after one warm-up; None if any run failed."""
    if time_once(args) is None:
        return None
    times = [time_once(args) for _ in range(runs)]
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
    medians = {name: median_time(command, args.runs) for name, command in COMMANDS.items()}
    print(
        f"mlci start-up: median of {args.runs} runs each, after one warm-up run\n"
        f"Python {platform.python_version()} ({sys.executable}) on {platform.platform()}\n"
    )
    print("\n".join(table(medians)))
    if medians[MLFLOW] is None:
        print("\nimport mlflow failed: install it (pip install 'mlci[mlflow]') for that column.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
