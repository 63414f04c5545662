"""The summaries of a predictions scan, as SQL that DuckDB and Spark both run.

An engine (`Engine`) registers the predictions files as views and runs queries; this
module writes the queries and turns their rows into `Tables`: the joint table of the true
class and each model's prediction as non-empty cells and counts, per-class score
histograms, and sums (log loss, Brier, regression moments). Every table is small: its size
grows with the classes and the bins, never with the rows, so the engine scans the data
where it lives (out of core, or on a cluster) and mlci merges and decides.

Classes are coded 0..k-1 in sorted label order. A cell of the paired joint table is
`(true * k + candidate) * k + baseline`; unpaired, `true * k + predicted`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from mlci.core.stats import MAX_CLASSES
from mlci.errors import MetricsError

Task = Literal["classification", "regression"]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

BINS = 1000  # equal-width score bins over [0, 1]: each class's scores known to 0.001
_EPS = float(np.finfo(np.float64).eps)  # log loss clips as core.stats does
_SUM_TOLERANCE = 1e-3  # as mlci.predictions: 4-decimal probabilities, 20 classes
_SCORE_PREFIXES = ("p_", "proba_")
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Source:
    """A predictions file (or a glob of files) as the engine reads it: a local path or an
    object-storage URL, and its format (csv, tsv, jsonl, parquet)."""

    path: str
    fmt: str


@dataclass(frozen=True)
class Request:
    """What to summarise: the candidate's predictions, and the baseline's to pair with."""

    candidate: Source
    baseline: Source | None = None
    task: Task = "classification"
    id_column: str = "id"
    bins: int = BINS


@dataclass(frozen=True, eq=False)
class Tables:
    """One scan's summaries. Model 0 is the candidate, model 1 the baseline (paired).

    `cells`/`counts`: the joint table's non-empty cells (see the module's docstring).
    `positives[m, c, b]`: rows whose true class is c with model m's score for c in bin b;
    `negatives` the other rows. `log_loss[m]`: the sum of -log(clip(p_true));
    `brier[m]`: the sum over rows and classes of (p_c - [true = c])^2. None where a model
    has no probability columns. Regression: `moments` = X^T X summed over rows, with
    X = (1, y, e_candidate, |e_candidate|[, e_baseline, |e_baseline|]), e = prediction - y.
    """

    labels: tuple[object, ...]
    rows: int
    cells: IntArray
    counts: IntArray
    positives: IntArray | None = None
    negatives: IntArray | None = None
    log_loss: FloatArray | None = None
    brier: FloatArray | None = None
    moments: FloatArray | None = None
    only_candidate: int = 0  # paired by id: rows of one model only, left out
    only_baseline: int = 0


class Engine(Protocol):
    """What `summarize` needs of an engine: views over files, a small table, queries."""

    quote: str  # how the engine quotes an identifier: " (DuckDB) or ` (Spark)

    def view(self, name: str, source: Source) -> tuple[str, ...]:
        """Register `source` as the view `name`; its column names. Raises MetricsError
        when the file cannot be read, naming it."""

    def codes(self, labels: Sequence[object], *, integer: bool) -> None:
        """Register the table `codes(label, code)`: label BIGINT (or STRING), code 0..k-1."""

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """Run a query (or a statement: then no rows)."""


def summarize(engine: Engine, request: Request) -> Tables:
    """The summaries of `request`'s predictions, scanned by `engine`."""
    scan = _Scan(engine, request)
    scan.pair()
    if request.task == "regression":
        return scan.regression()
    return scan.classification()


