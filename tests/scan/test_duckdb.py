"""DuckDB scans predictions files into the summary mlci makes of its own reading."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, confusion_matrix, log_loss

from mlci.config import EvaluateConfig
from mlci.core import curves, summary_stats
from mlci.core.stats import MAX_CLASSES
from mlci.core.summary import ClassificationSummary
from mlci.errors import MetricsError
from mlci.predictions import load_predictions
from mlci.scan import duckdb
from mlci.scan.run import run, scan
from mlci.scan.sql import Request, Source
from tests.scan.data import (
    assert_same,
    reference,
    regression_reference,
    write_classification,
    write_on_the_edges,
    write_regression,
)

pytest.importorskip("duckdb")

BINS = 50


def source(path: Path) -> Source:
    return Source(str(path), "parquet" if path.suffix == ".parquet" else path.suffix[1:])


def check(candidate: Path, baseline: Path | None, found: ClassificationSummary) -> None:
    """`found` is the reference summary, its exact quantities are scikit-learn's, and its
    precision-recall curves' average precisions are within `ap_bound` of sklearn's."""
    want, joined = reference(candidate, baseline, BINS)
    assert_same(found, want)
    truth = joined.candidate
    k = len(found.classes)
    table = found.joint.dense(k ** (3 if baseline else 2)).reshape((k, k, -1)).sum(axis=2)
    labels = list(found.classes)
    sklearn_table = confusion_matrix(truth.y_true, truth.y_pred, labels=labels)
    np.testing.assert_array_equal(table, sklearn_table)
    accuracy = np.trace(table) / found.rows
    assert accuracy == pytest.approx(accuracy_score(truth.y_true, truth.y_pred), abs=1e-15)
    assert truth.scores is not None and found.moments is not None
    mean_loss = found.moments.means()[0]
    assert mean_loss == pytest.approx(log_loss(truth.y_true, truth.scores, labels=labels), rel=1e-9)
    assert found.candidate is not None
    bound = summary_stats.ap_bound(found.candidate)
    drawn = summary_stats.pr_curves(found.candidate, found.classes)
    names = [f"class {label}" for label in labels]
    for curve in drawn:
        c = names.index(curve.name)
        exact = average_precision_score(truth.y_true == labels[c], truth.scores[:, c])
        assert curve.area is not None and abs(curve.area - exact) <= bound
    assert drawn


def test_one_model_is_summarised_as_mlci_and_sklearn_see_it(tmp_path: Path) -> None:
    candidate, _ = write_classification(tmp_path)
    scanned = run(Request(source(candidate), bins=BINS))
    assert isinstance(scanned.summary, ClassificationSummary)
    assert scanned.summary.rows == 2993
    check(candidate, None, scanned.summary)


def test_two_models_are_paired_by_id_and_unmatched_rows_counted(tmp_path: Path) -> None:
    candidate, baseline = write_classification(tmp_path)
    scanned = run(Request(source(candidate), source(baseline), bins=BINS))
    assert isinstance(scanned.summary, ClassificationSummary)
    assert (scanned.summary.rows, scanned.only_candidate, scanned.only_baseline) == (2988, 5, 7)
    check(candidate, baseline, scanned.summary)


def test_the_most_classes_mlci_takes_are_summarised(tmp_path: Path) -> None:
    """MAX_CLASSES probability columns: the sums and checks over them stay within what
    DuckDB's parser takes (a chain of 1,000 `+` was 1,000 levels deep: Parser Error)."""
    candidate, _ = write_classification(tmp_path, rows=2000, k=MAX_CLASSES, partial=False)
    scanned = run(Request(source(candidate), bins=BINS))
    assert isinstance(scanned.summary, ClassificationSummary)
    assert len(scanned.summary.classes) == MAX_CLASSES
    check(candidate, None, scanned.summary)


def test_the_most_classes_mlci_takes_are_paired(tmp_path: Path) -> None:
    """Paired at MAX_CLASSES: the joint bins' unpivot of k (part, probability,
    probability) triples and both models' losses give the reference summary."""
    candidate, baseline = write_classification(tmp_path, rows=600, k=MAX_CLASSES)
    scanned = run(Request(source(candidate), source(baseline), bins=BINS))
    assert (scanned.summary.rows, scanned.only_candidate, scanned.only_baseline) == (588, 5, 7)
    want, _ = reference(candidate, baseline, BINS)
    assert isinstance(want, ClassificationSummary) and want.joint_bins is not None
    assert want.moments is not None and want.moments.names == ("log_loss", "base_log_loss")
    assert_same(scanned.summary, want)


def test_csv_files_give_the_same_summary(tmp_path: Path) -> None:
    candidate, baseline = write_classification(tmp_path, fmt="csv")
    scanned = run(Request(source(candidate), source(baseline), bins=BINS))
    assert isinstance(scanned.summary, ClassificationSummary)
    check(candidate, baseline, scanned.summary)


