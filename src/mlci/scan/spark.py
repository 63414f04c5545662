"""Apache Spark: the same summaries with Spark SQL, on a cluster or in local mode.

mlci uses the active SparkSession when it runs inside one (a notebook, spark-submit), as
it was started, else starts one with evaluate.spark.master (default local[2]) and the
settings of evaluate.spark.conf. Spark reads the files with its own filesystems (s3a://,
gs://, abfss:// as the cluster is configured); mlci only merges the small tables the
queries return. Memory and spill space are Spark's configuration: spark.driver.memory
(1g by default in local mode) takes effect only where the builder launches Spark's JVM,
the first session of the process (PYSPARK_SUBMIT_ARGS' --driver-memory wins over it);
spark.local.dir.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from mlci.console import Console
from mlci.errors import ExternalError, MetricsError, UsageError

if TYPE_CHECKING:  # the engine only: scan.run runs scan.sql's queries on it
    from mlci.scan.sql import Source

LOCAL = "local[2]"


@contextmanager
def opened(
    master: str = LOCAL, conf: Sequence[tuple[str, str]] = (), console: Console | None = None
) -> Iterator[_Spark]:
    """The active SparkSession, or one on `master` with the settings `conf`, for
    `scan.sql.summarize` (`console`: where a warning goes, see `session_for`); Spark's
    errors become MetricsError (out of memory, or a JVM that went away: ExternalError), and
    the views it cached are dropped."""
    try:
        from pyspark.errors import PySparkException
    except ImportError:
        raise UsageError(
            "evaluate.engine is spark, which is not installed: pip install 'mlci[spark]' "
            "(Spark also needs Java 17 or newer: apt-get install openjdk-17-jre-headless)"
        ) from None
    from py4j.protocol import Py4JError, Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.sql import SparkSession

    started = SparkSession.getActiveSession() is None  # else the user's, as it is
    session = session_for(master, conf, console)
    engine = _Spark(session)
    try:
        yield engine
    except PySparkException as exc:
        raise MetricsError(f"Spark could not summarise the predictions: {exc}") from None
    except Py4JJavaError as exc:  # what pyspark does not translate: a job that failed
        raise java_failure(str(exc.java_exception), started=started) from None
    except (Py4JError, ConnectionError) as exc:  # the JVM went away (local mode: its heap)
        raise ExternalError(
            f"Spark stopped answering ({exc}; in local mode its JVM exits when it runs out of "
            f"heap): {_memory(started)}"
        ) from None
    finally:
        # The session may be the user's: leave no cache behind, unless its JVM is gone
        # (then so is the cache, and the error above says why).
        with suppress(Py4JError, ConnectionError):
            for view in engine.kept:
                session.catalog.uncacheTable(view)


def _memory(started: bool) -> str:
    """How to give Spark more memory: in the session mlci started, evaluate.spark.conf;
    in the user's, where that session is started."""
    if started:
        where, example = "with evaluate.spark.conf in mlci.yaml", "{spark.driver.memory: 4g}"
    else:
        where = (
            "where the Spark session mlci ran in is started (evaluate.spark.conf is not "
            "applied to it)"
        )
        example = (
            "spark-submit --driver-memory 4g, or PYSPARK_SUBMIT_ARGS='--driver-memory 4g "
            "pyspark-shell' before Spark starts"
        )
    return (
        f"give it more memory {where} (local mode: the driver's heap, spark.driver.memory, "
        f"1g by default, e.g. {example}; a cluster: spark.executor.memory), or on one "
        f"machine use evaluate.engine: duckdb"
    )


_OUT_OF_MEMORY = ("UNABLE_TO_ACQUIRE_MEMORY", "OutOfMemoryError", "Java heap space")


def java_failure(message: str, *, started: bool = True) -> MetricsError | ExternalError:
    """The error for a Spark job that failed with the Java exception `message`: out of
    memory is Spark's resources (exit 3, with the settings that give it more: `started`,
    in the session mlci started), anything else is read from the predictions (a corrupt
    file: exit 2)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    cause = next((line for line in lines if line.startswith("Caused by:")), "")
    first = (cause or (lines[0] if lines else "no message")).removeprefix("Caused by: ")
    if any(sign in message for sign in _OUT_OF_MEMORY):
        return ExternalError(
            f"Spark ran out of memory summarising the predictions ({first}): {_memory(started)}"
        )
    return MetricsError(f"Spark could not summarise the predictions: {first}")


def session_for(
    master: str, conf: Sequence[tuple[str, str]] = (), console: Console | None = None
) -> Any:
    """The active SparkSession, as it is (a warning on `console`, once, says that `conf`
    is not applied to it), else a new one on `master` with the settings `conf` (after
    mlci's own, so they win)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if conf:
            names = ", ".join(name for name, _ in conf)
            (console or Console()).warn_once(
                f"evaluate.spark.conf ({names}) is not applied: mlci runs in the active Spark "
                f"session, with the settings it was started with; set them where it is started "
                f"(spark-submit --conf, the notebook's SparkSession.builder)"
            )
        return active
    builder = (
        SparkSession.builder.master(master)
        .appName("mlci")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
    )
    for name, value in conf:
        builder = builder.config(name, value)
    try:
        return builder.getOrCreate()
    except (PySparkException, OSError) as exc:
        raise ExternalError(
            f"cannot start Spark on {master} ({exc}): check evaluate.spark.master and "
            f"evaluate.spark.conf, and that Java 17 or newer is installed (java -version; "
            f"apt-get install openjdk-17-jre-headless)"
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

    def derive(self, name: str, query: str) -> None:
        # A view of the analysed plan: one created from SQL text (CREATE VIEW) is parsed
        # and analysed again by every query that reads it, seconds each at 1,000 classes.
        self.session.sql(query).createOrReplaceTempView(name)

    def keep(self, view: str) -> None:
        self.session.catalog.cacheTable(view)  # MEMORY_AND_DISK: a large view spills
        self.kept.append(view)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.session.sql(query).collect()]
