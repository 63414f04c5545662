"""`mlci registry show|history|repair` and `mlci rollback`: the registry's versions and aliases."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from mlci.commands.summary import plain
from mlci.config import load_config, locate
from mlci.console import columns
from mlci.errors import EXIT_OK, UsageError
from mlci.registry import open_registry
from mlci.registry.base import AliasMove, Inconsistency, ModelVersion
from mlci.registry.mlflow import redact_uri


def registry_show_command(*, config: Path | None, as_json: bool) -> int:
    loaded = load_config(locate(config))
    registry = open_registry(loaded, os.environ)
    versions = registry.versions(loaded.model_name)
    if as_json:
        payload = {
            "model": loaded.model_name,
            "tracking_uri": redact_uri(registry.tracking_uri),
            "versions": [_version_json(v) for v in versions],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_OK
    if not versions:
        where = redact_uri(registry.tracking_uri)
        sys.stdout.write(
            f"{loaded.model_name}: no versions registered yet in {where}\n"
            f"A passing `mlci run` on a branch in registry.promote_on registers the first one.\n"
        )
        return EXIT_OK
    sys.stdout.write(f"{loaded.model_name} in {redact_uri(registry.tracking_uri)}\n")
    gated = [rule.metric for rule in loaded.gate.rules]
    recorded = {name for v in versions for name in v.metrics}
    metric_names = [name for name in dict.fromkeys(gated) if name in recorded]
    metric_names += sorted(recorded - set(metric_names))
    metric_names = metric_names[:4]
    rows = [("version", "aliases", "commit", "branch", "registered", *metric_names)]
    for v in versions:
        rows.append(
            (
                v.version,
                ", ".join(f"@{a}" for a in v.aliases) or "—",
                (v.commit or "—")[:10] + (" (dirty)" if v.dirty else ""),
                v.branch or "—",
                _when(v.created_ms),
                *(plain(v.metrics.get(name)) for name in metric_names),
            )
        )
    sys.stdout.write("\n".join(columns(rows)) + "\n")
    if any(v.dirty for v in versions):
        sys.stdout.write("(dirty): registered from a work tree with uncommitted changes\n")
    found = registry.inconsistencies(loaded.model_name, versions)
    for item in found:
        sys.stdout.write(f"! {item.subject}: {item.problem}\n")
    if found:
        sys.stdout.write(REPAIR_HINT + "\n")
    return EXIT_OK


REPAIR_HINT = "repair: `mlci registry repair` shows what it would change; `--yes` does it"


def registry_repair_command(*, config: Path | None, apply: bool, as_json: bool) -> int:
    """Withdraw what `mlci registry show` marks; only says what it would do without `apply`."""
    loaded = load_config(locate(config))
    registry = open_registry(loaded, os.environ)
    found = registry.inconsistencies(loaded.model_name)
    done = [registry.repair(item) if apply else None for item in found]
    if as_json:
        payload = {
            "model": loaded.model_name,
            "tracking_uri": redact_uri(registry.tracking_uri),
            "applied": apply,
            "items": [_repair_json(item, did) for item, did in zip(found, done, strict=True)],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_OK
    where = f"{loaded.model_name} in {redact_uri(registry.tracking_uri)}"
    if not found:
        sys.stdout.write(f"{where}: nothing to repair\n")
        return EXIT_OK
    sys.stdout.write(f"{where}\n")
    for item, did in zip(found, done, strict=True):
        sys.stdout.write(f"! {item.subject}: {item.problem}\n")
        sys.stdout.write(f"  {'done: ' + did if did else 'would: ' + item.repair}\n")
    if not apply:
        sys.stdout.write("Nothing changed: `mlci registry repair --yes` does it.\n")
    return EXIT_OK


def _repair_json(item: Inconsistency, done: str | None) -> dict[str, object]:
    return {
        "subject": item.subject,
        "version": item.version,
        "run_id": item.run_id,
        "problem": item.problem,
        "repair": item.repair,
        "done": done,
    }


def _when(created_ms: int | None) -> str:
    if created_ms is None:
        return "—"
    return datetime.fromtimestamp(created_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _version_json(version: ModelVersion) -> dict[str, object]:
    return {
        "version": version.version,
        "aliases": list(version.aliases),
        "commit": version.commit,
        "branch": version.branch,
        "dirty": version.dirty,
        "created_ms": version.created_ms,
        "gate": version.gate_verdict,
        "metrics": dict(version.metrics),
        "source": version.source,
        "model_format": version.model_format,
        "data": dict(version.data),
        "problem": version.problem,
    }


def registry_history_command(*, config: Path | None, alias: str | None, as_json: bool) -> int:
    loaded = load_config(locate(config))
    alias = alias or loaded.registry.alias
    registry = open_registry(loaded, os.environ)
    moves = registry.history(loaded.model_name, alias)
    if as_json:
        payload = {
            "model": loaded.model_name,
            "alias": alias,
            "moves": [dataclasses.asdict(move) for move in moves],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_OK
    if not moves:
        sys.stdout.write(f"{loaded.model_name}@{alias}: no moves recorded yet\n")
        return EXIT_OK
    sys.stdout.write(f"{loaded.model_name}@{alias}, oldest first\n")
    rows = [("when", "from", "to", "why", "commit", "CI run")]
    for move in moves:
        rows.append(
            (
                _when(move.when_ms),
                f"v{move.from_version}" if move.from_version else "—",
                f"v{move.to_version}",
                move.reason,
                (move.commit or "—")[:10],
                move.run_url or "—",
            )
        )
    sys.stdout.write("\n".join(columns(rows)) + "\n")
    return EXIT_OK


def rollback_command(
    *, config: Path | None, to: str | None, alias: str | None, as_json: bool
) -> int:
    """Move the alias back: to `to`, or to the version it held before the current one."""
    loaded = load_config(locate(config))
    alias = alias or loaded.registry.alias
    model = loaded.model_name
    registry = open_registry(loaded, os.environ)
    current = registry.by_alias(model, alias)
    if current is None:
        raise UsageError(f"{model} has no @{alias} to roll back")
    target_version = to or _previous(registry.history(model, alias), current.version)
    if target_version is None:
        raise UsageError(
            f"the history of {model}@{alias} has no version before v{current.version}; "
            f"name one with --to VERSION (see `mlci registry show`)"
        )
    target = registry.version(model, target_version.removeprefix("v"))
    if target is None:
        raise UsageError(f"{model} has no version {target_version}; see `mlci registry show`")
    if target.version == current.version:
        raise UsageError(f"@{alias} already points at v{current.version}")
    move = registry.move_alias(model, alias, target, reason="rollback", current=current)
    if as_json:
        sys.stdout.write(json.dumps(dataclasses.asdict(move), indent=2) + "\n")
    else:
        sys.stdout.write(
            f"{model}@{alias} moved back from v{move.from_version} to v{move.to_version} "
            f"(commit {(target.commit or '—')[:10]})\n"
        )
    return EXIT_OK


def _previous(moves: list[AliasMove], current: str) -> str | None:
    """The version the alias held before it last moved to `current`."""
    for move in reversed(moves):
        if move.to_version == current:
            return move.from_version
    return None
