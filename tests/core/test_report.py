"""The report in Markdown, HTML and JSON: layout, escaping of untrusted text, the JSON contract.

Golden files: `test_golden_report` renders one fixed report and compares it with
tests/core/golden/report.md and tests/core/golden/report.html. After an intended change
to the report, refresh them with

    MLCI_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_report.py

and read the diff (`git diff tests/core/golden`) before committing it.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mlci.core.device import DeviceInfo, Gpu
from mlci.core.gate import Baseline, GateResult, Rows, Rule, evaluate_gate
from mlci.core.report import (
    SCHEMA_VERSION,
    Promotion,
    ReportInput,
    dumps,
    render_html,
    render_json,
    render_markdown,
)

GOLDEN = Path(__file__).parent / "golden"
EVIL = "acc|<img src=x onerror=alert(1)>@admin"

RULES = (
    Rule("accuracy", min=0.9, max_drop=0.01),
    Rule("f1_macro", max_drop=0.01),
    Rule("log_loss", max_rise_pct=10, severity="warn"),
)
BASELINE = Baseline(
    source="registry",
    label="digits-classifier v3 (@champion)",
    metrics={"accuracy": 0.95, "f1_macro": 0.94, "log_loss": 0.2, "precision": 0.93},
)
# accuracy fails (dropped 0.02), f1_macro passes, log_loss warns (rose 25%).
H200 = DeviceInfo(
    kind="cuda",
    requested="cuda",
    cpu="AMD EPYC 9654 96-Core Processor",
    cpu_count=16,
    gpus=(Gpu("0", "NVIDIA H200", 143771, peak_memory_mib=2150, mean_utilization=43.5),),
    driver="580.159.03",
    cuda="13.0",
    samples=12,
)
CANDIDATE = {
    "accuracy": 0.93,
    "f1_macro": 0.945,
    "log_loss": 0.25,
    "precision": 0.935,
    "train.seconds": 14.0,
    "model_type": "svc",
}


def failing_report() -> ReportInput:
    """The golden report: a failed gate against a baseline, with a warning and a pass."""
    return ReportInput(
        model="digits-classifier",
        gate=evaluate_gate(RULES, CANDIDATE, BASELINE),
        candidate=CANDIDATE,
        metric_sources=dict.fromkeys(CANDIDATE, "metrics.json"),
        commit="0123456789abcdef0123456789abcdef01234567",
        branch="feature/tune-svc",
        ci="github",
        event="pull_request",
        run_url="https://github.com/acme/digits/actions/runs/42",
        training_command="python train.py",
        training_seconds=12.34,
        device=H200,
        promotion=Promotion(eligible=False, reason="the gate failed"),
    )


def report_for(
    rules: tuple[Rule, ...] | list[Rule],
    candidate: dict[str, object],
    baseline: Baseline | None = None,
    **fields: object,
) -> ReportInput:
    gate = evaluate_gate(rules, candidate, baseline)  # type: ignore[arg-type]
    return ReportInput(model="m", gate=gate, candidate=candidate, **fields)  # type: ignore[arg-type]


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def cells(row: str) -> list[str]:
    """The cells of a Markdown table row, splitting on pipes that are not escaped."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def row_for(markdown: str, text: str) -> str:
    (row,) = [line for line in table_rows(markdown) if text in line]
    return row


# -- Markdown layout --------------------------------------------------------------------


def test_markdown_heading_and_headline() -> None:
    markdown = render_markdown(failing_report())

    lines = markdown.splitlines()
    assert lines[0] == "## ❌ mlci · digits-classifier · gate failed"
    assert lines[2] == (
        "**failed against digits-classifier v3 (@&#8203;champion): "
        "accuracy dropped 0.02 from 0.95 to 0.93 (allowed: drop ≤ 0.01)**"
    )


