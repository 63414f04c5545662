"""`mlci run` end to end: real git repositories, a real training subprocess, real MLflow."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from mlci import git, pipeline
from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_GATE_FAILED, EXIT_OK, EXIT_TRAINING, EXIT_USAGE
from mlci.pipeline import outputs
from mlci.pipeline.baseline import BaselineRequest
from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import Project
from tests.servers import free_port


def run(
    project: Project, options: pipeline.RunOptions | None = None
) -> tuple[pipeline.Outcome, str]:
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config, env=dict(os.environ), console=Console(log), options=options
    )
    return outcome, log.getvalue()


def registry_of(project: Project) -> MlflowRegistry:
    return MlflowRegistry(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}")


def test_first_run_on_main_passes_on_absolute_rules_and_becomes_champion(project: Project) -> None:
    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK
    gate = project.gate_json()
    assert gate["passed"] is True
    assert gate["baseline"] is None
    assert "No baseline: only absolute rules (min, max) were applied" in " ".join(gate["notes"])  # type: ignore[arg-type]
    champion = registry_of(project).by_alias("tiny-model", "champion")
    assert champion is not None and champion.version == "1"
    assert champion.metrics["accuracy"] == pytest.approx(0.9)
    assert champion.commit == outcome.report.commit
    assert "training with" in log  # the training's output was streamed
    assert "version 1 registered" in (project.out / "report.md").read_text()


def test_failing_pull_request_exits_1_says_why_and_is_not_promoted(project: Project) -> None:
    run(project)
    project.branch("pr/worse")
    project.set_params(metrics={"accuracy": 0.85, "log_loss": 0.31})
    project.commit("worse model")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    gate = project.gate_json()
    assert gate["passed"] is False
    results = {r["metric"]: r for r in gate["results"]}  # type: ignore[union-attr, index]
    assert results["accuracy"]["verdict"] == "fail"
    assert results["accuracy"]["baseline"] == 0.9
    assert results["log_loss"]["verdict"] == "pass"
    summary = str(gate["summary"])
    assert "accuracy dropped 0.05 from 0.9 to 0.85" in summary
    assert "tiny-model v1 (@champion)" in summary
    report = (project.out / "report.md").read_text()
    assert "accuracy dropped 0.05" in report.splitlines()[2]  # the one-line verdict
    assert "pr/worse is not in registry.promote\\_on" in report
    assert [v.version for v in registry_of(project).versions("tiny-model")] == ["1"]
    status = json.loads((project.out / "status.json").read_text())
    assert status["state"] == "failure"
    assert (
        (project.out / "comment.md").read_text().startswith("<!-- mlci:report key=tiny-model -->")
    )


def test_passing_pull_request_exits_0_without_promotion(project: Project) -> None:
    run(project)
    project.branch("pr/better")
    project.set_params(metrics={"accuracy": 0.93, "log_loss": 0.25})
    project.commit("better model")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    assert outcome.report.promotion is not None
    assert outcome.report.promotion.eligible is False
    assert outcome.report.promotion.version is None
    champion = registry_of(project).by_alias("tiny-model", "champion")
    assert champion is not None and champion.version == "1"


def test_merge_to_main_promotes_the_better_model(project: Project) -> None:
    run(project)
    project.set_params(metrics={"accuracy": 0.95, "log_loss": 0.2})
    project.commit("better model on main")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    registry = registry_of(project)
    champion = registry.by_alias("tiny-model", "champion")
    assert champion is not None and champion.version == "2"
    assert champion.metrics["accuracy"] == pytest.approx(0.95)
    promotion = project.gate_json()["promotion"]
    assert promotion == {
        "eligible": True,
        "reason": "branch main is in registry.promote_on",
        "version": "2",
        "alias": "champion",
        "previous_version": "1",
        "created": True,
        "alias_kept": None,
        "role": "champion",
    }


def test_warning_rule_does_not_fail_the_gate(project: Project) -> None:
    run(project)
    project.branch("pr/slower")
    project.set_params(metrics={"accuracy": 0.9, "log_loss": 0.5})
    project.commit("higher loss")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    assert project.gate_json()["verdict"] == "warn"
    assert "passed with warnings" in (project.out / "report.md").read_text()


def test_rerun_of_the_same_commit_reuses_its_version(project: Project) -> None:
    run(project)
    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    assert outcome.report.promotion is not None
    assert outcome.report.promotion.created is False
    assert [v.version for v in registry_of(project).versions("tiny-model")] == ["1"]


def test_failing_training_exits_5_and_reports_its_last_output(project: Project) -> None:
    project.set_params(crash=True, metrics={})
    project.commit("crash")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_TRAINING
    gate = project.gate_json()
    assert gate["passed"] is False
    assert gate["verdict"] == "error"
    assert gate["error"] == {
        "stage": "train",
        "message": "training failed: `python train.py` exited with code 3 after "
        + str(gate["error"]["message"]).split("after ")[1],  # type: ignore[index]
        "exit_code": EXIT_TRAINING,
    }
    report = (project.out / "report.md").read_text()
    assert "CUDA out of memory (simulated)" in report
    assert "failed at train" in report
    assert "mlci: error: training failed" in log
    assert registry_of(project).versions("tiny-model") == []


def test_training_timeout_exits_5_and_names_the_setting(project: Project) -> None:
    project.write(
        "mlci.yaml",
        (project.config.read_text()).replace("timeout_minutes: 1", "timeout_minutes: 0.01"),
    )
    project.set_params(sleep=30, metrics={"accuracy": 1.0})
    project.commit("slow")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_TRAINING
    message = str(project.gate_json()["error"]["message"])  # type: ignore[index]
    assert "timed out after 0.6 s" in message
    assert "train.timeout_minutes" in message


def test_malformed_config_exits_2_and_still_writes_the_report(project: Project) -> None:
    project.write(
        "mlci.yaml", project.config.read_text().replace("max_drop: 0.01", 'max_drop: "1%"')
    )

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert 'gate.rules[0].max_drop: expected a number, got "1%"' in log
    gate = project.gate_json()
    assert gate["passed"] is False
    assert gate["error"]["stage"] == "config"  # type: ignore[index]
    report = (project.out / "report.md").read_text()
    assert 'gate.rules\\[0\\].max\\_drop: expected a number, got "1%"' in report


@pytest.mark.parametrize(
    ("metrics_text", "expected"),
    [
        ("{accuracy: 0.9", "metrics.json: not valid JSON (line 1, column 2"),
        ('["accuracy", 0.9]', "expected a mapping of metric names to values"),
    ],
)
def test_malformed_metrics_file_exits_2_with_the_file_named(
    project: Project, metrics_text: str, expected: str
) -> None:
    project.write(
        "mlci.yaml",
        project.config.read_text().replace(
            "train:\n  command: python train.py\n  timeout_minutes: 1\n", ""
        ),
    )
    project.write("metrics.json", metrics_text)

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert expected in log
    assert project.gate_json()["error"]["stage"] == "evaluate"  # type: ignore[index]


def test_missing_metrics_file_names_the_fix(project: Project) -> None:
    project.write("train.py", "print('forgot to write metrics')\n")
    project.commit("no metrics")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert "metrics.json: metrics file not found" in log
    assert "make the training write it" in log


def test_nan_metric_fails_the_gate_with_a_clear_message(project: Project) -> None:
    project.write(
        "train.py", "open('metrics.json','w').write('{\"accuracy\": NaN, \"log_loss\": 0.3}')\n"
    )
    project.commit("nan")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    results = {r["metric"]: r for r in project.gate_json()["results"]}  # type: ignore[union-attr, index]
    assert results["accuracy"]["candidate"] == "NaN"
    assert results["accuracy"]["message"] == "accuracy is NaN, not a number"


def test_missing_model_artifact_exits_2_after_writing_the_report(project: Project) -> None:
    project.write(
        "mlci.yaml",
        project.config.read_text().replace("model: model/", "model: models/missing.pkl"),
    )
    project.commit("wrong model path")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert "registry.model: models/missing.pkl does not exist after training" in log
    assert project.gate_json()["error"]["stage"] == "promote"  # type: ignore[index]


def test_no_promote_option_keeps_the_registry_untouched(project: Project) -> None:
    outcome, _ = run(project, options=pipeline.RunOptions(promote="never"))

    assert outcome.exit_code == EXIT_OK
    assert registry_of(project).versions("tiny-model") == []
    assert "promotion turned off" in (project.out / "report.md").read_text()


def test_detached_head_is_never_promoted(project: Project) -> None:
    from mlci import git

    git.run_git("checkout", "--quiet", "--detach", "HEAD", cwd=project.root)

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    assert outcome.report.promotion is not None
    assert "detached HEAD" in outcome.report.promotion.reason
    assert registry_of(project).versions("tiny-model") == []


def test_github_pull_request_event_never_promotes_even_from_main(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_HEAD_REF", "main")
    monkeypatch.setenv("GITHUB_REF_NAME", "7/merge")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    assert outcome.report.promotion is not None
    assert outcome.report.promotion.reason.startswith("pull-request builds never promote")
    assert registry_of(project).versions("tiny-model") == []


def test_unreachable_registry_exits_3_and_names_the_variable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ci-bot:s3cret-token@127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_EXTERNAL
    # A promoting build cannot do without the registry: it stops before training.
    assert "registry: http://***@127.0.0.1:9 does not answer" in log
    assert "MLFLOW_TRACKING_URI" in log
    assert "could not be read" not in log  # a promoting build does not fall back to git
    assert "mlci train:" not in log and not (project.root / "model").exists()
    everything = log + "".join(p.read_text() for p in project.out.iterdir())
    assert "s3cret-token" not in everything
    assert project.gate_json()["error"]["stage"] == "preflight"  # type: ignore[index]


def test_gate_with_a_baseline_file_needs_no_registry(project: Project, tmp_path: Path) -> None:
    project.write("metrics.json", json.dumps({"accuracy": 0.95, "log_loss": 0.2}))
    baseline = tmp_path / "main-metrics.yaml"
    baseline.write_text("accuracy: 0.97\nlog_loss: 0.2\n")

    request = BaselineRequest(mode="file", file=baseline)
    options = pipeline.RunOptions(train=False, promote="never", baseline=request)
    outcome, _ = run(project, options=options)

    assert outcome.exit_code == EXIT_GATE_FAILED
    gate = project.gate_json()
    assert gate["baseline"] == {"source": "file", "label": str(baseline)}
    assert "accuracy dropped 0.02 from 0.97 to 0.95" in str(gate["summary"])


PREDICTING_TRAIN = """\
import json, pathlib
params = json.loads(pathlib.Path("params.json").read_text())
rows = ["y_true,y_pred"] + [f"{t},{p}" for t, p in params["rows"]]
pathlib.Path("predictions.csv").write_text("\\n".join(rows) + "\\n")
pathlib.Path("metrics.json").write_text(json.dumps({"n_rows": len(params["rows"])}))
pathlib.Path("model").mkdir(exist_ok=True)
pathlib.Path("model/model.bin").write_text("weights")
"""


def rows_with_mistakes(wrong: set[int], n: int = 200) -> list[tuple[int, int]]:
    truth = [i % 2 for i in range(n)]
    return [(t, 1 - t if i in wrong else t) for i, t in enumerate(truth)]


def small_evaluation_project(project: Project, rule: str, evaluate: str = "") -> None:
    config = project.config.read_text()
    config = config.replace(
        "  metrics: [metrics.json]\n",
        f"  metrics: [metrics.json]\n  predictions: predictions.csv\n{evaluate}",
    ).replace(
        "    - {metric: accuracy, min: 0.8, max_drop: 0.01}\n"
        "    - {metric: log_loss, max_rise_pct: 10, severity: warn}\n",
        f"    - {rule}\n",
    )
    project.write("mlci.yaml", config)
    project.write("train.py", PREDICTING_TRAIN)


def noise_aware_project(project: Project, *, require_proof: bool) -> None:
    proof = ", require_proof: true" if require_proof else ""
    small_evaluation_project(
        project, f"{{metric: accuracy, max_drop: 0.01, confidence: 0.95{proof}}}"
    )
    project.set_params(rows=rows_with_mistakes(set(range(0, 200, 10))))  # 20 wrong: 0.90
    project.commit("noise-aware gate")


@pytest.mark.parametrize(("require_proof", "verdict"), [(False, "pass"), (True, "fail")])
def test_a_small_drop_on_few_rows_is_within_noise(
    project: Project, require_proof: bool, verdict: str
) -> None:
    noise_aware_project(project, require_proof=require_proof)
    assert run(project)[0].exit_code == EXIT_OK  # main: first champion, predictions stored
    project.branch("pr/slightly-worse")
    # 5 rows newly wrong, 2 rows newly right: accuracy 0.90 -> 0.885, a drop of 0.015.
    wrong = (set(range(0, 200, 10)) - {0, 10}) | {1, 3, 5, 7, 9}
    project.set_params(rows=rows_with_mistakes(wrong))
    project.commit("slightly worse")

    outcome, log = run(project)

    assert "paired with the baseline" in log
    (result,) = project.gate_json()["results"]  # type: ignore[misc]
    assert result["candidate"] == pytest.approx(0.885)
    assert result["baseline"] == pytest.approx(0.90)
    assert result["verdict"] == verdict
    assert result["interval"]["of"] == "change"
    assert result["interval"]["low"] < -0.01 < result["interval"]["high"]
    assert result["within_noise"] is (not require_proof)
    report = (project.out / "report.md").read_text()
    if require_proof:
        assert outcome.exit_code == EXIT_GATE_FAILED
        assert "not proven" in report
    else:
        assert outcome.exit_code == EXIT_OK
        assert "pass (within noise)" in report


def test_on_missing_baseline_fail_still_lets_main_seed_an_empty_registry(project: Project) -> None:
    project.write(
        "mlci.yaml",
        project.config.read_text().replace("gate:\n", "gate:\n  on_missing_baseline: fail\n"),
    )
    project.commit("strict gate")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    assert "First champion: this build seeds the empty registry" in " ".join(
        project.gate_json()["notes"]
    )  # type: ignore[arg-type]
    assert registry_of(project).by_alias("tiny-model", "champion") is not None
    project.branch("pr/next")
    # A pull request is then held to the strict rule.
    project.write("mlci.yaml", project.config.read_text().replace("tiny-model", "other-model"))
    project.commit("a model with no champion")
    outcome, _ = run(project)
    assert outcome.exit_code == EXIT_GATE_FAILED
    assert "on_missing_baseline: fail" in str(project.gate_json()["summary"])


def test_a_failed_gate_on_main_says_it_was_not_promoted(project: Project) -> None:
    run(project)
    project.set_params(metrics={"accuracy": 0.5, "log_loss": 0.3})
    project.commit("much worse on main")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    assert outcome.report.promotion is not None
    assert outcome.report.promotion.describe() == "not promoted: the gate failed"


def test_an_older_commit_built_last_does_not_replace_a_newer_champion(project: Project) -> None:
    from mlci import git

    project.set_params(metrics={"accuracy": 0.96, "log_loss": 0.2})
    older = project.commit("older commit, its build is slow")
    project.set_params(metrics={"accuracy": 0.95, "log_loss": 0.2})
    project.commit("newer commit, its build finishes first")
    run(project)  # the newer commit becomes the champion
    git.run_git("switch", "--quiet", "-C", "main", older, cwd=project.root)

    outcome, _ = run(project)  # the older build finishes last

    assert outcome.exit_code == EXIT_OK
    champion = registry_of(project).by_alias("tiny-model", "champion")
    assert champion is not None and champion.version == "1"
    promotion = outcome.report.promotion
    assert promotion is not None
    assert promotion.describe().startswith("version 2 registered; @champion stays on v1")
    assert project.gate_json()["promotion"]["alias_kept"].startswith("@champion stays on v1")  # type: ignore[index]


SCORING_TRAIN = """\
import json, pathlib
rows = json.loads(pathlib.Path("params.json").read_text())["rows"]
lines = ["y_true,y_pred,score"] + [f"{t},{int(s >= 0.5)},{s}" for t, s in rows]
pathlib.Path("predictions.csv").write_text("\\n".join(lines) + "\\n")
log = ["epoch,loss,val_loss"] + [f"{e},{1 / (e + 1)},{1.2 / (e + 1)}" for e in range(5)]
pathlib.Path("train_log.csv").write_text("\\n".join(log) + "\\n")
pathlib.Path("metrics.json").write_text("{}")
"""


def test_plots_land_in_both_reports_and_in_the_plots_folder(project: Project) -> None:
    config = project.config.read_text().replace(
        "  metrics: [metrics.json]\n", "  metrics: [metrics.json]\n  predictions: predictions.csv\n"
    )
    project.write("mlci.yaml", config + "report: {training_log: train_log.csv}\n")
    project.write("train.py", SCORING_TRAIN)
    rows = [(i % 2, round(0.2 + 0.6 * (i % 2) + 0.05 * ((i * 7) % 5 - 2), 3)) for i in range(120)]
    project.set_params(rows=rows)
    project.commit("scores and a training log")

    outcome, _ = run(project, pipeline.RunOptions(promote="never"))

    assert outcome.exit_code in (EXIT_OK, EXIT_GATE_FAILED)
    markdown = (project.out / "report.md").read_text()
    for title in (
        "Confusion matrix",
        "ROC curve",
        "Precision-recall curve",
        "Calibration",
        "Training curves",
    ):
        assert f"<summary>{title}</summary>" in markdown, title
    assert markdown.count("```mermaid") == 4
    assert "| true \\\\ predicted | 0 | 1 |" in markdown
    html = (project.out / "report.html").read_text()
    assert (
        html.count("data:image/png;base64,") == 6
    )  # confusion (counts, shares), roc, pr, calibration, training
    plots = sorted(p.name for p in (project.out / "plots").iterdir())
    assert plots == [
        "calibration.png",
        "confusion_matrix-2.png",
        "confusion_matrix.png",
        "pr.png",
        "roc.png",
        "training.png",
    ]


def test_force_promote_promotes_from_another_branch_and_says_so(project: Project) -> None:
    project.branch("hotfix")
    outcome, _ = run(project, pipeline.RunOptions(promote="force"))

    assert outcome.exit_code == EXIT_OK
    promotion = outcome.report.promotion
    assert promotion is not None and promotion.version == "1"
    assert promotion.reason == (
        "forced with --force-promote, although branch hotfix is not in registry.promote_on (main)"
    )
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry_of(project).tracking_uri)
    assert client.get_model_version("tiny-model", "1").tags["mlci.forced"] == "true"


def test_a_passing_pull_request_becomes_the_challenger(project: Project) -> None:
    project.write(
        "mlci.yaml",
        project.config.read_text().replace(
            "  promote_on: [main]\n", "  promote_on: [main]\n  challenger: challenger\n"
        ),
    )
    project.commit("challenger alias")
    run(project)  # main: the champion
    project.branch("pr/better")
    project.set_params(metrics={"accuracy": 0.93, "log_loss": 0.25})
    project.commit("better")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_OK
    registry = registry_of(project)
    champion = registry.by_alias("tiny-model", "champion")
    challenger = registry.by_alias("tiny-model", "challenger")
    assert champion is not None and champion.version == "1"
    assert challenger is not None and challenger.version == "2"
    assert outcome.report.promotion is not None
    assert (
        outcome.report.promotion.describe()
        == "version 2 registered; @challenger set (first challenger)"
    )
    project.set_params(metrics={"accuracy": 0.5, "log_loss": 0.25})
    project.commit("much worse")
    run(project)  # a failing candidate does not move the challenger
    challenger = registry.by_alias("tiny-model", "challenger")
    assert challenger is not None and challenger.version == "2"


def unreachable_registry_on_a_pull_request(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> str:
    """main has committed metrics (accuracy 0.9); a GitHub pull request from pr/worse (0.85)
    whose registry is a port where nothing listens. Returns that URI as mlci shows it."""
    project.write(".gitignore", ".mlci/\nmodel/\n")
    project.write("metrics.json", json.dumps({"accuracy": 0.9, "log_loss": 0.30}))
    project.commit("metrics on main")
    project.branch("pr/worse")
    project.set_params(metrics={"accuracy": 0.85, "log_loss": 0.30})
    project.commit("worse model")
    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ci-bot:s3cret-token@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_HEAD_REF", "pr/worse")
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")
    return f"http://***@127.0.0.1:{port}"


def test_a_pull_request_whose_registry_cannot_be_read_compares_with_git(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = unreachable_registry_on_a_pull_request(project, monkeypatch)

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED  # judged against main's committed metrics
    gate = project.gate_json()
    assert gate["baseline"]["source"] == "git"  # type: ignore[index]
    assert "accuracy dropped 0.05 from 0.9 to 0.85" in str(gate["summary"])
    note = (
        f"The registry could not be read: cannot reach the MLflow server {uri} while reading "
        f"tiny-model@champion"
    )
    assert any(str(n).startswith(note) for n in gate["notes"])  # type: ignore[union-attr]
    assert "compared with the pull request's base in git instead." in str(gate["notes"])
    assert "mlci: warning: The registry could not be read: cannot reach" in log
    assert "could not be read" in (project.out / "report.md").read_text()
    everything = log + "".join(p.read_text() for p in project.out.glob("*.*"))
    assert "s3cret-token" not in everything


def test_an_explicit_registry_baseline_that_cannot_be_read_still_exits_3(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(
        "mlci.yaml",
        project.config.read_text().replace("gate:\n", "gate:\n  baseline: registry\n"),
    )
    unreachable_registry_on_a_pull_request(project, monkeypatch)

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_EXTERNAL
    assert "registry: http://***@127.0.0.1:" in log and "does not answer" in log
    assert "could not be read" not in log and "mlci train:" not in log
    assert project.gate_json()["error"]["stage"] == "preflight"  # type: ignore[index]
    assert "does not answer" in (project.out / "report.md").read_text()


def test_a_missed_minimum_on_20_rows_is_inconclusive_not_within_noise(project: Project) -> None:
    small_evaluation_project(project, "{metric: accuracy, min: 0.9, confidence: 0.95}")
    project.set_params(rows=rows_with_mistakes({0, 4, 8, 12, 16}, n=20))  # 0.75
    project.commit("20 rows")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    gate = project.gate_json()
    (result,) = gate["results"]  # type: ignore[misc]
    assert result["verdict"] == "fail"
    assert result["within_noise"] is False
    (check,) = result["checks"]
    assert check["inconclusive"] is True
    assert check["message"].endswith(
        "20 rows cannot tell 0.75 from 0.9; about 30 rows would give an interval of ±0.15"
    )
    assert gate["rows"]["candidate"] == 20  # type: ignore[index]
    assert (
        "inconclusive: accuracy 0.75 is below the minimum 0.9"
        in (project.out / "report.md").read_text()
    )


def test_a_branch_that_shrinks_its_evaluation_set_fails(project: Project) -> None:
    small_evaluation_project(project, "{metric: accuracy, max_drop: 0.01, confidence: 0.95}")
    project.set_params(rows=rows_with_mistakes(set(range(0, 200, 10))))  # 200 rows, 0.90
    project.commit("200 rows")
    assert run(project)[0].exit_code == EXIT_OK  # the champion, its predictions stored
    project.branch("pr/fewer-rows")
    # 60 rows, 9 of them wrong (0.85): on so few rows the drop of 0.05 is within noise.
    project.set_params(rows=rows_with_mistakes(set(range(0, 60, 7)) - {56}, n=60))
    project.commit("evaluate on fewer rows")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    gate = project.gate_json()
    assert gate["rows"]["candidate"] == 60  # type: ignore[index]
    assert gate["rows"]["baseline"] == 200  # type: ignore[index]
    assert str(gate["summary"]).endswith(
        "the candidate was evaluated on 60 rows, far fewer than the baseline's 200 "
        "(evaluate.min_row_fraction: 0.5 asks for at least 100): a smaller evaluation set "
        "can hide a regression"
    )
    assert "far fewer than the baseline's 200" in (project.out / "report.md").read_text()


def test_min_rows_fails_a_small_evaluation(project: Project) -> None:
    small_evaluation_project(project, "{metric: accuracy, min: 0.5}", evaluate="  min_rows: 100\n")
    project.set_params(rows=rows_with_mistakes(set(), n=50))
    project.commit("50 rows")

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED
    assert project.gate_json()["summary"] == (
        "failed with no baseline: the candidate was evaluated on 50 rows, fewer than "
        "evaluate.min_rows (100): evaluate it on more rows"
    )


def predictions_project(tmp_path: Path) -> Project:
    """A committed project whose evaluation is a predictions file of 20 rows (19 right)."""
    git.init_repo(tmp_path, branch="main")
    project = Project(tmp_path)
    project.write(
        "mlci.yaml",
        "version: 1\nmodel: {name: tiny-model}\n"
        "evaluate: {metrics: [metrics.json], predictions: predictions.csv}\n"
        "gate: {baseline: none, rules: [{metric: accuracy, min: 0.5}]}\nreport: {plots: false}\n",
    )
    project.write("metrics.json", "{}")
    rows = ["y_true,y_pred"] + [f"{t},{p}" for t, p in rows_with_mistakes({1}, n=20)]
    project.write("predictions.csv", "\n".join(rows) + "\n")
    project.commit("predictions")
    return project


def test_the_run_copies_its_predictions_into_the_report_folder(tmp_path: Path) -> None:
    # The fork-safe publisher judges the uploaded .mlci/out/ from these (mlci publish --from).
    project = predictions_project(tmp_path)
    project.out.mkdir(parents=True)
    (project.out / "predictions.jsonl").write_text("{}\n")  # an earlier run's, another format
    options = pipeline.RunOptions(train=False, promote="never")

    assert run(project, options)[0].exit_code == EXIT_OK

    copied = project.out / "predictions.csv"
    assert copied.read_bytes() == (project.root / "predictions.csv").read_bytes()
    assert not (project.out / "predictions.jsonl").exists()


def test_predictions_over_the_limit_stay_out_of_the_report_folder_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = predictions_project(tmp_path)
    monkeypatch.setattr(outputs, "MAX_PREDICTIONS_BYTES", 50)  # the file has 94 bytes

    outcome, _ = run(project, pipeline.RunOptions(train=False, promote="never"))

    assert outcome.exit_code == EXIT_OK
    assert not (project.out / "predictions.csv").exists()
    report = (project.out / "report.md").read_text()
    assert "The predictions (94 bytes) are not in .mlci/out: over the 50 bytes" in report


def test_a_metrics_file_mlci_cannot_read_stops_the_run_before_training(project: Project) -> None:
    project.write(
        "mlci.yaml", project.config.read_text().replace("[metrics.json]", "[metrics.txt]")
    )

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert "evaluate.metrics[0]: metrics.txt: mlci cannot read a .txt file here" in log
    assert "mlci train:" not in log and not (project.root / "model").exists()
    assert "metrics.txt" in (project.out / "report.md").read_text()


def test_a_git_baseline_whose_branch_is_missing_stops_the_run_before_training(
    project: Project,
) -> None:
    project.write(
        "mlci.yaml",
        project.config.read_text().replace(
            "gate:\n", "gate:\n  baseline: git\n  base_ref: develop\n"
        ),
    )
    project.commit("compare with develop")
    project.branch("feature")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_USAGE
    assert "the base branch develop is not in this repository" in log
    assert "mlci train:" not in log and not (project.root / "model").exists()
