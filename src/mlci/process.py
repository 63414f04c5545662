"""Run a command in its own process group, under a deadline and a stall limit.

Shared by the training (`mlci.pipeline.train`) and `dvc pull` (`mlci.data`). The output is
read as it comes; any output, and any other sign of progress the caller reports through
`Activity.touch` (data arriving in DVC's cache), resets the stall clock. A command that
is stopped is stopped with all its children: the whole process group, not just the shell.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from pathlib import Path
from typing import TextIO

from mlci.core.redact import mask_text
from mlci.errors import TrainingError

# What a stopped command gets between SIGTERM and SIGKILL. A signalled mlci's whole
# teardown (this, the report, undoing a promotion) fits GitHub's 7.5 s after SIGINT on a
# cancelled job, and the 10 s of GitLab's runner and `docker stop`.
GRACE_SECONDS = 5.0
_LINGER_STOPPED = 1.0  # waiting for the last output of a stopped command
_POLL_S = 0.05
_CHUNK = 65536


class Activity:
    """When the command last showed progress (output, or what the caller saw move)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()


class Stopped(Exception):
    """The command was stopped: `reason` is "timeout" or "stall"; `seconds`: how long it ran."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds

    @property
    def stalled(self) -> bool:
        return self.reason == "stall"


def start(
    command: str | Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start `command` (a text runs through the shell) in a new process group.

    stdout and stderr come through one pipe, in the order written; stdin is closed.
    Raises FileNotFoundError when the program does not exist.
    """
    shell = isinstance(command, str)
    return subprocess.Popen(
        command if shell else list(command),
        shell=shell,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def watch(
    process: subprocess.Popen[bytes],
    *,
    timeout_s: float | None,
    stall_s: float | None = None,
    on_line: Callable[[bytes], None],
    activity: Activity | None = None,
    started: float | None = None,
) -> int:
    """Wait for `process` (from `start`) and return its exit code.

    Each output line goes to `on_line` (bytes, without the newline). Raises `Stopped`
    `timeout_s` seconds after `started` (default: now), or after `stall_s` seconds
    without activity; then, and on KeyboardInterrupt, the process group is stopped first.
    None turns a limit off.
    """
    started = time.monotonic() if started is None else started
    activity = activity or Activity()
    deadline = math.inf if timeout_s is None else started + timeout_s
    reader = threading.Thread(target=_pump, args=(process, activity, on_line), daemon=True)
    reader.start()
    linger = GRACE_SECONDS
    try:
        return _wait(process, deadline, stall_s, activity, started)
    except (Stopped, KeyboardInterrupt):
        stop(process)
        linger = _LINGER_STOPPED  # the teardown after a signal must fit the CI's grace
        raise
    finally:
        # A child that outlives the command may hold the pipe open: don't wait forever.
        reader.join(timeout=linger)
        assert process.stdout is not None
        process.stdout.close()


def _wait(
    process: subprocess.Popen[bytes],
    deadline: float,
    stall_s: float | None,
    activity: Activity,
    started: float,
) -> int:
    poll = 1.0 if stall_s is None else min(1.0, max(0.05, stall_s / 20))
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise Stopped("timeout", now - started)
        if stall_s is not None and now - activity.last >= stall_s:
            raise Stopped("stall", now - started)
        try:
            return process.wait(timeout=min(poll, deadline - now))
        except subprocess.TimeoutExpired:
            continue


def _pump(
    process: subprocess.Popen[bytes], activity: Activity, on_line: Callable[[bytes], None]
) -> None:
    stream = process.stdout
    assert isinstance(stream, io.BufferedReader)
    pending = b""
    # read1 returns what is there: output without a newline still counts as activity.
    for chunk in iter(lambda: stream.read1(_CHUNK), b""):
        activity.touch()
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            on_line(raw)
        if len(pending) > _CHUNK:  # a progress bar redrawn with carriage returns only
            on_line(pending)
            pending = b""
    if pending:
        on_line(pending)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process group: SIGTERM, then SIGKILL to whatever of it is left after
    GRACE_SECONDS. Every process of the group counts, not just the shell that leads it: a
    child left running keeps the GPU busy after mlci has gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    if not _group_ended(process, time.monotonic() + GRACE_SECONDS):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=GRACE_SECONDS)


def _group_ended(process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until no process of the group is left, or the deadline passes."""
    while True:
        process.poll()  # the leader, once reaped, no longer counts
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def elapsed(seconds: float) -> str:
    """A duration as it ran: `4.2 s`, `12.5 min`."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def minutes(seconds: float) -> str:
    """A configured limit as the user wrote it: `30 s`, `5 min`."""
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"


def echo_line(
    raw: bytes | str,
    tail: MutableSequence[str],
    echo: TextIO,
    secrets: tuple[str, ...],
    on_line: Callable[[str], None] | None = None,
) -> None:
    """One line of a training's output: kept in `tail`, shown to `on_line`, and echoed
    into the CI log with the job's secrets masked (a CI log is as public as the comment).
    The same for a training on the runner and one off it (mlci.remote.run)."""
    line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    line = line.rstrip("\r")
    tail.append(line)
    if on_line is not None:
        on_line(line)
    echo.write(f"  │ {mask_text(line, secrets)}\n")
    echo.flush()


def stopped_error(
    reason: str,
    *,
    shown: str,
    ran_s: float,
    timeout_s: float,
    stall_s: float | None,
    tail: Sequence[str],
) -> TrainingError:
    """The error of a training mlci stopped: `reason` is "timeout" or "stall"."""
    if reason == "stall":
        assert stall_s is not None
        message = (
            f"training stalled: no output for {minutes(stall_s)} "
            f"(train.stall_minutes), so it was stopped after {elapsed(ran_s)} ({shown}); its "
            f"last output, in the report, shows where it hung; print progress more often or "
            f"raise train.stall_minutes"
        )
    else:
        message = (
            f"training timed out after {minutes(timeout_s)} ({shown}); make it "
            f"faster or raise train.timeout_minutes in mlci.yaml"
        )
    return TrainingError(message, output_tail=tuple(tail), stopped_by=reason)


def failed_error(shown: str, exit_code: int, ran_s: float, tail: Sequence[str]) -> TrainingError:
    """The error of a training that ended with a non-zero exit code."""
    return TrainingError(
        f"training failed: `{shown}` exited with code {exit_code} after {ran_s:.1f}s; "
        f"its last output is in the report",
        output_tail=tuple(tail),
    )