@pytest.mark.parametrize(
    ("candidate", "icon", "words"),
    [
        ({"accuracy": 0.96}, "✅", "gate passed"),
        ({"accuracy": 0.5}, "⚠️", "gate passed with warnings"),
    ],
)
def test_markdown_heading_for_pass_and_warn(
    candidate: dict[str, object], icon: str, words: str
) -> None:
    report = report_for([Rule("accuracy", min=0.9, severity="warn")], candidate)

    assert render_markdown(report).startswith(f"## {icon} mlci · m · {words}\n")


def test_markdown_puts_failures_first_then_warnings_then_passes() -> None:
    rules = [
        Rule("precision", min=0.5),  # pass
        Rule("recall", min=0.5, severity="warn"),  # warn
        Rule("accuracy", min=0.5),  # fail
    ]
    report = report_for(rules, {"precision": 0.9, "recall": 0.1, "accuracy": 0.1})

    rows = table_rows(render_markdown(report))[2:]

    assert [cells(row)[1].strip() for row in rows] == ["accuracy", "recall", "precision"]
    assert [cells(row)[0].strip() for row in rows] == ["❌", "⚠️", "✅"]


def test_markdown_gate_table_shows_values_change_rule_and_verdict() -> None:
    markdown = render_markdown(failing_report())

    assert table_rows(markdown)[0] == (
        "|  | Metric | Baseline | Candidate | Change | Rule | Verdict |"
    )
    assert [c.strip() for c in cells(row_for(markdown, "| accuracy |"))] == [
        "❌",
        "accuracy",
        "0.95",
        "0.93",
        "-0.02 (-2.11%)",  # -0.02 / 0.95 = -2.105%
        "≥ 0.9, drop ≤ 0.01",
        "**fail**: accuracy dropped 0.02 from 0.95 to 0.93 (allowed: drop ≤ 0.01)",
    ]
    assert cells(row_for(markdown, "f1\\_macro |"))[-1].strip() == "pass"
    assert cells(row_for(markdown, "| log\\_loss |"))[-1].strip().startswith("**warn**: ")


def test_a_thousand_classes_metrics_show_the_most_changed_and_say_how_many_are_left_out() -> None:
    per_class = {f"f1.{label}": 0.8 for label in range(1000)}
    baseline = Baseline("file", "baseline.json", {**BASELINE.metrics, **per_class})
    candidate = {**CANDIDATE, **per_class, "f1.417": 0.7, "f1.12": 0.85}
    report = ReportInput(
        model="imagenet",
        gate=evaluate_gate(RULES, candidate, baseline),
        candidate=candidate,
        metric_sources=dict.fromkeys(candidate, "metrics.json"),
    )

    markdown, page = render_markdown(report), render_html(report)

    other = markdown.split("Other metrics (not gated)")[1].split("</details>")[0]
    names = [cells(row)[0].strip() for row in table_rows(other)[2:]]
    assert len(names) == 50
    assert {"f1.417", "f1.12", "precision", "model\\_type", "train.seconds"} <= set(names)
    note = "953 more metrics with a dot in their name (per class) are left out"
    assert note in other and note in page
    assert "f1.999" not in markdown and "f1.999" in render_json(report)["metrics"]


def test_markdown_other_metrics_table_lists_the_ungated_ones() -> None:
    markdown = render_markdown(failing_report())

    assert "<details><summary>Other metrics (not gated)</summary>" in markdown
    other = markdown.split("Other metrics (not gated)")[1].split("</details>")[0]
    assert [[c.strip() for c in cells(row)] for row in table_rows(other)[2:]] == [
        ["model\\_type", "—", "svc", "new"],  # not in the baseline
        ["precision", "0.93", "0.935", "+0.005"],
        ["train.seconds", "—", "14", "new"],
    ]


def test_markdown_has_no_other_metrics_section_when_everything_is_gated() -> None:
    report = report_for([Rule("accuracy", min=0.5)], {"accuracy": 0.9})

    assert "Other metrics" not in render_markdown(report)


