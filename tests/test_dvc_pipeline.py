"""DVC pipelines end to end on a project built like DVC's example-get-started (issue #16)."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import git, pipeline
from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_GATE_FAILED, EXIT_OK
from tests.dvc_pipeline import build_pipeline_template, copy_pipeline, set_param
from tests.dvc_project import DvcProject
from tests.servers import free_port


@pytest.fixture(scope="session")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pipeline_template(tmp_path_factory.mktemp("dvc-pipeline-template"))


@pytest.fixture
def project(pipeline_template: Path, tmp_path: Path) -> Iterator[DvcProject]:
    yield copy_pipeline(pipeline_template, tmp_path / "copy")


def run(project: DvcProject, *, train: bool = True) -> tuple[pipeline.Outcome, str]:
    """`mlci run` without promoting; `train=False`: `mlci gate` on the workspace's metrics."""
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(train=train, promote="never"),
    )
    return outcome, log.getvalue()


def pull_request(project: DvcProject, quality: str, *, branch: str = "pr") -> None:
    """A branch off main with `train.quality` changed, reproduced and committed (not pushed)."""
    git.switch(project.root, branch, create=True)
    set_param(project, "quality: 0.9", f"quality: {quality}")
    project.dvc("repro", "-q")
    project.commit(f"quality {quality}")


def result(project: DvcProject, metric: str) -> dict[str, object]:
    results = project.gate_json()["results"]
    assert isinstance(results, list)
    found: dict[str, object] = next(r for r in results if r["metric"] == metric)
    return found


def test_the_stage_written_metrics_are_evaluated_on_the_first_build(project: DvcProject) -> None:
    assert (project.root / "eval" / "metrics.json").read_text()
    tracked = project.dvc("ls", "--dvc-only", ".", "eval").stdout
    assert "metrics.json" in tracked  # a DVC output, not a git file
    outcome, log = run(project)
    assert outcome.exit_code == 0, log
    metrics = project.gate_json()["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["avg_prec.test"] == pytest.approx(0.85)
    assert metrics["roc_auc.test"] == pytest.approx(0.9)
    assert json.loads((project.root / "model.pkl").read_text())["quality"] == 0.9


# The git baseline of a DVC pipeline: main's eval/metrics.json is no git file, but a stage
# output that main's dvc.lock names; mlci reads it through DVC's cache or remote.


def test_a_worse_pull_request_fails_against_the_metrics_main_s_dvc_lock_names(
    project: DvcProject,
) -> None:
    git.switch(project.root, "pr", create=True)
    set_param(project, "quality: 0.9", "quality: 0.8")
    project.commit("quality 0.8")  # the build's `dvc repro` trains it

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_GATE_FAILED, log
    gate = project.gate_json()
    assert gate["baseline"]["source"] == "git"  # type: ignore[index]
    avg_prec = result(project, "avg_prec.test")
    assert (avg_prec["verdict"], avg_prec["baseline"], avg_prec["candidate"]) == (
        "fail",
        0.85,
        0.75,
    )
    assert "avg_prec.test dropped 0.1 from 0.85 to 0.75" in str(gate["summary"])


def test_a_better_pull_request_passes_against_main_s_dvc_output(project: DvcProject) -> None:
    pull_request(project, "0.95")

    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_OK, log
    avg_prec = result(project, "avg_prec.test")
    assert (avg_prec["verdict"], avg_prec["baseline"]) == ("pass", 0.85)
    assert avg_prec["candidate"] == pytest.approx(0.9)


def test_without_a_local_dvc_cache_the_baseline_comes_from_the_remote(
    project: DvcProject,
) -> None:
    pull_request(project, "0.8")
    shutil.rmtree(project.root / ".dvc" / "cache")  # a fresh runner: nothing cached

    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_GATE_FAILED, log
    assert result(project, "avg_prec.test")["baseline"] == 0.85


def test_a_baseline_output_nobody_pushed_is_an_error_that_names_the_fix(
    project: DvcProject,
) -> None:
    pull_request(project, "0.8")
    shutil.rmtree(project.root / ".dvc" / "cache")
    shutil.rmtree(project.remote)

    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_EXTERNAL, log
    error = project.gate_json()["error"]
    assert isinstance(error, dict)
    assert error["stage"] == "baseline"
    assert "eval/metrics.json at " in error["message"]
    assert "(dvc.lock (stage evaluate), md5 339c306f)" in error["message"]
    assert "neither in git, the DVC cache nor on the DVC remote: run `dvc push`" in error["message"]


def test_the_git_baseline_matches_dvc_metrics_diff_on_the_same_commits(
    project: DvcProject,
) -> None:
    pull_request(project, "0.8")  # both commits' outputs in the cache: what DVC reads

    dvc_diff = json.loads(project.dvc("metrics", "diff", "--json", "--all", "main", "HEAD").stdout)
    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_GATE_FAILED, log
    # DVC nests per file and names the metrics as mlci flattens them (avg_prec.test).
    assert list(dvc_diff) == ["eval/metrics.json"]
    theirs = dvc_diff["eval/metrics.json"]
    ours = {row["metric"]: row for row in project.gate_json()["diff"]}  # type: ignore[union-attr]
    # Neither has a metric the other lacks: rows.test is unchanged, which DVC lists only
    # with --all (without it, only changed metrics); mlci lists it as `unchanged`.
    assert sorted(ours) == sorted(theirs)
    for metric, row in theirs.items():
        assert (ours[metric]["old"], ours[metric]["new"]) == (row["old"], row["new"]), metric
        assert ours[metric]["diff"] == pytest.approx(row.get("diff", 0)), metric
    assert ours["rows.test"]["status"] == "unchanged"


# No baseline at all: a pull request whose registry cannot be read (a fork's, without
# secrets) must not pass on its absolute limits alone.


def fork_pull_request(project: DvcProject, monkeypatch: pytest.MonkeyPatch) -> None:
    """gate.baseline auto on main; a worse pull request whose registry refuses it."""
    project.edit_config("baseline: git", "baseline: auto")
    project.commit("baseline: auto")  # a pull request is judged by main's rules
    pull_request(project, "0.8", branch="fork/worse")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "pull_request")
    monkeypatch.setenv("GITHUB_HEAD_REF", "fork/worse")
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/9/merge")


