"""Run the user's training command: output streamed as it comes, timeout enforced."""

from __future__ import annotations

import collections
import io
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
    stall_s: float | None = None,
    echo: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> TrainInfo:
    """Run `command` in `cwd`, echoing each output line; raise TrainingError on failure.

    A text command runs through the shell (so `python train.py && dvc push` works); a
    list runs as is. On timeout, or after `stall_s` seconds without any output, the whole
    process group is stopped, not just the shell.
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
    activity = _Activity(time.monotonic())
    reader = threading.Thread(
        target=_pump, args=(process, tail, echo, activity, on_line), daemon=True
    )
    reader.start()
    try:
        exit_code = _wait(process, started + timeout_s, stall_s, activity)
    except _Stopped as stopped:
        _stop(process)
        if stopped.stalled:
            assert stall_s is not None
            ran = _elapsed(time.monotonic() - started)
            message = (
                f"training stalled: no output for {_minutes(stall_s)} (train.stall_minutes), "
                f"so it was stopped after {ran} ({shown}); its last output, in the report, "
                f"shows where it hung; print progress more often or raise train.stall_minutes"
            )
        else:
            message = (
                f"training timed out after {_minutes(timeout_s)} ({shown}); make it faster or "
                f"raise train.timeout_minutes in mlci.yaml"
            )
        raise TrainingError(message, output_tail=tuple(tail), stopped_by=stopped.reason) from None
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


@dataclass
class _Activity:
    """When the training last wrote anything (a progress bar's carriage return counts)."""

    last_output: float


class _Stopped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stalled = reason == "stall"


def _wait(
    process: subprocess.Popen[bytes],
    deadline: float,
    stall_s: float | None,
    activity: _Activity,
) -> int:
    """The exit code; raises _Stopped at the deadline or after stall_s without output."""
    poll = 1.0 if stall_s is None else min(1.0, max(0.05, stall_s / 20))
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise _Stopped("timeout")
        if stall_s is not None and now - activity.last_output >= stall_s:
            raise _Stopped("stall")
        try:
            return process.wait(timeout=min(poll, deadline - now))
        except subprocess.TimeoutExpired:
            continue


def _pump(
    process: subprocess.Popen[bytes],
    tail: collections.deque[str],
    echo: TextIO,
    activity: _Activity,
    on_line: Callable[[str], None] | None = None,
) -> None:
    stream = process.stdout
    assert isinstance(stream, io.BufferedReader)
    pending = b""
    # read1 returns what is there: output without a newline still counts as activity.
    for chunk in iter(lambda: stream.read1(65536), b""):
        activity.last_output = time.monotonic()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            _echo(raw, tail, echo, on_line)
        if len(pending) > 65536:  # a progress bar redrawn with carriage returns only
            _echo(pending, tail, echo, on_line)
            pending = b""
    if pending:
        _echo(pending, tail, echo, on_line)


def _echo(
    raw: bytes,
    tail: collections.deque[str],
    echo: TextIO,
    on_line: Callable[[str], None] | None = None,
) -> None:
    line = raw.decode("utf-8", errors="replace").rstrip("\r")
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


def _elapsed(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"