def test_markdown_run_details() -> None:
    details = render_markdown(failing_report()).split("Run details</summary>")[1]

    assert "- Commit: 0123456789ab on feature/tune-svc\n" in details
    assert "- Baseline: digits-classifier v3 (@&#8203;champion)\n" in details
    assert "- Training: python train.py, 12.3 s\n" in details
    assert "- Registry: not promoted: the gate failed\n" in details


def test_markdown_first_run() -> None:
    report = report_for(
        [Rule("accuracy", min=0.9), Rule("f1", max_drop=0.01)],
        {"accuracy": 0.95, "f1": 0.9},
        commit="abc",
        dirty=True,
    )

    markdown = render_markdown(report)

    assert "**passed with no baseline: 1 rule met, 1 not checked" in markdown
    assert cells(row_for(markdown, "| f1 |"))[-1].strip() == "pass (no baseline yet)"
    assert (
        "\n> No baseline: only absolute rules (min, max) were applied; not checked: f1 drop ≤ "
        "0.01.\n"
    ) in markdown
    assert "- Baseline: none (first run)\n" in markdown
    assert "- Commit: abc (with uncommitted changes)\n" in markdown


def test_markdown_without_rules_says_how_to_add_them() -> None:
    report = ReportInput(model="m", gate=GateResult(results=(), baseline=None))

    markdown = render_markdown(report)

    assert "**no gate rules configured: add gate.rules to mlci.yaml" in markdown
    assert not table_rows(markdown)


# -- Error reports ----------------------------------------------------------------------


def error_report(output: tuple[str, ...]) -> ReportInput:
    return ReportInput(
        model="m",
        gate=None,
        training_command="python train.py",
        error="the training command exited with code 3",
        error_stage="training",
        exit_code=5,
        output_tail=output,
    )


def test_error_report_headline() -> None:
    markdown = render_markdown(error_report(("boom",)))

    assert markdown.startswith("## 💥 mlci · m · run failed\n")
    assert "**failed at training: the training command exited with code 3**" in markdown


def test_error_report_shows_the_output_in_an_unbreakable_code_block() -> None:
    output = ("epoch 1", "```", "````python", "`inline`", "CUDA out of memory")

    markdown = render_markdown(error_report(output))

    assert "<details open><summary>Last lines of the training output</summary>" in markdown
    # The longest backtick run inside is 4, so the fence is 5.
    assert "\n`````text\nepoch 1\n```\n````python\n`inline`\nCUDA out of memory\n`````\n" in (
        markdown
    )


def test_error_report_uses_a_plain_fence_when_the_output_has_no_backticks() -> None:
    markdown = render_markdown(error_report(("one", "two")))

    assert "\n```text\none\ntwo\n```\n" in markdown


def test_error_report_without_output_has_no_code_block() -> None:
    markdown = render_markdown(error_report(()))

    assert "```" not in markdown
    assert "training output" not in markdown


def test_error_report_in_html_escapes_the_output() -> None:
    page = render_html(error_report(("<script>alert(1)</script>", "a & b")))

    assert '<p class="headline error">failed at training:' in page
    assert "<pre>&lt;script&gt;alert(1)&lt;/script&gt;\na &amp; b</pre>" in page
    assert "<script>" not in page


def test_a_multi_line_error_shows_its_first_line_as_headline_and_the_rest_as_a_list() -> None:
    report = ReportInput(
        model="m",
        gate=None,
        error="mlci.yaml has 2 problems:\n  model.name: required\n  gate.rules[0]: <bad>",
        error_stage="configuration",
        exit_code=2,
    )

    markdown = render_markdown(report)
    page = render_html(report)

    assert "**failed at configuration: mlci.yaml has 2 problems:**" in markdown
    assert "\n- model.name: required\n- gate.rules\\[0\\]: &lt;bad&gt;\n" in markdown
    assert "<ul><li>model.name: required</li><li>gate.rules[0]: &lt;bad&gt;</li></ul>" in page
    assert render_json(report)["summary"] == "failed at configuration: mlci.yaml has 2 problems:"


