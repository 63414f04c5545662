"""The Slices section: who got worse leads; slice values (the pull request's data) are
escaped in Markdown and HTML; gate.json and report.json carry each slice."""

from __future__ import annotations

import dataclasses
import json

from mlci.core.gate import (
    Baseline,
    GateResult,
    Rule,
    SliceResult,
    evaluate_gate,
    slice_name,
)
from mlci.core.intervals import Interval
from mlci.core.report.document import from_document, to_document
from mlci.core.report.html import render_html
from mlci.core.report.json import render_json
from mlci.core.report.markdown import render_markdown
from mlci.core.report.model import ReportInput

HOSTILE = (
    "\u202egnp.exe\u200f\x1b[31m<img src=x onerror=alert(1)>|**bold**[link](http://x.example)"
    " @admin " + "A" * 100_000
)
RULE = Rule("accuracy", max_drop=0.02, confidence=0.95, slices=True)


def sliced(value: str, change: float, verdict: str, trend: str) -> SliceResult:
    return SliceResult(
        metric="accuracy",
        slice=(("segment", value),),
        rows=1_000,
        candidate=0.85 + change,
        baseline=0.85,
        change=change,
        interval=Interval(change - 0.03, change + 0.03, 0.95, "paired, per slice"),
        verdict=verdict,  # type: ignore[arg-type]
        trend=trend,  # type: ignore[arg-type]
        message=f"accuracy in {slice_name((('segment', value),))}: changed by {change}",
        p_value=0.001,
        rule=RULE.describe(),
    )


def report(*slices: SliceResult) -> ReportInput:
    baseline = Baseline("file", "base.yaml", {"accuracy": 0.85})
    gate = evaluate_gate([RULE], {"accuracy": 0.86}, baseline)
    gate = GateResult(gate.results, gate.baseline, slices=slices, slice_correction="Holm")
    return ReportInput(model="m", gate=gate, candidate={"accuracy": 0.86})


def test_the_worst_slices_come_first_then_the_better_then_the_rest_folded() -> None:
    text = render_markdown(
        report(
            sliced("flat", 0.0, "pass", "unclear"),
            sliced("mild", -0.04, "fail", "worse"),
            sliced("up", 0.05, "pass", "better"),
            sliced("worst", -0.12, "fail", "worse"),
        )
    )
    assert "failed against base.yaml: accuracy in segment=worst" in text  # the headline
    section = text[text.index("### Slices") :]
    assert "Holm correction" in section
    order = [section.index(f"segment={name}") for name in ("worst", "mild", "up", "flat")]
    assert order == sorted(order)
    assert section.index("**Clearly worse**") < section.index("**Clearly better**")
    assert "<details><summary>The other 1 slices</summary>" in section
    assert section.index("<details><summary>The other") < section.index("segment=flat")


def test_hostile_slice_values_are_escaped_in_markdown_and_html() -> None:
    shown = report(sliced(HOSTILE, -0.1, "fail", "worse"), sliced(HOSTILE, 0.0, "pass", "unclear"))

    markdown = render_markdown(shown)
    page = render_html(shown)

    for text in (markdown, page):
        assert "<img" not in text
        assert "\u202e" not in text and "\u200f" not in text and "\x1b" not in text
        assert "\\u202e" in text  # made visible, not dropped
        assert "A" * 100 not in text  # a huge value is cut
        assert len(text) < 20_000
    assert "\\x1b\\[31m&lt;img src=x onerror=alert(1)&gt;\\|" in markdown
    assert "\\x1b[31m&lt;img src=x onerror=alert(1)&gt;|" in page


def test_gate_json_carries_each_slice_beside_the_rule_fields() -> None:
    data = render_json(report(sliced("a&b", -0.1, "fail", "worse")))

    assert data["passed"] is False
    assert data["slices"]["correction"] == "Holm"  # type: ignore[index]
    (result,) = data["slices"]["results"]  # type: ignore[index]
    assert result["slice"] == {"segment": "a&b"}
    assert (result["verdict"], result["trend"], result["rows"]) == ("fail", "worse", 1_000)
    assert result["interval"]["of"] == "change"
    json.dumps(data, allow_nan=False)


def test_report_json_keeps_the_slices_for_mlci_report() -> None:
    original = report(sliced("x", -0.1, "fail", "worse"))
    document = json.loads(json.dumps(to_document(original)))

    restored = from_document(document, read_png=lambda name: b"")

    assert restored.gate == original.gate
    assert render_markdown(restored) == render_markdown(original)


