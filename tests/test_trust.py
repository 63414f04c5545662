"""A pull request is judged by its base branch's mlci.yaml, not by the one it brings."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from mlci import git, pipeline
from mlci.ci import detect_context
from mlci.config import load_config
from mlci.console import Console
from mlci.errors import EXIT_GATE_FAILED, EXIT_OK, EXIT_USAGE
from mlci.pipeline import trust
from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import Project


def run(project: Project) -> tuple[pipeline.Outcome, str]:
    log = io.StringIO()
    outcome = pipeline.run(config_path=project.config, env=dict(os.environ), console=Console(log))
    return outcome, log.getvalue()


def github_pull_request(monkeypatch: pytest.MonkeyPatch, head: str) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_HEAD_REF", head)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")


def config_pull_request(
    project: Project, monkeypatch: pytest.MonkeyPatch, base: str, head: str, branch: str
) -> None:
    """main with mlci.yaml `base`, and a pull request from `branch` that makes it `head`."""
    project.write("mlci.yaml", base)
    project.commit("the base branch's mlci.yaml")
    project.branch(branch)
    project.write("mlci.yaml", head)
    project.commit("the pull request's mlci.yaml")
    github_pull_request(monkeypatch, branch)


def loosen_max_drop(project: Project) -> None:
    loosened = project.config.read_text().replace("max_drop: 0.01", "max_drop: 0.5")
    project.write("mlci.yaml", loosened)


def loosened_pull_request(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """main's champion has accuracy 0.9 (max_drop 0.01); pr/loose drops to 0.85 and
    raises max_drop to 0.5 in its own mlci.yaml."""
    run(project)
    project.branch("pr/loose")
    loosen_max_drop(project)
    project.set_params(metrics={"accuracy": 0.85, "log_loss": 0.30})
    project.commit("worse model, looser gate")
    github_pull_request(monkeypatch, "pr/loose")


def test_a_pull_request_that_loosens_its_gate_is_judged_by_the_base_rules(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    loosened_pull_request(project, monkeypatch)

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    assert "accuracy dropped 0.05 from 0.9 to 0.85" in str(project.gate_json()["summary"])
    report = (project.out / "report.md").read_text()
    assert "changes gate.rules (accuracy) in mlci.yaml" in report
    assert "takes effect after merge" in report
    assert "takes effect after merge" in (project.out / "report.html").read_text()
    assert "rules: mlci.yaml at main at the merge base" in log


def test_the_opt_out_variable_makes_the_pull_requests_own_rules_apply(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    loosened_pull_request(project, monkeypatch)
    monkeypatch.setenv("MLCI_TRUST_PR_CONFIG", "1")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK  # a drop of 0.05 is within its own max_drop 0.5
    assert "rules: the pull request's own mlci.yaml (MLCI_TRUST_PR_CONFIG=1)" in log
    assert "takes effect after merge" not in (project.out / "report.md").read_text()


def test_a_pull_request_that_moves_the_registry_still_reads_the_base_registry(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run(project)  # @champion v1 in the base's registry, .mlci/mlflow.db
    elsewhere = tmp_path / "elsewhere.db"
    project.branch("pr/registry")
    project.write(
        "mlci.yaml",
        project.config.read_text().replace(
            "registry:\n", f"registry:\n  tracking_uri: sqlite:///{elsewhere}\n"
        ),
    )
    project.set_params(metrics={"accuracy": 0.85, "log_loss": 0.30})
    project.commit("point the registry elsewhere")
    github_pull_request(monkeypatch, "pr/registry")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    baseline = project.gate_json()["baseline"]
    assert baseline["source"] == "registry"  # type: ignore[index]
    assert "tiny-model v1" in baseline["label"]  # type: ignore[index]
    assert not elsewhere.exists()
    assert "changes registry.tracking_uri in mlci.yaml" in str(project.gate_json()["notes"])
    assert "registry.tracking\\_uri" in (project.out / "report.md").read_text()  # escaped


def test_the_first_pull_request_adding_mlci_is_judged_by_its_own_file(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.config.read_text()
    git.run_git("rm", "--quiet", "mlci.yaml", cwd=project.root)
    project.commit("main without mlci")
    project.branch("pr/add-mlci")
    project.write("mlci.yaml", config)
    project.commit("add mlci")
    github_pull_request(monkeypatch, "pr/add-mlci")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    report = (project.out / "report.md").read_text()
    assert "No mlci.yaml on the base branch: this pull request is judged by its own" in report


def test_a_push_to_main_is_judged_by_its_own_mlci_yaml(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project)
    loosen_max_drop(project)
    project.set_params(metrics={"accuracy": 0.85, "log_loss": 0.30})
    project.commit("looser gate on main")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK  # the drop of 0.05 is within main's new max_drop
    assert "takes effect after merge" not in (project.out / "report.md").read_text()
    assert "rules:" not in log
    champion = MlflowRegistry(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}").by_alias(
        "tiny-model", "champion"
    )
    assert champion is not None and champion.version == "2"


def test_a_pull_request_whose_base_branch_is_missing_stops_with_the_fix(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    loosened_pull_request(project, monkeypatch)
    monkeypatch.setenv("GITHUB_BASE_REF", "release")  # not fetched: no rules to trust

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert "the base branch release is not in this repository" in log
    assert "MLCI_TRUST_PR_CONFIG=1" in log
    assert project.gate_json()["error"]["stage"] == "context"  # type: ignore[index]


def test_a_pull_request_cannot_lower_the_row_limits_for_itself(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.config.read_text().replace(
        "  metrics: [metrics.json]\n", "  metrics: [metrics.json]\n  min_rows: 100\n"
    )
    head = config.replace("min_rows: 100", "min_rows: 0")
    config_pull_request(project, monkeypatch, config, head, "pr/no-limit")

    run(project)

    gate = project.gate_json()
    # The base's min_rows: 100 applies (the pull request's 0 would leave no check); with
    # metrics files only, it says it could not count the rows.
    (check,) = gate["rows"]["checks"]  # type: ignore[index]
    assert (check["name"], check["threshold"], check["passed"]) == ("min_rows", 100, None)
    report = (project.out / "report.md").read_text()
    assert "changes evaluate.min\\_rows in mlci.yaml" in report  # underscores escaped


def test_a_stale_local_base_branch_does_not_pick_the_rules(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(project)  # main's champion: accuracy 0.9, max_drop 0.01
    pushed = git.head_sha(project.root)
    assert pushed is not None
    git.run_git("update-ref", "refs/remotes/origin/main", pushed, cwd=project.root)
    loosen_max_drop(project)
    project.commit("a looser gate, on a local main the forge never saw")
    project.branch("pr/worse")
    project.set_params(metrics={"accuracy": 0.85, "log_loss": 0.30})
    project.commit("worse model")
    github_pull_request(monkeypatch, "pr/worse")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    assert "rules: mlci.yaml at origin/main at the merge base" in log
    assert "origin/main (" in log and "differ" in log
    assert "and main (" in (project.out / "report.md").read_text()


SEGMENTED_TRAIN = """\
import json, pathlib
params = json.loads(pathlib.Path("params.json").read_text())
rows = ["y_true,y_pred,segment"]
for i in range(2000):
    segment = "hurt" if i < 200 else f"s{i % 5}"
    wrong = i % 100 < params["hurt_wrong"] if segment == "hurt" else i % 100 < 10
    rows.append(f"{i % 2},{1 - i % 2 if wrong else i % 2},{segment}")