def test_error_report_json() -> None:
    data = render_json(error_report(("boom",)))

    assert data["passed"] is False
    assert data["verdict"] == "error"
    assert data["summary"] == "failed at training: the training command exited with code 3"
    assert data["error"] == {
        "stage": "training",
        "message": "the training command exited with code 3",
        "exit_code": 5,
    }
    assert data["results"] == []


def test_an_error_after_a_passing_gate_is_not_a_pass() -> None:
    report = report_for(
        [Rule("accuracy", min=0.5)],
        {"accuracy": 0.9},
        error="the registry refused",
        error_stage="promotion",
        exit_code=3,
    )

    assert render_json(report)["passed"] is False
    assert render_json(report)["verdict"] == "error"
    assert render_markdown(report).startswith("## 💥 mlci · m · run failed\n")


# -- Escaping untrusted text ------------------------------------------------------------


def evil_report() -> ReportInput:
    candidate = {EVIL: 0.5, f"other {EVIL}": 1}
    return report_for([Rule(EVIL, min=0.9)], candidate, branch=EVIL, commit="abc")


def test_markdown_metric_name_cannot_break_the_table_row() -> None:
    markdown = render_markdown(evil_report())

    rows = table_rows(markdown)
    assert len(cells(rows[0])) == 7
    gate_row = rows[2]
    assert len(cells(gate_row)) == 7
    assert cells(gate_row)[1].strip().startswith("acc\\|")
    other_row = row_for(markdown, "other acc")
    assert len(cells(other_row)) == 4


def test_markdown_metric_name_cannot_inject_html_or_mention() -> None:
    markdown = render_markdown(evil_report())

    assert "<img" not in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "@admin" not in markdown


@pytest.mark.parametrize(
    ("report", "handle"),
    [
        (evil_report, "@admin"),  # a metric name from a pull request
        (failing_report, "@champion"),  # every baseline label: "digits-classifier v3 (@champion)"
    ],
)
def test_markdown_does_not_mention_anyone_once_rendered(
    report: Callable[[], ReportInput], handle: str
) -> None:
    markdown = render_markdown(report())

    # GitHub renders the Markdown, decodes entities, then links @handles in the text.
    assert handle not in html.unescape(markdown)


def test_markdown_escapes_dollar_signs_so_github_renders_no_math() -> None:
    # GitHub renders the text between two $ as math: `$\\href{...}$` in a branch name
    report = report_for(
        [Rule("accuracy", min=0.5)], {"accuracy": 0.9}, commit="abc", branch="a$x^2$b"
    )

    assert "- Commit: abc on a\\$x^2\\$b" in render_markdown(report)


def test_markdown_escapes_a_branch_name() -> None:
    report = report_for(
        [Rule("accuracy", min=0.5)],
        {"accuracy": 0.9},
        commit="abc",
        branch="x_[click](javascript:alert(1))*<b>bold</b>\n# heading",
    )

    markdown = render_markdown(report)

    assert (
        "- Commit: abc on x\\_\\[click\\](javascript:alert(1))\\*"
        "&lt;b&gt;bold&lt;/b&gt; \\# heading" in markdown
    )
    assert "<b>" not in markdown
    assert "\n# heading" not in markdown


def test_markdown_escapes_the_model_name_in_the_heading() -> None:
    report = ReportInput(
        model="<h1>x</h1>|y", gate=evaluate_gate([Rule("a", min=0)], {"a": 1}, None)
    )

    assert render_markdown(report).startswith("## ✅ mlci · &lt;h1&gt;x&lt;/h1&gt;\\|y · ")


def test_html_escapes_everything() -> None:
    page = render_html(evil_report())

    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;@admin" in page
    assert "<li>Commit: abc on acc|&lt;img src=x onerror=alert(1)&gt;@admin</li>" in page


