"""The engine for `train.on`: a table from its value to the function that opens it.

Each engine module is imported only when a configuration names it, so a runner that
trains locally (or through another engine) loads nothing of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.errors import UsageError

if TYPE_CHECKING:
    from mlci.config import TrainConfig
    from mlci.remote.base import Engine

Opener = Callable[["TrainConfig", Mapping[str, str], Path], "Engine"]


def _ray(train: TrainConfig, env: Mapping[str, str], root: Path) -> Engine:
    from mlci.remote.ray import RayEngine

    assert train.ray is not None, "train.on: ray comes with train.ray (config.py)"
    return RayEngine(train.ray, env, root=root)


def _skypilot(train: TrainConfig, env: Mapping[str, str], root: Path) -> Engine:
    from mlci.remote.skypilot import SkyPilotEngine

    assert train.skypilot is not None, "train.on: skypilot comes with train.skypilot (config.py)"
    return SkyPilotEngine(train.skypilot)


# train.on -> its opener
ENGINES: dict[str, Opener] = {
    "ray": _ray,
    "skypilot": _skypilot,
}


def open_engine(train: TrainConfig, env: Mapping[str, str], *, root: Path) -> Engine:
    """The engine that runs a training with `train.on` (never "local"); `root`: the project."""
    opener = ENGINES.get(train.on)
    if opener is None:
        raise UsageError(
            f"train.on: {train.on} has no engine in this mlci; use one of {', '.join(ENGINES)}"
        )
    return opener(train, env, root)
