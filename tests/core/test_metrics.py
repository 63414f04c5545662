"""Reading metric files: formats, flattening, types, and the messages for broken files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlci.core.metrics import Metrics, format_for, is_number, parse_metrics, read_metrics
from mlci.errors import EXIT_USAGE, MetricsError


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def read_one(folder: Path, name: str, text: str) -> Metrics:
    write(folder, name, text)
    return read_metrics([Path(name)], root=folder)


def read_error(folder: Path, name: str, text: str) -> str:
    write(folder, name, text)
    with pytest.raises(MetricsError) as caught:
        read_metrics([Path(name)], root=folder)
    assert caught.value.exit_code == EXIT_USAGE
    return caught.value.message


# -- Formats --------------------------------------------------------------------------


def test_json(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.json", '{"accuracy": 0.95, "log_loss": 0.12}')

    assert metrics.values == {"accuracy": 0.95, "log_loss": 0.12}
    assert metrics.sources == {"accuracy": "metrics.json", "log_loss": "metrics.json"}


@pytest.mark.parametrize("name", ["metrics.yaml", "metrics.yml", "METRICS.YAML"])
def test_yaml_with_either_extension_in_any_case(tmp_path: Path, name: str) -> None:
    metrics = read_one(tmp_path, name, "accuracy: 0.95\nlog_loss: 0.12\n")

    assert metrics.values == {"accuracy": 0.95, "log_loss": 0.12}


def test_csv_name_value_rows_without_header(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.csv", "accuracy,0.95\nlog_loss,0.12\n")

    assert metrics.values == {"accuracy": 0.95, "log_loss": 0.12}


@pytest.mark.parametrize("header", ["name,value", "metric,value", "Name , Value"])
def test_csv_name_value_rows_with_header(tmp_path: Path, header: str) -> None:
    metrics = read_one(tmp_path, "metrics.csv", f"{header}\naccuracy,0.95\nepochs,12\n")

    assert metrics.values == {"accuracy": 0.95, "epochs": 12}


def test_csv_header_row_and_one_row_of_values(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.csv", "accuracy,log_loss,epochs\n0.95,0.12,12\n")

    assert metrics.values == {"accuracy": 0.95, "log_loss": 0.12, "epochs": 12}


def test_csv_blank_lines_and_padding_are_ignored(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.csv", "\naccuracy, 0.95 \n\n log_loss ,0.12\n\n")

    assert metrics.values == {"accuracy": 0.95, "log_loss": 0.12}


def test_tsv(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.tsv", "name\tvalue\naccuracy\t0.95\nmodel\tresnet\n")

    assert metrics.values == {"accuracy": 0.95, "model": "resnet"}


def test_tsv_header_row_and_values(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.tsv", "accuracy\tf1\n0.9\t0.8\n")

    assert metrics.values == {"accuracy": 0.9, "f1": 0.8}


def test_csv_name_value_rows_when_the_first_value_is_nan(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.csv", "loss,nan\naccuracy,0.9\n")

    assert set(metrics.values) == {"loss", "accuracy"}
    assert math.isnan(metrics.values["loss"])  # type: ignore[arg-type]
    assert metrics.values["accuracy"] == 0.9


# -- Flattening (DVC style) -----------------------------------------------------------


def test_nested_mappings_become_dotted_names(tmp_path: Path) -> None:
    text = '{"train": {"loss": 0.2}, "test": {"acc": 0.9, "per_class": {"cat": 0.8}}}'

    metrics = read_one(tmp_path, "metrics.json", text)

    assert metrics.values == {"train.loss": 0.2, "test.acc": 0.9, "test.per_class.cat": 0.8}


def test_lists_become_indexed_names(tmp_path: Path) -> None:
    text = '{"f1_per_class": [0.7, 0.8], "folds": [{"acc": 0.9}, {"acc": 0.91}]}'

    metrics = read_one(tmp_path, "metrics.json", text)

    assert metrics.values == {
        "f1_per_class.0": 0.7,
        "f1_per_class.1": 0.8,
        "folds.0.acc": 0.9,
        "folds.1.acc": 0.91,
    }


def test_nested_yaml_is_flattened_the_same_way(tmp_path: Path) -> None:
    metrics = read_one(tmp_path, "metrics.yaml", "test:\n  acc: 0.9\n  f1: [0.7, 0.8]\n")

    assert metrics.values == {"test.acc": 0.9, "test.f1.0": 0.7, "test.f1.1": 0.8}


# -- Types ----------------------------------------------------------------------------


def test_json_values_keep_their_types(tmp_path: Path) -> None:
    text = (
        '{"epochs": 12, "accuracy": 0.95, "model": "resnet", "converged": true,'
        ' "auc": null, "loss": NaN, "ratio": Infinity}'
    )

    values = read_one(tmp_path, "metrics.json", text).values

    assert values["epochs"] == 12 and type(values["epochs"]) is int
    assert values["accuracy"] == 0.95 and type(values["accuracy"]) is float
    assert values["model"] == "resnet"
    assert values["converged"] is True
    assert values["auc"] is None
    assert isinstance(values["loss"], float) and math.isnan(values["loss"])
    assert values["ratio"] == math.inf


def test_yaml_values_keep_their_types(tmp_path: Path) -> None:
    text = "epochs: 12\naccuracy: 0.95\nmodel: resnet\nconverged: false\nauc: null\nloss: .nan\n"

    values = read_one(tmp_path, "metrics.yaml", text).values

    assert type(values["epochs"]) is int
    assert type(values["accuracy"]) is float
    assert values["model"] == "resnet"
    assert values["converged"] is False
    assert values["auc"] is None
    assert isinstance(values["loss"], float) and math.isnan(values["loss"])


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    values = read_one(tmp_path, "metrics.yaml", "loss: 1e-05\n").values

    assert values["loss"] == 1e-05


def test_csv_cells_become_ints_floats_text_or_none(tmp_path: Path) -> None:
    text = "name,value\nepochs,12\naccuracy,0.95\nmodel,resnet\nauc,\nloss,nan\n"

    values = read_one(tmp_path, "metrics.csv", text).values

    assert type(values["epochs"]) is int
    assert type(values["accuracy"]) is float
    assert values["model"] == "resnet"
    assert values["auc"] is None
    assert isinstance(values["loss"], float) and math.isnan(values["loss"])


# -- Several files --------------------------------------------------------------------


def test_several_files_are_merged_and_remember_their_source(tmp_path: Path) -> None:
    write(tmp_path, "train.json", '{"loss": 0.2}')
    (tmp_path / "eval").mkdir()
    write(tmp_path / "eval", "scores.csv", "accuracy,0.9\n")

    metrics = read_metrics([Path("train.json"), Path("eval/scores.csv")], root=tmp_path)

    assert metrics.values == {"loss": 0.2, "accuracy": 0.9}
    assert metrics.sources == {"loss": "train.json", "accuracy": "eval/scores.csv"}
    assert "accuracy" in metrics
    assert "f1" not in metrics
    assert metrics.get("accuracy") == 0.9
    assert metrics.get("f1") is None


def test_an_absolute_path_ignores_the_root(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics.json", '{"accuracy": 0.9}')

    metrics = read_metrics([path], root=tmp_path / "elsewhere")

    assert metrics.values == {"accuracy": 0.9}


def test_a_metric_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    write(tmp_path, "a.json", '{"test": {"acc": 0.9}}')
    write(tmp_path, "b.yaml", "test.acc: 0.8\n")

    with pytest.raises(MetricsError) as caught:
        read_metrics([Path("a.json"), Path("b.yaml")], root=tmp_path)

    message = caught.value.message
    assert "'test.acc'" in message
    assert "a.json" in message and "b.yaml" in message
    assert "rename one" in message


# -- Broken files ---------------------------------------------------------------------


def test_missing_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MetricsError) as caught:
        read_metrics([Path("out/metrics.json")], root=tmp_path)

    message = caught.value.message
    assert message.startswith("out/metrics.json: metrics file not found")
    assert str(tmp_path / "out") in message
    assert "evaluate.metrics in mlci.yaml" in message


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    message = read_error(tmp_path, "metrics.json", '{\n  "accuracy": 0.9,\n  "f1": }\n')

    assert message.startswith("metrics.json: not valid JSON")
    assert "line 3, column 9" in message


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    message = read_error(tmp_path, "metrics.yaml", "accuracy: 0.9\nf1: [0.8\n")

    assert message.startswith("metrics.yaml: not valid YAML")
    assert "line 3, column 1" in message


@pytest.mark.parametrize(
    ("name", "text", "got"),
    [
        ("metrics.json", "[0.9, 0.8]", "got a list"),
        ("metrics.json", '"accuracy"', "got a str"),
        ("metrics.yaml", "- accuracy: 0.9\n", "got a list"),
        ("metrics.yaml", "# nothing yet\n", "got empty"),
    ],
)
def test_not_a_mapping_says_what_it_got(tmp_path: Path, name: str, text: str, got: str) -> None:
    message = read_error(tmp_path, name, text)

    assert message.startswith(f"{name}: expected a mapping of metric names to values")
    assert message.endswith(got)


@pytest.mark.parametrize("name", ["metrics.csv", "metrics.tsv"])
def test_empty_table_file(tmp_path: Path, name: str) -> None:
    message = read_error(tmp_path, name, "\n\n")

    assert message == f"{name}: the file is empty; expected metric names and values"


@pytest.mark.parametrize("name", ["metrics.json", "metrics.yaml"])
def test_an_empty_file_says_it_is_empty(tmp_path: Path, name: str) -> None:
    message = read_error(tmp_path, name, "  \n")

    assert message == f"{name}: the file is empty; expected metric names and values"


def test_csv_header_with_several_rows_of_values(tmp_path: Path) -> None:
    message = read_error(tmp_path, "metrics.csv", "accuracy,f1,auc\n0.9,0.8,0.7\n0.9,0.8,0.7\n")

    assert message.startswith("metrics.csv: expected either name,value rows")
    assert "got 2 rows of values" in message


def test_csv_header_and_values_of_different_lengths(tmp_path: Path) -> None:
    message = read_error(tmp_path, "metrics.csv", "accuracy,f1,auc\n0.9,0.8\n")

    assert message == "metrics.csv: the header has 3 columns but the values row has 2"


def test_csv_name_value_row_with_an_extra_cell(tmp_path: Path) -> None:
    message = read_error(tmp_path, "metrics.csv", "name,value\naccuracy,0.9\nf1,0.8,extra\n")

    assert message == "metrics.csv: row 2 has 3 cells; expected name,value"


@pytest.mark.parametrize(("name", "shown"), [("metrics.txt", "'.txt'"), ("metrics", "'(no ext")])
def test_unknown_extension_lists_the_known_ones(tmp_path: Path, name: str, shown: str) -> None:
    message = read_error(tmp_path, name, "accuracy 0.9\n")

    assert message.startswith(f"{name}: unknown metrics file type {shown}")
    assert ".csv, .json, .tsv, .yaml, .yml" in message


def test_format_for_is_case_insensitive() -> None:
    assert format_for(Path("m.JSON")) == "json"
    assert format_for(Path("m.Yml")) == "yaml"


def test_parse_metrics_rejects_an_unknown_format() -> None:
    with pytest.raises(MetricsError, match=r"^m\.ini: unknown metrics format 'ini'$"):
        parse_metrics("a=1", fmt="ini", source="m.ini")


def test_a_folder_instead_of_a_file_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").mkdir()

    with pytest.raises(MetricsError, match=r"^metrics\.json: cannot read the metrics file"):
        read_metrics([Path("metrics.json")], root=tmp_path)


# -- is_number ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, -3, 0.5, -0.25, 1e-300, 1e300])
def test_is_number_for_finite_numbers(value: float) -> None:
    assert is_number(value)


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, None, "0.9", ""])
def test_is_number_rejects_booleans_non_finite_and_text(value: object) -> None:
    assert not is_number(value)  # type: ignore[arg-type]


def test_two_columns_with_a_header_and_several_rows_is_an_error_not_pairs(tmp_path: Path) -> None:
    message = read_error(tmp_path, "metrics.csv", "a,b\n1,2\n3,4\n")
    assert "got 2 rows of values" in message