def test_html_escapes_the_model_name_and_branch() -> None:
    report = ReportInput(
        model="</title><script>x</script>",
        gate=evaluate_gate([Rule("a", min=0)], {"a": 1}, None),
        commit="abc",
        branch='"><b>branch</b>',
    )

    page = render_html(report)

    assert "<script>" not in page
    assert "<b>" not in page
    assert "<title>mlci report · &lt;/title&gt;&lt;script&gt;x&lt;/script&gt;</title>" in page
    assert "on &quot;&gt;&lt;b&gt;branch&lt;/b&gt;</li>" in page


def test_html_is_self_contained() -> None:
    page = render_html(failing_report())

    assert page.startswith("<!DOCTYPE html>\n")
    assert page.endswith("</body></html>\n")
    assert "<style>" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page
    assert "url(" not in page
    # The run URL is shown as text, not loaded.
    assert "<li>CI run: https://github.com/acme/digits/actions/runs/42</li>" in page


def test_html_marks_rows_by_verdict() -> None:
    page = render_html(failing_report())

    assert '<tr class="fail"><td>✘</td><td>accuracy</td>' in page
    assert '<tr class="warn"><td>⚠</td><td>log_loss</td>' in page
    assert '<tr class="pass"><td>✔</td><td>f1_macro</td>' in page
    assert page.index('<tr class="fail">') < page.index('<tr class="warn">')
    assert page.index('<tr class="warn">') < page.index('<tr class="pass">')


# -- JSON -------------------------------------------------------------------------------


