"""mlci.yaml: the example loads, defaults apply, every mistake is named with its key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import mlci
from mlci.config import (
    DEFAULT_TRACKING_URI,
    Config,
    PublishConfig,
    find_config,
    load_config,
    parse_config,
)
from mlci.core.gate import Rule
from mlci.errors import EXIT_USAGE, ConfigError

EXAMPLE = Path(mlci.__file__).parent / "examples" / "sklearn" / "mlci.yaml"

# The smallest valid file: everything else has a default.
MINIMAL = """\
model: {name: digits}
evaluate: {metrics: [metrics.json]}
"""


def parse(text: str) -> Config:
    return parse_config(textwrap.dedent(text), root=Path("/project"))


def problem(text: str) -> str:
    """The message of the ConfigError that `text` raises."""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.exit_code == EXIT_USAGE == 2
    return caught.value.message


def with_rules(*rules: str) -> str:
    return MINIMAL + "gate:\n  rules:\n" + "".join(f"    - {rule}\n" for rule in rules)


# -- The example and the defaults ------------------------------------------------------


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE)

    assert config.root == EXAMPLE.parent.resolve()
    assert config.version == 1
    assert config.model_name == "digits-classifier"
    assert config.train is not None
    assert config.train.command == "python train.py"
    assert config.train.timeout_minutes == 10
    assert config.evaluate.metrics == ("metrics.json",)
    assert config.evaluate.predictions == "predictions.csv"
    assert config.evaluate.task == "classification"
    assert config.gate.baseline == "auto"
    assert config.gate.on_missing_baseline == "auto"
    assert config.gate.rules == (
        Rule("accuracy", min=0.90, max_drop=0.01, confidence=0.95),
        Rule("f1_macro", max_drop=0.01, confidence=0.95),
        Rule("log_loss", max_rise_pct=10, severity="warn"),
    )
    assert config.registry.kind == "mlflow"
    assert config.registry.tracking_uri == "sqlite:///.mlci/mlflow.db"
    assert config.registry.model == "model/"
    assert config.registry.promote_on == ("main",)
    assert config.registry.alias == "champion"


def test_defaults() -> None:
    config = parse(MINIMAL + "train: {command: python train.py}\n")

    assert config.train is not None
    assert config.train.timeout_minutes == 60
    assert config.gate.baseline == "auto"
    assert config.gate.on_missing_baseline == "auto"
    assert config.gate.rules == ()
    assert config.registry.tracking_uri == DEFAULT_TRACKING_URI == "sqlite:///.mlci/mlflow.db"
    assert config.registry.model is None
    assert config.registry.promote_on == ("main",)
    assert config.registry.alias == "champion"


def test_a_rule_defaults_to_severity_fail_and_an_inferred_direction() -> None:
    (rule,) = parse(with_rules("{metric: accuracy, min: 0.9}")).gate.rules

    assert rule.severity == "fail"
    assert rule.direction is None
    assert rule.better == "higher"


def test_no_train_section_means_no_training() -> None:
    assert parse(MINIMAL).train is None


def test_train_command_as_text() -> None:
    config = parse(MINIMAL + "train: {command: python train.py --epochs 3}\n")

    assert config.train is not None
    assert config.train.command == "python train.py --epochs 3"


def test_train_on_ray_reads_the_bare_yaml_key_on() -> None:
    # YAML 1.1 reads a bare `on` as true: the key must still be train.on
    config = parse(
        MINIMAL
        + "train:\n"
        + "  command: python train.py\n"
        + "  on: ray\n"
        + "  storage: s3://bucket/runs\n"
        + "  resources: {gpus: 1, accelerator: A100}\n"
        + "  ray: {address: http://127.0.0.1:8265}\n"
    )

    assert config.train is not None
    assert (config.train.on, config.train.storage) == ("ray", "s3://bucket/runs")
    assert config.train.resources.gpus == 1 and config.train.resources.accelerator == "A100"
    assert config.train.ray is not None and config.train.ray.address == "http://127.0.0.1:8265"


def test_a_training_off_the_runner_needs_storage_and_at_most_one_ray_target() -> None:
    both = "ray: {address: 'http://127.0.0.1:8265', cluster: ray/cluster.yaml}"
    message = problem(MINIMAL + f"train: {{command: python train.py, on: ray, {both}}}\n")

    assert "train.storage: required with train.on: ray" in message
    assert "train.ray: set one of address" in message and "not both" in message


@pytest.mark.parametrize("ray", ["", ", ray: {}", ", ray: null"])
def test_a_ray_training_without_address_or_cluster_is_left_to_ray_address(ray: str) -> None:
    # The cluster's address then comes from RAY_ADDRESS, as Ray's CLI reads it (mlci.remote.ray).
    train = f"train: {{command: python train.py, on: ray, storage: s3://b/r{ray}}}\n"
    config = parse(MINIMAL + train)

    assert config.train is not None and config.train.ray is not None
    assert (config.train.ray.address, config.train.ray.cluster) == (None, None)


def test_remote_settings_with_a_local_training_are_named() -> None:
    message = problem(MINIMAL + "train: {command: python train.py, resources: {gpus: 1}}\n")

    assert "train.resources: applies to a training off the runner" in message


def test_train_command_as_list() -> None:
    config = parse(MINIMAL + "train:\n  command: [python, train.py, --epochs, '3']\n")

    assert config.train is not None
    assert config.train.command == ("python", "train.py", "--epochs", "3")


def test_text_or_list_settings() -> None:
    config = parse(
        """\
        model: {name: digits}
        evaluate: {metrics: scores.csv}
        registry: {promote_on: [main, release]}
        """
    )

    assert config.evaluate.metrics == ("scores.csv",)
    assert config.registry.promote_on == ("main", "release")


def test_every_setting_can_be_given() -> None:
    config = parse(
        """\
        version: 1
        model: {name: digits}
        train: {command: make train, timeout_minutes: 2.5}
        evaluate: {metrics: [a.json, b.yaml]}
        gate:
          baseline: none
          on_missing_baseline: fail
          rules:
            - {metric: throughput, direction: higher, min_gain_pct: 5, severity: warn}
        registry:
          tracking_uri: http://mlflow.internal:5000
          model: out/model
          promote_on: release
          alias: production
        """
    )

    assert config.train is not None and config.train.timeout_minutes == 2.5
    assert config.gate.baseline == "none"
    assert config.gate.on_missing_baseline == "fail"
    assert config.gate.rules == (
        Rule("throughput", direction="higher", min_gain_pct=5, severity="warn"),
    )
    assert config.registry.tracking_uri == "http://mlflow.internal:5000"
    assert config.registry.promote_on == ("release",)
    assert config.registry.alias == "production"


def test_a_wrong_type_names_the_key_path_and_the_expectation() -> None:
    message = problem(with_rules("{metric: accuracy, min: 0.9}", "{metric: f1, max_drop: 1%}"))

    assert message.startswith("mlci.yaml")
    assert 'gate.rules[1].max_drop: expected a number, got "1%"' in message


@pytest.mark.parametrize("limit", ["max_drop: 1%", "max_drop: -0.01", "min: true"])
def test_a_rejected_limit_is_reported_once(limit: str) -> None:
    message = problem(with_rules(f"{{metric: f1, {limit}}}"))

    assert "sets no limit" not in message


def test_a_misspelt_key_suggests_the_right_one() -> None:
    message = problem(with_rules("{metric: accuracy, min: 0.9, max_dorp: 0.01}"))

    assert message == "mlci.yaml: gate.rules[0].max_dorp: unknown key; did you mean max_drop?"


def test_a_misspelt_top_level_key_suggests_the_right_one() -> None:
    message = problem(MINIMAL + "registy: {alias: champion}\n")

    assert message == "mlci.yaml: registy: unknown key; did you mean registry?"


def test_an_unknown_key_lists_the_allowed_ones() -> None:
    message = problem(MINIMAL + "notifications: {slack: true}\n")

    assert message == (
        "mlci.yaml: notifications: unknown key; "
        "expected one of version, model, train, evaluate, gate, registry, report, publish, data"
    )


def test_an_unknown_nested_key_names_its_section() -> None:
    message = problem(MINIMAL + "train: {command: x, timeout: 5}\n")

    assert message.startswith("mlci.yaml: train.timeout: unknown key;")


def test_a_duplicate_key_names_its_line() -> None:
    message = problem(
        """\
        model: {name: digits}
        evaluate: {metrics: [metrics.json]}
        model: {name: other}
        """
    )

    assert message == "mlci.yaml, line 3, column 1: the key 'model' appears twice"


def test_a_duplicate_key_inside_a_rule_is_caught() -> None:
    message = problem(with_rules("{metric: accuracy, min: 0.9, min: 0.8}"))

    assert message == "mlci.yaml, line 5, column 36: the key 'min' appears twice"


def test_a_yaml_syntax_error_names_line_and_column() -> None:
    message = problem(
        """\
        model:
          name: [digits
        evaluate: {metrics: [metrics.json]}
        """
    )

    assert message.startswith("mlci.yaml, line 3, column 9: ")
    assert "expected ',' or ']'" in message


def test_a_tab_indent_is_a_syntax_error_with_a_position() -> None:
    message = problem("model:\n\tname: digits\n")

    assert message.startswith("mlci.yaml, line 2, column 1: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n"])
def test_an_empty_file(text: str) -> None:
    message = problem(text)

    assert message == "mlci.yaml: the file is empty; run `mlci init` for a starting point"


@pytest.mark.parametrize(
    ("text", "got"), [("- model\n- evaluate\n", "a list"), ("just text\n", '"just text"')]
)
def test_a_file_that_is_not_a_mapping(text: str, got: str) -> None:
    assert problem(text) == f"mlci.yaml: expected a mapping, got {got}"


def test_a_section_that_is_not_a_mapping() -> None:
    message = problem("model: digits\nevaluate: {metrics: [m.json]}\n")

    assert 'model: expected a mapping, got "digits"' in message
    assert "model.name: required" in message


def test_missing_required_settings_are_listed_with_examples() -> None:
    message = problem("version: 1\n")

    assert message == (
        "mlci.yaml has 2 problems:\n"
        "  model.name: required: the registered model's name, e.g. digits-classifier\n"
        "  evaluate.metrics: required: the metrics files training writes, e.g. [metrics.json] "
        "(or evaluate.predictions, from which mlci computes the metrics)"
    )


@pytest.mark.parametrize("train", ["train:\n", "train: {timeout_minutes: 5}\n"])
def test_a_train_section_needs_a_command(train: str) -> None:
    message = problem(MINIMAL + train)

    assert message == (
        "mlci.yaml: train.command: required: the command that trains, e.g. python train.py"
    )


@pytest.mark.parametrize(("command", "got"), [("42", "42"), ("[python, 3]", "a list")])
def test_a_train_command_of_the_wrong_type(command: str, got: str) -> None:
    message = problem(MINIMAL + f"train: {{command: {command}}}\n")

    assert message == f"mlci.yaml: train.command: expected a text or a list of texts, got {got}"


@pytest.mark.parametrize(("timeout", "got"), [("0", "0"), ("-5", "-5")])
def test_a_timeout_must_be_positive(timeout: str, got: str) -> None:
    message = problem(MINIMAL + f"train: {{command: x, timeout_minutes: {timeout}}}\n")

    assert message == f"mlci.yaml: train.timeout_minutes: expected a number above 0, got {got}"


def test_a_rule_needs_a_metric() -> None:
    message = problem(with_rules("{min: 0.9}"))

    assert message == (
        "mlci.yaml: gate.rules[0].metric: required: the metric's name as in the metrics file"
    )


def test_a_rule_needs_a_limit() -> None:
    message = problem(with_rules("{metric: accuracy, severity: warn}"))

    assert message == (
        "mlci.yaml: gate.rules[0]: rule for accuracy sets no limit; "
        "add min, max, max_drop, max_rise or min_gain"
    )


def test_a_rule_that_is_not_a_mapping() -> None:
    message = problem(with_rules("accuracy >= 0.9"))

    assert message == (
        "mlci.yaml: gate.rules[0]: expected a mapping like {metric: accuracy, min: 0.9}, "
        'got "accuracy >= 0.9"'
    )


def test_rules_must_be_a_list() -> None:
    message = problem(MINIMAL + "gate: {rules: {metric: accuracy, min: 0.9}}\n")

    assert message == "mlci.yaml: gate.rules: expected a list of rules, got a mapping"


@pytest.mark.parametrize(
    ("key", "value", "options"),
    [
        ("baseline", "latest", "auto, registry, git, none or file:PATH"),
        ("on_missing_baseline", "warn", "auto, pass, fail"),
    ],
)
def test_gate_choices(key: str, value: str, options: str) -> None:
    message = problem(MINIMAL + f"gate: {{{key}: {value}}}\n")

    assert message == f'mlci.yaml: gate.{key}: expected one of {options}, got "{value}"'


def test_rule_choices() -> None:
    message = problem(with_rules("{metric: accuracy, min: 0.9, severity: error}"))

    assert message == 'mlci.yaml: gate.rules[0].severity: expected one of fail, warn, got "error"'


# -- Rules that contradict the metric's direction ---------------------------------------


def test_max_drop_on_a_lower_is_better_metric_suggests_max_rise() -> None:
    message = problem(with_rules("{metric: log_loss, max_drop: 0.01}"))

    assert message.startswith("mlci.yaml: gate.rules[0].max_drop: ")
    assert "log_loss is lower-is-better, so limit how far it may rise" in message
    assert message.endswith("use max_rise")


def test_max_rise_on_a_higher_is_better_metric_suggests_max_drop() -> None:
    message = problem(with_rules("{metric: accuracy, max_rise: 0.01}"))

    assert message.startswith("mlci.yaml: gate.rules[0].max_rise: ")
    assert "accuracy is higher-is-better, so limit how far it may drop" in message
    assert message.endswith("use max_drop")


def test_the_pct_variant_suggests_the_pct_variant() -> None:
    message = problem(with_rules("{metric: accuracy, max_rise_pct: 1}"))

    assert message.endswith("use max_drop_pct")


def test_an_explicit_direction_allows_the_check() -> None:
    (rule,) = parse(with_rules("{metric: log_loss, direction: higher, max_drop: 0.01}")).gate.rules

    assert rule.better == "higher"
    assert rule.max_drop == 0.01


def test_a_contradicting_explicit_direction_is_caught() -> None:
    message = problem(with_rules("{metric: accuracy, direction: lower, max_drop: 0.01}"))

    assert message.startswith("mlci.yaml: gate.rules[0].max_drop: accuracy is lower-is-better")


def test_min_gain_on_an_unknown_metric_requires_a_direction() -> None:
    message = problem(with_rules("{metric: throughput, min_gain: 10}"))

    assert message == (
        "mlci.yaml: gate.rules[0].direction: required for min_gain: mlci cannot tell whether "
        "higher or lower throughput is better; add direction: higher or direction: lower"
    )


def test_min_gain_on_a_known_metric_needs_no_direction() -> None:
    rules = parse(with_rules("{metric: accuracy, min_gain: 0.01}")).gate.rules

    assert rules == (Rule("accuracy", min_gain=0.01),)


def test_a_direction_must_be_higher_or_lower() -> None:
    message = problem(with_rules("{metric: throughput, direction: up, min_gain: 1}"))

    assert 'gate.rules[0].direction: expected one of higher, lower, got "up"' in message


# -- Numbers ---------------------------------------------------------------------------


def test_a_negative_allowed_change_is_refused() -> None:
    message = problem(with_rules("{metric: accuracy, min: 0.5, max_drop: -0.01}"))

    assert (
        message == "mlci.yaml: gate.rules[0].max_drop: expected a number of at least 0, got -0.01"
    )


def test_min_and_max_may_be_negative() -> None:
    (rule,) = parse(with_rules("{metric: r2, min: -0.5, max: -0.1}")).gate.rules

    assert (rule.min, rule.max) == (-0.5, -0.1)


@pytest.mark.parametrize(("value", "got"), [("true", "true"), ("no", "false"), (".nan", "nan")])
def test_booleans_and_nan_are_not_numbers(value: str, got: str) -> None:
    message = problem(with_rules(f"{{metric: accuracy, max: 1, min: {value}}}"))

    assert message == f"mlci.yaml: gate.rules[0].min: expected a number, got {got}"


def test_infinity_is_not_a_threshold() -> None:
    message = problem(with_rules("{metric: accuracy, max: .inf}"))

    assert "gate.rules[0].max: expected a number" in message


def test_integers_become_floats() -> None:
    (rule,) = parse(with_rules("{metric: log_loss, max: 1, max_rise_pct: 10}")).gate.rules

    assert rule.max == 1.0 and isinstance(rule.max, float)
    assert rule.max_rise_pct == 10.0


# -- Registry -------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["latest", "v2", "V10", "LATEST"])
def test_aliases_reserved_by_mlflow_are_refused(alias: str) -> None:
    message = problem(MINIMAL + f"registry: {{alias: {alias}}}\n")

    assert message == (
        f'mlci.yaml: registry.alias: "{alias}" is reserved by MLflow; use e.g. champion'
    )


@pytest.mark.parametrize("alias", ["champion", "v2-candidate", "production"])
def test_ordinary_aliases_are_accepted(alias: str) -> None:
    assert parse(MINIMAL + f"registry: {{alias: {alias}}}\n").registry.alias == alias


def test_only_mlflow_is_a_registry_kind() -> None:
    message = problem(MINIMAL + "registry: {kind: wandb}\n")

    assert message == 'mlci.yaml: registry.kind: expected one of mlflow, got "wandb"'


def test_version_must_be_1() -> None:
    message = problem(MINIMAL + "version: 2\n")

    assert message == "mlci.yaml: version: expected 1 (the only version so far), got 2"


# -- All problems at once ---------------------------------------------------------------


def test_several_problems_are_all_listed() -> None:
    message = problem(
        """\
        model: {}
        evaluate: {metrics: [metrics.json]}
        gate:
          baseline: sometimes
          rules:
            - {metric: log_loss, max_drop: 0.01}
            - {metric: accuracy, min: 0.9, max_dorp: 0.01}
        registry: {alias: latest}
        """
    )

    assert message == (
        "mlci.yaml has 5 problems:\n"
        "  model.name: required: the registered model's name, e.g. digits-classifier\n"
        "  gate.baseline: expected one of auto, registry, git, none or file:PATH, "
        'got "sometimes"\n'
        "  gate.rules[0].max_drop: log_loss is lower-is-better, so limit how far it may rise: "
        "use max_rise\n"
        "  gate.rules[1].max_dorp: unknown key; did you mean max_drop?\n"
        '  registry.alias: "latest" is reserved by MLflow; use e.g. champion'
    )


# -- Finding and loading the file -------------------------------------------------------


def test_find_config_in_the_folder_itself(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(MINIMAL)

    assert find_config(tmp_path) == tmp_path / "mlci.yaml"


def test_find_config_walks_up_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(MINIMAL)
    deep = tmp_path / "src" / "models" / "vision"
    deep.mkdir(parents=True)

    assert find_config(deep) == tmp_path / "mlci.yaml"


def test_find_config_takes_the_nearest_file(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(MINIMAL)
    inner = tmp_path / "sub"
    inner.mkdir()
    (inner / "mlci.yaml").write_text(MINIMAL)

    assert find_config(inner) == inner / "mlci.yaml"


def test_find_config_ignores_a_folder_named_like_the_file(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(MINIMAL)
    inner = tmp_path / "sub"
    (inner / "mlci.yaml").mkdir(parents=True)

    assert find_config(inner) == tmp_path / "mlci.yaml"


def test_find_config_without_a_file_says_to_run_mlci_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_config(tmp_path)

    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"no mlci.yaml in {tmp_path} or any folder above it")
    assert "`mlci init`" in caught.value.message


def test_load_config_of_a_missing_file_says_to_run_mlci_init(tmp_path: Path) -> None:
    path = tmp_path / "mlci.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.message == f"{path}: not found; run `mlci init` to write one"


def test_load_config_roots_paths_at_the_file(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(MINIMAL)

    assert load_config(tmp_path / "mlci.yaml").root == tmp_path.resolve()


def test_load_config_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mlci.yaml"
    path.write_bytes(b"model: {name: \xff}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.message == (
        f"{path}: the file is not UTF-8 text (byte 15); save it as UTF-8"
    )


# -- Noise-aware settings, baselines, and the edges of the schema ------------------------


def test_noise_aware_settings_load() -> None:
    config = parse(
        MINIMAL.replace("evaluate: {metrics: [metrics.json]}", "")
        + "evaluate: {predictions: preds.parquet, task: regression}\n"
        + "gate:\n  baseline: file:main-metrics.json\n  base_ref: develop\n"
        + "  resamples: 500\n  seed: 7\n  rules:\n"
        + "    - {metric: mae, max_rise: 0.1, confidence: 0.9, require_proof: true,"
        + " on_missing_metric: skip}\n"
    )
    assert (config.evaluate.predictions, config.evaluate.task) == ("preds.parquet", "regression")
    assert config.evaluate.metrics == ()
    assert (config.gate.baseline, config.gate.baseline_file) == ("file", "main-metrics.json")
    assert (config.gate.base_ref, config.gate.resamples, config.gate.seed) == ("develop", 500, 7)
    (rule,) = config.gate.rules
    assert (rule.confidence, rule.require_proof, rule.on_missing_metric) == (0.9, True, "skip")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{metric: accuracy, max_drop: 0.01, confidence: 0.9999}", "0.5 to 0.999), got 0.9999"),
        ("{metric: accuracy, max_drop: 0.01, confidence: 95}", "0.5 to 0.999), got 95"),
        ("{metric: accuracy, max_drop: 0.01, require_proof: true}", "needs confidence too"),
        ("{metric: accuracy, max_drop: 0.01, require_proof: yes please}", "true or false"),
        ("{metric: accuracy, min: 0.9, on_missing_metric: ignore}", "one of fail, skip"),
    ],
)
def test_noise_aware_rule_errors(rule: str, expected: str) -> None:
    assert expected in problem(with_rules(rule))


def test_version_true_is_not_version_1() -> None:
    assert problem("version: true\n" + MINIMAL) == (
        "mlci.yaml: version: expected 1 (the only version so far), got true"
    )


def test_null_means_not_set() -> None:
    config = parse(MINIMAL + "registry: {model: null, tracking_uri: }\ngate: {base_ref: null}\n")
    assert config.registry.model is None
    assert config.registry.tracking_uri == "sqlite:///.mlci/mlflow.db"
    assert config.gate.base_ref is None


@pytest.mark.parametrize(
    "name", ['"m\\n<!-- x -->"', "a--b", "m>x", "<b>m</b>", '"m\\u202e"'], ids=repr
)
def test_a_model_name_that_would_break_a_marker_or_a_status_is_refused(name: str) -> None:
    message = problem(MINIMAL.replace("{name: digits}", "{name: " + name + "}"))
    assert message.startswith("mlci.yaml: model.name: ")
    assert "use letters, digits, spaces and . _ - (no --)" in message
    assert "\n" not in message.removeprefix("mlci.yaml: ")  # the name is shown escaped


def test_an_empty_list_says_so() -> None:
    message = problem(MINIMAL + "registry: {promote_on: []}\n")
    assert message == (
        "mlci.yaml: registry.promote_on: expected a text or a list of texts, got an empty list"
    )


def test_gate_seed_and_resamples_are_whole_numbers() -> None:
    message = problem(MINIMAL + "gate: {resamples: 10, seed: 1.5}\n")
    assert "gate.resamples: expected a whole number of at least 100, got 10" in message
    assert "gate.seed: expected a whole number, got 1.5" in message


def test_publish_section_defaults_and_values() -> None:
    assert parse_config(MINIMAL, root=Path()).publish == PublishConfig()
    config = parse_config(
        MINIMAL + "publish: {comment: off, status: false, check_run: true, max_wait_seconds: 5}\n",
        root=Path(),
    )
    assert config.publish == PublishConfig(
        comment="off", status=False, check_run=True, max_wait_seconds=5.0
    )
    assert problem(MINIMAL + "publish: {comment: sticky}\n") == (
        'mlci.yaml: publish.comment: expected one of update, new, hide, off, got "sticky"'
    )


def test_evaluate_row_limits_default_and_values() -> None:
    default = parse(MINIMAL).evaluate
    assert (default.min_rows, default.min_row_fraction) == (0, 0.5)
    text = MINIMAL.replace(
        "evaluate: {metrics: [metrics.json]}",
        "evaluate: {metrics: [metrics.json], min_rows: 200, min_row_fraction: 0}",
    )
    config = parse(text).evaluate
    assert (config.min_rows, config.min_row_fraction) == (200, 0.0)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("min_rows: -1", "evaluate.min_rows: expected a whole number of at least 0, got -1"),
        ("min_rows: 0.5", "evaluate.min_rows: expected a whole number, got 0.5"),
        (
            "min_row_fraction: 2",
            "evaluate.min_row_fraction: expected a fraction of the baseline's rows, 0 to 1 "
            "(0.5: half), got 2",
        ),
    ],
)
def test_evaluate_row_limits_are_checked(setting: str, expected: str) -> None:
    text = MINIMAL.replace(
        "evaluate: {metrics: [metrics.json]}", f"evaluate: {{metrics: [metrics.json], {setting}}}"
    )
    assert expected in problem(text)


def test_every_configured_file_of_a_type_mlci_cannot_read_is_refused_at_load() -> None:
    message = problem(
        """\
        model: {name: digits}
        evaluate: {metrics: [metrics.json, metrics.txt], predictions: preds.xlsx}
        report: {params: [params.toml], training_log: log.txt}
        gate: {baseline: "file:baseline.ini"}
        """
    )

    assert "has 5 problems" in message
    metrics = ".json, .yaml, .yml, .csv, .tsv"
    assert (
        f"evaluate.metrics[1]: metrics.txt: mlci cannot read a .txt file here; use one of {metrics}"
        in message
    )
    assert (
        "evaluate.predictions: preds.xlsx: mlci cannot read a .xlsx file here; use one of "
        ".csv, .tsv, .jsonl, .ndjson, .parquet" in message
    )
    assert (
        f"report.params[0]: params.toml: mlci cannot read a .toml file here; use one of {metrics}"
        in message
    )
    assert (
        "report.training_log: log.txt: mlci cannot read a .txt file here; use one of .csv, .json"
        in message
    )
    assert (
        f"gate.baseline: baseline.ini: mlci cannot read a .ini file here; use one of {metrics}"
        in message
    )


SLICED = """\
model: {name: digits}
evaluate:
  predictions: predictions.csv
  slices:
    - segment
    - {column: age, edges: [18, 65]}
    - {column: income, quantiles: 4, min_rows: 300}
    - {cross: [segment, age]}
  slice_min_rows: 50
gate:
  slice_correction: bh
  rules:
    - {metric: accuracy, max_drop: 0.02, confidence: 0.95, slices: [segment, age]}
    - {metric: f1_macro, min: 0.8, slices: true}
"""


def test_slices_and_per_slice_rules_are_read() -> None:
    config = parse(SLICED)

    specs = config.evaluate.slices
    assert [spec.names for spec in specs] == [
        ("segment",),
        ("age",),
        ("income",),
        ("segment", "age"),
    ]
    assert specs[3].columns[1].edges == (18.0, 65.0)  # a cross bins a column as its entry
    assert specs[2].columns[0].quantiles == 4 and specs[2].min_rows == 300
    assert config.evaluate.slice_min_rows == 50
    assert config.evaluate.slice_columns == ("segment", "age", "income")
    assert config.gate.slice_correction == "bh"
    assert [rule.slices for rule in config.gate.rules] == [("segment", "age"), True]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("slice_correction: bh", "gate.slice_correction: expected one of holm, bh"),
        ("slice_min_rows: 50", "evaluate.slice_min_rows: expected a whole number of at least 2"),
        ("edges: [18, 65]", "evaluate.slices[1].edges: expected increasing numbers"),
        ("quantiles: 4, min_rows: 300", "evaluate.slices[2].quantiles: expected a whole number"),
        ("cross: [segment, age]", "evaluate.slices[3].cross: expected two columns' names"),
        ("slices: [segment, age]", "gate.rules[0].slices: country not in evaluate.slices"),
        ("slices: true", "gate.rules[1].slices: expected true or a list"),
        ("- segment", "evaluate.slices[0]: y_pred is a column of the predictions"),
    ],
)
def test_a_slice_setting_that_is_wrong_names_its_key(change: str, expected: str) -> None:
    broken = {
        "slice_correction: bh": "slice_correction: bonferroni",
        "slice_min_rows: 50": "slice_min_rows: 1",
        "edges: [18, 65]": "edges: [65, 18]",
        "quantiles: 4, min_rows: 300": "quantiles: 1, min_rows: 300",
        "cross: [segment, age]": "cross: [segment]",
        "slices: [segment, age]": "slices: [country]",
        "slices: true": "slices: yes please",
        "- segment": "- y_pred",
    }[change]
    assert expected in problem(SLICED.replace(change, broken, 1))


def test_a_per_slice_rule_needs_evaluate_slices() -> None:
    text = MINIMAL + "gate:\n  rules:\n    - {metric: accuracy, min: 0.9, slices: true}\n"
    assert "gate.rules[0].slices: needs evaluate.slices" in problem(text)


# -- evaluate.engine ---------------------------------------------------------------------

ENGINE = """\
version: 1
model: {name: m}
evaluate:
  predictions: s3://evals/run/predictions.parquet
"""


def test_evaluate_engine_defaults_to_none_and_spark_to_local() -> None:
    config = parse(ENGINE)
    assert (config.evaluate.engine, config.evaluate.spark_master) == (None, "local[2]")
    spark = parse(ENGINE + "  engine: spark\n  spark: {master: 'spark://head:7077'}\n")
    assert (spark.evaluate.engine, spark.evaluate.spark_master) == ("spark", "spark://head:7077")
    assert parse(ENGINE + "  engine: none\n").evaluate.engine is None


def test_an_unknown_engine_is_refused_with_the_choices() -> None:
    assert "evaluate.engine: expected one of none, duckdb, spark" in problem(
        ENGINE + "  engine: postgres\n"
    )


def test_an_engine_needs_predictions_and_spark_options_need_spark() -> None:
    text = "version: 1\nmodel: {name: m}\nevaluate:\n  metrics: [m.json]\n  engine: duckdb\n"
    assert "evaluate.engine: needs evaluate.predictions" in problem(text)
    said = problem(ENGINE + "  engine: duckdb\n  spark: {master: 'local[4]'}\n")
    assert "evaluate.spark: is read only with evaluate.engine: spark" in said
    assert "evaluate.spark.colour: unknown key" in problem(
        ENGINE + "  engine: spark\n  spark: {colour: red}\n"
    )


def test_evaluate_spark_conf_is_read_as_spark_reads_its_settings() -> None:
    assert parse(ENGINE + "  engine: spark\n").evaluate.spark_conf == ()
    text = ENGINE + (
        "  engine: spark\n  spark:\n    conf:\n      spark.driver.memory: 4g\n"
        "      spark.sql.shuffle.partitions: 8\n      spark.memory.fraction: 0.5\n"
        "      spark.sql.adaptive.enabled: false\n"
    )
    assert parse(text).evaluate.spark_conf == (
        ("spark.driver.memory", "4g"),
        ("spark.sql.shuffle.partitions", "8"),
        ("spark.memory.fraction", "0.5"),
        ("spark.sql.adaptive.enabled", "false"),  # Spark's spelling, not Python's False
    )


def test_evaluate_spark_conf_refuses_what_spark_would_not_read() -> None:
    spark = ENGINE + "  engine: spark\n  spark:\n"
    said = problem(spark + "    conf: [spark.driver.memory=4g]\n")
    assert "evaluate.spark.conf: expected a mapping of Spark settings such as" in said
    said = problem(spark + "    conf: {spark.driver.memory: [4g], spark.executor.cores: }\n")
    expected = "expected a text, a number or true/false"
    assert f"evaluate.spark.conf.spark.driver.memory: {expected}, got a list" in said
    assert f"evaluate.spark.conf.spark.executor.cores: {expected}, got nothing (null)" in said
    said = problem(spark + "    conf:\n      spark:\n        driver: {memory: 4g}\n")
    assert "evaluate.spark.conf.spark: expected a Spark setting, its full name on one line" in said
    said = problem(spark + "    conf: {driver.memory: 4g, spark.master: 'local[8]'}\n")
    assert "evaluate.spark.conf.driver.memory: expected a Spark setting" in said
    assert "evaluate.spark.conf.spark.master: the master is evaluate.spark.master" in said


def test_duckdb_memory_limit_is_read_for_duckdb_and_checked() -> None:
    assert parse(ENGINE).evaluate.duckdb_memory_limit is None
    for engine in ("duckdb", "none"):  # with none, a URL is scanned by DuckDB all the same
        text = ENGINE + f"  engine: {engine}\n  duckdb: {{memory_limit: 1.5GB}}\n"
        assert parse(text).evaluate.duckdb_memory_limit == "1.5GB"
    said = problem(ENGINE + "  engine: duckdb\n  duckdb: {memory_limit: lots}\n")
    assert "evaluate.duckdb.memory_limit: expected an amount of memory such as 2GB" in said
    said = problem(ENGINE + "  engine: spark\n  duckdb: {memory_limit: 2GB}\n")
    assert "evaluate.duckdb: is not read with evaluate.engine: spark" in said
