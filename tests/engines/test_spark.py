"""Spark (local[2]) scans predictions into the same tables as DuckDB and numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlci.engines import spark as engine
from mlci.engines.sql import Request
from mlci.errors import MetricsError
from tests.engines.data import write_classification, write_regression
from tests.engines.test_duckdb import BINS, _source, check_against_numpy

# One JVM per worker is enough: the Spark tests share one.
pytestmark = pytest.mark.xdist_group("spark")


def test_spark_pairs_and_summarises_as_numpy_and_sklearn(tmp_path: Path, spark: Any) -> None:
    candidate, baseline = write_classification(tmp_path)
    tables = engine.run(Request(_source(candidate), _source(baseline), bins=BINS))
    assert (tables.rows, tables.only_candidate, tables.only_baseline) == (2988, 5, 7)
    check_against_numpy(tables, candidate, baseline)


def test_spark_reads_csv_like_parquet(tmp_path: Path, spark: Any) -> None:
    candidate, baseline = write_classification(tmp_path, fmt="csv", rows=500)
    tables = engine.run(Request(_source(candidate), _source(baseline), bins=BINS))
    check_against_numpy(tables, candidate, baseline)


def test_spark_and_duckdb_agree_on_regression(tmp_path: Path, spark: Any) -> None:
    from mlci.engines import duckdb

    candidate, baseline = write_regression(tmp_path)
    request = Request(_source(candidate), _source(baseline), task="regression")
    spark_moments, duck_moments = engine.run(request).moments, duckdb.run(request).moments
    assert spark_moments is not None and duck_moments is not None
    np.testing.assert_allclose(spark_moments, duck_moments, rtol=1e-9)


def test_spark_runs_in_the_active_session(spark: Any) -> None:
    assert engine.session_for("spark://nowhere.invalid:7077") is spark


def test_spark_refuses_a_missing_file_naming_it(tmp_path: Path, spark: Any) -> None:
    missing = tmp_path / "nothing.parquet"
    with pytest.raises(MetricsError, match=r"nothing\.parquet: Spark cannot read it"):
        engine.run(Request(_source(missing)))
