"""`mlci doctor` offers the repair of what `mlci registry show` marks, and `mlci registry
repair` makes it, against a real `mlflow server` (issue #23)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.test_cli import mlci


def _left_by_a_job(url: str, model: str, *, hours_ago: float, status: str | None) -> str:
    """What a job killed during its promotion leaves: a run started `hours_ago` (still
    RUNNING, or `status`) and, unless `status` is "no version", the version made from it."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.get_experiment_by_name("mlci")
    assert experiment is not None
    started = int((time.time() - hours_ago * 3600) * 1000)
    run = client.create_run(
        experiment.experiment_id, start_time=started, run_name=f"{model}@{uuid.uuid4().hex[:8]}"
    )
    if status != "no version":
        client.create_model_version(
            model,
            f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"mlci.commit": "d" * 40},
        )
    if status == "FAILED":
        client.set_terminated(run.info.run_id, status="FAILED")
    return str(run.info.run_id)


def _doctor_check(project: Project) -> dict[str, Any]:
    checks = json.loads(mlci("doctor", "--json", cwd=project.root).stdout)["checks"]
    found: dict[str, Any] = next(c for c in checks if c["name"] == "registry consistency")
    return found


@pytest.mark.slow
def test_doctor_offers_the_repair_and_repair_leaves_a_clean_registry(
    project: Project,
    shared_mlflow_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow import MlflowClient

    url, _ = shared_mlflow_server
    model = f"repaired-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    project.write("mlci.yaml", project.config.read_text().replace("tiny-model", model))
    project.commit("a model of its own on the shared server")
    assert mlci("run", cwd=project.root).returncode == 0  # v1, the champion
    project.set_params(metrics={"accuracy": 0.95, "log_loss": 0.25, "f1": 0.9})
    project.commit("better")
    assert mlci("run", cwd=project.root).returncode == 0  # v2, the champion
    dead = _left_by_a_job(url, model, hours_ago=7, status=None)  # v3: a job killed 7 h ago
    failed = _left_by_a_job(url, model, hours_ago=0.1, status="FAILED")  # v4
    orphan = _left_by_a_job(url, model, hours_ago=8, status="no version")
    young = _left_by_a_job(url, model, hours_ago=0.5, status=None)  # v5: may be at work

    check = _doctor_check(project)
    shown = mlci("registry", "show", cwd=project.root).stdout
    dry = mlci("registry", "repair", cwd=project.root)
    after_dry = json.loads(mlci("registry", "show", "--json", cwd=project.root).stdout)
    repaired = mlci("registry", "repair", "--yes", "--json", cwd=project.root)
    after = json.loads(mlci("registry", "show", "--json", cwd=project.root).stdout)
    shown_after = mlci("registry", "show", cwd=project.root).stdout
    check_after = _doctor_check(project)
    rollback = mlci("rollback", cwd=project.root)

    assert check["status"] == "warn"
    assert "3 left by failed or dead jobs" in check["detail"]
    for subject in ("v3: its run was left RUNNING by a dead job", "v4: left by a failed attempt"):
        assert subject in check["detail"] and f"! {subject}" in shown
    assert f"run {orphan[:8]}" in check["detail"] and f"! run {orphan[:8]}" in shown
    assert "v5" not in check["detail"] and "! v5" not in shown
    assert check["fix"].startswith("`mlci registry repair --yes`")
    assert "mlci registry repair" in shown

    assert dry.returncode == 0
    assert "would: delete v3 (tag it mlci.failed where deleting is refused)" in dry.stdout
    assert "Nothing changed" in dry.stdout
    assert [v["version"] for v in after_dry["versions"]] == ["5", "4", "3", "2", "1"]

    assert repaired.returncode == 0, repaired.stderr
    done = {item["subject"]: item["done"] for item in json.loads(repaired.stdout)["items"]}
    assert done == {
        "v3": "deleted; its run marked FAILED",
        "v4": "deleted; its run marked FAILED",
        f"run {orphan[:8]} ({_run_name(url, orphan)})": "run marked FAILED",
    }
    assert [v["version"] for v in after["versions"]] == ["5", "2", "1"]
    assert all(v["problem"] is None for v in after["versions"])
    assert "!" not in shown_after
    assert check_after["status"] == "ok"
    client = MlflowClient(tracking_uri=url)
    assert {client.get_run(r).info.status for r in (dead, failed, orphan)} == {"FAILED"}
    assert client.get_run(young).info.status == "RUNNING"  # left alone

    assert rollback.returncode == 0, rollback.stderr
    assert f"{model}@champion moved back from v2 to v1" in rollback.stdout


def _run_name(url: str, run_id: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri=url).get_run(run_id).data.tags["mlflow.runName"])