def strict_loads(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_has_the_documented_keys() -> None:
    data = render_json(failing_report())

    assert {
        "schema_version",
        "passed",
        "verdict",
        "summary",
        "baseline",
        "results",
        "metrics",
        "commit",
        "branch",
        "training",
        "promotion",
        "error",
    } <= set(data)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["passed"] is False
    assert data["verdict"] == "fail"
    assert data["summary"] == failing_report().gate.summary()  # type: ignore[union-attr]
    assert data["baseline"] == {"source": "registry", "label": "digits-classifier v3 (@champion)"}
    assert data["metrics"] == CANDIDATE
    assert data["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert data["branch"] == "feature/tune-svc"
    assert data["training"] == {
        "command": "python train.py",
        "seconds": 12.34,
        "device": H200.to_json(),
        "where": None,
        "stopped_by": None,
        "reused": False,
        "skipped": None,
    }
    assert data["training"]["device"]["summary"] == (
        "NVIDIA H200 (140.4 GiB); driver 580.159.03, CUDA 13.0; peak memory 2.1 GiB; "
        "mean utilisation 44%"
    )
    assert data["promotion"] == {
        "eligible": False,
        "reason": "the gate failed",
        "version": None,
        "alias": None,
        "previous_version": None,
        "created": None,
        "alias_kept": None,
        "role": "champion",
    }
    assert data["error"] is None


def test_json_results() -> None:
    results = render_json(failing_report())["results"]

    assert isinstance(results, list)
    accuracy = results[0]
    assert set(accuracy) == {
        "metric",
        "candidate",
        "baseline",
        "verdict",
        "change",
        "change_pct",
        "rule",
        "severity",
        "message",
        "within_noise",
        "interval",
        "checks",
    }
    assert accuracy["metric"] == "accuracy"
    assert accuracy["candidate"] == 0.93
    assert accuracy["baseline"] == 0.95
    assert accuracy["verdict"] == "fail"
    assert accuracy["change"] == pytest.approx(-0.02)
    assert accuracy["change_pct"] == pytest.approx(-2 / 0.95)
    assert accuracy["rule"] == "≥ 0.9, drop ≤ 0.01"
    assert accuracy["severity"] == "fail"
    assert accuracy["message"] == "accuracy dropped 0.02 from 0.95 to 0.93 (allowed: drop ≤ 0.01)"
    assert accuracy["checks"] == [
        {
            "name": "min",
            "threshold": 0.9,
            "passed": True,
            "message": "accuracy 0.93 is at least the minimum 0.9",
            "inconclusive": False,
        },
        {
            "name": "max_drop",
            "threshold": 0.01,
            "passed": False,
            "message": "accuracy dropped 0.02 from 0.95 to 0.93 (allowed: drop ≤ 0.01)",
            "inconclusive": False,
        },
    ]
    # Results keep the rules' order (the Markdown reorders, the contract does not).
    assert [(r["metric"], r["verdict"], r["severity"]) for r in results] == [
        ("accuracy", "fail", "fail"),
        ("f1_macro", "pass", "fail"),
        ("log_loss", "warn", "warn"),
    ]


def test_json_warn_is_passed() -> None:
    report = report_for([Rule("accuracy", min=0.9, severity="warn")], {"accuracy": 0.5})

    data = render_json(report)

    assert data["passed"] is True
    assert data["verdict"] == "warn"


def test_json_first_run_has_no_baseline_and_a_note() -> None:
    data = render_json(report_for([Rule("f1", max_drop=0.01)], {"f1": 0.9}))

    assert data["baseline"] is None
    assert data["notes"] == [
        "No baseline: only absolute rules (min, max) were applied; not checked: f1 drop ≤ 0.01."
    ]
    assert data["results"][0]["checks"][0]["passed"] is None  # type: ignore[index]


def test_json_non_finite_values_become_strings_and_stay_strict_json() -> None:
    candidate = {"accuracy": math.nan, "f1": math.inf, "delta": -math.inf, "epochs": 3}
    baseline = Baseline(source="file", label="base.json", metrics={"accuracy": math.nan})
    report = report_for([Rule("accuracy", min=0.9)], candidate, baseline)

    data = render_json(report)
    text = dumps(data)

    assert data["metrics"] == {
        "accuracy": "NaN",
        "f1": "Infinity",
        "delta": "-Infinity",
        "epochs": 3,
    }
    result = data["results"][0]  # type: ignore[index]
    assert result["candidate"] == "NaN"
    assert result["baseline"] == "NaN"
    assert result["message"] == "accuracy is NaN, not a number"
    parsed = strict_loads(text)
    assert parsed == data
    assert text.endswith("}\n")


def test_dumps_keeps_unicode_readable() -> None:
    text = dumps(render_json(failing_report()))

    assert "≥ 0.9, drop ≤ 0.01" in text
    assert strict_loads(text) == render_json(failing_report())


# -- Promotion.describe -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("promotion", "text"),
    [
        (
            Promotion(eligible=True, reason="the branch main is in promote_on"),
            "will promote if the gate passes: the branch main is in promote_on",
        ),
        (
            Promotion(eligible=False, reason="feature/x is not in registry.promote_on"),
            "not promoted: feature/x is not in registry.promote_on",
        ),
        (
            Promotion(
                eligible=True, reason="", version="4", alias="champion", previous="3", created=True
            ),
            "version 4 registered; @champion moved from v3",
        ),
        (
            Promotion(eligible=True, reason="", version="1", alias="champion", created=True),
            "version 1 registered; @champion set (first champion)",
        ),
        (
            Promotion(
                eligible=True,
                reason="",
                version="4",
                alias="champion",
                previous="4",
                created=False,
            ),
            "version 4 reused (already registered for this commit); "
            "@champion already pointed at it",
        ),
        (
            Promotion(eligible=False, reason="gate failed", version="5", created=True),
            "version 5 registered",
        ),
    ],
)
def test_promotion_describe(promotion: Promotion, text: str) -> None:
    assert promotion.describe() == text


def test_promotion_is_in_the_run_details() -> None:
    promotion = Promotion(
        eligible=True, reason="", version="4", alias="champion", previous="3", created=True
    )
    report = report_for([Rule("accuracy", min=0.5)], {"accuracy": 0.9}, promotion=promotion)

    assert "- Registry: version 4 registered; @&#8203;champion moved from v3\n" in (
        render_markdown(report)
    )
    assert "<li>Registry: version 4 registered; @champion moved from v3</li>" in (
        render_html(report)
    )
    assert render_json(report)["promotion"] == {
        "eligible": True,
        "reason": "",
        "version": "4",
        "alias": "champion",
        "previous_version": "3",
        "created": True,
        "alias_kept": None,
        "role": "champion",
    }


# -- Golden files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "render"), [("report.md", render_markdown), ("report.html", render_html)]
)
def test_golden_report(name: str, render: object) -> None:
    """Set MLCI_UPDATE_GOLDEN=1 to rewrite the golden file after an intended change."""
    rendered = render(failing_report())  # type: ignore[operator]
    path = GOLDEN / name
    if os.environ.get("MLCI_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8", newline="\n")
    expected = path.read_text(encoding="utf-8")

    assert rendered == expected, (
        f"{name} differs from {path}; if the change is intended, rerun with "
        "MLCI_UPDATE_GOLDEN=1 and review the diff"
    )


