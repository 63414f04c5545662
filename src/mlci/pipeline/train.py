"""The train stage: the user's training command, output streamed as it comes, limits enforced.

The training runs on the device mlci.gpu finds (and samples while it runs); what `dvc
repro` reused instead of training is read from its output.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from mlci import process
from mlci.ci import CiContext
from mlci.config import Config
from mlci.console import Console
from mlci.core.redact import mask_text
from mlci.data import repro
from mlci.errors import MlciError, TrainingError, UsageError
from mlci.pipeline.facts import Training
from mlci.pipeline.offrunner import launch_refused
from mlci.secrets import secret_values

_TAIL_LINES = 30


@dataclass(frozen=True)
class TrainInfo:
    """What the training did: for the report and the registry's lineage."""

    command: str
    duration_s: float
    exit_code: int


def train(
    config: Config, console: Console, env: Mapping[str, str], source: CiContext | None = None
) -> Training:
    """Run train.command; a training that failed or was stopped comes back with `failure`
    set (and what was learned until then: the command, the device)."""
    from mlci.gpu import Monitor

    settings = config.train
    assert settings is not None
    training = Training(command=_shown(settings.command))
    if (refused := launch_refused(config, source)) is not None:
        console.warn(refused)
        return replace(training, skipped=refused)
    try:
        monitor = Monitor(settings.device, env, cwd=config.root)
    except MlciError as exc:
        return replace(training, failure=exc)
    limits = f"timeout {settings.timeout_minutes:g} min"
    if settings.stall_minutes is not None:
        limits += f", stall {settings.stall_minutes:g} min"
    console.step("train", f"{training.command} on {monitor.info().describe()} ({limits})")
    lines: list[str] = []
    try:
        with monitor:
            info = run_training(
                settings.command,
                cwd=config.root,
                timeout_s=settings.timeout_minutes * 60,
                stall_s=None if settings.stall_minutes is None else settings.stall_minutes * 60,
                echo=console.stream,
                env=monitor.env,
                on_line=lines.append if repro.is_repro(settings.command) else None,
            )
    except MlciError as exc:
        return replace(training, device=monitor.info(), failure=exc)
    device = monitor.info()
    reused = repro.read_repro_output(lines).describe()
    notes: tuple[str, ...] = ()
    if device.idle:
        notes = (
            f"The GPU ({device.gpus[0].name}) was visible but idle during training (0% "
            f"utilisation in {device.samples} samples): the training probably ran on the CPU. "
            f"Check that it moves the model and data to the GPU and that its torch is a CUDA "
            f"build.",
        )
    done = f"done in {info.duration_s:.1f} s on {device.describe()}"
    console.step("train", reused or done)
    return replace(training, seconds=info.duration_s, device=device, reused=reused, notes=notes)


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
        child = process.start(command, cwd=cwd, env=child_env)
    except FileNotFoundError:
        raise UsageError(
            f"train.command: cannot run {shown!r}: {_shown(command).split()[0]} was not found; "
            f"check the command in mlci.yaml"
        ) from None
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    secrets = secret_values(child_env)  # a CI log is as public as the comment
    try:
        exit_code = process.watch(
            child,
            timeout_s=timeout_s,
            stall_s=stall_s,
            on_line=lambda raw: _echo(raw, tail, echo, secrets, on_line),
            started=started,
        )
    except process.Stopped as stopped:
        if stopped.stalled:
            assert stall_s is not None
            ran = process.elapsed(time.monotonic() - started)
            message = (
                f"training stalled: no output for {process.minutes(stall_s)} "
                f"(train.stall_minutes), so it was stopped after {ran} ({shown}); its last "
                f"output, in the report, shows where it hung; print progress more often or "
                f"raise train.stall_minutes"
            )
        else:
            message = (
                f"training timed out after {process.minutes(timeout_s)} ({shown}); make it "
                f"faster or raise train.timeout_minutes in mlci.yaml"
            )
        raise TrainingError(message, output_tail=tuple(tail), stopped_by=stopped.reason) from None
    duration = time.monotonic() - started
    if exit_code != 0:
        raise TrainingError(
            f"training failed: `{shown}` exited with code {exit_code} after {duration:.1f}s; "
            f"its last output is in the report",
            output_tail=tuple(tail),
        )
    return TrainInfo(command=shown, duration_s=duration, exit_code=exit_code)


def _echo(
    raw: bytes,
    tail: collections.deque[str],
    echo: TextIO,
    secrets: tuple[str, ...],
    on_line: Callable[[str], None] | None = None,
) -> None:
    line = raw.decode("utf-8", errors="replace").rstrip("\r")
    tail.append(line)
    if on_line is not None:
        on_line(line)
    echo.write(f"  │ {mask_text(line, secrets)}\n")
    echo.flush()
