"""Spark (local[2]) scans predictions into the same summary as DuckDB and mlci's reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlci.core.summary import ClassificationSummary
from mlci.errors import ExternalError, MetricsError
from mlci.scan.run import run
from mlci.scan.spark import java_failure, session_for
from mlci.scan.sql import Request
from tests.scan.data import (
    assert_same,
    write_classification,
    write_on_the_edges,
    write_regression,
)
from tests.scan.test_duckdb import BINS, check, source

# One JVM per test worker: the Spark tests share one session, on one worker.
pytestmark = pytest.mark.xdist_group("spark")


def test_spark_pairs_and_summarises_as_mlci_and_sklearn(tmp_path: Path, spark: Any) -> None:
    candidate, baseline = write_classification(tmp_path)
    scanned = run(Request(source(candidate), source(baseline), bins=BINS), "spark")
    assert isinstance(scanned.summary, ClassificationSummary)
    assert (scanned.summary.rows, scanned.only_candidate, scanned.only_baseline) == (2988, 5, 7)
    check(candidate, baseline, scanned.summary)


def test_spark_duckdb_and_mlci_agree_on_one_csv_model(tmp_path: Path, spark: Any) -> None:
    candidate, _ = write_classification(tmp_path, fmt="csv", rows=500)
    scanned = run(Request(source(candidate), bins=BINS), "spark")
    assert isinstance(scanned.summary, ClassificationSummary)
    check(candidate, None, scanned.summary)
    assert_same(scanned.summary, run(Request(source(candidate), bins=BINS)).summary)


@pytest.mark.parametrize("k", [2, 3])
def test_spark_bins_calibration_on_the_edges_and_ties_as_mlci(
    tmp_path: Path, spark: Any, k: int
) -> None:
    candidate, baseline = write_on_the_edges(tmp_path, k=k)
    scanned = run(Request(source(candidate), source(baseline), bins=BINS), "spark")
    assert isinstance(scanned.summary, ClassificationSummary)
    check(candidate, baseline, scanned.summary)  # reliability's bins as core.summary's


def test_spark_and_duckdb_agree_on_regression(tmp_path: Path, spark: Any) -> None:
    candidate, baseline = write_regression(tmp_path)
    request = Request(source(candidate), source(baseline), task="regression")
    assert_same(run(request, "spark").summary, run(request).summary)


def test_spark_runs_in_the_active_session(spark: Any) -> None:
    assert session_for("spark://nowhere.invalid:7077") is spark


def test_spark_refuses_a_missing_file_naming_it(tmp_path: Path, spark: Any) -> None:
    missing = tmp_path / "nothing.parquet"
    with pytest.raises(MetricsError, match=r"nothing\.parquet: Spark cannot read it"):
        run(Request(source(missing)), "spark")


# The cause of a real failure: 100M paired rows on local[2] with the default 1g driver.
OUT_OF_MEMORY = (
    "An error occurred while calling o123.collectToPython.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage "
    "7.0 failed 1 times\n"
    "\tat org.apache.spark.scheduler.DAGScheduler.abortStage(DAGScheduler.scala:4560)\n"
    "Caused by: org.apache.spark.memory.SparkOutOfMemoryError: [UNABLE_TO_ACQUIRE_MEMORY] "
    "Unable to acquire 262144 bytes of memory, got 0. SQLSTATE: 53200\n"
    "\tat org.apache.spark.errors.SparkCoreErrors$.outOfMemoryError(SparkCoreErrors.scala:428)\n"
)


def test_spark_out_of_memory_is_exit_3_naming_the_memory_settings() -> None:
    error = java_failure(OUT_OF_MEMORY)
    assert isinstance(error, ExternalError) and error.exit_code == 3
    assert "Spark ran out of memory" in error.message
    assert "UNABLE_TO_ACQUIRE_MEMORY" in error.message
    assert "--driver-memory" in error.message and "evaluate.engine: duckdb" in error.message


def test_a_job_failing_on_a_corrupt_file_is_exit_2_naming_the_cause(
    tmp_path: Path, spark: Any
) -> None:
    """A failure pyspark does not translate (Py4JJavaError), not "a bug in mlci": the
    file's footer reads (the view is made), its data pages do not."""
    candidate, _ = write_classification(tmp_path)
    data = bytearray(candidate.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8  # the metadata, its length, PAR1
    data[4 : len(data) - footer] = b"\xff" * (len(data) - footer - 4)  # every page
    candidate.write_bytes(bytes(data))
    with pytest.raises(MetricsError, match="Spark could not summarise the predictions") as info:
        run(Request(source(candidate)), "spark")
    assert info.value.exit_code == 2
    assert "Caused by" not in info.value.message and "\tat " not in info.value.message
