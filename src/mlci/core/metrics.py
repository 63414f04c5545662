"""Read and flatten metric files: JSON, YAML, CSV, with DVC-style nesting.

Nested mappings become dotted names (`{"test": {"acc": 0.9}}` -> `test.acc`), as
`dvc metrics show` does. Values keep their type: numbers stay numbers, and anything
else (strings, booleans, null) is kept so the gate can say what is wrong with it
instead of dropping it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

from mlci.core import yamlsafe
from mlci.errors import MetricsError

MetricValue = float | int | str | bool | None

_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".tsv": "tsv"}


@dataclass(frozen=True)
class Metrics:
    """Flattened metrics and the file each one came from."""

    values: Mapping[str, MetricValue]
    sources: Mapping[str, str]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def get(self, name: str) -> MetricValue:
        return self.values.get(name)


def is_number(value: MetricValue) -> bool:
    """True for a real, finite number (booleans are not metrics)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def format_for(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_FORMATS))
        raise MetricsError(
            f"{path}: unknown metrics file type {path.suffix or '(no extension)'!r}; "
            f"use one of {known}"
        )
    return fmt


def parse_metrics(text: str, *, fmt: str, source: str) -> dict[str, MetricValue]:
    """Parse one metrics file's text into flat `name -> value`."""
    if not text.strip():
        raise MetricsError(f"{source}: the file is empty; expected metric names and values")
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetricsError(
                f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
    elif fmt == "yaml":
        try:
            data = yamlsafe.load(text)
        except yaml.YAMLError as exc:
            raise MetricsError(
                f"{source}: not valid YAML ({yamlsafe.describe_error(exc)})"
            ) from None
    elif fmt in ("csv", "tsv"):
        return _parse_table(text, delimiter="," if fmt == "csv" else "\t", source=source)
    else:
        raise MetricsError(f"{source}: unknown metrics format {fmt!r}")
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise MetricsError(
            f'{source}: expected a mapping of metric names to values (e.g. {{"accuracy": 0.95}}), '
            f"got {kind}"
        )
    return flatten(data)


def flatten(data: Mapping[str, object], prefix: str = "") -> dict[str, MetricValue]:
    """Flatten nested mappings and lists into dotted names."""
    flat: dict[str, MetricValue] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        _flatten_into(flat, name, value)
    return flat


def _flatten_into(flat: dict[str, MetricValue], name: str, value: object) -> None:
    if isinstance(value, Mapping):
        flat.update(flatten(value, prefix=f"{name}."))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten_into(flat, f"{name}.{index}", item)
    elif value is None or isinstance(value, str | int | float | bool):
        flat[name] = value
    else:
        flat[name] = str(value)


def _parse_table(text: str, *, delimiter: str, source: str) -> dict[str, MetricValue]:
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(row)]
    if not rows:
        raise MetricsError(f"{source}: the file is empty; expected name,value rows")
    header = [cell.strip().lower() for cell in rows[0]]
    if header in (["name", "value"], ["metric", "value"]):
        return _pairs(rows[1:], source)
    # Two columns are name,value rows unless the first row is a header of names above
    # rows of numbers (`accuracy,f1` then `0.9,0.8`).
    header_above_numbers = len(rows) > 1 and all(_numeric(row[0]) for row in rows[1:])
    if len(rows[0]) == 2 and (_numeric(rows[0][1]) or not header_above_numbers):
        return _pairs(rows, source)
    if len(rows) != 2:
        raise MetricsError(
            f"{source}: expected either name,value rows or a header row and one row of "
            f"values, got {len(rows) - 1} rows of values"
        )
    names, values = rows
    if len(names) != len(values):
        raise MetricsError(
            f"{source}: the header has {len(names)} columns but the values row has {len(values)}"
        )
    return {name.strip(): _to_value(value) for name, value in zip(names, values, strict=True)}


def _pairs(rows: Iterable[list[str]], source: str) -> dict[str, MetricValue]:
    metrics: dict[str, MetricValue] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise MetricsError(f"{source}: row {number} has {len(row)} cells; expected name,value")
        metrics[row[0].strip()] = _to_value(row[1])
    return metrics


def _numeric(cell: str) -> bool:
    """True for any number, NaN and infinity included (a diverged `loss,nan` row)."""
    value = _to_value(cell)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_value(cell: str) -> MetricValue:
    text = cell.strip()
    if text == "":
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def read_metrics(paths: Iterable[Path], *, root: Path) -> Metrics:
    """Read and merge metric files; a name defined in two files is an error."""
    values: dict[str, MetricValue] = {}
    sources: dict[str, str] = {}
    for path in paths:
        full = path if path.is_absolute() else root / path
        shown = str(path)
        try:
            text = full.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MetricsError(
                f"{shown}: metrics file not found (looked in {full.parent}); make the "
                f"training write it, or fix the path (evaluate.metrics in mlci.yaml)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MetricsError(f"{shown}: cannot read the metrics file ({exc})") from None
        for name, value in parse_metrics(text, fmt=format_for(path), source=shown).items():
            if name in values:
                raise MetricsError(
                    f"metric {name!r} is defined in both {sources[name]} and {shown}; "
                    f"rename one of them"
                )
            values[name] = value
            sources[name] = shown
    return Metrics(values=values, sources=sources)


@dataclass(frozen=True)
class MetricChange:
    """One row of a metrics diff, as `dvc metrics diff --json` has it (old, new, diff)."""

    name: str
    old: MetricValue
    new: MetricValue
    status: str  # "changed", "unchanged", "new", "removed"
    diff: float | None = None


def diff_metrics(
    old: Mapping[str, MetricValue] | None, new: Mapping[str, MetricValue]
) -> list[MetricChange]:
    """Every metric of either side, sorted by name, with the numeric difference.

    Like `dvc metrics diff --all --json`, but nothing is dropped: null and text values
    stay (a metric that became null shows as changed), booleans are not numbers, and
    `diff` is exact (0.795 - 0.78 is 0.015, not 0.015000000000000013).
    """
    old = old or {}
    rows = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            rows.append(MetricChange(name, old[name], None, "removed"))
            continue
        if name not in old:
            rows.append(MetricChange(name, None, new[name], "new"))
            continue
        before, after = old[name], new[name]
        diff = None
        if is_number(before) and is_number(after):
            diff = float(Decimal(repr(after)) - Decimal(repr(before)))
        same = (before == after and type(before) is type(after)) or diff == 0
        rows.append(MetricChange(name, before, after, "unchanged" if same else "changed", diff))
    return rows
