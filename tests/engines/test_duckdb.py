"""DuckDB scans predictions files into the tables numpy makes of mlci's own reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss

from mlci.engines import duckdb as engine
from mlci.engines.sql import Request, Source, Tables
from mlci.errors import MetricsError
from tests.engines.data import expected, write_classification, write_regression

pytest.importorskip("duckdb")

BINS = 50


def _source(path: Path) -> Source:
    return Source(str(path), "parquet" if path.suffix == ".parquet" else path.suffix[1:])


def check_against_numpy(tables: Tables, candidate: Path, baseline: Path | None) -> None:
    """Every table equals numpy's; counts exactly, sums to float rounding."""
    want = expected(candidate, baseline, BINS)
    assert tables.labels == want.labels
    assert dict(zip(tables.cells.tolist(), tables.counts.tolist(), strict=True)) == want.cells
    assert tables.positives is not None and tables.negatives is not None
    np.testing.assert_array_equal(tables.positives, want.positives)
    np.testing.assert_array_equal(tables.negatives, want.negatives)
    np.testing.assert_allclose(tables.log_loss, want.log_loss, rtol=1e-9)
    np.testing.assert_allclose(tables.brier, want.brier, rtol=1e-9)
    # and the exact quantities against scikit-learn
    truth = want.truth
    k = len(tables.labels)
    joint = np.zeros(k ** (2 if baseline else 1) * k, np.int64)
    joint[tables.cells] = tables.counts
    table = joint.reshape((k, k, -1)).sum(axis=2)
    labels = list(tables.labels)
    np.testing.assert_array_equal(table, confusion_matrix(truth.y_true, truth.y_pred, labels=labels))
    accuracy = np.trace(table) / tables.rows
    assert accuracy == pytest.approx(accuracy_score(truth.y_true, truth.y_pred), abs=1e-15)
    assert truth.scores is not None
    sklearn_loss = log_loss(truth.y_true, truth.scores, labels=labels)
    assert tables.log_loss is not None
    assert tables.log_loss[0] / tables.rows == pytest.approx(sklearn_loss, rel=1e-9)


def test_one_model_is_summarised_as_numpy_and_sklearn_see_it(tmp_path: Path) -> None:
    candidate, _ = write_classification(tmp_path)
    tables = engine.run(Request(_source(candidate), bins=BINS))
    assert tables.rows == 2993
    check_against_numpy(tables, candidate, None)


def test_two_models_are_paired_by_id_and_unmatched_rows_counted(tmp_path: Path) -> None:
    candidate, baseline = write_classification(tmp_path)
    tables = engine.run(Request(_source(candidate), _source(baseline), bins=BINS))
    assert (tables.rows, tables.only_candidate, tables.only_baseline) == (2988, 5, 7)
    check_against_numpy(tables, candidate, baseline)


def test_csv_files_give_the_same_tables(tmp_path: Path) -> None:
    candidate, baseline = write_classification(tmp_path, fmt="csv")
    tables = engine.run(Request(_source(candidate), _source(baseline), bins=BINS))
    check_against_numpy(tables, candidate, baseline)


def test_regression_moments_give_sklearn_errors(tmp_path: Path) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from mlci.predictions import load_predictions

    candidate, baseline = write_regression(tmp_path)
    tables = engine.run(Request(_source(candidate), _source(baseline), task="regression"))
    truth = load_predictions(candidate, task="regression")
    m = tables.moments
    assert m is not None and m.shape == (6, 6)
    n = m[0, 0]
    assert n == len(truth) == tables.rows
    assert m[2, 2] / n == pytest.approx(mean_squared_error(truth.y_true, truth.y_pred), rel=1e-12)
    assert m[0, 3] / n == pytest.approx(mean_absolute_error(truth.y_true, truth.y_pred), rel=1e-12)
    variance = m[1, 1] - m[0, 1] ** 2 / n
    assert 1 - m[2, 2] / variance == pytest.approx(r2_score(truth.y_true, truth.y_pred), rel=1e-9)


def test_repeated_ids_are_refused_with_the_fix(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    candidate, baseline = write_classification(tmp_path, rows=100)
    table = pq.read_table(baseline)
    ids = table.column("id").to_pylist()
    ids[1] = ids[0]
    pq.write_table(table.set_column(0, "id", pa.array(ids)), baseline)
    with pytest.raises(MetricsError, match=r"1 rows repeat an id of another row"):
        engine.run(Request(_source(candidate), _source(baseline)))


def test_a_baseline_without_ids_is_refused_naming_id_column(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    candidate, baseline = write_classification(tmp_path, rows=100)
    pq.write_table(pq.read_table(baseline).drop_columns(["id"]), baseline)
    with pytest.raises(MetricsError, match=r"base\.parquet: no column id; .*evaluate\.id_column"):
        engine.run(Request(_source(candidate), _source(baseline)))


def test_different_truth_on_the_same_id_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    candidate, baseline = write_classification(tmp_path, rows=100)
    table = pq.read_table(baseline)
    truth = table.column("y_true").to_numpy().copy()
    truth[:3] = (truth[:3] + 1) % 4
    pq.write_table(table.set_column(1, "y_true", pa.array(truth)), baseline)
    with pytest.raises(MetricsError, match=r"y_true differs on 3 rows of the same id"):
        engine.run(Request(_source(candidate), _source(baseline)))
