"""evaluate.engine's entry point: which engine scans which files, with which filesystems."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from mlci.core import filetypes
from mlci.core.stats import MAX_CLASSES
from mlci.errors import MetricsError
from mlci.scan import duckdb, spark, storage
from mlci.scan.sql import Request, Scanned, Source, summarize

if TYPE_CHECKING:
    from mlci.config import EvaluateConfig
    from mlci.console import Console


def scan(
    evaluate: EvaluateConfig,
    candidate: str,
    baseline: str | None = None,
    *,
    console: Console | None = None,
) -> Scanned:
    """The summary of the candidate's predictions (paired by evaluate.id_column with the
    baseline's, when given), scanned by evaluate.engine; DuckDB where none is set (files
    in object storage); the engine's warnings on `console` (the run's). Raises
    MetricsError for files mlci cannot summarise, ExternalError for storage or an engine
    that refuses."""
    baseline_source = None if baseline is None else source(baseline)
    request = Request(
        source(candidate),
        baseline_source,
        evaluate.task,
        evaluate.id_column,
        max_classes=MAX_CLASSES,
    )
    return run(
        request,
        evaluate.engine or "duckdb",
        evaluate.spark_master,
        memory_limit=evaluate.duckdb_memory_limit,
        spark_conf=evaluate.spark_conf,
        console=console,
    )


def run(
    request: Request,
    engine: str = "duckdb",
    master: str = spark.LOCAL,
    *,
    memory_limit: str | None = None,
    spark_conf: Sequence[tuple[str, str]] = (),
    console: Console | None = None,
) -> Scanned:
    """`request` scanned by `engine` (duckdb, spark); `memory_limit` caps DuckDB's memory,
    `spark_conf` is the settings of the Spark session mlci starts (evaluate.spark.conf),
    `console` says what Spark warns of (a new one where None)."""
    if engine == "spark":  # Spark reads URLs with its own filesystems (s3a://, gs://)
        with spark.opened(master, spark_conf, console) as session:
            return summarize(session, request)
    paths = [request.candidate.path] + ([request.baseline.path] if request.baseline else [])
    remote = [path for path in paths if storage.scheme(path)]
    filesystems = {storage.scheme(path): storage.filesystem(path) for path in remote}
    opened = duckdb.opened(tuple(filesystems.values()), memory_limit)
    with storage.diagnosed(*remote), opened as connection:
        return summarize(connection, request)


def source(path: str) -> Source:
    """A file, a glob or an object-storage URL, with its format from the extension
    (`.csv.gz` and `.jsonl.zst` too)."""
    name = path.split("://", 1)[1] if storage.scheme(path) else path
    suffix = filetypes.predictions_suffix(PurePosixPath(name).suffixes)
    fmt = filetypes.PREDICTIONS.get(suffix)
    if fmt is None:
        known = ", ".join(filetypes.PREDICTIONS)
        raise MetricsError(
            f"{path}: unknown predictions file type {suffix or '(no extension)'!r}; use one "
            f"of {known}"
        )
    return Source(path, fmt)
