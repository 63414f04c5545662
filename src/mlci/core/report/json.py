"""gate.json: the public contract a machine reads (see docs/gate-json.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from mlci.core.gate import Check, GateResult, RuleResult, SliceResult
from mlci.core.intervals import Interval
from mlci.core.metrics import MetricValue
from mlci.core.report.model import (
    Promotion,
    ReportInput,
    data_changed,
    data_changes,
    headline,
    metric_changes,
)

SCHEMA_VERSION = 1


def render_json(report: ReportInput) -> dict[str, object]:
    """The public contract written to `.mlci/out/gate.json` (see docs/gate-json.md)."""
    gate = report.gate
    return {
        "schema_version": SCHEMA_VERSION,
        "model": report.model,
        "passed": bool(gate is not None and gate.passed and report.error is None),
        "verdict": report.status,
        "summary": headline(report),
        "baseline": None
        if gate is None or gate.baseline is None
        else {"source": gate.baseline.source, "label": gate.baseline.label},
        "results": [_result_json(r) for r in gate.results] if gate else [],
        "notes": list(gate.notes) if gate else [],
        "rows": _rows_json(gate),
        "slices": _slices_json(gate),
        "metrics": {name: _json_value(value) for name, value in report.candidate.items()},
        "diff": [
            {
                "metric": change.name,
                "old": _json_value(change.old),
                "new": _json_value(change.new),
                "diff": change.diff,
                "status": change.status,
            }
            for change in metric_changes(report)
        ],
        "commit": report.commit,
        "branch": report.branch,
        "event": report.event,
        "ci": report.ci,
        "run_url": report.run_url,
        "training": None
        if report.training_command is None
        else {
            "command": report.training_command,
            "seconds": report.training_seconds,
            "device": None if report.device is None else report.device.to_json(),
            "where": None if report.where is None else report.where.to_json(),
            "stopped_by": report.stopped_by,
            "reused": report.training_reused is not None,
            "skipped": report.training_skipped,
        },
        "data": _data_json(report),
        "flipped": _flipped_json(report),
        "promotion": None if report.promotion is None else _promotion_json(report.promotion),
        "error": None
        if report.error is None
        else {"stage": report.error_stage, "message": report.error, "exit_code": report.exit_code},
    }


def _flipped_json(report: ReportInput) -> dict[str, object] | None:
    flipped = report.flipped
    if flipped is None:
        return None
    return {
        "task": flipped.task,
        "rows": flipped.rows,
        "broken": flipped.broken,
        "fixed": flipped.fixed,
        "test": flipped.test,
        "statistic": flipped.statistic,
        "p_value": flipped.p_value,
        "paired_by": flipped.paired_by,
        "only_candidate": flipped.only_candidate,
        "only_baseline": flipped.only_baseline,
        "file": flipped.file,
    }


def _data_json(report: ReportInput) -> dict[str, object] | None:
    if not report.data and not report.baseline_data and report.data_pull is None:
        return None
    return {
        "changed": data_changed(report),
        "pull": report.data_pull,
        "datasets": [
            {
                "path": change.name,
                "hash": change.new,
                "baseline_hash": change.old,
                "status": change.status,
            }
            for change in data_changes(report)
        ],
    }


def _result_json(result: RuleResult) -> dict[str, object]:
    return {
        "metric": result.metric,
        "candidate": _json_value(result.candidate),
        "baseline": _json_value(result.baseline),
        "verdict": result.verdict,
        "change": result.change,
        "change_pct": result.change_pct,
        "rule": result.rule.describe(),
        "severity": result.rule.severity,
        "message": result.message,
        "within_noise": result.within_noise,
        "interval": _interval_json(result.interval, result.interval_of),
        "checks": [{**_check_json(c), "inconclusive": c.inconclusive} for c in result.checks],
    }


def _slices_json(gate: GateResult | None) -> dict[str, object] | None:
    """The rules with `slices`, per slice; null when none was judged."""
    if gate is None or not gate.slices:
        return None
    return {
        "correction": gate.slice_correction,
        "results": [_slice_json(result) for result in gate.slices],
    }


def _slice_json(result: SliceResult) -> dict[str, object]:
    return {
        "metric": result.metric,
        "slice": dict(result.slice),
        "rows": result.rows,
        "candidate": _json_value(result.candidate),
        "baseline": None if result.baseline is None else _json_value(result.baseline),
        "change": None if result.change is None else _json_value(result.change),
        "verdict": result.verdict,
        "trend": result.trend,
        "p_value": result.p_value,
        "rule": result.rule,
        "message": result.message,
        "skipped": result.skipped,
        "interval": _interval_json(
            result.interval, "change" if result.change is not None else "value"
        ),
    }


def _interval_json(interval: Interval | None, of: str | None) -> dict[str, object] | None:
    if interval is None:
        return None
    return {
        "of": of,
        "low": interval.low,
        "high": interval.high,
        "confidence": interval.confidence,
        "method": interval.method,
    }


def _check_json(check: Check) -> dict[str, object]:
    return {
        "name": check.name,
        "threshold": check.threshold,
        "passed": check.passed,
        "message": check.message,
    }


def _rows_json(gate: GateResult | None) -> dict[str, object] | None:
    if gate is None or gate.rows is None:
        return None
    return {
        "candidate": gate.rows.candidate,
        "baseline": gate.rows.baseline,
        "method": gate.rows.method,
        "auc_bound": gate.rows.auc_bound,
        "ap_bound": gate.rows.ap_bound,
        "checks": [_check_json(check) for check in gate.row_checks],
    }


def _promotion_json(promotion: Promotion) -> dict[str, object]:
    return {
        "eligible": promotion.eligible,
        "reason": promotion.reason,
        "version": promotion.version,
        "alias": promotion.alias,
        "previous_version": promotion.previous,
        "created": promotion.created,
        "alias_kept": promotion.kept,
        "role": promotion.role,
    }


def _json_value(value: MetricValue) -> MetricValue:
    """JSON has no NaN or infinity: those become the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def dumps(data: Mapping[str, object]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