def test_an_unreadable_registry_falls_back_to_main_s_dvc_output_and_fails(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork_pull_request(project, monkeypatch)

    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_GATE_FAILED, log
    assert project.gate_json()["baseline"]["source"] == "git"  # type: ignore[index]
    assert result(project, "avg_prec.test")["verdict"] == "fail"


def test_no_readable_baseline_on_a_pull_request_fails_its_relative_rules(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork_pull_request(project, monkeypatch)
    shutil.rmtree(project.root / ".dvc" / "cache")
    shutil.rmtree(project.remote)  # nor the DVC remote's credentials

    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_GATE_FAILED, log
    gate = project.gate_json()
    assert gate["baseline"] is None
    assert result(project, "avg_prec.test")["verdict"] == "fail"
    assert result(project, "roc_auc.test")["verdict"] == "pass"  # its min still applies
    notes = "\n".join(str(n) for n in gate["notes"])  # type: ignore[union-attr]
    assert "The baseline could not be read (" in notes
    assert "gate.on_missing_baseline: auto" in notes
    assert "neither in git, the DVC cache nor on the DVC remote" in notes


def test_on_missing_baseline_pass_lets_it_pass_and_names_what_was_not_checked(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.edit_config("gate:\n", "gate:\n  on_missing_baseline: pass\n")
    fork_pull_request(project, monkeypatch)
    shutil.rmtree(project.root / ".dvc" / "cache")
    shutil.rmtree(project.remote)

    outcome, log = run(project, train=False)

    assert outcome.exit_code == EXIT_OK, log
    not_checked = "not checked: avg_prec.test drop ≤ 0.02"
    assert not_checked in str(project.gate_json()["notes"])
    assert "mlci: warning: no baseline: not checked: avg_prec.test drop ≤ 0.02" in log