@pytest.mark.parametrize("k", [2, 3])
def test_the_calibration_bins_hold_the_rows_core_curves_bins(tmp_path: Path, k: int) -> None:
    candidate, baseline = write_on_the_edges(tmp_path, k=k)
    summary = run(Request(source(candidate), source(baseline), bins=BINS)).summary
    assert isinstance(summary, ClassificationSummary)
    check(candidate, baseline, summary)  # the same fine bins as core.summary's
    rows = load_predictions(candidate, task="classification")
    exact = curves.calibration(rows)
    assert summary.candidate is not None and exact is not None
    drawn = summary_stats.calibration(summary.candidate, summary.classes)
    assert drawn is not None and drawn.name == exact.name
    assert drawn.y == exact.y
    assert drawn.x == pytest.approx(exact.x, rel=1e-12, abs=0)


def test_one_class_with_its_probability_is_summarised_without_a_diagram(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"y_true": [3] * 5, "y_pred": [3] * 5, "p_3": [1.0] * 5}), path)
    summary = run(Request(source(path), bins=BINS)).summary
    assert isinstance(summary, ClassificationSummary) and summary.candidate is not None
    assert_same(summary, reference(path, None, BINS)[0])
    assert summary.candidate.reliability.rows.sum() == 5
    assert summary_stats.calibration(summary.candidate, summary.classes) is None


def test_regression_moments_give_sklearn_errors(tmp_path: Path) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    candidate, baseline = write_regression(tmp_path)
    summary = run(Request(source(candidate), source(baseline), task="regression")).summary
    assert_same(summary, regression_reference(candidate, baseline))
    truth = load_predictions(candidate, task="regression")
    means = dict(zip(summary.moments.names, summary.moments.means(), strict=True))
    assert means["squared"] == pytest.approx(mean_squared_error(truth.y_true, truth.y_pred))
    assert means["abs"] == pytest.approx(mean_absolute_error(truth.y_true, truth.y_pred))


def test_repeated_ids_are_refused_with_the_fix(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    candidate, baseline = write_classification(tmp_path, rows=100)
    table = pq.read_table(baseline)
    ids = table.column("id").to_pylist()
    ids[1] = ids[0]
    pq.write_table(table.set_column(0, "id", pa.array(ids)), baseline)
    with pytest.raises(MetricsError, match=r"1 rows repeat an id of another row"):
        run(Request(source(candidate), source(baseline)))


def test_a_baseline_without_ids_is_refused_naming_id_column(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    candidate, baseline = write_classification(tmp_path, rows=100)
    pq.write_table(pq.read_table(baseline).drop_columns(["id"]), baseline)
    with pytest.raises(MetricsError, match=r"base\.parquet: no column id; .*evaluate\.id_column"):
        run(Request(source(candidate), source(baseline)))


def test_different_truth_on_the_same_id_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    candidate, baseline = write_classification(tmp_path, rows=100)
    table = pq.read_table(baseline)
    truth = table.column("y_true").to_numpy().copy()
    truth[:3] = (truth[:3] + 1) % 4
    pq.write_table(table.set_column(1, "y_true", pa.array(truth)), baseline)
    with pytest.raises(MetricsError, match=r"y_true differs on 3 rows of the same id"):
        run(Request(source(candidate), source(baseline)))


def test_probabilities_that_do_not_sum_to_one_are_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    candidate, _ = write_classification(tmp_path, rows=100)
    table = pq.read_table(candidate)
    doubled = pa.compute.multiply(table.column("p_0"), 2)
    pq.write_table(table.set_column(3, "p_0", doubled), candidate)
    with pytest.raises(MetricsError, match=r"cand\.parquet: the probabilities of \d+ rows"):
        run(Request(source(candidate)))


def test_past_its_memory_limit_duckdb_spills_into_a_folder_of_its_own_removed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp, work = tmp_path / "tmp", tmp_path / "work"
    temp.mkdir()
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # TMPDIR, as tempfile read it
    monkeypatch.chdir(work)
    distinct = "SELECT COUNT(*) FROM (SELECT DISTINCT i * 7919 % 5000000 FROM range(5000000) t(i))"

    with duckdb.opened(memory_limit="32MB") as engine:  # 5M distinct values: about 100 MB
        ((count,),) = engine.rows(distinct)
        spilled = [path.name for path in temp.glob("mlci-duckdb-*/*")]

    assert count == 5_000_000
    assert spilled, "DuckDB held 5M distinct values within 32 MB without spilling"
    assert list(temp.iterdir()) == []
    assert list(work.iterdir()) == []  # not DuckDB's default, .tmp in the working folder


def test_running_out_of_memory_names_evaluate_duckdb_memory_limit(tmp_path: Path) -> None:
    candidate, baseline = write_classification(tmp_path)
    evaluate = EvaluateConfig((), engine="duckdb", duckdb_memory_limit="1MB")

    with pytest.raises(MetricsError) as raised:
        scan(evaluate, str(candidate), str(baseline))

    assert "DuckDB ran out of memory summarising the predictions (Out of Memory Error" in str(
        raised.value
    )
    assert "raise evaluate.duckdb.memory_limit (now 1MB) in mlci.yaml" in str(raised.value)
