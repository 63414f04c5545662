"""Spark (local[2]) scans predictions into the same summary as DuckDB and mlci's reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlci import git
from mlci.cli import main
from mlci.config import EvaluateConfig
from mlci.core.summary import ClassificationSummary
from mlci.errors import ExternalError, MetricsError
from mlci.scan.run import run, scan
from mlci.scan.spark import java_failure, session_for
from mlci.scan.sql import Request
from tests.scan.data import (
    assert_same,
    write_classification,
    write_on_the_edges,
    write_regression,
)
from tests.scan.test_duckdb import BINS, check, source
from tests.scan.test_storage import GATED

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
    assert "with evaluate.spark.conf in mlci.yaml" in error.message
    assert "spark.driver.memory, 1g by default, e.g. {spark.driver.memory: 4g}" in error.message
    assert "evaluate.engine: duckdb" in error.message
    # In the user's session mlci's settings are not applied: where it is started, they are.
    theirs = java_failure(OUT_OF_MEMORY, started=False).message
    assert "evaluate.spark.conf is not applied" in theirs
    assert "PYSPARK_SUBMIT_ARGS='--driver-memory 4g pyspark-shell'" in theirs


def test_evaluate_spark_conf_is_not_applied_to_the_active_session_and_a_warning_says_so(
    tmp_path: Path, spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate, _ = write_classification(tmp_path, rows=200)
    conf = (("spark.sql.shuffle.partitions", "3"),)
    evaluate = EvaluateConfig((), engine="spark", spark_conf=conf)

    scanned = scan(evaluate, str(candidate))

    assert scanned.summary.rows == 193
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"  # the fixture's own
    warning = capsys.readouterr().err
    assert "evaluate.spark.conf (spark.sql.shuffle.partitions) is not applied" in warning
    assert "mlci runs in the active Spark session" in warning


SPARK_GATE = GATED.replace(
    "  predictions: cand.parquet\n",
    "  predictions: cand.parquet\n  engine: spark\n"
    "  spark: {conf: {spark.sql.shuffle.partitions: 3}}\n",
)


def test_a_gate_in_the_active_session_warns_once_that_spark_conf_is_not_applied(
    tmp_path: Path,
    spark: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The evaluate stage scans the candidate and the gate both models, paired: two scans
    in the active session, one warning, on the run's console."""
    write_classification(tmp_path, rows=300, partial=False)
    git.init_repo(tmp_path, branch="main")
    (tmp_path / "mlci.yaml").write_text(SPARK_GATE)
    (tmp_path / ".gitignore").write_text(".mlci/\n")
    (tmp_path / "base.json").write_text(json.dumps({"accuracy": 0.5}))
    git.commit_all(tmp_path, "initial")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()

    code = main(["gate", "--baseline", "base.json", "--baseline-predictions", "base.parquet"])

    assert code == 0
    result = json.loads((tmp_path / ".mlci" / "out" / "gate.json").read_text())
    assert result["rows"]["baseline"] == 300  # the gate's paired scan ran
    err = capsys.readouterr().err
    assert err.count("evaluate.spark.conf (spark.sql.shuffle.partitions) is not applied") == 1
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"  # the fixture's own


# In a process of its own (the worker's session is active, and its JVM is shared): mlci
# starts Spark with evaluate.spark.conf, scans, and reads back the settings and the
# driver's heap; then, in a new session on the same JVM, the JVM dies during a query.
STARTED = """
import json, os, sys, threading
from pyspark import SparkContext
from pyspark.sql import SparkSession
from mlci import git
from mlci.cli import main
from mlci.config import EvaluateConfig
from mlci.errors import MlciError
from mlci.scan import spark
from mlci.scan.run import scan

conf = (("spark.sql.shuffle.partitions", "3"), ("spark.driver.memory", "600m"))
evaluate = EvaluateConfig((), engine="spark", spark_master="local[1]", spark_conf=conf)
found = {"rows": scan(evaluate, sys.argv[1]).summary.rows}
session = SparkSession.getActiveSession()
found["partitions"] = session.conf.get("spark.sql.shuffle.partitions")
runtime = session.sparkContext._jvm.java.lang.Runtime.getRuntime()
found["heap_mb"] = runtime.maxMemory() / 2**20
session.stop()
try:
    with spark.opened("local[1]") as engine:
        engine.derive("numbers", "SELECT id FROM range(10)")
        engine.keep("numbers")
        engine.rows("SELECT COUNT(*) FROM numbers")
        threading.Timer(2, SparkContext._gateway.proc.kill).start()
        engine.rows("SELECT SUM(id % 7) FROM range(1000000000000)")  # hours, were it not killed
except MlciError as exc:
    found["error"] = [type(exc).__name__, exc.exit_code, exc.message]
print(json.dumps(found), flush=True)
os._exit(0)  # pyspark's exit handlers would talk to the JVM that is gone
"""


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> dict[str, Any]:
    """What STARTED found (`spark`: skipped, as the other tests, without pyspark or Java)."""
    candidate, _ = write_classification(tmp_path_factory.mktemp("started"), rows=200)
    done = subprocess.run(
        [sys.executable, "-c", STARTED, str(candidate)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_the_session_mlci_starts_has_the_settings_of_evaluate_spark_conf(
    started: dict[str, Any],
) -> None:
    assert started["rows"] == 193
    assert started["partitions"] == "3"  # mlci's own default is 8
    # The driver's heap is the JVM's, sized when the builder launched it: 600m, not 1g.
    assert 500 < started["heap_mb"] <= 600


def test_a_jvm_gone_during_the_scan_is_exit_3_naming_the_memory_setting(
    started: dict[str, Any],
) -> None:
    """Local mode's JVM exits when a task runs out of heap (java.lang.OutOfMemoryError, as
    1,000 classes did at 20,000 paired rows with 1g); the views mlci cached go with it,
    and the error is the memory's, not the failed clean-up's (ConnectionRefusedError)."""
    kind, code, message = started["error"]
    assert (kind, code) == ("ExternalError", 3)
    assert message.startswith("Spark stopped answering (")
    assert "evaluate.spark.conf in mlci.yaml" in message
    assert "{spark.driver.memory: 4g}" in message
