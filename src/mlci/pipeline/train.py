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
from typing import TYPE_CHECKING, TextIO

from mlci import process
from mlci.ci import CiContext
from mlci.config import Config
from mlci.console import Console
from mlci.data import repro
from mlci.errors import MlciError, UsageError
from mlci.pipeline.facts import Training
from mlci.pipeline.offrunner import launch_refused
from mlci.secrets import secret_values

if TYPE_CHECKING:
    from mlci.remote.base import Plan

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
    if settings.on != "local":
        return _train_off_runner(config, console, env, training)
    try:
        monitor = Monitor(settings.device, env, cwd=config.root)
    except MlciError as exc:
        return replace(training, failure=exc)
    console.step("train", f"{training.command} on {monitor.info().describe()} ({_limits(config)})")
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


def _train_off_runner(
    config: Config, console: Console, env: Mapping[str, str], training: Training
) -> Training:
    """train.on: ray | skypilot: the training on the engine's machine (mlci.remote.run)."""
    from mlci.remote.engines import open_engine
    from mlci.remote.run import run_remote

    settings = config.train
    assert settings is not None
    lines: list[str] = []
    started = time.monotonic()
    try:
        plan = _plan(config)
        engine = open_engine(settings, env, root=config.root)
        console.step(
            "train", f"{training.command} on {settings.on} as {plan.run_id} ({_limits(config)})"
        )
        where = run_remote(
            engine,
            plan,
            echo=console.stream,
            secrets=secret_values(env),
            on_line=lines.append if repro.is_repro(settings.command) else None,
        )
    except MlciError as exc:
        return replace(training, failure=exc)
    seconds = time.monotonic() - started
    reused = repro.read_repro_output(lines).describe()
    console.step("train", reused or f"done in {seconds:.1f} s on {settings.on}")
    return replace(training, seconds=seconds, reused=reused, where=where)


def _plan(config: Config) -> Plan:
    from mlci.remote.base import NAME_PREFIX, Plan
    from mlci.remote.entry import local_path

    settings = config.train
    assert settings is not None and settings.storage is not None
    if local_path(settings.storage) is not None and not Path(settings.storage).is_absolute():
        raise UsageError(
            f"train.storage: {settings.storage} is a relative path, which the remote machine "
            f"cannot see; give a folder both machines mount (an absolute path or file://) or a "
            f"bucket (s3://, gs://, az://)"
        )
    run_id = f"{NAME_PREFIX}{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.urandom(3).hex()}"
    return Plan(
        run_id=run_id,
        command=settings.command,
        workdir=config.root,
        env={"MLCI_RUN_ID": run_id, "MLCI_DEVICE": settings.device},
        resources=settings.resources,
        outputs=training_outputs(config),
        storage=settings.storage,
        timeout_s=settings.timeout_minutes * 60,
        stall_s=None if settings.stall_minutes is None else settings.stall_minutes * 60,
    )


def training_outputs(config: Config) -> tuple[str, ...]:
    """The files the training writes that mlci reads: what comes back from a training off
    the runner (the one list of them; a new file mlci reads goes here)."""
    found = [
        *config.evaluate.metrics,
        config.evaluate.predictions,
        config.report.training_log,
        *config.report.sections,
        config.registry.model,
    ]
    return tuple(dict.fromkeys(path for path in found if path))


def _limits(config: Config) -> str:
    settings = config.train
    assert settings is not None
    limits = f"timeout {settings.timeout_minutes:g} min"
    if settings.stall_minutes is not None:
        limits += f", stall {settings.stall_minutes:g} min"
    return limits


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
            on_line=lambda raw: process.echo_line(raw, tail, echo, secrets, on_line),
            started=started,
        )
    except process.Stopped as stopped:
        raise process.stopped_error(
            stopped.reason,
            shown=shown,
            ran_s=time.monotonic() - started,
            timeout_s=timeout_s,
            stall_s=stall_s,
            tail=tail,
        ) from None
    duration = time.monotonic() - started
    if exit_code != 0:
        raise process.failed_error(shown, exit_code, duration, tail)
    return TrainInfo(command=shown, duration_s=duration, exit_code=exit_code)
