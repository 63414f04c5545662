"""Predictions files for the engine tests, and the tables numpy makes of them.

`reference` is what the engines are held to: `core.summary`'s summary of the rows as
`mlci.predictions` reads them, so DuckDB, Spark and mlci's own reader agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlci.core.summary import (
    ClassificationSummary,
    Summary,
    codes,
    summarize_classification,
    summarize_regression,
)
from mlci.predictions import Joined, join, load_predictions


def write_classification(
    folder: Path,
    *,
    rows: int = 3000,
    k: int = 4,
    seed: int = 0,
    fmt: str = "parquet",
    partial: bool = True,
) -> tuple[Path, Path]:
    """A candidate and a baseline on the same rows (ids shuffled; with `partial`, a few
    rows on one side only), integer labels 0..k-1, probabilities p_0..p_{k-1}."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, rows)
    paths = []
    ends = ((0, rows - 7), (5, rows)) if partial else ((0, rows), (0, rows))
    for name, skill, (start, end) in zip(("cand", "base"), (2.0, 1.0), ends, strict=True):
        keep = slice(start, end)
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


def write_on_the_edges(folder: Path, *, k: int, rows: int = 2000) -> tuple[Path, Path]:
    """A candidate and a baseline (ids 0..rows-1) whose plotted probability (two classes:
    p_1; more: the top label's) falls on the reliability diagram's bin edges, linspace's
    (0.30000000000000004) and decimal (0.3), and an ulp either side; a fifth of the rows
    tie two columns for the top label."""
    rng = np.random.default_rng(k)
    edges = np.linspace(0.0, 1.0, 11)
    near = [edges, np.nextafter(edges, 2.0), np.nextafter(edges, -1.0), np.arange(11) / 10]
    y = rng.integers(0, k, rows)
    paths = []
    for name in ("cand", "base"):
        plotted = np.clip(rng.choice(np.concatenate(near), rows), 1.0 / k, 1.0)
        p = np.repeat(((1.0 - plotted) / (k - 1))[:, None], k, axis=1)
        p[np.arange(rows), rng.integers(0, k, rows)] = plotted
        tied = rng.random(rows) < 0.2
        top = 0.5 if k == 2 else 0.4
        p[tied] = (1.0 - 2 * top) / max(k - 2, 1)
        p[tied, 0 if k == 2 else 1] = top  # np.argmax takes the first of the two
        p[tied, k - 1] = top
        columns = {"id": np.arange(rows), "y_true": y, "y_pred": p.argmax(axis=1)}
        columns |= {f"p_{c}": p[:, c] for c in range(k)}
        paths.append(_write(folder / f"{name}.parquet", columns))
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


def reference(candidate: Path, baseline: Path | None, bins: int) -> tuple[Summary, Joined]:
    """The summary `core.summary` makes of mlci's own reading of the files (paired by id
    with `predictions.join`), and the rows as read."""
    first = load_predictions(candidate, task="classification")
    second = first if baseline is None else load_predictions(baseline, task="classification")
    joined = join(first, second)
    one, other = joined.candidate, joined.baseline
    classes = np.array(sorted(set(one.classes) | set(other.classes)))
    true = codes(one.y_true, classes)
    paired = {}
    if baseline is not None:
        paired = {
            "baseline_predicted": codes(other.y_pred, classes),
            "baseline_scores": other.scores,
        }
    summary = summarize_classification(
        tuple(classes.tolist()), true, codes(one.y_pred, classes), one.scores, bins=bins, **paired
    )
    return summary, joined


def regression_reference(candidate: Path, baseline: Path) -> Summary:
    first = load_predictions(candidate, task="regression")
    joined = join(first, load_predictions(baseline, task="regression"))
    one, other = joined.candidate, joined.baseline
    return summarize_regression(one.y_true, one.y_pred, other.y_pred)


def assert_same(found: Summary, want: Summary) -> None:
    """Counts equal, sums equal to float rounding (the engines add in another order)."""
    assert type(found) is type(want)
    if isinstance(found, ClassificationSummary) and isinstance(want, ClassificationSummary):
        assert found.classes == want.classes
        assert (found.paired, found.grid) == (want.paired, want.grid)
        tables = ("cells", "counts")
        histograms = ("positives", "negatives")
        parts = {"joint": tables, "joint_bins": tables, "candidate": histograms}
        for name, arrays in (parts | {"baseline": histograms}).items():
            mine, theirs = getattr(found, name), getattr(want, name)
            assert (mine is None) == (theirs is None), name
            for array in arrays if mine is not None else ():
                np.testing.assert_array_equal(getattr(mine, array), getattr(theirs, array))
            if name in ("candidate", "baseline") and mine is not None:
                ours, expected = mine.reliability, theirs.reliability
                np.testing.assert_array_equal(ours.rows, expected.rows)
                np.testing.assert_array_equal(ours.hits, expected.hits)
                np.testing.assert_allclose(ours.sums, expected.sums, rtol=1e-12)
    moments, expected = found.moments, want.moments
    assert (moments is None) == (expected is None)
    if moments is not None and expected is not None:
        assert (moments.names, moments.rows) == (expected.names, expected.rows)
        np.testing.assert_allclose(moments.sums, expected.sums, rtol=1e-10)
        np.testing.assert_allclose(moments.products, expected.products, rtol=1e-10)
