"""The registry seam: what mlci needs from a model registry."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from mlci.core.device import DeviceInfo, Where


class Unread(enum.Enum):
    UNREAD = "unread"


UNREAD: Literal[Unread.UNREAD] = Unread.UNREAD  # move_alias: read where the alias points


@dataclass(frozen=True)
class Lineage:
    """Where a model came from; recorded on every registered version."""

    commit: str
    branch: str | None
    dirty: bool
    ci: str
    event: str
    metrics: Mapping[str, float]
    gate_verdict: str
    gate_summary: str
    baseline: str | None
    run_url: str | None = None
    pr_number: int | None = None
    training_seconds: float | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    forced: bool = False  # promoted from outside registry.promote_on (--force-promote)
    device: DeviceInfo | None = None  # what it trained on
    where: Where | None = None  # where, when off the runner (train.on: ray | skypilot)
    data: Mapping[str, str] = field(default_factory=dict)  # dataset path -> DVC hash
    training_reused: bool = False  # `dvc repro` reused its cache instead of training


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    aliases: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    commit: str | None = None
    branch: str | None = None
    created_ms: int | None = None
    source: str | None = None
    gate_verdict: str | None = None
    run_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    model_format: str | None = None  # "mlflow", "sklearn", "pyfunc" or "files" (packaging.py)
    data: Mapping[str, str] = field(default_factory=dict)  # dataset path -> DVC hash
    dirty: bool | None = None  # registered with uncommitted changes; None: not recorded
    # Why the version is not to be trusted (left by a dead job or a failed attempt).
    problem: str | None = None

    @property
    def label(self) -> str:
        aliases = ", ".join(f"@{alias}" for alias in self.aliases)
        return f"{self.model} v{self.version}" + (f" ({aliases})" if aliases else "")


@dataclass(frozen=True)
class Inconsistency:
    """Something a failed or dead job left in the registry, and how `mlci registry repair`
    withdraws it: a version not to be trusted, or a run left RUNNING without a version."""

    model: str
    subject: str  # "v3", or "run 1a2b3c4d (clf@deadbeef)"
    problem: str
    version: str | None = None  # None: a run without a version
    run_id: str | None = None
    aliases: tuple[str, ...] = ()  # aliases on the version: it is not repaired while held

    @property
    def repair(self) -> str:
        """What repairing does."""
        if self.aliases:
            held = ", ".join(f"@{alias}" for alias in self.aliases)
            return f"nothing while {held} points at it: move the alias first (mlci rollback --to)"
        if self.version is None:
            return "mark the run FAILED"
        run = " and mark its run FAILED" if self.run_id else ""
        return f"delete {self.subject} (tag it mlci.failed where deleting is refused){run}"


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias, as the registry's history records it."""

    alias: str
    from_version: str | None
    to_version: str
    reason: str = "promote"  # "promote" or "rollback"
    when_ms: int | None = None
    commit: str | None = None  # the commit of the version moved to
    run_url: str | None = None  # the CI run that moved it


class Registry(Protocol):
    def by_alias(self, model: str, alias: str) -> ModelVersion | None:
        """The version `alias` points to, or None when the model or alias does not exist."""
        ...

    def register(
        self, model: str, artifact: Path, lineage: Lineage, *, predictions: Path | None = None
    ) -> tuple[ModelVersion, bool]:
        """Register `artifact` as a new version; idempotent per commit.

        `predictions` is stored with the version so later gates can pair their rows with
        it. Returns the version and whether it was created (False: this commit's version
        already existed and was reused).
        """
        ...

    def predictions(self, version: ModelVersion, dest: Path) -> Path | None:
        """Download the predictions stored with `version` into `dest`, or None."""
        ...

    def withdraw(self, version: ModelVersion, why: str) -> None:
        """Remove `version`, which this run registered but could not promote (a signal
        stopped it before the alias moved), as a failed registration is removed: deleted,
        or tagged failed where deleting is not allowed, and never reused."""
        ...

    def move_alias(
        self,
        model: str,
        alias: str,
        to: ModelVersion,
        *,
        reason: str = "promote",
        run_url: str | None = None,
        current: ModelVersion | Literal[Unread.UNREAD] | None = UNREAD,
    ) -> AliasMove:
        """Point `alias` at `to` and record the move in the history; returns the move.

        `current` is where the alias points now, when the caller has just read it.
        """
        ...

    def history(self, model: str, alias: str) -> list[AliasMove]:
        """Every recorded move of `alias`, oldest first."""
        ...

    def version(self, model: str, version: str) -> ModelVersion | None:
        """One version of `model`, or None when it does not exist."""
        ...

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of `model`, newest first, with aliases and metrics."""
        ...