class _Scan:
    def __init__(self, engine: Engine, request: Request) -> None:
        self.engine = engine
        self.request = request
        self.q = lambda name: engine.quote + name.replace(engine.quote, engine.quote * 2) + (
            engine.quote
        )
        self.models = ("c",) if request.baseline is None else ("c", "b")
        self.columns: dict[str, tuple[str, ...]] = {}
        self.only = (0, 0)

    # -- reading and pairing ------------------------------------------------------------

    def pair(self) -> None:
        """The view `pairs`: y, and per model m its prediction ym and its score columns."""
        request, q = self.request, self.q
        self.columns["c"] = self._open("cand", request.candidate)
        if request.baseline is None:
            self._create("pairs", f"SELECT {self._select('c', 'cand')} FROM cand")
            return
        self.columns["b"] = self._open("base", request.baseline)
        key = request.id_column
        for view, source in (("cand", request.candidate), ("base", request.baseline)):
            self._check_ids(view, source, key)
        mismatched = self._count(
            f"SELECT COUNT(*) FROM cand JOIN base ON cand.{q(key)} = base.{q(key)} "
            f"WHERE cand.{q('y_true')} <> base.{q('y_true')}"
        )
        if mismatched:
            raise MetricsError(
                f"{request.candidate.path} and {request.baseline.path}: y_true differs on "
                f"{mismatched:,} rows of the same {key}; both models must be evaluated on the "
                f"same data"
            )
        both = f"{self._select('c', 'cand')}, {self._select('b', 'base', truth=False)}"
        self._create(
            "pairs", f"SELECT {both} FROM cand JOIN base ON cand.{q(key)} = base.{q(key)}"
        )
        joined = self._count("SELECT COUNT(*) FROM pairs")
        counted = [self._count(f"SELECT COUNT(*) FROM {view}") for view in ("cand", "base")]
        self.only = (counted[0] - joined, counted[1] - joined)

    def _open(self, view: str, source: Source) -> tuple[str, ...]:
        columns = self.engine.view(view, source)
        missing = [name for name in ("y_true", "y_pred") if name not in columns]
        if missing:
            raise MetricsError(
                f"{source.path}: no column {' or '.join(missing)}; a predictions file needs "
                f"y_true and y_pred (found {', '.join(columns[:10]) or 'no columns'})"
            )
        q = self.q
        empty = self._count(
            f"SELECT COUNT(*) FROM {view} WHERE {q('y_true')} IS NULL OR {q('y_pred')} IS NULL"
        )
        if empty:
            raise MetricsError(
                f"{source.path}: y_true or y_pred is empty on {empty:,} rows; write a value "
                f"on every row"
            )
        return columns

    def _check_ids(self, view: str, source: Source, key: str) -> None:
        if key not in self.columns["c" if view == "cand" else "b"]:
            raise MetricsError(
                f"{source.path}: no column {key}; evaluate.engine pairs the candidate's rows "
                f"with the baseline's by evaluate.id_column: write an id on every row of "
                f"both files (or name the column that has one in evaluate.id_column)"
            )
        q = self.q
        repeated = self._count(f"SELECT COUNT(*) - COUNT(DISTINCT {q(key)}) FROM {view}")
        if repeated:
            raise MetricsError(
                f"{source.path}: {repeated:,} rows repeat an {key} of another row; each row "
                f"needs its own {key} to be paired with the other model's"
            )

    def _select(self, model: str, view: str, *, truth: bool = True) -> str:
        q = self.q
        picked = [f"{view}.{q('y_true')} AS y"] if truth else []
        picked.append(f"{view}.{q('y_pred')} AS y{model}")
        picked += [
            f"{view}.{q(name)} AS {q(model + '_' + name)}"
            for name in self.columns[model]
            if name == "score" or name.startswith(_SCORE_PREFIXES)
        ]
        return ", ".join(picked)

    def _create(self, name: str, query: str) -> None:
        self.engine.rows(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {query}")

    def _count(self, query: str) -> int:
        return int(self.engine.rows(query)[0][0] or 0)

    # -- classification -----------------------------------------------------------------

    def classification(self) -> Tables:
        labels, integer = self._labels()
        k = len(labels)
        self.engine.codes(labels, integer=integer)
        scores = {m: self._score_columns(m, labels) for m in self.models}
        self._code(integer, scores)
        cell = "t"
        for m in self.models:
            cell = f"({cell}) * {k} + {m}"
        found = self.engine.rows(f"SELECT {cell} AS cell, COUNT(*) FROM coded GROUP BY 1")
        cells = np.array(sorted(found), dtype=np.int64).reshape(-1, 2)
        tables = Tables(labels, int(cells[:, 1].sum()), cells[:, 0].copy(), cells[:, 1].copy())
        tables = _with_only(tables, self.only)
        if any(columns is None for columns in scores.values()):
            return tables
        return self._histograms(tables, k)

    def _labels(self) -> tuple[tuple[object, ...], bool]:
        names = ["y"] + [f"y{m}" for m in self.models]
        union = " UNION ".join(f"SELECT DISTINCT {name} AS label FROM pairs" for name in names)
        seen = [row[0] for row in self.engine.rows(union)]
        named = [
            name[len(prefix) :]
            for m in self.models
            for name in self.columns[m]
            for prefix in _SCORE_PREFIXES
            if name.startswith(prefix)
        ]
        integer = all(_is_integer(value) for value in [*seen, *named])
        convert = (lambda v: int(float(v))) if integer else str
        labels = tuple(sorted({convert(value) for value in [*seen, *named]}))
        if len(labels) > MAX_CLASSES:
            raise MetricsError(
                f"{self.request.candidate.path}: y_true, y_pred and the probability columns "
                f"name {len(labels):,} classes; mlci computes metrics for at most "
                f"{MAX_CLASSES:,}: check that this is a classification task (evaluate.task)"
            )
        return labels, integer

    def _score_columns(self, model: str, labels: tuple[object, ...]) -> list[str] | None:
        """The expressions of model's probability of each class, in code order."""
        columns = self.columns[model]
        by_label = {
            name[len(prefix) :]: name
            for name in columns
            for prefix in _SCORE_PREFIXES
            if name.startswith(prefix)
        }
        q = self.q
        if not by_label and "score" in columns and len(labels) == 2:
            score = f"CAST(pairs.{q(model + '_score')} AS DOUBLE)"
            return [f"1 - {score}", score]
        if not by_label:
            return None
        missing = [str(label) for label in labels if str(label) not in by_label]
        if missing:
            source = self.request.candidate if model == "c" else self.request.baseline
            raise MetricsError(
                f"{source.path if source else ''}: no probability column for the classes "
                f"{', '.join(missing[:10])}; write p_<label> for every class"
            )
        return [f"CAST(pairs.{q(model + '_' + by_label[str(label)])} AS DOUBLE)" for label in labels]

    def _code(self, integer: bool, scores: dict[str, list[str] | None]) -> None:
        """The view `coded`: t and each model's prediction as codes, and s<m><code>."""
        kind = "BIGINT" if integer else "STRING"
        joins = [f"JOIN codes t ON CAST(pairs.y AS {kind}) = t.label"]
        picked = ["t.code AS t"]
        for m in self.models:
            joins.append(f"JOIN codes {m}c ON CAST(pairs.y{m} AS {kind}) = {m}c.label")
            picked.append(f"{m}c.code AS {m}")
            picked += [f"{e} AS s{m}{code}" for code, e in enumerate(scores[m] or ())]
        self._create("coded", f"SELECT {', '.join(picked)} FROM pairs {' '.join(joins)}")
        for m, columns in scores.items():
            if columns:
                self._check_scores(m, len(columns))

    def _check_scores(self, model: str, k: int) -> None:
        names = [f"s{model}{code}" for code in range(k)]
        outside = " OR ".join(f"{n} IS NULL OR {n} < 0 OR {n} > 1" for n in names)
        total = " + ".join(names)
        bad = self._count(
            f"SELECT COUNT(*) FROM coded WHERE {outside} OR ABS({total} - 1) > {_SUM_TOLERANCE}"
        )
        if bad:
            source = self.request.candidate if model == "c" else self.request.baseline
            raise MetricsError(
                f"{source.path if source else ''}: the probabilities of {bad:,} rows are "
                f"empty, outside [0, 1], or do not sum to 1; write each class's probability"
            )

    def _histograms(self, tables: Tables, k: int) -> Tables:
        bins = self.request.bins
        shape = (len(self.models), k, bins)
        positives = np.zeros(shape, dtype=np.int64)
        negatives = np.zeros(shape, dtype=np.int64)
        log_loss = np.zeros(len(self.models))
        brier = np.zeros(len(self.models))
        clip = f"GREATEST(LEAST(p, 1.0E0 - {_EPS!r}), {_EPS!r})"
        for index, m in enumerate(self.models):
            names = ", ".join(f"s{m}{code}" for code in range(k))
            skip = len(f"s{m}") + 1
            query = (
                f"SELECT cls, pos, bin, COUNT(*), "
                f"SUM(CASE WHEN pos = 1 THEN -LN({clip}) ELSE 0 END), "
                f"SUM((p - pos) * (p - pos)) FROM ("
                f"SELECT CAST(SUBSTRING(cls, {skip}) AS INT) AS cls, "
                f"CASE WHEN CAST(SUBSTRING(cls, {skip}) AS INT) = t THEN 1 ELSE 0 END AS pos, "
                f"p, LEAST(CAST(FLOOR(p * {bins}) AS BIGINT), {bins - 1}) AS bin "
                f"FROM coded UNPIVOT (p FOR cls IN ({names}))) GROUP BY cls, pos, bin"
            )
            for cls, pos, where, count, loss, squares in self.engine.rows(query):
                (positives if pos else negatives)[index, cls, where] = count
                log_loss[index] += loss or 0.0
                brier[index] += squares or 0.0
        return _replace(
            tables, positives=positives, negatives=negatives, log_loss=log_loss, brier=brier
        )

    # -- regression ---------------------------------------------------------------------

    def regression(self) -> Tables:
        terms = ["1", "CAST(y AS DOUBLE)"]
        for m in self.models:
            error = f"(CAST(y{m} AS DOUBLE) - CAST(y AS DOUBLE))"
            terms += [error, f"ABS{error}"]
        sums = [f"SUM({a} * {b})" for i, a in enumerate(terms) for b in terms[i:]]
        (row,) = self.engine.rows(f"SELECT {', '.join(sums)} FROM pairs")
        width = len(terms)
        moments = np.zeros((width, width))
        values = iter(row)
        for i in range(width):
            for j in range(i, width):
                moments[i, j] = moments[j, i] = float(next(values) or 0.0)
        empty = np.zeros(0, dtype=np.int64)
        tables = Tables((), int(moments[0, 0]), empty, empty, moments=moments)
        return _with_only(tables, self.only)


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and _INTEGER.fullmatch(value) is not None


def _with_only(tables: Tables, only: tuple[int, int]) -> Tables:
    return _replace(tables, only_candidate=only[0], only_baseline=only[1])


def _replace(tables: Tables, **changes: Any) -> Tables:
    return dataclasses.replace(tables, **changes)
