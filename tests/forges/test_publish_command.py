"""`mlci publish`: the reporter job of the two-workflow setup for pull requests from forks."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlci.cli import main
from mlci.core.gate import Baseline, evaluate_gate
from mlci.core.report.model import Figure, ReportInput
from mlci.errors import EXIT_EXTERNAL, EXIT_OK
from mlci.forges.base import sticky_marker
from mlci.pipeline import write_outputs
from tests.forges.conftest import HEAD, github_env, make_report
from tests.forges.standin import GitHubStandIn

# The base branch's mlci.yaml, in the checkout of the privileged job: its rules judge.
BASE_CONFIG = textwrap.dedent(
    """\
    version: 1
    model: {name: tiny-model}
    evaluate:
      metrics: [metrics.json]
    gate:
      baseline: git
      rules:
        - {metric: accuracy, min: 0.8}
    """
)


def reporter_job(
    tmp_path: Path,
    server: GitHubStandIn,
    monkeypatch: pytest.MonkeyPatch,
    *,
    named_pr: int,
    report: ReportInput | None = None,
) -> Path:
    """The artifact of the unprivileged job, and the environment of a workflow_run job
    whose working folder is the base branch's checkout."""
    artifact = tmp_path / "artifact"
    write_outputs(report or make_report(0.7), artifact)
    (tmp_path / "mlci.yaml").write_text(BASE_CONFIG)
    (artifact / "publish.json").write_text(json.dumps({"pull_request": named_pr}))
    env = github_env(tmp_path, server.api_url, event="workflow_run")
    event = tmp_path / "run.json"
    # GitHub leaves pull_requests empty when the pull request came from a fork.
    event.write_text(json.dumps({"workflow_run": {"head_sha": HEAD, "pull_requests": []}}))
    env.update({"GITHUB_EVENT_PATH": str(event), "GITHUB_SHA": "d" * 40})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return artifact


def test_publish_posts_the_artifact_to_the_verified_pull_request(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12)

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    (comment,) = github.comments[12]
    assert comment["body"].startswith(sticky_marker("tiny-model"))
    assert "0.7" in comment["body"]
    assert github.statuses[HEAD][0]["state"] == "failure"


def test_publish_refuses_an_artifact_naming_another_pull_request(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github.add_pull(13, "e" * 40)
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=13)

    assert main(["publish", "--from", str(artifact)]) == EXIT_EXTERNAL

    assert "names pull request #13, but its head is eeeeeeeeeeee" in capsys.readouterr().err
    assert github.comments[13] == [] and github.comments[12] == []


def test_publish_outside_ci_says_there_is_nowhere_to_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_outputs(make_report(), tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert main(["publish", "--from", str(tmp_path / "out")]) == 2
    assert "mlci publish runs in CI" in capsys.readouterr().err


def test_publish_without_a_report_names_the_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", "--from", str(tmp_path)]) == 2
    assert "report.json: not found" in capsys.readouterr().err


def forged(accuracy: float) -> ReportInput:
    """A report whose gate has no rules, so it claims "pass" whatever its metrics say,
    with a figure whose Markdown is the forger's own."""
    report = make_report(accuracy)
    figure = Figure(
        key="confusion_matrix",
        title="Confusion matrix",
        markdown='<img src=x onerror="alert(1)">\n\n## Approved by maintainers\n\n'
        "cc @octo-org/admins",
    )
    gate = evaluate_gate([], report.candidate, Baseline("file", "b.json", {}))
    return dataclasses.replace(report, gate=gate, figures=(figure,))


def test_a_forged_verdict_is_judged_again_with_the_base_branch_rules(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12, report=forged(0.7))
    gate_json = json.loads((artifact / "gate.json").read_text())
    assert gate_json["verdict"] == "pass" and gate_json["passed"] is True  # the forgery

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert github.statuses[HEAD][0]["state"] == "failure"
    (comment,) = github.comments[12]
    body = comment["body"]
    assert "accuracy" in body and "gate failed" in body
    assert "Self-reported by the pull request's job" in body
    assert 'claimed "pass"; judged again' in body and 'the verdict is "fail"' in body
    assert "artifact claims the verdict 'pass'" in capsys.readouterr().err


def test_a_figure_from_the_artifact_is_not_posted(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12, report=forged(0.9))

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    body = github.comments[12][0]["body"]
    for forged_text in ("<img", "onerror", "Approved by maintainers", "@octo-org"):
        assert forged_text not in body
    assert "Not shown: 1 figure of the artifact" in body
    assert github.statuses[HEAD][0]["state"] == "success"  # 0.9 passes min: 0.8


def test_a_valid_artifact_gets_the_verdict_of_its_run(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12, report=make_report(0.9))
    run_verdict = json.loads((artifact / "gate.json").read_text())["verdict"]

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert run_verdict == "pass"
    assert github.statuses[HEAD][0]["state"] == "success"
    body = github.comments[12][0]["body"]
    assert "Self-reported by the pull request's job" in body
    assert "claimed" not in body


def test_the_baseline_is_the_base_checkout_not_the_artifact(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The artifact compares with a baseline it chose (none); the base branch has
    # committed 0.95, and its rules allow a drop of 0.01 at most.
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12, report=make_report(0.9))
    # gate.baseline auto: no registry here, so the metrics committed on the base branch.
    config = BASE_CONFIG.replace("  baseline: git\n", "")
    (tmp_path / "mlci.yaml").write_text(config.replace("min: 0.8}", "min: 0.8, max_drop: 0.01}"))
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.95}))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "mlci.yaml", "metrics.json"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "base"], cwd=tmp_path, check=True)

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert github.statuses[HEAD][0]["state"] == "failure"
    body = github.comments[12][0]["body"]
    assert "tiny-model has no @&#8203;champion in the registry yet" in body
    assert "Baseline: the base branch's checkout" in body