pathlib.Path("predictions.csv").write_text("\\n".join(rows) + "\\n")
pathlib.Path("metrics.json").write_text("{}")
pathlib.Path("model").mkdir(exist_ok=True)
pathlib.Path("model/model.bin").write_text("weights")
"""


def test_a_pull_request_cannot_unslice_its_own_gate(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.config.read_text().replace(
        "  metrics: [metrics.json]\n",
        "  metrics: [metrics.json]\n  predictions: predictions.csv\n  slices: [segment]\n",
    )
    config = config.replace(
        "    - {metric: accuracy, min: 0.8, max_drop: 0.01}\n"
        "    - {metric: log_loss, max_rise_pct: 10, severity: warn}\n",
        "    - {metric: accuracy, max_drop: 0.05, confidence: 0.95, slices: true}\n",
    )
    project.write("mlci.yaml", config)
    project.write("train.py", SEGMENTED_TRAIN)
    project.set_params(hurt_wrong=10)
    project.commit("sliced gate")
    assert run(project)[0].exit_code == EXIT_OK  # main: the champion and its predictions
    project.branch("pr/unsliced")
    # The pull request's segment `hurt` drops from 0.9 to 0.5, and its mlci.yaml raises
    # the slices' row limit past every slice, which would leave none gated.
    project.write(
        "mlci.yaml",
        config.replace("slices: [segment]\n", "slices: [segment]\n  slice_min_rows: 100000\n"),
    )
    project.set_params(hurt_wrong=50)
    project.commit("worse on hurt, no slice gated")
    github_pull_request(monkeypatch, "pr/unsliced")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    slices = project.gate_json()["slices"]["results"]  # type: ignore[index]
    assert [r["slice"] for r in slices if r["verdict"] == "fail"] == [{"segment": "hurt"}]
    assert (
        "changes evaluate.slice\\_min\\_rows in mlci.yaml"
        in (project.out / "report.md").read_text()
    )


def test_a_pull_request_cannot_send_its_training_to_a_cluster_of_its_choosing(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The cluster receives the project, the data and the job's cloud credentials: where it
    # is comes from the base branch. Neither address answers; the error names the one used.
    off_runner = (
        "  timeout_minutes: 1\n"
        "  on: ray\n"
        f"  storage: {tmp_path / 'runs'}\n"
        "  ray: {address: 'http://127.0.0.1:1'}\n"
    )
    base = project.config.read_text().replace("  timeout_minutes: 1\n", off_runner)
    head = base.replace("127.0.0.1:1'", "127.0.0.1:2'")
    config_pull_request(project, monkeypatch, base, head, "pr/elsewhere")

    outcome, log = run(project)

    assert outcome.exit_code != EXIT_OK
    error = str(project.gate_json()["error"])
    assert "127.0.0.1:1" in error and "127.0.0.1:2" not in error + log
    assert "changes train.ray.address in mlci.yaml" in log


@pytest.mark.xdist_group("spark")  # the worker whose JVM the Spark tests share
def test_a_pull_request_cannot_point_the_evaluation_at_a_spark_master_of_its_own(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The driver on the runner sends its reads, and the credentials they use, to the
    # master's executors: evaluate.spark.master comes from the base branch. (No
    # predictions are written: a local Spark starts, and stops on the missing file.)
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 or newer: apt-get install default-jre-headless")
    config = project.config.read_text().replace(
        "  metrics: [metrics.json]\n",
        "  metrics: [metrics.json]\n  predictions: predictions.parquet\n  engine: spark\n"
        "  spark: {master: 'local[2]'}\n",
    )
    head = config.replace("'local[2]'", "'spark://attacker.invalid:7077'")
    config_pull_request(project, monkeypatch, config, head, "pr/my-master")

    _, log = run(project)

    assert "changes evaluate.spark.master in mlci.yaml" in log
    # Spark ran where the base branch says (locally), and failed on the missing file.
    error = str(project.gate_json()["error"])
    assert "Spark cannot read it" in error and "attacker.invalid" not in error + log


def test_a_pull_request_cannot_bring_spark_settings_of_its_own(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spark's settings can send the reads, and the credentials they use, elsewhere
    # (spark.hadoop.fs.s3a.endpoint, a proxy, a jar): evaluate.spark.conf comes from the
    # base branch, as evaluate.spark.master does.
    config = project.config.read_text().replace(
        "  metrics: [metrics.json]\n",
        "  metrics: [metrics.json]\n  predictions: predictions.parquet\n  engine: spark\n"
        "  spark: {conf: {spark.driver.memory: 4g}}\n",
    )
    endpoint = "spark.hadoop.fs.s3a.endpoint: 'https://attacker.invalid'"
    head = config.replace("4g}", f"4g, {endpoint}}}")
    config_pull_request(project, monkeypatch, config, head, "pr/my-endpoint")
    log = io.StringIO()
    env = dict(os.environ)
    head = load_config(project.config)
    assert ("spark.hadoop.fs.s3a.endpoint", "https://attacker.invalid") in head.evaluate.spark_conf

    found = trust.rules(head, "mlci.yaml", detect_context(project.root, env), env, Console(log))

    assert found.config.evaluate.spark_conf == (("spark.driver.memory", "4g"),)
    assert found.config.evaluate.engine == "spark"  # the pull request's to choose
    assert "changes evaluate.spark.conf in mlci.yaml" in log.getvalue()
    assert any("changes evaluate.spark.conf" in note for note in found.notes)
