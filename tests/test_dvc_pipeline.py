"""DVC pipelines end to end on a project built like DVC's example-get-started (issue #16)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlci import git, pipeline
from mlci.config import Resources, load_config
from mlci.console import Console
from mlci.data import hashes
from mlci.errors import EXIT_EXTERNAL, EXIT_GATE_FAILED, EXIT_OK
from mlci.pipeline import data
from mlci.pipeline.facts import DataVersions
from mlci.registry.mlflow import MlflowRegistry
from mlci.remote import package
from mlci.remote.base import Plan
from tests.dvc_pipeline import build_pipeline_template, copy_pipeline, set_param
from tests.dvc_project import DvcProject
from tests.servers import free_port


@pytest.fixture(scope="session")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pipeline_template(tmp_path_factory.mktemp("dvc-pipeline-template"))


@pytest.fixture
def project(pipeline_template: Path, tmp_path: Path) -> Iterator[DvcProject]:
    yield copy_pipeline(pipeline_template, tmp_path / "copy")


def run(
    project: DvcProject, promote: pipeline.PromoteMode = "never", *, train: bool = True
) -> tuple[pipeline.Outcome, str]:
    """`mlci run`; `train=False`: `mlci gate` on the workspace's metrics."""
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(train=train, promote=promote),
    )
    return outcome, log.getvalue()


