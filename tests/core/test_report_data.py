"""The report's data part: dataset hashes against the baseline's, and a reused training."""

from __future__ import annotations

import html

from mlci.core.gate import Baseline, Rule, evaluate_gate
from mlci.core.report import (
    ReportInput,
    from_document,
    render_html,
    render_json,
    render_markdown,
    to_document,
)

OLD = "d632eba71107bf7bc3ec423eab256d78"
NEW = "8d5e957f297893487bd98fa830fa6413"
FOLDER = "a3bddc914bb391a81192fe49c4770900.dir"


def report(**fields: object) -> ReportInput:
    baseline = Baseline("git", "main", {})
    gate = evaluate_gate([Rule("accuracy", min=0.5)], {"accuracy": 0.9}, baseline)
    return ReportInput(model="m", gate=gate, candidate={"accuracy": 0.9}, **fields)  # type: ignore[arg-type]


def test_changed_data_is_summarised_and_listed_with_short_hashes() -> None:
    text = render_markdown(
        report(
            data={"data/labels.csv": NEW, "data/images": FOLDER},
            baseline_data={"data/labels.csv": OLD, "data/images": FOLDER},
        )
    )
    summary = "Data changed since the baseline: yes (1 of 2 datasets: data/labels.csv)"
    assert f"<summary>{summary}</summary>" in text
    assert "| data/labels.csv | d632eba7 | 8d5e957f | changed |" in text
    assert "| data/images | a3bddc91/ | a3bddc91/ | same |" in text


def test_the_summary_names_the_changed_datasets_up_to_three() -> None:
    data = {f"d{n}.csv": NEW for n in range(5)}
    text = render_markdown(report(data=data, baseline_data={"d0.csv": NEW, "d1.csv": OLD}))
    summary = "yes (4 of 5 datasets: d1.csv, d2.csv, d3.csv and 1 more)"
    assert f"Data changed since the baseline: {summary}" in text


def test_unchanged_added_and_unknown_data() -> None:
    same = render_markdown(report(data={"d.csv": OLD}, baseline_data={"d.csv": OLD}))
    assert "Data changed since the baseline: no (1 dataset)" in same
    added = render_json(report(data={"d.csv": OLD, "e.csv": NEW}, baseline_data={"d.csv": OLD}))
    assert added["data"] == {
        "changed": True,
        "pull": None,
        "datasets": [
            {"path": "d.csv", "hash": OLD, "baseline_hash": OLD, "status": "unchanged"},
            {"path": "e.csv", "hash": NEW, "baseline_hash": None, "status": "new"},
        ],
    }
    unknown = report(data={"d.csv": OLD})
    assert "Data: 1 dataset; the baseline's hashes are unknown" in render_markdown(unknown)
    assert render_json(unknown)["data"]["changed"] is None  # type: ignore[index]
    assert render_json(report())["data"] is None


def test_a_dataset_path_from_a_pull_request_cannot_inject_markup() -> None:
    path = "<img src=x onerror=alert(1)>|@team"
    text = render_markdown(report(data={path: NEW}, baseline_data={}))
    assert "<img" not in text and "\\|" in text and "@&#8203;team" in text
    assert "<img" not in render_html(report(data={path: NEW}, baseline_data={}))


def test_a_reused_training_is_said_in_every_format() -> None:
    reused = "training reused from cache: stage 'train' unchanged"
    done = report(training_command="dvc repro", training_seconds=0.8, training_reused=reused)
    markdown = render_markdown(done)
    assert f"♻️ {reused}" in markdown
    assert f"- Training: dvc repro, 0.8 s ({reused})" in markdown
    assert html.escape(reused) in render_html(done)
    assert render_json(done)["training"]["reused"] is True  # type: ignore[index]


def test_the_data_part_survives_report_json() -> None:
    original = report(
        data={"d.csv": NEW},
        baseline_data={"d.csv": OLD},
        data_pull="1 file fetched (292 B), 1 added from 'local' (../remote) in 0.4 s",
        training_reused="training reused from cache: stage 'train' unchanged",
    )
    again = from_document(to_document(original), lambda name: b"")
    assert render_markdown(again) == render_markdown(original)
    assert "- Data: 1 file fetched (292 B)" in render_markdown(again)