def refused(artifact: Path, github: GitHubStandIn, capsys: pytest.CaptureFixture[str]) -> str:
    """What `mlci publish` said when it refused the artifact (exit 2, nothing posted)."""
    assert main(["publish", "--from", str(artifact)]) == 2
    assert github.comments[12] == [] and github.statuses.get(HEAD, []) == []
    return capsys.readouterr().err


def test_publish_without_the_base_branch_config_names_the_checkout(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12)
    (tmp_path / "mlci.yaml").unlink()

    assert "check out the base branch first" in refused(artifact, github, capsys)


def test_publish_refuses_an_oversized_artifact(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12)
    (artifact / "plots").mkdir(exist_ok=True)
    with (artifact / "plots" / "big.png").open("wb") as sparse:
        sparse.truncate(200_000_000)  # sparse: no disk used

    err = refused(artifact, github, capsys)
    assert "100,000,000 bytes" in err and "upload only .mlci/out/" in err


def test_publish_refuses_a_deeply_nested_report(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12)
    document = json.loads((artifact / "report.json").read_text())
    document["candidate"]["accuracy"] = json.loads("[" * 500 + "]" * 500)
    (artifact / "report.json").write_text(json.dumps(document))

    assert "nested more than 100 levels deep" in refused(artifact, github, capsys)


def test_publish_without_the_artifact_folder_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", "--from", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "actions/download-artifact" in err


# The base branch's mlci.yaml when the pull request's job copies its predictions into the
# artifact (`mlci run` does, as .mlci/out/predictions.csv).
PREDICTIONS_CONFIG = BASE_CONFIG.replace(
    "  metrics: [metrics.json]\n", "  metrics: [metrics.json]\n  predictions: preds.csv\n"
).replace("version: 1\n", "version: 1\nreport: {plots: false}\n")


def predictions_csv(right: int, n: int = 100, *, scores: bool = True) -> str:
    """Binary predictions (with scores, or labels only): the first `right` rows are right."""
    lines = ["y_true,y_pred,score" if scores else "y_true,y_pred"]
    for i in range(n):
        truth = i % 2
        guess = truth if i < right else 1 - truth
        score = 0.55 + 0.4 * i / n if guess == 1 else 0.45 - 0.4 * i / n
        lines.append(f"{truth},{guess},{score:.4f}" if scores else f"{truth},{guess}")
    return "\n".join(lines) + "\n"


def with_predictions(
    tmp_path: Path,
    server: GitHubStandIn,
    monkeypatch: pytest.MonkeyPatch,
    report: ReportInput,
    predictions: str,
    config: str = PREDICTIONS_CONFIG,
) -> Path:
    """The artifact of a pull request's job that reported `report` with `predictions`."""
    artifact = reporter_job(tmp_path, server, monkeypatch, named_pr=12, report=report)
    (tmp_path / "mlci.yaml").write_text(config)
    (artifact / "predictions.csv").write_text(predictions)
    return artifact