def unpush(project: DvcProject, *outputs: str) -> None:
    """Take stage outputs off the remote, as if nobody had pushed them."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] in outputs:
                digest = out["md5"]
                (project.remote / "files" / "md5" / digest[:2] / digest[2:]).unlink()


def fresh_runner(project: DvcProject) -> None:
    """As on a fresh CI clone: no DVC cache, no data and no stage outputs in the tree."""
    shutil.rmtree(project.root / ".dvc" / "cache")
    for folder in ("data/prepared", "data/features"):
        shutil.rmtree(project.root / folder)
    for name in ("data/data.csv", "model.pkl", "eval/metrics.json"):
        (project.root / name).unlink()


def datasets_of(gate: dict[str, object]) -> list[object]:
    data = gate["data"]
    assert isinstance(data, dict)
    return [dataset["path"] for dataset in data["datasets"]]


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


def test_a_fresh_clone_retrains_the_outputs_nobody_pushed(project: DvcProject) -> None:
    unpush(project, "model.pkl", "data/features")
    fresh_runner(project)

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    said = [line for line in log.splitlines() if "not on the remote" in line]
    assert len(said) == 1, log
    assert said[0].startswith("mlci data: ")
    assert "made again by the training: " in said[0]
    assert "model.pkl" in said[0] and "data/features" in said[0]
    assert "Running stage 'featurize'" in log and "Running stage 'train'" in log
    assert json.loads((project.root / "model.pkl").read_text())["quality"] == 0.9
    gate = project.gate_json()
    assert datasets_of(gate) == ["data/data.csv"]
    assert "made again by the training" in str(gate["data"])  # the report's note
    report = project.report()
    assert "| data/data.csv |" in report and "| model.pkl |" not in report
    assert "| data/features |" not in report


@pytest.mark.slow
def test_data_changed_speaks_of_the_datasets_only(
    project: DvcProject, empty_registry_db: Path
) -> None:
    project.edit_config("baseline: git", "baseline: auto")
    project.use_registry(empty_registry_db)
    project.commit("the registry's champion is the baseline")
    first = project.data_hash()
    outcome, log = run(project, promote="auto")
    assert outcome.exit_code == EXIT_OK, log
    registry = MlflowRegistry(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}")
    champion = registry.by_alias("get-started", "champion")
    assert champion is not None and champion.data == {"data/data.csv": first}  # the tags

    git.switch(project.root, "better-params", create=True)
    set_param(project, "quality: 0.9", "quality: 0.95")
    project.commit("quality 0.95: params only")
    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    assert outcome.report.candidate["avg_prec.test"] == pytest.approx(0.9)  # retrained
    assert "Data changed since the baseline: no (1 dataset)" in project.report()
    gate = project.gate_json()
    assert gate["data"]["changed"] is False  # type: ignore[index]
    assert datasets_of(gate) == ["data/data.csv"]
    project.commit("dvc.lock of quality 0.95")

    git.switch(project.root, "main")
    git.switch(project.root, "more-data", create=True)
    second = project.set_data(300)
    project.commit("data v2")
    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    report = project.report()
    assert "Data changed since the baseline: yes (1 of 1 dataset: data/data.csv)" in report
    assert f"| data/data.csv | {first[:8]} | {second[:8]} | changed |" in report
    assert project.gate_json()["data"]["datasets"] == [  # type: ignore[index]
        {"path": "data/data.csv", "hash": second, "baseline_hash": first, "status": "changed"}
    ]


def test_imports_and_inputs_from_outside_are_datasets_and_outputs_are_not(
    project: DvcProject, tmp_path: Path
) -> None:
    source = tmp_path / "labels-repo"
    source.mkdir()
    git.init_repo(source, branch="main")
    (source / "labels.csv").write_text("id,label\n1,cat\n")
    git.commit_all(source, "labels")
    mounted = tmp_path / "mount" / "extra.csv"
    mounted.parent.mkdir()
    mounted.write_text("1\n2\n")
    project.dvc("import", "-q", str(source), "labels.csv", "-o", "data/labels.csv")
    dvc_yaml = project.root / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(
            "deps: [src/prepare.py, data/data.csv]",
            f"deps: [src/prepare.py, data/data.csv, data/labels.csv, {mounted}]",
        )
    )
    project.edit_config("baseline: git", "baseline: none")
    project.dvc("repro", "-q")
    project.dvc("push", "-q")
    project.commit("labels imported, an extra input from a mount")

    found = {d.path: d.source for d in hashes.datasets(project.root)}
    assert found == {
        "data/data.csv": "data/data.csv.dvc",
        "data/labels.csv": "data/labels.csv.dvc",
        str(mounted): "dvc.lock (input of stage prepare)",
    }
    fresh_runner(project)
    (project.root / "data" / "labels.csv").unlink()
    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    assert (project.root / "data" / "labels.csv").read_text() == "id,label\n1,cat\n"  # pulled
    assert datasets_of(project.gate_json()) == sorted(found)


def test_a_champion_that_counted_stage_outputs_as_data_is_compared_on_data(
    project: DvcProject,
) -> None:
    config = load_config(project.config)
    current = hashes.lineage(project.root)
    # Tags of a version registered by an mlci that took outputs other stages read for data.
    champion = {**current, "model.pkl": "0" * 32, "data/features": "1" * 32 + ".dir"}

    versions = data.versions(config, DataVersions(), champion)

    assert versions.datasets == current == {"data/data.csv": project.data_hash()}
    assert versions.baseline == current


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


def test_a_baseline_inside_a_folder_output_the_remote_lacks_is_an_error_not_a_crash(
    project: DvcProject,
) -> None:
    # example-get-started's evaluate stage has `outs: [eval]`: metrics.json inside a
    # folder output. When that folder's listing (.dir) is in neither the cache nor the
    # remote, DVC raises dvc_data's DataIndexDirError, which is not a DvcException.
    from mlci.data import tracked
    from mlci.errors import ExternalError

    commit = git.resolve_commit(project.root, "HEAD")
    assert commit is not None
    unpush(project, "data/features")
    shutil.rmtree(project.root / ".dvc" / "cache")

    with pytest.raises(ExternalError) as error:
        tracked.read_at(project.root, commit, "data/features/test.csv")

    assert "DVC could not read data/features/test.csv at " in error.value.message
    assert "failed to load directory" in error.value.message
    assert "run `dvc push` on that commit" in error.value.message


def test_the_files_sent_to_a_remote_machine_reproduce_the_pipeline_without_git(
    project: DvcProject, tmp_path: Path
) -> None:
    # train.on: ray | skypilot: the package has no .git, and `dvc repro` must still run
    plan = Plan(
        run_id="mlci-test",
        command="dvc repro",
        workdir=project.root,
        env={},
        resources=Resources(),
        outputs=("eval/metrics.json",),
        storage=str(tmp_path / "runs"),
        timeout_s=600.0,
        stall_s=None,
    )
    folder = tmp_path / "remote"
    folder.mkdir()
    package.stage(plan, folder)
    assert not (folder / ".git").exists()

    dvc = Path(sys.executable).parent / "dvc"
    done = subprocess.run(
        [str(dvc), "repro", "-q"], cwd=folder, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert json.loads((folder / "eval" / "metrics.json").read_text())["avg_prec"]["test"] > 0
