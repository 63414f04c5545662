"""Long reports fit the forge's limit: optional sections fold first, then a clean cut."""

from __future__ import annotations

import dataclasses

import pytest

from mlci.core.gate import Baseline, Rule, evaluate_gate
from mlci.core.report import Figure, ReportInput, render_markdown

LIMIT = 65_536  # GitHub's comment limit


def report_with(other_metrics: int = 0, rules: int = 1, figures: int = 0) -> ReportInput:
    candidate = {f"metric_{i:05d}": 0.5 + i * 1e-6 for i in range(max(other_metrics, rules))}
    gated = [Rule(f"metric_{i:05d}", min=0.1) for i in range(rules)]
    gate = evaluate_gate(gated, candidate, Baseline("file", "base.json", candidate))
    plots = tuple(
        Figure(
            f"plot{i}", f"Plot {i}", "```mermaid\nxychart-beta\n" + "line [1, 2]\n" * 400 + "```"
        )
        for i in range(figures)
    )
    return ReportInput(model="m", gate=gate, candidate=candidate, figures=plots)


def balanced(markdown: str) -> bool:
    return markdown.count("<details") == markdown.count("</details>") and (
        markdown.count("```") % 2 == 0
    )


def test_a_short_report_is_untouched() -> None:
    report = report_with(other_metrics=5)
    assert render_markdown(report, max_chars=LIMIT) == render_markdown(report)


def test_plots_fold_first_then_other_metrics() -> None:
    report = report_with(other_metrics=400, figures=20)
    full = render_markdown(report)
    assert len(full) > LIMIT

    folded = render_markdown(report, max_chars=LIMIT)

    assert len(folded) <= LIMIT
    assert "Left out to fit this page: the plots; see report.html." in folded
    assert "Other metrics (not gated)" in folded  # it fitted once the plots were out
    assert balanced(folded)


def test_a_gate_table_too_long_for_the_page_is_cut_cleanly() -> None:
    folded = render_markdown(report_with(rules=3000), max_chars=LIMIT)

    assert len(folded) <= LIMIT
    assert folded.rstrip().endswith("the full report is report.html in the CI artifacts.")
    assert balanced(folded)
    assert folded.startswith("## ✅ mlci · m · gate passed")


@pytest.mark.parametrize("limit", [2_000, 5_000, 20_000])
def test_any_limit_is_honoured(limit: int) -> None:
    folded = render_markdown(report_with(other_metrics=300, rules=50, figures=3), max_chars=limit)
    assert len(folded) <= limit
    assert balanced(folded)


def test_the_cut_links_to_the_full_report_when_its_address_is_known() -> None:
    report = dataclasses.replace(
        report_with(rules=3000),
        run_url="https://github.com/acme/digits/actions/runs/42",
        report_url="https://gitlab.example/p/-/jobs/31/artifacts/file/.mlci/out/report.html",
    )
    folded = render_markdown(report, max_chars=LIMIT)
    assert len(folded) <= LIMIT
    assert folded.rstrip().endswith(
        "the full report is [report.html](https://gitlab.example/p/-/jobs/31/artifacts/file/"
        ".mlci/out/report.html) (the CI run's artifacts)."
    )
    # A hostile address cannot break out of the link.
    hostile = dataclasses.replace(report, report_url="https://x.example/a) ![img](https://evil")
    assert "](https://x.example/a%29%20!%5Bimg%5D%28https://evil)" in render_markdown(
        hostile, max_chars=LIMIT
    )


def test_the_run_details_say_where_the_full_report_is() -> None:
    run = "https://github.com/acme/digits/actions/runs/42"
    on_run_page = dataclasses.replace(report_with(), run_url=run, report_url=run)
    assert "- Full report: report.html in the CI run's artifacts" in render_markdown(on_run_page)
    elsewhere = dataclasses.replace(on_run_page, report_url="https://r.example/42.html")
    assert "- Full report: https://r.example/42.html" in render_markdown(elsewhere)