def test_a_claimed_metric_is_computed_again_from_the_artifact_predictions(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = make_report(0.95)
    artifact = with_predictions(tmp_path, github, monkeypatch, claims, predictions_csv(right=70))

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert github.statuses[HEAD][0]["state"] == "failure"  # 0.7 misses min: 0.8
    body = github.comments[12][0]["body"]
    assert "The pull request's job claimed accuracy 0.95; its predictions give 0.7" in body
    assert "its predictions (the labels and scores of the artifact's predictions file)" in body
    assert "the artifact's predictions.csv (computed by mlci)" in body


def test_the_figures_and_intervals_are_rebuilt_from_the_artifact_predictions(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PREDICTIONS_CONFIG.replace("report: {plots: false}\n", "publish: {images: branch}\n")
    config = config.replace("min: 0.8}", "min: 0.8, confidence: 0.9}")
    labels_only = predictions_csv(right=97, scores=False)
    report = forged(0.97)  # its confusion matrix is the forger's Markdown
    curves = Figure(key="training", title="Training curves", markdown="(the job's log)")
    report = dataclasses.replace(report, figures=(*report.figures, curves))
    artifact = with_predictions(tmp_path, github, monkeypatch, report, labels_only, config)
    (artifact / "plots").mkdir()
    (artifact / "plots" / "confusion_matrix.png").write_bytes(b"\x89PNG forged")

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert github.statuses[HEAD][0]["state"] == "success"
    body = github.comments[12][0]["body"]
    assert "| Interval |" in body and "90%" in body  # the rule's confidence level
    uploaded = {
        name: data for name, data in github.branches["mlci-assets"].items() if name.endswith(".png")
    }
    assert any(name.endswith("/confusion_matrix.png") for name in uploaded)
    assert b"forged" not in b"".join(uploaded.values())
    assert all(data.startswith(b"\x89PNG\r\n") for data in uploaded.values())
    assert re.search(r"!\[Confusion matrix\]\([^)]*/confusion_matrix\.png[^)]*\)", body)
    # The training log is not in the artifact: only its figure is left out.
    assert "Not shown: 1 figure of the artifact" in body
    assert "Approved by maintainers" not in body and "| **48** |" in body


def test_a_large_artifacts_pngs_are_drawn_beside_its_numbers(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a run: from 20,000 rows of predictions the drawing worker starts before they
    are read, and each figure's PNG is started as soon as the rows are judged again."""
    from mlci import drawing

    config = PREDICTIONS_CONFIG.replace("report: {plots: false}\n", "publish: {images: branch}\n")
    predictions = predictions_csv(right=24_000, n=25_000)
    artifact = with_predictions(
        tmp_path, github, monkeypatch, make_report(0.95), predictions, config
    )
    started: list[str] = []
    events: list[str] = []
    start, draw = drawing.start, drawing.draw

    def starting(warm_up: Callable[[], object]) -> None:
        started.append(getattr(warm_up, "__name__", ""))
        start(warm_up)

    def drawn(made: drawing.Drawing) -> Callable[[], bytes]:
        events.append(getattr(made, "func", made).__name__)
        return draw(made)

    monkeypatch.setattr(drawing, "start", starting)
    monkeypatch.setattr(drawing, "draw", drawn)

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert started == ["warm_up"]
    assert events == ["confusion_matrix_png"] * 2 + ["curves_png"] * 3
    uploaded = [name for name in github.branches["mlci-assets"] if name.endswith(".png")]
    assert len(uploaded) == 5


@pytest.mark.parametrize(
    ("predictions", "said"),
    [
        ("y_true,y_pred\n" + "".join(f"c{i},c{i}\n" for i in range(1001)), "1,000"),
        ("y_true,prediction\n1,1\n", "y_pred"),
        ("\x00\xff\xfe" * 10, "predictions.csv"),
    ],
    ids=["too-many-classes", "no-y_pred", "binary"],
)
def test_hostile_predictions_in_the_artifact_are_refused(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    predictions: str,
    said: str,
) -> None:
    artifact = with_predictions(tmp_path, github, monkeypatch, make_report(0.9), predictions)

    assert said in refused(artifact, github, capsys)


def test_oversized_or_linked_predictions_in_the_artifact_are_refused(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = with_predictions(tmp_path, github, monkeypatch, make_report(0.9), "")
    with (artifact / "predictions.csv").open("wb") as sparse:
        sparse.truncate(60_000_000)  # sparse: no disk used
    assert "larger than 50,000,000 bytes" in refused(artifact, github, capsys)

    (artifact / "predictions.csv").unlink()
    (artifact / "predictions.csv").symlink_to(tmp_path / "mlci.yaml")
    assert "not a regular file" in refused(artifact, github, capsys)


def test_the_artifact_predictions_are_paired_with_the_base_branch_and_counted(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PREDICTIONS_CONFIG.replace(
        "  predictions: preds.csv\n", "  predictions: preds.csv\n  min_rows: 200\n"
    )
    config = config.replace("min: 0.8}", "max_drop: 0.05, confidence: 0.9}")
    worse = predictions_csv(right=88)
    artifact = with_predictions(tmp_path, github, monkeypatch, make_report(0.88), worse, config)
    # The base branch committed its metrics and predictions: the git baseline.
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    (tmp_path / "preds.csv").write_text(predictions_csv(right=90))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "add", "mlci.yaml", "metrics.json", "preds.csv"], cwd=tmp_path, check=True
    )
    subprocess.run(["git", "commit", "-qm", "base"], cwd=tmp_path, check=True)

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    assert github.statuses[HEAD][0]["state"] == "failure"
    body = github.comments[12][0]["body"]
    assert "Δ \\[" in body  # the change's interval, paired row by row with the base's
    assert "evaluated on 100 rows, fewer than evaluate.min\\_rows (200)" in body
