"""`mlci run`, `mlci gate` and `mlci registry show`: keyword arguments in, exit code out."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from mlci import pipeline
from mlci.baselines import BaselineRequest
from mlci.config import find_config, load_config
from mlci.console import Console, columns
from mlci.core import report as report_module
from mlci.core.gate import format_number
from mlci.core.metrics import MetricValue
from mlci.core.report import ReportInput
from mlci.errors import EXIT_OK, ConfigError, UsageError
from mlci.registry.base import AliasMove, ModelVersion
from mlci.registry.mlflow import redact_uri


def _config_path(config: Path | None) -> Path:
    if config is None:
        return find_config(Path.cwd())
    if not config.is_file():
        raise ConfigError(f"--config {config}: no such file")
    return config


def _from_cwd(path: Path | None) -> Path | None:
    """Paths on the command line are relative to where the command runs."""
    return None if path is None else path.resolve()


def run_command(*, config: Path | None, promote: pipeline.PromoteMode, as_json: bool) -> int:
    options = pipeline.RunOptions(promote=promote)
    outcome = pipeline.run(config_path=_config_path(config), options=options)
    _print_outcome(outcome, as_json=as_json)
    return outcome.exit_code


def gate_command(
    *,
    config: Path | None,
    candidate: list[Path] | None,
    predictions: Path | None,
    baseline: Path | None,
    baseline_ref: str | None,
    baseline_registry: bool,
    no_baseline: bool,
    baseline_predictions: Path | None,
    as_json: bool,
) -> int:
    baseline, baseline_predictions = _from_cwd(baseline), _from_cwd(baseline_predictions)
    predictions = _from_cwd(predictions)
    request = None
    if baseline is not None:
        request = BaselineRequest(mode="file", file=baseline, predictions=baseline_predictions)
    elif baseline_ref is not None:
        request = BaselineRequest(mode="git", ref=baseline_ref)
    elif baseline_registry:
        request = BaselineRequest(mode="registry")
    elif no_baseline:
        request = BaselineRequest(mode="none")
    elif baseline_predictions is not None:
        raise UsageError(
            "--baseline-predictions goes with --baseline FILE (the baseline's metrics)"
        )
    options = pipeline.RunOptions(
        train=False,
        promote="never",
        baseline=request,
        metrics=tuple(path.resolve() for path in candidate) if candidate else None,
        predictions=predictions,
    )
    outcome = pipeline.run(config_path=_config_path(config), options=options)
    _print_outcome(outcome, as_json=as_json)
    return outcome.exit_code


def _print_outcome(outcome: pipeline.Outcome, *, as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        out.write(report_module.dumps(report_module.render_json(outcome.report)))
        return
    out.write(summary_text(outcome.report, outcome.out_dir, Console(out)))


def summary_text(report: ReportInput, out_dir: Path, console: Console) -> str:
    """The short human summary printed after a run: verdict, table, where the files are."""
    icon = {"pass": "✔", "warn": "!", "fail": "✘", "error": "✘"}[report.status]
    kind = {"pass": "ok", "warn": "warn"}.get(report.status, "fail")
    lines = [console.paint(f"{icon} {report_module.headline(report)}", kind)]
    if report.gate is not None and report.gate.results:
        rows = [("metric", "baseline", "candidate", "change", "verdict")]
        for result in report.gate.results:
            rows.append(
                (
                    result.metric,
                    _plain(result.baseline),
                    _plain(result.candidate),
                    "—" if result.change is None else format_number(result.change),
                    result.verdict,
                )
            )
        lines += columns(rows)
    lines.append(f"report: {out_dir / 'report.md'} (also report.html, gate.json)")
    if report.promotion is not None:
        lines.append(f"registry: {report.promotion.describe()}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _plain(value: MetricValue) -> str:
    return report_module.format_value(value)[:30]


def registry_show_command(*, config: Path | None, as_json: bool) -> int:
    loaded = load_config(_config_path(config))
    registry = pipeline.open_registry(loaded, os.environ)
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
                (v.commit or "—")[:10],
                v.branch or "—",
                _when(v.created_ms),
                *(_plain(v.metrics.get(name)) for name in metric_names),
            )
        )
    sys.stdout.write("\n".join(columns(rows)) + "\n")
    return EXIT_OK


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
        "created_ms": version.created_ms,
        "gate": version.gate_verdict,
        "metrics": dict(version.metrics),
        "source": version.source,
        "model_format": version.model_format,
        "data": dict(version.data),
    }


def report_command(*, config: Path | None, out: Path | None, as_json: bool) -> int:
    """Render the last run's report again (into `out`), from .mlci/out/report.json."""
    root = _config_path(config).parent.resolve()
    source = root / pipeline.OUT_DIR
    document_path = source / "report.json"
    try:
        document = json.loads(document_path.read_text(encoding="utf-8"))
        report = report_module.from_document(
            document, lambda name: (source / "plots" / name).read_bytes()
        )
    except FileNotFoundError as missing:
        raise UsageError(
            f"{missing.filename}: not found; `mlci run` or `mlci gate` writes the report first"
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(
            f"{document_path}: not a report this mlci can read ({exc}); run `mlci gate` again"
        ) from None
    target = _from_cwd(out) or source
    pipeline.write_outputs(report, target)
    _print_outcome(
        pipeline.Outcome(exit_code=EXIT_OK, report=report, out_dir=target), as_json=as_json
    )
    return EXIT_OK


def registry_history_command(*, config: Path | None, alias: str | None, as_json: bool) -> int:
    loaded = load_config(_config_path(config))
    alias = alias or loaded.registry.alias
    registry = pipeline.open_registry(loaded, os.environ)
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
    loaded = load_config(_config_path(config))
    alias = alias or loaded.registry.alias
    model = loaded.model_name
    registry = pipeline.open_registry(loaded, os.environ)
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