def test_area_table_lists_each_class_and_past_the_limit_the_most_changed() -> None:
    from mlci.core.curves import ClassCurves, Curve
    from mlci.core.report.figures import area_table_markdown

    def pair(label: str, mine: float, theirs: float | None) -> ClassCurves:
        def curve(area: float) -> Curve:
            return Curve(f"class {label}", (0.0, 1.0), (0.0, 1.0), area)

        return ClassCurves(f"class {label}", curve(mine), None if theirs is None else curve(theirs))

    pairs = [pair("<b>a|b</b>", 0.9, 0.95), pair("@x", 0.8, None), pair("c", 0.7, 0.7)]
    assert area_table_markdown(pairs, area_label="AUC") == (
        "| class | candidate AUC | baseline AUC | change |\n"
        "|---|--:|--:|--:|\n"
        "| &lt;b&gt;a\\|b&lt;/b&gt; | 0.900 | 0.950 | -0.050 |\n"
        "| @&#8203;x | 0.800 | no curve | – |\n"
        "| c | 0.700 | 0.700 | +0.000 |"
    )
    table = area_table_markdown(pairs, area_label="AP", limit=2)
    assert table.startswith("The 2 of 3 classes whose AP changed most:\n\n| class |")
    assert "| c |" not in table and "| @&#8203;x |" in table


def test_json_and_markdown_show_an_evaluation_too_small() -> None:
    rows = Rows(candidate=20, baseline=540, minimum=100, fraction=0.5)
    gate = evaluate_gate([], {"accuracy": 0.9}, None, rows=rows)
    report = ReportInput(model="m", gate=gate, candidate={"accuracy": 0.9})

    data = render_json(report)

    assert data["passed"] is False
    assert data["verdict"] == "fail"
    assert data["rows"] == {
        "candidate": 20,
        "baseline": 540,
        "method": "exact",
        "auc_bound": 0.0,
        "ap_bound": 0.0,
        "checks": [
            {
                "name": "min_rows",
                "threshold": 100,
                "passed": False,
                "message": "the candidate was evaluated on 20 rows, fewer than "
                "evaluate.min_rows (100): evaluate it on more rows",
            },
            {
                "name": "min_row_fraction",
                "threshold": 0.5,
                "passed": False,
                "message": "the candidate was evaluated on 20 rows, far fewer than the "
                "baseline's 540 (evaluate.min_row_fraction: 0.5 asks for at least 270): a "
                "smaller evaluation set can hide a regression",
            },
        ],
    }
    assert str(data["summary"]).startswith("failed with no baseline: the candidate was evaluated")
    markdown = render_markdown(report)
    assert "fewer than evaluate.min\\_rows (100)" in markdown  # underscores escaped
    assert "far fewer than the baseline's 540" in markdown
    assert "no gate rules configured" not in markdown
