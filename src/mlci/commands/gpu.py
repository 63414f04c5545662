"""`mlci gpu list` and `mlci gpu down`: what mlci launched on a cloud GPU engine and is alive."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from mlci.config import Config, load_config, locate
from mlci.errors import EXIT_OK, UsageError
from mlci.remote.base import NAME_PREFIX, Engine, Launched
from mlci.remote.engines import open_engine


def gpu_list_command(*, config: Path | None, as_json: bool) -> int:
    """List the jobs and clusters named mlci-… that are alive on train.on's engine."""
    engine = _engine(load_config(locate(config)))
    found = engine.launched()
    if as_json:
        payload = {"engine": engine.name, "launched": [asdict(item) for item in found]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    elif not found:
        sys.stdout.write(f"{engine.name}: nothing of mlci's is alive\n")
    else:
        sys.stdout.write("".join(f"{_line(item)}\n" for item in found))
    return EXIT_OK


def gpu_down_command(*, config: Path | None, name: str | None, every: bool, apply: bool) -> int:
    """Remove NAME, or with `every` all of `gpu list`; only says what it would do without
    `apply`."""
    if (name is None) == (not every):
        raise UsageError("mlci gpu down: give a NAME from `mlci gpu list`, or --all")
    if name is not None and not name.startswith(NAME_PREFIX):
        raise UsageError(f"mlci gpu down: {name} was not launched by mlci (no {NAME_PREFIX})")
    engine = _engine(load_config(locate(config)))
    alive = engine.launched()
    chosen = [item for item in alive if every or item.name == name]
    if name is not None and not chosen:
        raise UsageError(f"mlci gpu down: {name} is not alive on {engine.name} (`mlci gpu list`)")
    for item in chosen:
        if apply:
            engine.down(item.name)
        sys.stdout.write(f"{'down' if apply else 'would take down'}: {_line(item)}\n")
    if not chosen:
        sys.stdout.write(f"{engine.name}: nothing of mlci's is alive\n")
    elif not apply:
        sys.stdout.write("Nothing changed: `mlci gpu down ... --yes` does it.\n")
    return EXIT_OK


def _engine(config: Config) -> Engine:
    if config.train is None or config.train.on == "local":
        raise UsageError(
            "train.on is local in mlci.yaml: mlci launches nothing off the runner; set "
            "train.on: ray or skypilot (docs/gpu.md)"
        )
    return open_engine(config.train, os.environ, root=config.root)


def _line(item: Launched) -> str:
    since = f" since {item.started}" if item.started else ""
    return f"{item.engine} {item.kind} {item.name}: {item.state}{since}"
