"""Engines that scan predictions where they live (evaluate.engine): DuckDB, Apache Spark.

The engine runs the SQL of `scan.sql` and hands back small count and sum tables; mlci
merges them and decides. `duckdb` and `pyspark` are imported only when an engine runs.
The package imports none of its modules: every gate asks `scan.storage` whether a
predictions file is a URL, and only a scan needs the queries (`scan.sql`, `scan.run`).
"""
