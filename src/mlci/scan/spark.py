"""Apache Spark: the same summaries with Spark SQL, on a cluster or in local mode.

mlci uses the active SparkSession when it runs inside one (a notebook, spark-submit), else
starts one with evaluate.spark.master (default local[2]). Spark reads the files with its
own filesystems (s3a://, gs://, abfss:// as the cluster is configured); mlci only merges
the small tables the queries return. Memory and spill space are Spark's configuration
(spark.driver.memory, 1g by default in local mode; spark.local.dir), left as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlci.errors import ExternalError, MetricsError, UsageError

if TYPE_CHECKING:  # the engine only: scan.run runs scan.sql's queries on it
    from mlci.scan.sql import Source

LOCAL = "local[2]"


@contextmanager
def opened(master: str = LOCAL) -> Iterator[_Spark]:
    """The active SparkSession, or one on `master`, for `scan.sql.summarize`; Spark's
    errors become MetricsError, and the views it cached are dropped."""
    try:
        from pyspark.errors import PySparkException
    except ImportError:
        raise UsageError(
            "evaluate.engine is spark, which is not installed: pip install 'mlci[spark]' "
            "(Spark also needs Java 17 or newer: apt-get install openjdk-17-jre-headless)"
        ) from None
    from py4j.protocol import Py4JError, Py4JJavaError  # type: ignore[import-untyped]

    session = session_for(master)
    engine = _Spark(session)
    try:
        yield engine
    except PySparkException as exc:
        raise MetricsError(f"Spark could not summarise the predictions: {exc}") from None
    except Py4JJavaError as exc:  # what pyspark does not translate: a job that failed
        raise java_failure(str(exc.java_exception)) from None
    except Py4JError as exc:  # the JVM itself went away
        raise ExternalError(f"Spark stopped answering ({exc}): {_MEMORY}") from None
    finally:
        for view in engine.kept:  # the session may be the user's: leave no cache behind
            session.catalog.uncacheTable(view)


_MEMORY = (
    "give it more memory (local mode: spark.driver.memory, 1g by default, e.g. "
    "PYSPARK_SUBMIT_ARGS='--driver-memory 4g pyspark-shell' or spark-defaults.conf; a "
    "cluster: spark.executor.memory), or on one machine use evaluate.engine: duckdb"
)
_OUT_OF_MEMORY = ("UNABLE_TO_ACQUIRE_MEMORY", "OutOfMemoryError", "Java heap space")


def java_failure(message: str) -> MetricsError | ExternalError:
    """The error for a Spark job that failed with the Java exception `message`: out of
    memory is Spark's resources (exit 3, with the settings that give it more), anything
    else is read from the predictions (a corrupt file: exit 2)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("Caused by:")), "")
    first = (cause or (lines[0] if lines else "no message")).removeprefix("Caused by: ")
    if any(sign in message for sign in _OUT_OF_MEMORY):
        return ExternalError(
            f"Spark ran out of memory summarising the predictions ({first}): {_MEMORY}"
        )
    return MetricsError(f"Spark could not summarise the predictions: {first}")


def session_for(master: str) -> Any:
    """The active SparkSession, else a new one on `master`."""
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    try:
        return (
            SparkSession.builder.master(master)
            .appName("mlci")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate()
        )
    except (PySparkException, OSError) as exc:
        raise ExternalError(
            f"cannot start Spark on {master} ({exc}): check evaluate.spark.master, and that "
            f"Java 17 or newer is installed (java -version; apt-get install "
            f"openjdk-17-jre-headless)"
        ) from None


class _Spark:
    quote = "`"

    def __init__(self, session: Any) -> None:
        self.session = session
        self.kept: list[str] = []

    def view(self, name: str, source: Source) -> tuple[str, ...]:
        from pyspark.errors import PySparkException

        read = self.session.read
        try:
            if source.fmt == "parquet":
                frame = read.parquet(source.path)
            elif source.fmt == "jsonl":
                frame = read.json(source.path)
            else:
                sep = "\t" if source.fmt == "tsv" else ","
                frame = read.csv(source.path, header=True, inferSchema=True, sep=sep)
        except PySparkException as exc:
            raise MetricsError(f"{source.path}: Spark cannot read it ({exc})") from None
        frame.createOrReplaceTempView(name)
        return tuple(frame.columns)

    def codes(self, labels: Sequence[object], *, integer: bool) -> None:
        schema = f"label {'BIGINT' if integer else 'STRING'}, code INT"
        pairs = [(label, code) for code, label in enumerate(labels)]
        self.session.createDataFrame(pairs, schema).createOrReplaceTempView("codes")

    def keep(self, view: str) -> None:
        self.session.catalog.cacheTable(view)  # MEMORY_AND_DISK: a large view spills
        self.kept.append(view)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.session.sql(query).collect()]
