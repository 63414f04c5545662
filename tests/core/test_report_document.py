"""report.json holds everything: reading it back gives the same report."""

from __future__ import annotations

import json
import math

import pytest

from mlci.core.gate import Baseline, MetricIntervals, Rows, Rule, evaluate_gate
from mlci.core.intervals import Interval
from mlci.core.report import (
    Figure,
    Promotion,
    ReportInput,
    dumps,
    from_document,
    png_names,
    render_html,
    render_markdown,
    to_document,
)


def full_report() -> ReportInput:
    rules = [
        Rule("accuracy", min=0.9, max_drop=0.01, confidence=0.95),
        Rule("auc", min=0.5, on_missing_metric="skip"),
    ]
    intervals = {
        0.95: MetricIntervals(change={"accuracy": Interval(-0.03, 0.001, 0.95, "bootstrap")})
    }
    gate = evaluate_gate(
        rules,
        {"accuracy": 0.905, "loss": 0.3},
        Baseline("registry", "m v1 (@champion)", {"accuracy": 0.92}),
        intervals=intervals,
    )
    return ReportInput(
        model="m",
        gate=gate,
        candidate={"accuracy": 0.905, "loss": 0.3, "kind": "svc"},
        metric_sources={"accuracy": "metrics.json"},
        commit="a" * 40,
        branch="feature",
        training_command="python train.py",
        training_seconds=3.5,
        promotion=Promotion(eligible=False, reason="pull-request builds never promote"),
        output_tail=("line 1", "line 2"),
        params={"model.C": "0.1"},
        baseline_params={"model.C": "0.01"},
        figures=(
            Figure(
                "roc",
                "ROC curve",
                "```mermaid\nxychart-beta\n```",
                (b"\x89PNG1", b"\x89PNG2"),
                "blue: candidate",
            ),
        ),
    )


def test_a_report_survives_the_round_trip() -> None:
    report = full_report()
    pngs = dict(zip(png_names(report.figures[0]), report.figures[0].pngs, strict=True))

    document = json.loads(dumps(to_document(report)))
    again = from_document(document, pngs.__getitem__)

    assert again == report
    assert render_markdown(again) == render_markdown(report)
    assert render_html(again) == render_html(report)
    assert document["figures"][0]["pngs"] == ["roc.png", "roc-2.png"]


def test_nan_and_infinity_come_back_as_floats() -> None:
    report = ReportInput(model="m", gate=None, candidate={"loss": math.nan, "big": math.inf})
    again = from_document(json.loads(dumps(to_document(report))), bytes.fromhex)
    assert math.isnan(again.candidate["loss"])  # type: ignore[arg-type]
    assert again.candidate["big"] == math.inf


def test_another_document_is_refused() -> None:
    with pytest.raises(ValueError, match="not a version 1 report document"):
        from_document({"schema_version": 1, "passed": True}, bytes.fromhex)


def test_a_gate_failed_by_its_row_count_stays_failed_when_read_back() -> None:
    rows = Rows(candidate=20, baseline=540, minimum=100, fraction=0.5)
    gate = evaluate_gate([Rule("accuracy", min=0.5)], {"accuracy": 0.9}, None, rows=rows)
    report = ReportInput(model="m", gate=gate, candidate={"accuracy": 0.9})

    again = from_document(json.loads(dumps(to_document(report))), bytes.fromhex)

    assert again == report
    assert again.gate is not None and not again.gate.passed
    assert "fewer than evaluate.min_rows (100)" in again.gate.summary()
