"""Predictions files read in record batches and summarized: the same numbers as in memory."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlci import predictions, streaming
from mlci.core import curves, stats, summary_stats
from mlci.errors import MetricsError

ROWS = 12_000


def _columns(skill: float, seed: int, labels: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(ROWS, 3))
    logits[np.arange(ROWS), labels] += skill
    scores = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 6)
    columns = {"y_true": labels, "y_pred": scores.argmax(axis=1)}
    return columns | {f"p_{c}": scores[:, c] for c in range(3)}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    labels = np.random.default_rng(0).integers(0, 3, ROWS) * 10  # labels 0, 10, 20
    candidate, baseline = tmp_path / "cand.parquet", tmp_path / "base.csv.gz"
    first = _columns(1.5, 1, labels // 10)
    first["y_true"], first["y_pred"] = labels, first["y_pred"] * 10
    pq.write_table(pa.table(_renamed(first)), candidate, row_group_size=2_500)
    second = _columns(1.0, 2, labels // 10)
    second["y_true"], second["y_pred"] = labels, second["y_pred"] * 10
    with gzip.open(baseline, "wb") as file:
        pacsv.write_csv(pa.table(_renamed(second)), file)
    return candidate, baseline


def _renamed(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        (f"p_{int(name[2:]) * 10}" if name.startswith("p_") else name): values
        for name, values in columns.items()
    }


def test_batches_summarized_give_the_in_memory_metrics(files: tuple[Path, Path]) -> None:
    candidate, baseline = files
    summary = streaming.summarize(candidate, baseline, task="classification", batch_rows=1_000)
    first = predictions.load_predictions(candidate, task="classification")
    second = predictions.load_predictions(baseline, task="classification")
    assert summary.classes == (0, 10, 20) and summary.rows == ROWS
    exact = stats.compute_metrics(first, "classification")
    binned = summary_stats.compute_metrics(summary)
    found = summary_stats.approximation(summary)
    for name, value in exact.items():
        allowed = found.auc_bound if name == "roc_auc" else 1e-12
        assert binned[name] == pytest.approx(value, abs=allowed)
    assert summary.candidate is not None and 0 < found.ap_bound < 0.01
    drawn = summary_stats.pr_curves(summary.candidate, summary.classes)
    for ours, theirs in zip(drawn, curves.pr_curves(first), strict=True):
        assert ours.name == theirs.name and ours.area is not None and theirs.area is not None
        assert abs(ours.area - theirs.area) <= found.ap_bound
    paired = summary_stats.paired_difference_intervals(summary, resamples=100)
    expected = stats.paired_difference_intervals(first, second, "classification", resamples=100)
    assert paired["accuracy"] == expected["accuracy"]
    assert paired["log_loss"].low == pytest.approx(expected["log_loss"].low)


def test_a_bad_value_in_a_later_batch_is_named_by_its_row_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "preds.parquet"
    scores = np.full(5_000, 0.5)
    scores[3_456] = 1.5
    labels = np.arange(5_000) % 2
    pq.write_table(pa.table({"y_true": labels, "y_pred": labels, "score": scores}), path)
    with pytest.raises(MetricsError, match=r"score in row 3457 is 1\.5, not a probability"):
        streaming.summarize(path, task="classification", batch_rows=1_000)


def test_rows_that_do_not_pair_are_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("y_true,y_pred\n1,1\n0,1\n1,0\n")
    second.write_text("y_true,y_pred\n1,1\n0,1\n")
    with pytest.raises(MetricsError, match=r"has 3 rows but the baseline .* has 2"):
        streaming.summarize(first, second, task="classification", batch_rows=2)
    second.write_text("id,y_true,y_pred\n1,1,1\n2,0,1\n3,1,0\n")
    first.write_text("id,y_true,y_pred\n1,1,1\n2,0,1\n3,1,0\n")
    with pytest.raises(MetricsError, match=r"evaluate\.engine: duckdb"):
        streaming.summarize(first, second, task="classification")


def test_regression_from_a_zstd_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl.zst"
    rng = np.random.default_rng(5)
    y = rng.normal(size=3_000)
    table = pa.table({"y_true": y, "y_pred": y + rng.normal(0, 0.3, 3_000)})
    lines = "".join(
        f'{{"y_true": {t!r}, "y_pred": {p!r}}}\n'
        for t, p in zip(table["y_true"].to_pylist(), table["y_pred"].to_pylist(), strict=True)
    )
    with pa.output_stream(str(path), compression="zstd") as file:
        file.write(lines.encode())
    summary = streaming.summarize(path, task="regression", batch_rows=700)
    exact = stats.compute_metrics(
        predictions.load_predictions(path, task="regression"), "regression"
    )
    assert summary_stats.compute_metrics(summary) == pytest.approx(exact, rel=1e-9)


def _project(tmp_path: Path, files: tuple[Path, Path], rule: str, exact_rows: int = 10_000) -> Path:
    """A project judging cand.parquet and base.csv.gz, above evaluate.exact_rows unless
    `exact_rows` holds them."""
    from tests.test_flipped import make_project

    tmp_path.mkdir(exist_ok=True)
    root = make_project(
        tmp_path / "project",
        "version: 1\nmodel:\n  name: big\nevaluate:\n  predictions: cand.parquet\n"
        f"  exact_rows: {exact_rows}\ngate:\n  rules:\n{rule}report:\n  plots: false\n",
    )
    (root / "cand.parquet").write_bytes(files[0].read_bytes())
    (root / "base.csv.gz").write_bytes(files[1].read_bytes())
    return root


def test_gate_above_exact_rows_judges_from_summaries_and_says_so(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    from tests.test_flipped import gate

    rule = "    - metric: roc_auc\n      min: 0.5\n      confidence: 0.95\n"
    root = _project(tmp_path, files, rule)
    assert gate(root, "--baseline-predictions", "base.csv.gz") == 0
    result = json.loads((root / ".mlci" / "out" / "gate.json").read_text())
    text = json.dumps(result)
    assert "more than evaluate.exact_rows (10,000)" in text
    assert "method: binned, 1000 bins, roc_auc within" in text
    assert '"method": "delong (binned, 1000 bins)"' in text
    assert "Intervals are not paired" not in text
    assert result["rows"]["method"] == "binned, 1000 bins"
    assert 0 < result["rows"]["auc_bound"] < 0.01
    assert 0 < result["rows"]["ap_bound"] < 0.01
    assert "the candidate's average precisions (PR) within ±" in result["notes"][0]
    assert result["rows"]["baseline"] == ROWS
    report = (root / ".mlci" / "out" / "report.md").read_text()
    for title in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Calibration"):
        assert title in report  # drawn from the paired summary's counts and histograms
    assert "Drawn from score histograms (binned, 1000 bins) of 12,000 rows" in report
    assert "each average precision (AP) within ±" in report


def test_a_csv_value_pyarrow_refuses_in_a_later_block_is_named_by_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictions, "_BLOCK_BYTES", 4_096)  # many blocks from a small file
    path = tmp_path / "preds.csv"
    lines = ["y_true,y_pred,p_0,p_1"]
    lines += [
        f"{i % 2},{i % 2},{0.25 + 0.5 * (i % 2)},{0.75 - 0.5 * (i % 2)}" for i in range(5_000)
    ]
    lines[3_457] = "1,1,0.25,abc"  # row 3457: the header is line 0
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MetricsError, match=r"p_1 in row 3457 is 'abc', not a number"):
        streaming.summarize(path, task="classification")
    lines[3_457] = "1,1,0.25,0.75"
    path.write_text("\n".join(lines) + "\n")
    summary = streaming.summarize(path, task="classification")
    exact = stats.compute_metrics(
        predictions.load_predictions(path, task="classification"), "classification"
    )
    assert summary.rows == 5_000
    assert summary_stats.compute_metrics(summary)["log_loss"] == pytest.approx(exact["log_loss"])


def test_a_jsonl_value_pyarrow_refuses_in_a_later_block_is_named_by_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictions, "_BLOCK_BYTES", 4_096)
    path = tmp_path / "preds.jsonl.gz"
    records = [f'{{"y_true": {i / 10}, "y_pred": {i / 10 + 0.5}}}' for i in range(4_000)]
    records[2_999] = '{"y_true": 1.5, "y_pred": "abc"}'  # row 3000
    with gzip.open(path, "wt") as file:
        file.write("\n".join(records) + "\n")
    with pytest.raises(MetricsError, match=r"y_pred in row 3000 is 'abc', not a number"):
        streaming.summarize(path, task="regression")


def test_a_paired_gate_above_exact_rows_reads_each_file_once(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlci.cli import main

    root = _project(tmp_path, files, "    - metric: accuracy\n      max_drop: 0.5\n")
    reads: list[str] = []
    real = streaming.read_batches

    def counted(path: Path, **options: object):  # type: ignore[no-untyped-def]
        reads.append(path.name)
        return real(path, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(streaming, "read_batches", counted)
    monkeypatch.chdir(root)
    assert main(["gate", "--json", "--baseline-predictions", "base.csv.gz"]) == 0
    assert sorted(reads) == ["base.csv.gz", "cand.parquet"]
    result = json.loads((root / ".mlci" / "out" / "gate.json").read_text())
    alone = streaming.summarize(root / "base.csv.gz", task="classification")
    expected = summary_stats.compute_metrics(alone)
    accuracy = next(row for row in result["results"] if row["metric"] == "accuracy")
    assert accuracy["baseline"] == pytest.approx(expected["accuracy"], abs=1e-12)


def test_a_paired_gate_in_memory_reads_the_baseline_ahead_with_the_same_result(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to exact_rows the baseline's file is read on a thread while the candidate's
    metrics are computed (from READ_AHEAD_ROWS rows), once (its metrics and the paired
    intervals both come from that read), and the verdicts are those of reading it when
    asked."""
    from mlci.cli import main

    reads: list[tuple[str, str]] = []
    real = predictions._load

    def counted(path: Path, spec: object) -> predictions.Predictions:
        reads.append((path.name, threading.current_thread().name))
        return real(path, spec)  # type: ignore[arg-type]

    monkeypatch.setattr(predictions, "_load", counted)
    results = []
    for ahead in (True, False):
        reads.clear()
        root = _project(
            tmp_path / str(ahead), files, "    - metric: roc_auc\n      max_drop: 0.5\n", 10**6
        )
        monkeypatch.setattr(streaming, "READ_AHEAD_ROWS", 0 if ahead else 10**9)
        monkeypatch.chdir(root)
        assert main(["gate", "--json", "--baseline-predictions", "base.csv.gz"]) == 0
        where = "mlci-read_0" if ahead else "MainThread"
        assert sorted(reads) == [("base.csv.gz", where), ("cand.parquet", "MainThread")]
        assert not predictions._AHEAD  # taken, not left behind
        results.append(json.loads((root / ".mlci" / "out" / "gate.json").read_text())["results"])

    assert results[0] == results[1]
    auc = results[0][0]
    assert auc["metric"] == "roc_auc" and auc["interval"]["of"] == "change"
    assert auc["interval"]["method"] == "delong"


def _section(report: str, title: str) -> str:
    start = report.index(f"<summary>{title}</summary>")
    return report[start : report.index("</details>", start)]


def test_a_multiclass_calibration_above_exact_rows_is_the_one_below(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    from tests.test_flipped import gate

    sections = []
    for exact_rows in (10_000, ROWS):  # above, then below (the rows held, core.curves)
        root = _project(
            tmp_path / str(exact_rows),
            files,
            "    - metric: accuracy\n      max_drop: 0.5\n",
            exact_rows,
        )
        assert gate(root, "--baseline-predictions", "base.csv.gz") == 0
        report = (root / ".mlci" / "out" / "report.md").read_text()
        assert ("Drawn from score histograms" in report) == (exact_rows < ROWS)
        sections.append(_section(report, "Calibration"))
    above, below = sections
    assert "line [" in above and "blue: candidate, orange: baseline" in above  # both models
    assert above == below
