"""Flipped examples end to end: `mlci gate --predictions ... --baseline-predictions ...`
writes flipped.csv and the report's section; rows pair by id (missing ones counted) or by
row order; hostile ids and values are escaped in Markdown, HTML and the CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

from mlci import git, pipeline
from mlci.cli import main
from mlci.console import Console
from mlci.core.report.document import from_document, to_document
from mlci.core.report.markdown import render_markdown
from mlci.predictions import load_predictions

CONFIG = """\
version: 1
model:
  name: flips
evaluate:
  predictions: candidate.csv
report:
  plots: false
"""
HOSTILE = {
    "md": "**bold** | [link](http://evil) `code` @admin",
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "rtl": "invoice\u202egnp.exe",
    "huge": "H" * 5000,
    "formula": "=cmd|' /C calc'!A0",
}


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_project(root: Path, config: str = CONFIG) -> Path:
    root.mkdir()
    git.init_repo(root, branch="main")
    (root / "mlci.yaml").write_text(config)
    (root / ".gitignore").write_text(".mlci/\n")
    (root / "baseline.json").write_text(json.dumps({"accuracy": 0.5}))
    git.commit_all(root, "initial")
    return root


def gate(root: Path, *extra: str) -> int:
    cwd = Path.cwd()
    os.chdir(root)
    try:
        return main(["gate", "--baseline", "baseline.json", *extra])
    finally:
        os.chdir(cwd)


def hostile_project(tmp_path: Path) -> Path:
    """Five rows the candidate breaks (one per hostile id), one it fixes, two unchanged."""
    root = make_project(tmp_path / "project")
    rows = [[value, 0, 1, 0.1, 0.9, value] for value in HOSTILE.values()]
    rows += [["fixed-1", 1, 1, 0.2, 0.8, "-2+3"], ["same-1", 0, 0, 0.9, 0.1, "EU"]]
    rows += [["only-candidate", 1, 1, 0.3, 0.7, "EU"]]
    header = ["id", "y_true", "y_pred", "p_0", "p_1", "segment"]
    write_csv(root / "candidate.csv", header, rows)
    base_rows = [[value, 0, 0] for value in HOSTILE.values()]
    base_rows += [["fixed-1", 1, 0], ["same-1", 0, 0], ["only-baseline", 0, 0]]
    write_csv(root / "baseline.csv", ["id", "y_true", "y_pred"], base_rows)
    return root


def test_gate_writes_flipped_csv_and_the_report_section(tmp_path: Path) -> None:
    root = hostile_project(tmp_path)

    assert (
        gate(root, "--predictions", "candidate.csv", "--baseline-predictions", "baseline.csv") == 0
    )

    out = root / ".mlci" / "out"
    flipped = json.loads((out / "gate.json").read_text())["flipped"]
    assert flipped["broken"] == 5 and flipped["fixed"] == 1
    assert flipped["test"] == "mcnemar-exact" and flipped["file"] == "flipped.csv"
    assert flipped["p_value"] == pytest.approx(0.21875)  # binomtest(5, 6, 0.5)
    assert (flipped["only_candidate"], flipped["only_baseline"]) == (1, 1)
    with (out / "flipped.csv").open(newline="", encoding="utf-8") as file:
        table = list(csv.reader(file))
    assert table[0] == ["change", "id", "y_true", "candidate", "baseline", "confidence", "segment"]
    assert [row[0] for row in table[1:]] == ["broken"] * 5 + ["fixed"]
    report = (out / "report.md").read_text()
    assert "5 broken (the baseline right, the candidate wrong), 1 fixed, of 7 rows" in report
    assert "McNemar's exact test: p = 0.2188" in report
    assert "1 of the candidate's rows and 1 of the baseline's have an id (id)" in report


def test_hostile_ids_and_values_are_escaped_in_markdown_html_and_csv(tmp_path: Path) -> None:
    root = hostile_project(tmp_path)
    gate(root, "--predictions", "candidate.csv", "--baseline-predictions", "baseline.csv")
    out = root / ".mlci" / "out"

    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for text in (markdown, page):
        assert "<script>" not in text and "<img src=x" not in text
        assert "\u202e" not in text
        assert "H" * 100 not in text  # cut
        assert "invoice\ufffdgnp.exe" in text
    assert "\\*\\*bold\\*\\* \\| \\[link\\](http://evil) \\`code\\` @&#8203;admin" in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    lines = markdown.splitlines()
    start = lines.index("| id | y_true | candidate | baseline | confidence | segment |")
    table = lines[start : lines.index("", start)]
    assert len(table) == 2 + 5
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 7 for line in table)  # no cell broke out
    with (out / "flipped.csv").open(newline="", encoding="utf-8") as file:
        cells = [cell for row in csv.reader(file) for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells and "=cmd|' /C calc'!A0" not in cells
    assert "'-2+3" in cells  # the segment column of the fixed row
    assert "H" * 5000 in cells  # the file keeps every value whole


def test_the_section_survives_mlci_report(tmp_path: Path) -> None:
    root = hostile_project(tmp_path)
    gate(root, "--predictions", "candidate.csv", "--baseline-predictions", "baseline.csv")
    out = root / ".mlci" / "out"

    document = json.loads((out / "report.json").read_text())
    again = from_document(document, read_png=lambda name: b"")

    assert "Flipped examples: 5 broken" in render_markdown(again)
    assert render_markdown(again) == (out / "report.md").read_text()
    assert to_document(again) == document


def test_a_later_run_without_the_baselines_predictions_removes_flipped_csv(
    tmp_path: Path,
) -> None:
    root = hostile_project(tmp_path)
    gate(root, "--predictions", "candidate.csv", "--baseline-predictions", "baseline.csv")
    assert (root / ".mlci" / "out" / "flipped.csv").exists()

    assert gate(root, "--predictions", "candidate.csv") == 0

    assert json.loads((root / ".mlci" / "out" / "gate.json").read_text())["flipped"] is None
    assert not (root / ".mlci" / "out" / "flipped.csv").exists()


def test_rows_pair_by_row_order_without_ids(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "predictions: candidate.csv", "predictions: candidate.csv\n  task: regression"
    )
    root = make_project(tmp_path / "project", config)
    write_csv(root / "candidate.csv", ["y_true", "y_pred"], [[1, 1], [2, 5], [3, 3.5], [4, 4]])
    write_csv(root / "baseline.csv", ["y_true", "y_pred"], [[1, 2], [2, 2], [3, 3], [4, 4]])
    log = io.StringIO()
    request = pipeline.BaselineRequest(
        mode="file", file=root / "baseline.json", predictions=root / "baseline.csv"
    )
    options = pipeline.RunOptions(train=False, promote="never", baseline=request)

    outcome = pipeline.run(
        config_path=root / "mlci.yaml", env={}, console=Console(log), options=options
    )

    flipped = outcome.report.flipped
    assert flipped is not None
    assert (flipped.broken, flipped.fixed, flipped.paired_by) == (2, 1, "row order")
    assert [row[0] for row in flipped.worst] == ["2", "3"]  # error +3, then +0.5
    assert [row[0] for row in flipped.best] == ["1"]
    assert flipped.test is None
    assert json.loads((outcome.out_dir / "gate.json").read_text())["flipped"]["test"] is None


def test_row_order_with_different_lengths_is_a_note_and_no_file(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project")
    write_csv(root / "candidate.csv", ["y_true", "y_pred"], [[0, 1], [1, 1], [0, 0]])
    write_csv(root / "baseline.csv", ["y_true", "y_pred"], [[0, 0], [1, 1]])

    assert (
        gate(root, "--predictions", "candidate.csv", "--baseline-predictions", "baseline.csv") == 0
    )

    out = root / ".mlci" / "out"
    data = json.loads((out / "gate.json").read_text())
    assert data["flipped"] is None
    assert any(note.startswith("No flipped examples: the candidate") for note in data["notes"])
    assert "has 3 rows but the baseline" in " ".join(data["notes"])
    assert not (out / "flipped.csv").exists()


def test_join_by_id_counts_the_rows_on_one_side_only(tmp_path: Path) -> None:
    header = ["key", "y_true", "y_pred", "country"]
    candidate = write_csv(
        tmp_path / "c.csv", header, [["a", 0, 1, "FR"], ["b", 1, 1, "DE"], ["x", 0, 0, "IT"]]
    )
    baseline = write_csv(
        tmp_path / "b.csv",
        ["y_true", "key", "y_pred"],
        [[1, "b", 0], [0, "a", 0], [1, "y", 1], [0, "z", 0]],
    )

    from mlci.predictions import join  # new: the tests above fail on their own without it

    joined = join(
        load_predictions(candidate, task="classification", id_column="key", extra_columns=3),
        load_predictions(baseline, task="classification", id_column="key"),
    )

    assert (joined.only_candidate, joined.only_baseline, joined.by_id) == (1, 2, True)
    assert joined.candidate.ids is not None and joined.candidate.ids.tolist() == ["a", "b"]
    assert joined.baseline.y_pred.tolist() == [0, 0]
    assert joined.candidate.extra["country"].tolist() == ["FR", "DE"]


def test_other_columns_are_kept_as_text_and_out_of_the_metrics(tmp_path: Path) -> None:
    header = ["row_id", "y_true", "y_pred", "segment", "age", "city", "more"]
    path = write_csv(tmp_path / "p.csv", header, [["r1", 0, 0, "a", 31, "Oslo", "m"]])

    loaded = load_predictions(path, task="classification", id_column="row_id", extra_columns=3)

    assert loaded.ids is not None and loaded.ids.tolist() == ["r1"]
    assert list(loaded.extra) == ["segment", "age", "city"]
    assert loaded.extra["age"].tolist() == ["31"]
    assert loaded.classes == (0,)
    assert load_predictions(path, task="classification").extra == {}


def test_the_id_column_cannot_be_a_column_of_the_metrics(tmp_path: Path) -> None:
    from mlci.config import load_config
    from mlci.errors import ConfigError

    path = tmp_path / "mlci.yaml"
    path.write_text(
        CONFIG.replace("  predictions: candidate.csv", "  predictions: c.csv\n  id_column: y_true")
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert "evaluate.id_column" in caught.value.message
    assert "name the column that identifies each row" in caught.value.message


def test_a_secret_in_an_id_or_a_column_is_masked_in_flipped_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hunter2-very-secret-value"
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret)
    root = make_project(tmp_path / "project")
    header = ["id", "y_true", "y_pred", "segment"]
    write_csv(root / "candidate.csv", header, [[f"row-{secret}", 0, 1, secret], ["b", 1, 1, "x"]])
    write_csv(
        root / "baseline.csv", ["id", "y_true", "y_pred"], [[f"row-{secret}", 0, 0], ["b", 1, 1]]
    )

    gate(root, "--baseline-predictions", "baseline.csv")

    written = (root / ".mlci" / "out" / "flipped.csv").read_text()
    assert "row-***" in written and "***" in written.splitlines()[1]
    for path in (root / ".mlci" / "out").iterdir():
        if path.name == "predictions.csv":  # the training's own file, copied byte for byte
            continue
        assert secret not in path.read_text(errors="replace"), path.name


@pytest.mark.parametrize("arrow", [True, False], ids=["pyarrow", "csv module"])
def test_flipped_csv_reads_back_the_same_through_either_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrow: bool
) -> None:
    import numpy as np

    from mlci.core.flipped import CsvTable
    from mlci.pipeline.flippedcsv import write_csv

    if not arrow:  # as where pyarrow is not installed
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    table = CsvTable(
        ("change", "id", "y_true", "confidence", "flag", "note"),
        (
            np.array(["broken", "fixed", "fixed"]),
            np.array(["a,1", 'say "hi"', "'=SUM(A1)"]),
            np.array([3, -1, 0], dtype=np.int16),
            np.array([0.25, 0.1, np.nan], dtype=np.float32),
            np.array([True, False, True]),
            np.array(["token-s3cr3t-x", "", "line\nbreak café"]),  # not ASCII: cell by cell
        ),
    )

    path = write_csv(table, tmp_path / "flipped.csv", ["s3cr3t"])

    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows == [
        ["change", "id", "y_true", "confidence", "flag", "note"],
        ["broken", "a,1", "3", "0.25", "true", "token-***-x"],
        ["fixed", 'say "hi"', "-1", "0.10000000149011612", "false", ""],
        ["fixed", "'=SUM(A1)", "0", "nan", "true", "line\nbreak café"],
    ]
    assert path.read_text(encoding="utf-8").startswith('"change","id"')  # text quoted


def test_a_flipped_csv_the_disk_refuses_exits_3_and_the_report_is_still_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """flipped.csv is written while the PNGs are drawn, before the report's other files:
    refused then, it is reported with the rest, once they are written."""
    root = hostile_project(tmp_path)
    (root / ".mlci" / "out" / "flipped.csv").mkdir(parents=True)  # refuses to be a file

    code = gate(root, "--predictions", "candidate.csv", "--baseline-predictions", "baseline.csv")

    assert code == 3
    out = root / ".mlci" / "out"
    assert "could not write the report into" in capsys.readouterr().err
    assert "5 broken (the baseline right, the candidate wrong)" in (out / "report.md").read_text()
    assert json.loads((out / "gate.json").read_text())["flipped"]["broken"] == 5
