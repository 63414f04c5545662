"""evaluate.engine's entry point: which engine scans, over which files."""

from __future__ import annotations

from pathlib import Path

from mlci.config import EvaluateConfig
from mlci.core.stats import MAX_CLASSES
from mlci.engines import storage
from mlci.engines.sql import Request, Scanned, Source
from mlci.predictions import format_for


def scan(evaluate: EvaluateConfig, candidate: str, baseline: str | None = None) -> Scanned:
    """The summary of the candidate's predictions (paired by evaluate.id_column with the
    baseline's, when given), scanned by evaluate.engine; DuckDB where none is set (files
    in object storage). Raises MetricsError for files mlci cannot summarise, ExternalError
    for storage or an engine that refuses."""
    baseline_source = None if baseline is None else source(baseline)
    request = Request(
        source(candidate),
        baseline_source,
        evaluate.task,
        evaluate.id_column,
        max_classes=MAX_CLASSES,
    )
    if evaluate.engine == "spark":
        from mlci.engines import spark

        return spark.run(request, evaluate.spark_master)
    from mlci.engines import duckdb

    remote = [path for path in (candidate, baseline) if path and storage.scheme(path)]
    filesystems = {storage.scheme(path): storage.filesystem(path) for path in remote}
    with storage.diagnosed(*remote):
        return duckdb.run(request, tuple(filesystems.values()))


def source(path: str) -> Source:
    """A file, a glob or an object-storage URL, with its format from the extension."""
    name = path.split("://", 1)[1] if storage.scheme(path) else path
    return Source(path, format_for(Path(name)))
