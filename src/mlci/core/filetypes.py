"""The files mlci reads, by extension: what each configured file may be.

One table per kind, so that mlci.yaml is checked when it is loaded (before any training)
against the same types the readers accept.
"""

from __future__ import annotations

# Metrics files (evaluate.metrics, report.params, gate.baseline file:PATH): core.metrics.
METRICS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".tsv": "tsv"}
# Predictions files (evaluate.predictions): mlci.predictions.
PREDICTIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
# Predictions files may be compressed: data.csv.gz, data.jsonl.zst (read as they stream).
COMPRESSED = (".gz", ".zst")


def predictions_suffix(suffixes: list[str]) -> str:
    """The type's extension of a predictions file (`.csv` for data.csv.gz), lower case."""
    lowered = [suffix.lower() for suffix in suffixes]
    if len(lowered) >= 2 and lowered[-1] in COMPRESSED:
        return lowered[-2]
    return lowered[-1] if lowered else ""


# A per-epoch training log (report.training_log): core.curves.
TRAINING_LOGS = {".csv": "csv", ".json": "json"}
