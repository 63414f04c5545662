"""A training off the runner: a fork's pull request never launches one, and where one
ran is recorded on the registry's version."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from mlci import pipeline
from mlci.ci import CiContext
from mlci.config import parse_config
from mlci.console import Console
from mlci.core.device import Where
from mlci.errors import EXIT_OK
from mlci.pipeline.offrunner import launch_refused
from mlci.registry.base import Lineage
from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import CONFIG, Project

RAY_CONFIG = CONFIG.replace(
    "  timeout_minutes: 1\n",
    "  timeout_minutes: 1\n"
    "  on: ray\n"
    "  storage: s3://bucket/mlci-runs\n"
    "  ray: {address: 'http://127.0.0.1:9'}\n",
)
REFUSED = "a pull request from a fork gets no secrets, so no cloud machine is launched"


def pull_request(*, fork: bool) -> CiContext:
    return CiContext(
        ci="github", event="pull_request", branch="pr", sha="a" * 40, pr_number=7, fork=fork
    )


def test_only_a_forks_pull_request_is_refused_a_launch(tmp_path: Path) -> None:
    ray = parse_config(RAY_CONFIG, root=tmp_path)
    local = parse_config(CONFIG, root=tmp_path)

    refused = launch_refused(ray, pull_request(fork=True))

    assert refused is not None and REFUSED in refused and "pull request #7" in refused
    assert launch_refused(ray, pull_request(fork=False)) is None
    assert launch_refused(local, pull_request(fork=True)) is None  # trains on the runner
    assert launch_refused(ray, None) is None


def fork_pull_request(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """main trains on Ray; pr/fork is a pull request from someone's fork."""
    project.write("mlci.yaml", RAY_CONFIG)
    project.commit("train on ray")
    project.branch("pr/fork")
    event = project.root.parent / "event.json"
    head = {"sha": "a" * 40, "repo": {"full_name": "someone/models"}}
    base = {"repo": {"full_name": "team/models"}}
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": head, "base": base}}))
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_HEAD_REF": "pr/fork",
        "GITHUB_BASE_REF": "main",
        "GITHUB_REF": "refs/pull/7/merge",
        "GITHUB_REPOSITORY": "team/models",
    }.items():
        monkeypatch.setenv(key, value)


def run(project: Project) -> tuple[pipeline.Outcome, str]:
    log = io.StringIO()
    outcome = pipeline.run(config_path=project.config, env=dict(os.environ), console=Console(log))
    return outcome, log.getvalue()


def test_a_forks_pull_request_is_judged_on_the_outputs_it_has_without_training(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork_pull_request(project, monkeypatch)
    project.write("metrics.json", json.dumps({"accuracy": 0.91, "log_loss": 0.3}))

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK
    assert "training with" not in log  # the training command never ran
    assert REFUSED in log
    assert REFUSED in (project.out / "report.md").read_text()
    assert "- Training: python train.py (not run)" in (project.out / "report.md").read_text()
    gate = json.loads((project.out / "gate.json").read_text())
    assert gate["metrics"]["accuracy"] == 0.91
    assert REFUSED in gate["training"]["skipped"]


def test_a_forks_pull_request_without_outputs_fails_as_for_missing_files(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork_pull_request(project, monkeypatch)

    outcome, log = run(project)

    assert outcome.exit_code != EXIT_OK
    assert outcome.report.error_stage == "evaluate"
    assert "training with" not in log and REFUSED in log
    assert "metrics.json" in (outcome.report.error or "")
    assert REFUSED in (project.out / "report.md").read_text()  # why it is missing
    assert REFUSED in (project.out / "report.html").read_text()


def test_the_registry_version_records_where_the_training_ran(
    tmp_path: Path, empty_registry_db: Path
) -> None:
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    shutil.copy(empty_registry_db, db)
    registry = MlflowRegistry(f"sqlite:///{db}", artifact_root=tmp_path / "artifacts")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w")
    where = Where(engine="skypilot", cloud="gcp", accelerator="L4:1", spot=True, minutes=3.0)
    lineage = Lineage(
        commit="b" * 40,
        branch="main",
        dirty=False,
        ci="github",
        event="push",
        metrics={"accuracy": 0.9},
        gate_verdict="pass",
        gate_summary="passed",
        baseline=None,
        where=where,
    )

    version, _ = registry.register("clf", model, lineage)

    tags = MlflowClient(tracking_uri=f"sqlite:///{db}").get_model_version("clf", version.version)
    assert tags.tags["mlci.where"] == "SkyPilot on gcp, L4:1, spot, 3.0 min"
    assert json.loads(tags.tags["mlci.where_json"])["accelerator"] == "L4:1"
