"""The loop every engine goes through: a training off the runner under local training's rules.

`run_remote` launches the plan, polls the engine about once a second, echoes each new
line into the CI log (masked, as on the runner: mlci.process.echo_line), stops the job
at train.timeout_minutes (counted from the launch: waiting for a machine is the CI job's
time too) and after train.stall_minutes without output (counted once the job runs: a
cloud GPU may take minutes to come up), and raises the same TrainingError as a training
on the runner. Whatever happens (success, failure, a limit, Ctrl-C or a signal, a
failure of mlci) the engine's `teardown` runs. Then the outputs come back from
`<storage>/<run_id>/` into the project, for the evaluation.
"""

from __future__ import annotations

import collections
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from mlci import process
from mlci.errors import ExternalError, MlciError, TrainingError
from mlci.remote import entry
from mlci.remote.base import Engine, Plan, Progress, Where

POLL_S = 1.0
_TAIL_LINES = 30
_ENDED = ("succeeded", "failed", "stopped")


def run_remote(
    engine: Engine,
    plan: Plan,
    *,
    echo: TextIO,
    secrets: tuple[str, ...] = (),
    on_line: Callable[[str], None] | None = None,
    poll_s: float = POLL_S,
) -> Where:
    """Run `plan` on `engine`, bring its outputs back; raise TrainingError as local training."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    shown = plan.command if isinstance(plan.command, str) else " ".join(plan.command)
    started = time.monotonic()
    try:
        engine.launch(plan)
        ended = _watch(engine, plan, started, poll_s, lambda line: process.echo_line(
            line, tail, echo, secrets, on_line
        ))  # fmt: skip
    except _NeverStarted as stopped:
        _quietly(engine.stop)
        raise TrainingError(
            f"training timed out after {process.minutes(plan.timeout_s)} before it started "
            f"({shown}): {engine.name} had no machine with what train.resources asks "
            f"({_asked(plan)}) in that time; check train.resources against the cluster's "
            f"machines (a cluster that adds GPU machines on demand: raise "
            f"train.timeout_minutes to cover their start)",
            output_tail=tuple(tail),
            stopped_by=stopped.reason,
        ) from None
    except process.Stopped as stopped:
        _quietly(engine.stop)
        raise process.stopped_error(
            stopped.reason,
            shown=shown,
            ran_s=stopped.seconds,
            timeout_s=plan.timeout_s,
            stall_s=plan.stall_s,
            tail=tail,
        ) from None
    except BaseException:  # a failure, Ctrl-C, SIGTERM: the job must not outlive mlci
        _quietly(engine.stop)
        raise
    finally:
        _quietly(engine.teardown)
    done = _done(plan)
    if ended.state == "stopped":
        raise TrainingError(
            f"training stopped by {engine.name}, not by mlci ({shown}); see the engine's "
            f"reason in its last output",
            output_tail=tuple(tail),
        )
    code = ended.exit_code if ended.exit_code is not None else done.get("exit_code")
    if isinstance(code, int) and code != 0:
        raise process.failed_error(shown, code, time.monotonic() - started, tail)
    if ended.state == "failed":  # before the training ran, or its wrapper was killed
        raise TrainingError(
            f"training failed on {engine.name} without an exit code of `{shown}`: the job "
            f"ended before the training did (setting up its environment, or a lost machine); "
            f"the engine's reason is its last output, in the report",
            output_tail=tuple(tail),
        )
    _bring_back(plan)
    return _where(engine.where(), done)


def _watch(
    engine: Engine, plan: Plan, started: float, poll_s: float, line: Callable[[str], None]
) -> Progress:
    """Poll until the job ends; `process.Stopped` at a limit."""
    last = None  # when the last output came (or the job started running)
    while True:
        progress = engine.poll()
        now = time.monotonic()
        for text in progress.lines:
            line(text)
        if progress.lines or (last is None and progress.state != "pending"):
            last = now
        if progress.state in _ENDED:
            return progress
        if now - started >= plan.timeout_s:
            never = progress.state == "pending" and last is None
            raise (_NeverStarted if never else process.Stopped)("timeout", now - started)
        if plan.stall_s is not None and last is not None and now - last >= plan.stall_s:
            raise process.Stopped("stall", now - started)
        time.sleep(poll_s)


class _NeverStarted(process.Stopped):
    """The timeout came while the job still waited for a machine."""


def _asked(plan: Plan) -> str:
    wanted = plan.resources
    parts = [f"{wanted.gpus:g} GPU" + (f" {wanted.accelerator}" if wanted.accelerator else "")]
    if wanted.cpus is not None:
        parts.append(f"{wanted.cpus:g} CPU")
    if wanted.memory_gb is not None:
        parts.append(f"{wanted.memory_gb:g} GB")
    return ", ".join(parts)


def _quietly(step: Callable[[], None]) -> None:
    # Stopping and tearing down go on whatever happened before; a failure here must not
    # hide the reason the run ended (the engine's backstop covers what is left).
    with contextlib.suppress(MlciError, OSError):
        step()


def _done(plan: Plan) -> dict[str, object]:
    """done.json, which the wrapper wrote next to the outputs; {} when there is none."""
    try:
        text = entry.read_text(entry.join(_run_folder(plan), entry.DONE))
    except (OSError, RuntimeError):
        return {}
    with contextlib.suppress(ValueError):
        data = json.loads(text or "{}")
        return data if isinstance(data, dict) else {}
    return {}


def _bring_back(plan: Plan) -> None:
    folder = _run_folder(plan)
    for name in plan.outputs:
        try:
            entry.fetch(entry.join(folder, name), plan.workdir / name)
        except (OSError, RuntimeError) as exc:
            raise ExternalError(
                f"cannot bring {name} back from {folder} (train.storage): {exc}; check that "
                f"the runner can read train.storage"
            ) from None


def _run_folder(plan: Plan) -> str:
    return entry.join(plan.storage, plan.run_id)


def _where(where: Where, done: dict[str, object]) -> Where:
    gpu, minutes = done.get("gpu"), done.get("minutes")
    if isinstance(gpu, str):
        where = replace(where, accelerator=gpu)
    if isinstance(minutes, int | float) and where.minutes is None:
        where = replace(where, minutes=float(minutes))
    return where
