"""DuckDB embedded: SQL over local or remote predictions files, out of core.

DuckDB holds at most evaluate.duckdb.memory_limit (default DuckDB's own: 80% of the memory
it sees) and spills the rest of a join or an aggregation into a temporary folder of its
own under TMPDIR, removed when the scan ends (DuckDB's default, `.tmp` in the working
folder, would be the repository's checkout).

Object-storage URLs (s3://, gs://, az://) are read through the fsspec filesystems the
caller passes (`scan.storage`), registered with DuckDB: DuckDB's own httpfs and azure
extensions are downloaded on first use, which a runner without network cannot do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlci.errors import MetricsError, UsageError

if TYPE_CHECKING:  # the engine only: scan.run runs scan.sql's queries on it
    from mlci.scan.sql import Source

_READERS = {
    "parquet": "read_parquet({path})",
    "csv": "read_csv({path}, header = true)",
    "tsv": "read_csv({path}, header = true, delim = '\\t')",
    "jsonl": "read_json({path}, format = 'newline_delimited')",
}


@contextmanager
def opened(filesystems: Sequence[Any] = (), memory_limit: str | None = None) -> Iterator[_DuckDB]:
    """An in-process DuckDB for `scan.sql.summarize`; `filesystems` (fsspec's) read the
    object-storage URLs; `memory_limit` (evaluate.duckdb.memory_limit) caps its memory, the
    rest spilled to a temporary folder. DuckDB's errors become MetricsError."""
    try:
        import duckdb
    except ImportError:
        raise UsageError(
            "evaluate.engine is duckdb, which is not installed: pip install 'mlci[duckdb]'"
        ) from None
    settings = {} if memory_limit is None else {"memory_limit": memory_limit}
    with tempfile.TemporaryDirectory(prefix="mlci-duckdb-") as spill:
        connection = duckdb.connect(config={"temp_directory": spill, **settings})
        try:
            # Rows need no order here, and an unordered scan streams in bounded memory.
            connection.execute("SET preserve_insertion_order = false")
            for filesystem in filesystems:
                connection.register_filesystem(filesystem)
            yield _DuckDB(connection)
        except duckdb.OutOfMemoryException as exc:
            said = str(exc).split("\n", 1)[0]
            raise MetricsError(_out_of_memory(said, memory_limit)) from None
        except duckdb.Error as exc:
            raise MetricsError(f"DuckDB could not summarise the predictions: {exc}") from None
        finally:
            connection.close()


def _out_of_memory(said: str, memory_limit: str | None) -> str:
    if memory_limit is None:
        fix = (
            "DuckDB had its default, 80% of the memory it sees: run on a machine with more "
            "memory, or write the predictions in smaller Parquet row groups"
        )
    else:
        fix = (
            f"raise evaluate.duckdb.memory_limit (now {memory_limit}) in mlci.yaml: besides "
            f"what it spills to disk, DuckDB holds the row groups it reads at once"
        )
    return f"DuckDB ran out of memory summarising the predictions ({said}): {fix}"


class _DuckDB:
    quote = '"'

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def view(self, name: str, source: Source) -> tuple[str, ...]:
        literal = "'" + source.path.replace("'", "''") + "'"
        reader = _READERS[source.fmt].format(path=literal)
        self.connection.execute(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS FROM {reader}")
        described = self.connection.execute(f"DESCRIBE {name}").fetchall()
        return tuple(str(row[0]) for row in described)

    def codes(self, labels: Sequence[object], *, integer: bool) -> None:
        kind = "BIGINT" if integer else "VARCHAR"
        self.connection.execute(f"CREATE OR REPLACE TEMPORARY TABLE codes (label {kind}, code INT)")
        self.connection.executemany(
            "INSERT INTO codes VALUES (?, ?)", [(label, code) for code, label in enumerate(labels)]
        )

    def derive(self, name: str, query: str) -> None:
        self.connection.execute(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {query}")

    def keep(self, view: str) -> None:
        pass  # each query streams the files again: memory stays bounded

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(query)
        return cursor.fetchall() if cursor.description else []
