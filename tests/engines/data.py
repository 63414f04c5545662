"""Predictions files for the engine tests, and the tables numpy makes of them.

`expected` is the reference: the same summaries computed from `mlci.predictions`'s
in-memory arrays, so DuckDB and Spark are held to what mlci reads itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlci.core.predictions import Predictions
from mlci.predictions import join, load_predictions


def write_classification(
    folder: Path, *, rows: int = 3000, k: int = 4, seed: int = 0, fmt: str = "parquet"
) -> tuple[Path, Path]:
    """A candidate and a baseline on the same rows (ids shuffled, a few rows on one side
    only), integer labels 0..k-1 with one unseen in y_pred, probabilities p_0..p_{k-1}."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, rows)
    paths = []
    for name, skill, keep in (("cand", 2.0, slice(0, rows - 7)), ("base", 1.0, slice(5, rows))):
        logits = rng.normal(size=(rows, k))
        logits[np.arange(rows), y] += skill
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        p = np.round(p, 6)
        p[:, -1] = 1 - p[:, :-1].sum(axis=1)
        p[:50, 0] = 1.0  # scores of exactly 1 land in the last bin
        p[:50, 1:] = 0.0
        columns = {"id": np.array([f"r{i}" for i in range(rows)]), "y_true": y}
        columns["y_pred"] = p.argmax(axis=1)
        columns |= {f"p_{c}": p[:, c] for c in range(k)}
        order = rng.permutation(rows)[keep] if name == "base" else np.arange(rows)[keep]
        paths.append(_write(folder / f"{name}.{fmt}", {n: v[order] for n, v in columns.items()}))
    return paths[0], paths[1]


def write_regression(folder: Path, *, rows: int = 2000, seed: int = 1) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, rows)
    ids = np.arange(rows)
    paths = []
    for name, noise in (("cand", 0.5), ("base", 1.0)):
        columns = {"id": ids, "y_true": y, "y_pred": y + rng.normal(0.1, noise, rows)}
        paths.append(_write(folder / f"{name}.parquet", columns))
    return paths[0], paths[1]


def _write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet

    table = pa.table(columns)
    if path.suffix == ".parquet":
        pyarrow.parquet.write_table(table, path, row_group_size=1000)
    else:
        pyarrow.csv.write_csv(table, path)
    return path


@dataclass(frozen=True)
class Expected:
    labels: tuple[object, ...]
    cells: dict[int, int]
    positives: np.ndarray
    negatives: np.ndarray
    log_loss: np.ndarray
    brier: np.ndarray
    truth: Predictions


def expected(candidate: Path, baseline: Path | None, bins: int) -> Expected:
    """The tables of `engines.sql.Tables`, from mlci's own reader and numpy."""
    models = [load_predictions(candidate, task="classification")]
    if baseline is not None:
        joined = join(models[0], load_predictions(baseline, task="classification"))
        models = [joined.candidate, joined.baseline]
    classes = np.array(sorted(set().union(*(m.classes for m in models))))
    k = len(classes)
    t = np.searchsorted(classes, models[0].y_true)
    cell = t.astype(np.int64)
    for m in models:
        cell = cell * k + np.searchsorted(classes, m.y_pred)
    found, counts = np.unique(cell, return_counts=True)
    shape = (len(models), k, bins)
    positives, negatives = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    log_loss, brier = np.zeros(len(models)), np.zeros(len(models))
    eps = np.finfo(np.float64).eps
    for index, m in enumerate(models):
        assert m.scores is not None
        where = np.minimum(np.floor(m.scores * bins).astype(np.int64), bins - 1)
        for c in range(k):
            positives[index, c] = np.bincount(where[t == c, c], minlength=bins)
            negatives[index, c] = np.bincount(where[t != c, c], minlength=bins)
        chosen = m.scores[np.arange(len(t)), t]
        log_loss[index] = -np.log(np.clip(chosen, eps, 1 - eps)).sum()
        brier[index] = ((m.scores - np.eye(k)[t]) ** 2).sum()
    return Expected(
        tuple(classes.tolist()),
        dict(zip(found.tolist(), counts.tolist(), strict=True)),
        positives,
        negatives,
        log_loss,
        brier,
        models[0],
    )
