"""Engines that scan predictions where they live (evaluate.engine): DuckDB, Apache Spark.

The engine runs the SQL of `scan.sql` and hands back small count and sum tables; mlci
merges them and decides. `duckdb` and `pyspark` are imported only when an engine runs.
"""

from __future__ import annotations

from mlci.scan.sql import Engine, Request, Scanned, Source, summarize

__all__ = ["Engine", "Request", "Scanned", "Source", "summarize"]
