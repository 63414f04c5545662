"""Where a training off the runner ran: one line of the report, a block of gate.json."""

from __future__ import annotations

import json

from mlci.core.device import Where
from mlci.core.gate import Rule, evaluate_gate
from mlci.core.report.document import from_document, to_document
from mlci.core.report.html import render_html
from mlci.core.report.json import dumps, render_json
from mlci.core.report.markdown import render_markdown
from mlci.core.report.model import ReportInput

RAY = Where(
    engine="ray",
    name="mlci-1a2b3c",
    cloud="aws",
    region="us-east-1",
    instance_type="g5.xlarge",
    accelerator="A10G:1",
    spot=True,
    price_per_hour=0.4123,
    minutes=12.34,
)


def report(where: Where | None) -> ReportInput:
    return ReportInput(
        model="m",
        gate=evaluate_gate([Rule("accuracy", min=0.5)], {"accuracy": 0.9}, None),
        candidate={"accuracy": 0.9},
        training_command="python train.py",
        training_seconds=740.0,
        where=where,
    )


def test_the_run_details_say_where_the_training_ran() -> None:
    line = (
        "Ran on: Ray job mlci-1a2b3c on aws us-east-1, g5.xlarge, A10G:1, spot, $0.41/h, 12.3 min"
    )

    assert line in render_html(report(RAY))
    assert line.replace("$", "\\$") in render_markdown(report(RAY))  # no math on GitHub


def test_what_the_engine_did_not_report_is_left_out() -> None:
    where = Where(engine="skypilot", accelerator="H100:8", spot=False)

    assert where.describe() == "SkyPilot, H100:8, on-demand"
    assert "Ran on:" not in render_markdown(report(None))


def test_the_engines_words_are_escaped_in_markdown_and_html() -> None:
    hostile = Where(
        engine="ray",
        cloud="aws<script>alert(1)</script>",
        region="[click](https://evil.example)\n# heading",
        instance_type="x" * 500,
    )

    markdown, html = render_markdown(report(hostile)), render_html(report(hostile))

    assert "<script>" not in markdown and "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "\\[click\\]" in markdown and "\n# heading" not in markdown
    assert "x" * 100 not in html  # an engine's name is cut, not shown in full


def test_gate_json_has_the_where_block_and_report_json_keeps_it() -> None:
    gate = json.loads(dumps(render_json(report(RAY))))
    again = from_document(json.loads(dumps(to_document(report(RAY)))), bytes.fromhex)

    assert gate["training"]["where"] == {
        "engine": "ray",
        "name": "mlci-1a2b3c",
        "cloud": "aws",
        "region": "us-east-1",
        "instance_type": "g5.xlarge",
        "accelerator": "A10G:1",
        "spot": True,
        "price_per_hour": 0.4123,
        "minutes": 12.34,
        "summary": RAY.describe(),
    }
    assert again.where == RAY
    assert render_json(report(None))["training"]["where"] is None  # type: ignore[index]
