"""Reading predictions files in every format, pairing two models' rows, and the messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlci import predictions as predictions_module
from mlci.errors import EXIT_USAGE, MetricsError, UsageError
from mlci.predictions import Predictions, align, load_predictions, read_ahead

ROWS = [
    {"id": "a", "y_true": 0, "y_pred": 1, "p_0": 0.4, "p_1": 0.6},
    {"id": "b", "y_true": 1, "y_pred": 1, "p_0": 0.2, "p_1": 0.8},
    {"id": "c", "y_true": 0, "y_pred": 0, "p_0": 0.7, "p_1": 0.3},
]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def write_rows(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = folder / name
    names = list(rows[0])
    if path.suffix in (".csv", ".tsv"):
        sep = "," if path.suffix == ".csv" else "\t"
        lines = [sep.join(names)] + [sep.join(str(row[n]) for n in names) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def load_error(path: Path, task: str = "classification") -> str:
    with pytest.raises(MetricsError) as caught:
        load_predictions(path, task=task)  # type: ignore[arg-type]
    assert caught.value.exit_code == EXIT_USAGE
    return caught.value.message


@pytest.fixture
def without_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if pyarrow were not installed: the csv and json modules read the file."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)


# -- Formats -----------------------------------------------------------------------------


# -- Reading ahead -----------------------------------------------------------------------


def test_a_file_read_ahead_is_what_loading_it_gives(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "p.parquet", ROWS)
    read_ahead(path, task="classification")
    ahead = load_predictions(path, task="classification")
    again = load_predictions(path, task="classification")  # the read ahead is taken once

    assert ahead is not again
    assert ahead.ids.tolist() == again.ids.tolist() == ["a", "b", "c"]
    assert ahead.y_true.tolist() == again.y_true.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(ahead.scores, again.scores)


def test_a_file_changed_after_its_read_ahead_is_read_again(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "p.csv", ROWS)
    read_ahead(path, task="classification")
    write_rows(tmp_path, "p.csv", [{**row, "y_pred": 0} for row in ROWS + ROWS[:1]])

    loaded = load_predictions(path, task="classification")

    assert loaded.y_pred.tolist() == [0, 0, 0, 0]


def test_a_read_ahead_asked_for_other_columns_is_not_taken(tmp_path: Path) -> None:
    path = write_rows(tmp_path, "p.csv", [{**row, "segment": "s"} for row in ROWS])
    read_ahead(path, task="classification")

    loaded = load_predictions(path, task="classification", columns=("segment",))

    assert loaded.extra["segment"].tolist() == ["s", "s", "s"]
    assert str(path.resolve()) not in predictions_module._AHEAD  # let go, not kept


def test_a_file_refused_ahead_is_refused_when_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred\n1,\n")
    expected = load_error(path)
    read_ahead(path, task="classification")

    assert load_error(path) == expected


def test_a_fifo_is_not_read_ahead(tmp_path: Path) -> None:
    """A pipe would be read once, by the thread, and block it until written."""
    path = tmp_path / "p.csv"
    os.mkfifo(path)
    read_ahead(path, task="classification")

    assert str(path.resolve()) not in predictions_module._AHEAD


@pytest.mark.parametrize("name", ["p.csv", "p.tsv", "p.jsonl", "p.ndjson", "p.parquet"])
def test_every_format_reads_the_same_predictions(tmp_path: Path, name: str) -> None:
    pred = load_predictions(write_rows(tmp_path, name, ROWS), task="classification")

    assert pred.y_true.tolist() == [0, 1, 0]
    assert pred.y_pred.tolist() == [1, 1, 0]
    assert pred.classes == (0, 1)
    assert pred.scores is not None
    assert pred.scores.tolist() == [[0.4, 0.6], [0.2, 0.8], [0.7, 0.3]]
    assert pred.ids is not None and pred.ids.tolist() == ["a", "b", "c"]
    assert len(pred) == 3


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl"])
def test_without_pyarrow_the_standard_library_reads_the_same(
    tmp_path: Path, name: str, without_pyarrow: None
) -> None:
    pred = load_predictions(write_rows(tmp_path, name, ROWS), task="classification")

    assert pred.y_true.tolist() == [0, 1, 0]
    assert pred.scores is not None and pred.scores.tolist()[2] == [0.7, 0.3]
    assert pred.ids is not None and pred.ids.tolist() == ["a", "b", "c"]


def test_parquet_without_pyarrow_says_how_to_install_it(
    tmp_path: Path, without_pyarrow: None
) -> None:
    path = tmp_path / "p.parquet"
    path.write_bytes(b"PAR1")

    with pytest.raises(UsageError) as caught:
        load_predictions(path, task="classification")

    assert "pip install pyarrow" in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_string_labels_and_their_probability_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.csv",
        "y_true,y_pred,proba_dog,proba_cat,proba_bird\ncat,dog,0.5,0.3,0.2\ndog,dog,0.7,0.2,0.1\n",
    )

    pred = load_predictions(path, task="classification")

    assert pred.classes == ("bird", "cat", "dog")
    assert pred.y_true.tolist() == ["cat", "dog"]
    assert pred.scores is not None
    assert pred.scores.tolist() == [[0.2, 0.3, 0.5], [0.1, 0.2, 0.7]]  # in classes order


def test_integer_labels_sort_as_numbers(tmp_path: Path) -> None:
    rows = "".join(
        f"{label},{label},{0.1 if label != 10 else 0.9},{0.9 if label != 10 else 0.1}\n"
        for label in (2, 10)
    )
    pred = load_predictions(
        write(tmp_path, "p.csv", f"y_true,y_pred,p_10,p_2\n{rows}"), task="classification"
    )

    assert pred.classes == (2, 10)
    assert pred.scores is not None and pred.scores.tolist() == [[0.9, 0.1], [0.1, 0.9]]


def test_labels_written_as_floats_are_integers(tmp_path: Path) -> None:
    pred = load_predictions(
        write(tmp_path, "p.csv", "y_true,y_pred\n1.0,0\n0.0,1\n"), task="classification"
    )

    assert pred.y_true.tolist() == [1, 0]
    assert pred.classes == (0, 1)


def test_text_columns_read_value_by_value_or_by_distinct_value_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    column = pa.chunked_array([["cat", None, "dög"], ["cat", "🐈", "", None, "dög"]])
    small = predictions_module._arrow_text(column)
    monkeypatch.setattr(predictions_module, "_TEXT_ONE_BY_ONE_ROWS", 0)
    large = predictions_module._arrow_text(column)

    assert small.dtype == large.dtype and small.tolist() == large.tolist()
    assert small.tolist() == ["cat", "", "dög", "cat", "🐈", "", "", "dög"]


def test_one_text_label_makes_every_label_text(tmp_path: Path) -> None:
    # pyarrow refuses a JSON column that changes type; the json module reads it.
    path = write(
        tmp_path, "p.jsonl", '{"y_true": 1, "y_pred": 1}\n{"y_true": 0, "y_pred": "unknown"}\n'
    )

    pred = load_predictions(path, task="classification")

    assert pred.y_true.tolist() == ["1", "0"]
    assert pred.classes == ("0", "1", "unknown")


def test_binary_score_column_is_the_larger_labels_probability(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,score\nham,spam,0.9\nspam,spam,0.6\n")

    pred = load_predictions(path, task="classification")

    assert pred.classes == ("ham", "spam")
    assert pred.scores is not None
    assert pred.scores[:, 1].tolist() == [0.9, 0.6]
    assert pred.scores.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


def test_a_class_only_in_the_probability_columns_is_a_class(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,p_0,p_1,p_2\n0,1,0.5,0.4,0.1\n1,1,0.1,0.8,0.1\n")

    assert load_predictions(path, task="classification").classes == (0, 1, 2)


def test_float32_probabilities_stay_float32_and_regression_values_widen(
    tmp_path: Path,
) -> None:
    """Half the memory for the probabilities, without rounding the values to predict."""
    path = tmp_path / "p.parquet"
    probability = np.array([0.4, 0.8, 0.3], dtype=np.float32)
    columns = {"y_true": [0, 1, 0], "y_pred": [1, 1, 0], "p_0": 1 - probability}
    pq.write_table(pa.table(columns | {"p_1": probability}), path)
    pred = load_predictions(path, task="classification")
    assert pred.scores is not None and pred.scores.dtype == np.float32
    assert pred.scores[:, 1].tolist() == probability.tolist()
    values = pa.table({"y_true": np.array([0.1], np.float32), "y_pred": np.float32([0.2])})
    pq.write_table(values, path)
    assert load_predictions(path, task="regression").y_true.dtype == np.float64


def test_regression_values_and_integer_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "id,y_true,y_pred,note\n7,1.5,2,x\n8,2,1.25,y\n")

    pred = load_predictions(path, task="regression")

    assert pred.y_true.dtype == np.float64
    assert pred.y_pred.tolist() == [2.0, 1.25]
    assert pred.classes == () and pred.scores is None
    assert pred.ids is not None and pred.ids.tolist() == ["7", "8"]


def test_an_extra_column_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "feature,y_true,y_pred\nabc,1,1\n,0,1\n")

    assert load_predictions(path, task="classification").y_pred.tolist() == [1, 1]


# -- Messages for broken files -------------------------------------------------------------


def test_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.csv", "y_true,prediction\n1,1\n"))

    assert "p.csv: no y_pred column (columns found: y_true, prediction)" in message
    assert "write" in message


@pytest.mark.parametrize("text", ["", "y_true,y_pred\n", "\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    message = load_error(write(tmp_path, "p.csv", text))

    assert "p.csv: the file has no predictions" in message


def test_empty_jsonl_file(tmp_path: Path) -> None:
    assert "no predictions" in load_error(write(tmp_path, "p.jsonl", "\n"))


def test_a_row_with_fewer_values_than_the_header(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "p.csv", "y_true,y_pred\n1,1\n0\n"))

    assert "p.csv: row 2 has 1 value but the header has 2 columns (y_true, y_pred)" in message


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl"])
def test_nan_in_a_regression_column_names_the_row(tmp_path: Path, name: str) -> None:
    rows = [{"y_true": 1.0, "y_pred": 1.0}, {"y_true": 2.0, "y_pred": float("nan")}]

    message = load_error(write_rows(tmp_path, name, rows), task="regression")

    assert f"{name}: y_pred in row 2 is empty or NaN" in message


def test_empty_value_in_a_regression_column_names_the_row(
    tmp_path: Path, without_pyarrow: None
) -> None:
    message = load_error(write(tmp_path, "p.csv", "y_true,y_pred\n1,2\n3,\n"), task="regression")

    assert "y_pred in row 2 is empty" in message


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl"])
def test_text_in_a_regression_column_names_the_row(tmp_path: Path, name: str) -> None:
    rows = [{"y_true": 1.0, "y_pred": 1.0}, {"y_true": "n/a?", "y_pred": 2.0}]

    message = load_error(write_rows(tmp_path, name, rows), task="regression")

    assert f"{name}: y_true in row 2 is 'n/a?', not a number" in message


def test_text_in_a_score_column_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,p_0,p_1\n0,0,0.9,0.1\n1,1,high,0.8\n")

    assert "p.csv: p_0 in row 2 is 'high', not a number" in load_error(path)


def test_nan_in_a_score_column_names_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,p_0,p_1\n0,0,0.9,0.1\n1,1,nan,0.8\n")

    assert "p.csv: p_0 in row 2 is empty or NaN" in load_error(path)


def test_probabilities_that_do_not_sum_to_one_name_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,p_0,p_1\n0,0,0.9,0.1\n1,1,0.3,0.8\n")

    message = load_error(path)

    assert "p.csv: the probabilities in row 2 sum to 1.1, not 1 (p_0, p_1)" in message


def test_a_score_that_is_not_a_probability(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,score\n0,0,-2.5\n1,1,3.1\n")

    assert "score in row 1 is -2.5, not a probability" in load_error(path)


def test_a_class_without_a_probability_column(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,p_0,p_1\n0,2,0.9,0.1\n")

    assert "no probability column for class 2 (found p_0, p_1)" in load_error(path)


def test_a_single_score_column_needs_two_classes(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,score\n0,1,0.5\n2,2,0.5\n")

    assert "a single score column needs exactly two classes" in load_error(path)


def test_score_and_probability_columns_together(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,score,p_0,p_1\n0,1,0.5,0.5,0.5\n")

    assert "both a score column and p_0, p_1" in load_error(path)


def test_a_probability_column_that_names_no_integer_class(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "y_true,y_pred,p_0,p_one\n0,1,0.5,0.5\n")

    assert "column p_one does not name a class" in load_error(path)


def test_an_empty_label_names_the_row(tmp_path: Path) -> None:
    assert "y_true in row 2 is empty" in load_error(
        write(tmp_path, "p.csv", "y_true,y_pred\ncat,cat\n,dog\n")
    )


def test_invalid_json_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.jsonl", '{"y_true": 1, "y_pred": 1}\n{"y_true": 1,\n')

    assert "p.jsonl: line 2 is not valid JSON" in load_error(path)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    assert "unknown predictions file type '.xlsx'" in load_error(tmp_path / "p.xlsx")
    assert "p.csv: predictions file not found" in load_error(tmp_path / "p.csv")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    assert "cannot read the file as Parquet" in load_error(write(tmp_path, "p.parquet", "y_true\n"))


# -- Pairing candidate and baseline ------------------------------------------------------


def predictions(
    y_true: list[Any], y_pred: list[Any], ids: list[str] | None = None, **kw: Any
) -> Predictions:
    labels = sorted(set(y_true) | set(y_pred))
    return Predictions(
        np.asarray(y_true),
        np.asarray(y_pred),
        kw.get("scores"),
        tuple(kw.get("classes", labels)),
        None if ids is None else np.asarray(ids),
        kw.get("source", ""),
    )


def test_align_by_position() -> None:
    candidate = predictions([0, 1, 1], [0, 1, 0])
    baseline = predictions([0, 1, 1], [1, 1, 1])

    first, second = align(candidate, baseline)

    assert first.y_pred.tolist() == [0, 1, 0]
    assert second.y_pred.tolist() == [1, 1, 1]


def test_align_by_id_reorders_the_baseline() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    candidate = predictions([0, 1, 0], [0, 1, 1], ["a", "b", "c"])
    baseline = predictions([0, 0, 1], [1, 0, 1], ["c", "a", "b"], scores=scores)

    _, second = align(candidate, baseline)

    assert second.ids is not None and second.ids.tolist() == ["a", "b", "c"]
    assert second.y_pred.tolist() == [0, 1, 1]
    assert second.scores is not None and second.scores.tolist() == [
        [0.2, 0.8],
        [0.6, 0.4],
        [0.9, 0.1],
    ]


def test_align_gives_the_same_pairing_again_and_lets_go_of_it_with_its_rows() -> None:
    """The gate pairs the rows on the read-ahead's thread and again when it judges them:
    the second time costs nothing (a second by id at a million rows), and the pairing is
    not held once its rows are gone."""
    import gc
    import weakref

    from mlci import predictions as module

    candidate = predictions([0, 1, 0], [0, 1, 1], ["a", "b", "c"])
    baseline = predictions([0, 0, 1], [1, 0, 1], ["c", "a", "b"])
    first = align(candidate, baseline)
    again = align(candidate, baseline)
    assert again[0] is first[0] is candidate and again[1] is first[1]
    assert first[1] is not baseline and first[1].ids.tolist() == ["a", "b", "c"]

    reordered = weakref.ref(first[1])
    del first, again, baseline
    gc.collect()
    assert module._PAIRED == [] and reordered() is None


def test_join_takes_aligns_pairing_of_the_same_rows_and_pairs_others_itself() -> None:
    """The flipped rows are found after the gate's intervals, by `join`: where `align`
    paired the same two files (every id on both sides), join gives that pairing, the
    same as its own; other files it pairs itself, leaving out ids on one side only."""
    from mlci.predictions import join

    candidate = predictions([0, 1, 0], [0, 1, 1], ["a", "b", "c"])
    baseline = predictions([0, 0, 1], [1, 0, 1], ["c", "a", "b"])
    first, second = align(candidate, baseline)
    joined = join(candidate, baseline)
    assert joined.candidate is first and joined.baseline is second and joined.by_id
    assert (joined.only_candidate, joined.only_baseline) == (0, 0)

    other = predictions([1, 0, 0], [0, 1, 0], ["b", "c", "d"])  # "d": the candidate's only
    own = join(other, baseline)
    assert own.candidate.ids.tolist() == ["b", "c"] and own.baseline.ids.tolist() == ["b", "c"]
    assert own.baseline.y_pred.tolist() == [1, 1] and (own.only_candidate, own.only_baseline) == (
        1,
        1,
    )


def test_different_row_counts_suggest_an_id_column() -> None:
    candidate = predictions([0, 1, 1], [0, 1, 0], source="new.csv")
    baseline = predictions([0, 1], [1, 1], source="old.csv")

    with pytest.raises(MetricsError) as caught:
        align(candidate, baseline)

    message = caught.value.message
    assert "the candidate (new.csv) has 3 rows but the baseline (old.csv) has 2" in message
    assert "write an id column in both files" in message


def test_different_y_true_by_position_counts_the_rows_and_suggests_an_id_column() -> None:
    candidate = predictions([0, 1, 1, 0], [0, 1, 0, 0])
    baseline = predictions([0, 0, 1, 1], [1, 1, 1, 0])

    with pytest.raises(MetricsError) as caught:
        align(candidate, baseline)

    assert "y_true differs in 2 of 4 rows" in caught.value.message
    assert "id column" in caught.value.message


def test_ids_missing_on_either_side_are_counted() -> None:
    candidate = predictions([0, 1, 1], [0, 1, 0], ["a", "b", "c"])
    baseline = predictions([0, 1], [1, 1], ["a", "z"])

    with pytest.raises(MetricsError) as caught:
        align(candidate, baseline)

    message = caught.value.message
    assert "has 2 ids that the baseline lacks (e.g. id 'b'), and the baseline has 1" in message


def test_different_y_true_for_the_same_id() -> None:
    candidate = predictions([0, 1], [0, 1], ["a", "b"])
    baseline = predictions([0, 0], [0, 1], ["a", "b"])

    with pytest.raises(MetricsError) as caught:
        align(candidate, baseline)

    assert "y_true differs for 1 of 2 ids" in caught.value.message
    assert "id 'b'" in caught.value.message


def test_duplicate_ids_cannot_pair_rows() -> None:
    candidate = predictions([0, 1], [0, 1], ["a", "a"], source="new.csv")

    with pytest.raises(MetricsError) as caught:
        align(candidate, predictions([0, 1], [0, 1], ["a", "b"]))

    assert "the candidate (new.csv): id 'a' appears more than once" in caught.value.message


def test_integer_and_text_labels_are_paired_as_text() -> None:
    scores = np.array([[0.1, 0.9], [0.8, 0.2]])
    candidate = predictions([2, 10], [10, 10], scores=scores, classes=[2, 10])
    baseline = predictions(["2", "10"], ["unknown", "10"])

    first, second = align(candidate, baseline)

    assert first.classes == ("10", "2")
    assert first.scores is not None and first.scores.tolist() == [[0.9, 0.1], [0.2, 0.8]]
    assert first.y_true.tolist() == second.y_true.tolist() == ["2", "10"]


def test_regression_y_true_may_differ_by_rounding() -> None:
    candidate = Predictions(np.array([0.1, 2.0]), np.array([0.0, 2.0]), None, (), None)
    baseline = Predictions(np.array([0.1 + 1e-12, 2.0]), np.array([0.2, 2.0]), None, (), None)

    _, second = align(candidate, baseline)

    assert second.y_pred.tolist() == [0.2, 2.0]


def test_importing_the_loader_and_stats_imports_no_pyarrow_or_sklearn() -> None:
    code = (
        "import sys, mlci.predictions, mlci.core.stats; "
        "print(sorted(m for m in ('pyarrow', 'sklearn', 'scipy', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_reading_parquet_does_not_import_pandas(tmp_path: Path) -> None:
    """pandas costs a quarter of a second and tens of MB, and mlci needs none of it."""
    path = write_rows(tmp_path, "p.parquet", ROWS)
    code = (
        "import sys; from pathlib import Path; from mlci.predictions import load_predictions; "
        f"pred = load_predictions(Path({str(path)!r}), task='classification'); "
        "print(pred.scores[:, 1].tolist(), 'pandas' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[0.6, 0.8, 0.3] False"


@pytest.mark.parametrize("asked", ["", "mimalloc", "system"])
def test_pyarrow_reads_into_jemalloc_unless_the_environment_names_a_pool(
    tmp_path: Path, asked: str
) -> None:
    """mimalloc, pyarrow's default, made numpy's first copy of each file's columns wait on
    the kernel (docs/gate.md); ARROW_DEFAULT_MEMORY_POOL still decides where it is set.
    numpy's large arrays stop asking for huge pages, unless NUMPY_MADVISE_HUGEPAGE says."""
    import pyarrow as pa

    path = write_rows(tmp_path, "p.parquet", ROWS)
    code = (
        "import pyarrow as pa; from pathlib import Path; "
        "from numpy._core.multiarray import _set_madvise_hugepage as huge; "
        "from mlci.predictions import load_predictions; "
        f"load_predictions(Path({str(path)!r}), task='classification'); "
        "print(pa.default_memory_pool().backend_name, huge(False))"
    )
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": asked}
    env.pop("NUMPY_MADVISE_HUGEPAGE", None)
    if asked:
        env["NUMPY_MADVISE_HUGEPAGE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )

    try:
        pa.jemalloc_memory_pool()
        default = "jemalloc"
    except NotImplementedError:  # a pyarrow without it keeps its own default
        default = pa.default_memory_pool().backend_name
    # huge(False) answers whether huge pages were asked for until then
    assert result.stdout.split() == [asked or default, "True" if asked else "False"]


@pytest.mark.skipif(
    not (hasattr(os, "confstr") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")),
    reason="glibc's malloc only",
)
@pytest.mark.parametrize("asked", ["", "MALLOC_MMAP_THRESHOLD_"])
def test_glibc_serves_arrays_of_millions_of_rows_from_its_heap_unless_told_otherwise(
    tmp_path: Path, asked: str
) -> None:
    """By default glibc maps each array of 128 KB or more from the kernel afresh (and
    unmaps it when freed) until a free teaches it otherwise; after the first read, 16 MB
    come from malloc's heap. A user's own setting of glibc's limits stands."""
    path = write_rows(tmp_path, "p.parquet", ROWS)
    fields = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    code = (
        "import ctypes, numpy as np; from pathlib import Path; "
        "from mlci.predictions import load_predictions; "
        f"load_predictions(Path({str(path)!r}), task='classification'); "
        "Info = type('Info', (ctypes.Structure,), "
        f"{{'_fields_': [(name, ctypes.c_size_t) for name in {fields.split()!r}]}}); "
        "libc = ctypes.CDLL(None); libc.mallinfo2.restype = Info; "
        "before = libc.mallinfo2().hblkhd; rows = np.ones(2_000_000); "
        "print(libc.mallinfo2().hblkhd - before >= rows.nbytes)"  # mapped, not from the heap
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUN"))}
    if asked:
        env[asked] = "131072"  # glibc's default: 128 KB
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.split() == ["True" if asked else "False"]


@pytest.mark.parametrize(
    "values",
    [
        [f"r{i}" for i in range(12_000)],  # row ids: distinct, ASCII, of several lengths
        [None if i % 97 == 5 else f"id-{i}" for i in range(12_000)],  # nulls read as ""
        ["x" * (i % 40) + str(i) for i in range(12_000)],
        [f"é{i}" for i in range(12_000)],  # not ASCII: by the dictionary
        [f"class {i % 10}" for i in range(12_000)],  # labels: repeated at once
    ],
)
@pytest.mark.parametrize("layout", ["one chunk", "sliced", "chunks", "large_string"])
def test_text_columns_read_the_same_straight_from_the_bytes_as_by_the_dictionary(
    values: list[str | None], layout: str
) -> None:
    """An id column (its first values distinct) is read from Arrow's buffers, each
    character put in place; the same array as converting each distinct value once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlci.predictions import _arrow_text, _ascii_text

    array = pa.array(["pad"] * 5 + values + ["pad"] * 5)
    chunks = {
        "one chunk": [array.slice(5, len(values)).take(pa.array(range(len(values))))],
        "sliced": [array.slice(5, len(values))],  # offset 5 into its buffers
        "chunks": [array.slice(5, 7_000), array.slice(7_005, len(values) - 7_000)],
        "large_string": [array.slice(5, len(values)).cast(pa.large_string())],
    }[layout]
    column = pa.chunked_array(chunks)
    read = _arrow_text(column)

    filled = pc.fill_null(column.combine_chunks(), "")
    expected = np.asarray(filled.to_pylist(), dtype=str)
    assert read.dtype == expected.dtype and np.array_equal(read, expected)
    if layout == "sliced" and None not in values and str(values[0]).isascii():
        direct = _ascii_text(chunks[0])  # an array's offset into its buffers
        assert direct is not None and np.array_equal(direct, expected)


def test_short_ids_pair_by_packed_keys_that_sort_and_compare_as_their_text() -> None:
    """Ids of 8 characters or fewer below U+0100 are sorted as 64-bit integers: their
    order is the text's (a prefix first), equal keys are equal ids; others stay text."""
    from mlci.predictions import _id_keys

    ids = np.asarray(["b", "a", "ab", "a\x01", "zzzzzzzz", "é9", "0", "10", "9", "", "ÿ"])
    keys, same = _id_keys(ids, ids[::-1].copy())
    assert keys.dtype == np.uint64
    assert ids[np.argsort(keys)].tolist() == np.sort(ids).tolist()
    assert np.array_equal(same, keys[::-1])
    assert len(set(keys.tolist())) == len(ids)
    for other in (np.asarray(["€1", "a"]), np.asarray(["123456789", "a"])):
        assert _id_keys(other, ids)[0] is other  # beyond U+00FF, or 9 characters: text
