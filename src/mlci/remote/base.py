"""What an engine that runs the training off the runner must do for mlci.

The CI job stays on a cheap runner; the training runs on a machine the engine (Ray,
SkyPilot) provides for that run. Whatever the engine, the contract is local training's:
the project's files go up, the output streams into the CI log as it comes, the timeout
and stall limits apply, the exit code comes back, and the files mlci reads come back to
the runner (through `train.storage`) before the evaluation. Whatever happens, nothing the
run launched is left running: `teardown` runs on success, failure, timeout, stall and
SIGINT/SIGTERM, and every launch sets the engine's own backstop (autostop/autodown) for
a crash of mlci itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from mlci.config import Resources

# Where the training ran is a fact of the report (core), so it lives there; engines build it.
from mlci.core.device import Where as Where

State = Literal["pending", "running", "succeeded", "failed", "stopped"]
# Every name mlci gives a job or a cluster starts with this: how `mlci doctor` and
# `mlci gpu down` find what mlci launched, and only that.
NAME_PREFIX = "mlci-"


@dataclass(frozen=True)
class Plan:
    """One training to run off the runner."""

    run_id: str  # NAME_PREFIX + a unique part: the job's / cluster's name
    command: str | tuple[str, ...]
    workdir: Path  # the project: its code and the data pulled on the runner go up from here
    env: Mapping[str, str]  # for the training, besides the engine's own; never a secret
    resources: Resources
    outputs: tuple[str, ...]  # paths relative to workdir the training writes and mlci reads
    storage: str  # train.storage: the outputs come back through <storage>/<run_id>/
    timeout_s: float
    stall_s: float | None


@dataclass(frozen=True)
class Progress:
    """What the engine says since the last poll: new output lines, the state, the exit
    code once the training has ended (None while it runs, or when the engine cannot tell)."""

    lines: tuple[str, ...]
    state: State
    exit_code: int | None = None


@dataclass(frozen=True)
class Launched:
    """A job or a cluster mlci launched that is still alive (`mlci doctor`, `mlci gpu down`)."""

    engine: str
    name: str
    kind: Literal["job", "cluster"]
    state: str  # as the engine says it
    started: str | None = None  # ISO 8601, where known


class Engine(Protocol):
    """One engine, for one training (`launch` is called once)."""

    name: str

    def launch(self, plan: Plan) -> None:
        """Bring up what the run needs and start the training; raise ExternalError (the
        engine cannot be reached, refused the request) or UsageError (the request is
        wrong: the fix is in mlci.yaml)."""

    def poll(self) -> Progress:
        """New output and the state; called about once a second until the state is final."""

    def stop(self) -> None:
        """Stop the training now (timeout, stall, signal); idempotent."""

    def teardown(self) -> None:
        """Remove what `launch` brought up; idempotent, must fit a cancelled CI job's grace
        (a few seconds: start the removal and let the engine's backstop finish it)."""

    def where(self) -> Where:
        """Where it ran, as far as the engine knows."""

    def launched(self) -> list[Launched]:
        """The jobs and clusters named NAME_PREFIX… that are alive, for this config."""

    def down(self, name: str) -> None:
        """Remove one of `launched()`."""
