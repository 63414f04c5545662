"""DVC pipelines end to end on a project built like DVC's example-get-started (issue #16)."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlci import git, pipeline
from mlci.config import load_config
from mlci.console import Console
from mlci.data import hashes
from mlci.errors import EXIT_OK
from mlci.pipeline import data
from mlci.pipeline.facts import DataVersions
from mlci.registry.mlflow import MlflowRegistry
from tests.dvc_pipeline import build_pipeline_template, copy_pipeline, set_param
from tests.dvc_project import DvcProject


@pytest.fixture(scope="session")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pipeline_template(tmp_path_factory.mktemp("dvc-pipeline-template"))


@pytest.fixture
def project(pipeline_template: Path, tmp_path: Path) -> Iterator[DvcProject]:
    yield copy_pipeline(pipeline_template, tmp_path / "copy")


def run(
    project: DvcProject, promote: pipeline.PromoteMode = "never"
) -> tuple[pipeline.Outcome, str]:
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(promote=promote),
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
