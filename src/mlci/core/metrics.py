"""Read and flatten metric files: JSON, YAML, CSV, with DVC-style nesting.

Nested mappings become dotted names (`{"test": {"acc": 0.9}}` -> `test.acc`), as
`dvc metrics show` does. Values keep their type: numbers stay numbers, and anything
else (strings, booleans, null) is kept so the gate can say what is wrong with it
instead of dropping it. The files come from the pull request, so reading is bounded:
MAX_FILE_BYTES from a regular file, and yamlsafe's depth and number limits for JSON too.
"""

from __future__ import annotations

import csv
import io
import json
import math
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from mlci.core import yamlsafe
from mlci.core.filetypes import METRICS
from mlci.errors import MetricsError, UsageError, shown

MetricValue = float | int | str | bool | None

MAX_FILE_BYTES = 50_000_000  # a metrics, params or config file; docs/config.md says so
_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


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
    fmt = METRICS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(METRICS))
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
        data = load_json(text, source)
    elif fmt == "yaml":
        try:
            data = yamlsafe.load(text)
        except yamlsafe.LimitError as exc:
            raise MetricsError(f"{source}: {yamlsafe.describe_error(exc)}") from None
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
    return flatten(data, source=source)


class _TooLong(ValueError):
    """A JSON number past yamlsafe.MAX_NUMBER_DIGITS."""


def _json_number(convert: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > yamlsafe.MAX_NUMBER_DIGITS:
            raise _TooLong(len(text))
        return convert(text)

    return parse


def load_json(text: str, source: str) -> object:
    """JSON with numbers of at most yamlsafe.MAX_NUMBER_DIGITS; MetricsError naming `source`."""
    try:
        data = json.loads(text, parse_int=_json_number(int), parse_float=_json_number(float))
    except json.JSONDecodeError as exc:
        raise MetricsError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except _TooLong as exc:
        raise MetricsError(
            f"{source}: a number of {exc.args[0]:,} digits; mlci reads numbers of up to "
            f"{yamlsafe.MAX_NUMBER_DIGITS} digits"
        ) from None
    except RecursionError:
        raise _too_deep(source) from None
    return data


def _too_deep(source: str) -> MetricsError:
    return MetricsError(
        f"{source}: nested more than {yamlsafe.MAX_DEPTH} levels deep (mlci's limit); "
        f"write the metrics as a flat or shallow mapping"
    )


def flatten(data: Mapping[Any, object], *, source: str = "") -> dict[str, MetricValue]:
    """Flatten nested mappings and lists into dotted names.

    Two keys that give the same dotted name (`{"test": {"acc": 1}, "test.acc": 2}`) are an
    error naming both, not a silent choice of one.
    """
    flat: dict[str, MetricValue] = {}
    paths: dict[str, tuple[str, ...]] = {}
    # An explicit stack: a deeply nested file must not reach Python's recursion limit.
    stack: list[tuple[tuple[str, ...], object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) > yamlsafe.MAX_DEPTH:
            raise _too_deep(source)
        if isinstance(value, Mapping | list):
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            stack.extend(reversed([((*path, str(key)), item) for key, item in items]))
            continue
        name = ".".join(path)
        if name in flat:
            raise MetricsError(
                f"{source}: the metric name '{shown(name)}' comes from both "
                f"{_key_path(paths[name])} and {_key_path(path)}; rename one of them"
            )
        paths[name] = path
        flat[name] = value if value is None or isinstance(value, str | int | float) else str(value)
    return flat


def _key_path(path: tuple[str, ...]) -> str:
    if len(path) == 1:
        return f"the key '{shown(path[0])}'"
    return "the nested keys " + " > ".join(shown(key) for key in path)


def _parse_table(text: str, *, delimiter: str, source: str) -> dict[str, MetricValue]:
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(row)]
    if not rows:
        raise MetricsError(f"{source}: the file is empty; expected name,value rows")
    header = [cell.strip().lower() for cell in rows[0]]
    if header in (["name", "value"], ["metric", "value"]):
        return _pairs(rows[1:], source)
    # Two columns are name,value rows unless the first row is a header of names above
    # rows of numbers (`accuracy,f1` then `0.9,0.8`).
    header_above_numbers = len(rows) > 1 and all(_numeric(row[0], source) for row in rows[1:])
    if len(rows[0]) == 2 and (_numeric(rows[0][1], source) or not header_above_numbers):
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
    return {
        name.strip(): _to_value(value, source) for name, value in zip(names, values, strict=True)
    }


def _pairs(rows: Iterable[list[str]], source: str) -> dict[str, MetricValue]:
    metrics: dict[str, MetricValue] = {}
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise MetricsError(f"{source}: row {number} has {len(row)} cells; expected name,value")
        name = row[0].strip()
        if name in metrics:
            raise MetricsError(
                f"{source}: rows {first_row[name]} and {number} both name the metric "
                f"'{shown(name)}'; keep one of them"
            )
        metrics[name], first_row[name] = _to_value(row[1], source), number
    return metrics


def _numeric(cell: str, source: str) -> bool:
    """True for any number, NaN and infinity included (a diverged `loss,nan` row)."""
    value = _to_value(cell, source)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_value(cell: str, source: str) -> MetricValue:
    text = cell.strip()
    if text == "":
        return None
    if len(text) > yamlsafe.MAX_NUMBER_DIGITS and text.lstrip("+-").isdigit():
        raise MetricsError(
            f"{source}: a number of {len(text):,} digits; mlci reads numbers of up to "
            f"{yamlsafe.MAX_NUMBER_DIGITS} digits"
        )
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
        source = shown(path)
        if not full.exists() and not full.is_symlink():
            raise MetricsError(
                f"{source}: metrics file not found (looked in {shown(full.parent)}); make the "
                f"training write it, or fix the path (evaluate.metrics in mlci.yaml)"
            )
        text = read_text(full, source=source, what="metrics file", error=MetricsError)
        for name, value in parse_metrics(text, fmt=format_for(path), source=source).items():
            if name in values:
                raise MetricsError(
                    f"metric '{shown(name)}' is defined in both {sources[name]} and {source}; "
                    f"rename one of them"
                )
            values[name] = value
            sources[name] = source
    return Metrics(values=values, sources=sources)


def read_text(path: Path, *, source: str, what: str, error: type[UsageError]) -> str:
    """A regular file's UTF-8 text, at most MAX_FILE_BYTES; `error` names `source` and why not.

    A named pipe or a device (`metrics.json` -> /dev/zero) is refused before it is opened.
    """
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a device or a pipe"
            raise error(
                f"{source}: cannot read the {what}: it is {kind}, not a regular file; "
                f"write a file there"
            )
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise error(f"{source}: cannot read the {what} ({reason})") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(
            f"{source}: the {what} is larger than {MAX_FILE_BYTES // 1_000_000} MB, mlci's "
            f"limit for it; write a smaller file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        found = _BOMS.get(data[:2])
        encoding = f"{found} text, not UTF-8" if found else f"not UTF-8 text (byte {exc.start + 1})"
        raise error(f"{source}: the {what} is {encoding}; save it as UTF-8") from None


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