def test_a_slice_without_an_auc_is_listed_as_undefined_not_as_nan() -> None:
    """roc_auc in a slice whose y_true holds one class: no value, not gated, and said so."""
    rule = Rule("roc_auc", max_drop=0.02, confidence=0.95, slices=True)
    undefined = SliceResult(
        metric="roc_auc",
        slice=(("segment", "negatives"),),
        rows=500,
        candidate=float("nan"),
        baseline=float("nan"),
        change=float("nan"),
        interval=None,
        verdict="skip",
        trend="unclear",
        message="roc_auc in segment=negatives: 500 rows, one class only in y_true: no AUC",
        rule=rule.describe(),
        skipped="undefined",
    )
    shown = report(undefined, sliced("x", 0.0, "pass", "unclear"))

    markdown = render_markdown(shown)
    section = markdown[markdown.index("### Slices") :]
    assert "1 slice checks" in section and "1 where the metric is undefined" in section
    assert "too small" not in section
    (line,) = [row for row in section.splitlines() if "segment=negatives" in row]
    assert "nan" not in line.replace("NaN", "")  # no "+nan" change
    assert line.endswith(
        "| **not gated**: roc\\_auc in segment=negatives: 500 rows, one class only in "
        "y\\_true: no AUC |"
    )
    (result, _) = render_json(shown)["slices"]["results"]  # type: ignore[index]
    assert (result["candidate"], result["change"], result["verdict"]) == ("NaN", "NaN", "skip")
    json.dumps(render_json(shown), allow_nan=False)
    hostile = (("segment", HOSTILE),)
    message = f"roc_auc in {slice_name(hostile)}: 500 rows, one class only in y_true: no AUC"
    shown = report(dataclasses.replace(undefined, slice=hostile, message=message))
    for text in (render_markdown(shown), render_html(shown)):
        assert "<img" not in text and "\u202e" not in text
        assert "A" * 100 not in text


def test_a_verdict_cell_is_escaped_before_and_after_its_colon_and_keeps_no_stray_colon() -> None:
    from mlci.core.report.markdown import _markdown_table
    from mlci.core.report.model import Table

    table = Table(
        header=("Slice", "Verdict"),
        numeric=(False, False),
        rows=(("a", "<img src=x>|**x**: dropped @team"), ("b", "not gated (too few rows)")),
        verdicts=("fail", "skip"),
    )

    lines = _markdown_table(table).splitlines()

    assert lines[2] == "| a | **&lt;img src=x&gt;\\|\\*\\*x\\*\\***: dropped @&#8203;team |"
    assert lines[3] == "| b | **not gated (too few rows)** |"


def test_a_slice_with_a_class_of_one_row_says_so_instead_of_too_few_rows() -> None:
    rule = Rule("roc_auc", max_drop=0.02, confidence=0.95, slices=True)
    message = (
        "roc_auc in segment=rare: 300 rows, a class with a single row in y_true: too few to "
        "gate its AUC"
    )
    rare = SliceResult(
        metric="roc_auc",
        slice=(("segment", "rare"),),
        rows=300,
        candidate=0.71,
        baseline=0.7,
        change=0.01,
        interval=None,
        verdict="skip",
        trend="unclear",
        message=message,
        rule=rule.describe(),
        skipped="one-row class",
    )

    section = render_markdown(report(rare))
    (line,) = [row for row in section.splitlines() if "segment=rare" in row]
    assert "(too few rows)" not in line
    assert line.endswith(
        "| **not gated**: roc\\_auc in segment=rare: 300 rows, a class with a "
        "single row in y\\_true: too few to gate its AUC |"
    )


def test_a_slice_of_too_few_rows_is_told_by_its_reason_not_its_message() -> None:
    """The report and gate.json say why a slice is not gated from its reason
    (`skipped`), whatever its message's words."""
    few = dataclasses.replace(
        sliced("tiny", 0.0, "skip", "unclear"),
        rows=12,
        p_value=None,
        message="accuracy in segment=tiny: 12 rows (below min_rows: 100)",
        skipped="few rows",
    )
    other = dataclasses.replace(few, slice=(("segment", "odd"),), skipped="undefined")
    shown = report(few, other)

    lines = render_markdown(shown).splitlines()
    (tiny,) = [line for line in lines if "| segment=tiny |" in line]
    (odd,) = [line for line in lines if "| segment=odd |" in line]
    assert tiny.endswith("| **not gated (too few rows)** |")
    assert "(too few rows)" not in odd and odd.endswith("(below min\\_rows: 100) |")
    results = render_json(shown)["slices"]["results"]  # type: ignore[index]
    assert [result["skipped"] for result in results] == ["few rows", "undefined"]
