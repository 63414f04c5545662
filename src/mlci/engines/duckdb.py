"""DuckDB embedded: SQL over local or remote predictions files, out of core.

Object-storage URLs (s3://, gs://, az://) are read through fsspec (`engines.storage`),
registered with DuckDB as a filesystem: DuckDB's own httpfs and azure extensions are
downloaded on first use, which a runner without network (or a pinned one) cannot do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlci.engines import storage
from mlci.engines.sql import Request, Scanned, Source, summarize
from mlci.errors import MetricsError, UsageError

_READERS = {
    "parquet": "read_parquet({path})",
    "csv": "read_csv({path}, header = true)",
    "tsv": "read_csv({path}, header = true, delim = '\\t')",
    "jsonl": "read_json({path}, format = 'newline_delimited')",
}


def run(request: Request) -> Scanned:
    """`request`'s summaries, scanned by an in-process DuckDB."""
    try:
        import duckdb
    except ImportError:
        raise UsageError(
            "evaluate.engine is duckdb, which is not installed: pip install 'mlci[duckdb]'"
        ) from None
    connection = duckdb.connect()
    try:
        # Rows need no order here, and an unordered scan streams in bounded memory.
        connection.execute("SET preserve_insertion_order = false")
        return summarize(_DuckDB(connection), request)
    except duckdb.Error as exc:
        raise MetricsError(f"DuckDB could not summarise the predictions: {exc}") from None
    finally:
        connection.close()


class _DuckDB:
    quote = '"'

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.registered: set[str] = set()

    def view(self, name: str, source: Source) -> tuple[str, ...]:
        scheme = storage.scheme(source.path)
        if scheme is not None and scheme not in self.registered:
            self.connection.register_filesystem(storage.filesystem(source.path))
            self.registered.add(scheme)
        literal = "'" + source.path.replace("'", "''") + "'"
        reader = _READERS[source.fmt].format(path=literal)
        with storage.diagnosed(source.path):
            self.connection.execute(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS FROM {reader}")
        described = self.connection.execute(f"DESCRIBE {name}").fetchall()
        return tuple(str(row[0]) for row in described)

    def codes(self, labels: Sequence[object], *, integer: bool) -> None:
        kind = "BIGINT" if integer else "VARCHAR"
        self.connection.execute(f"CREATE OR REPLACE TEMPORARY TABLE codes (label {kind}, code INT)")
        self.connection.executemany(
            "INSERT INTO codes VALUES (?, ?)", [(label, code) for code, label in enumerate(labels)]
        )

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(query)
        return cursor.fetchall() if cursor.description else []
