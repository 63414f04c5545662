"""Run the user's training command: output streamed as it comes, timeout enforced."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mlci.errors import TrainingError, UsageError

_TAIL_LINES = 30
_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class TrainInfo:
    """What the training did: for the report and the registry's lineage."""

    command: str
    duration_s: float
    exit_code: int


def _shown(command: str | tuple[str, ...]) -> str:
    return command if isinstance(command, str) else " ".join(command)


def run_training(
    command: str | tuple[str, ...],
    *,
    cwd: Path,
    timeout_s: float,
    echo: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> TrainInfo:
    """Run `command` in `cwd`, echoing each output line; raise TrainingError on failure.

    A text command runs through the shell (so `python train.py && dvc push` works); a
    list runs as is. On timeout the whole process group is stopped, not just the shell.
    `on_line` sees every output line (e.g. to read what `dvc repro` did).
    """
    echo = echo if echo is not None else sys.stderr
    shown = _shown(command)
    child_env = {**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command,
            shell=isinstance(command, str),
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise UsageError(
            f"train.command: cannot run {shown!r}: {_shown(command).split()[0]} was not found; "
            f"check the command in mlci.yaml"
        ) from None
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    reader = threading.Thread(target=_pump, args=(process, tail, echo, on_line), daemon=True)
    reader.start()
    try:
        exit_code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise TrainingError(
            f"training timed out after {_minutes(timeout_s)} ({shown}); make it faster or "
            f"raise train.timeout_minutes in mlci.yaml",
            output_tail=tuple(tail),
        ) from None
    except KeyboardInterrupt:
        _stop(process)
        raise
    finally:
        # A child that outlives the command may hold the pipe open: don't wait forever.
        reader.join(timeout=_GRACE_SECONDS)
        assert process.stdout is not None
        process.stdout.close()
    duration = time.monotonic() - started
    if exit_code != 0:
        raise TrainingError(
            f"training failed: `{shown}` exited with code {exit_code} after {duration:.1f}s; "
            f"its last output is in the report",
            output_tail=tuple(tail),
        )
    return TrainInfo(command=shown, duration_s=duration, exit_code=exit_code)


def _pump(
    process: subprocess.Popen[bytes],
    tail: collections.deque[str],
    echo: TextIO,
    on_line: Callable[[str], None] | None,
) -> None:
    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        if on_line is not None:
            on_line(line)
        echo.write(f"  │ {line}\n")
        echo.flush()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group: SIGTERM, then SIGKILL after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"
