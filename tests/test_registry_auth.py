"""Promotion against a real `mlflow server --app-name basic-auth` on 127.0.0.1.

One server for the module: `admin` creates the registered model and the `mlci`
experiment; `bot` has the default READ permission, plus EDIT on the experiment, so it can
log its run but not create a model version until it is granted EDIT on the model.
"""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.request
from collections.abc import Iterator

import pytest

from mlci import pipeline
from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_GATE_FAILED, EXIT_OK
from mlci.pipeline import preflight as doctor
from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import Project
from tests.test_registry_server import mlflow_server

ADMIN_PASSWORD = "admin-password-for-tests"
BOT_PASSWORD = "bot-password-for-tests"
MODEL = "tiny-model"  # the model of conftest's project
# The tests share the module's server and the permissions granted on it, in this order:
# under pytest-xdist they run on one worker (`--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("mlflow-auth-server")


def _as_user(monkeypatch: pytest.MonkeyPatch, user: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-auth-server")
    ini = folder / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-tests",  # required by the auth app
    }
    with mlflow_server(folder, "--app-name", "basic-auth", env=env) as url:
        _admin(url, "2.0/mlflow/users/create", username="bot", password=BOT_PASSWORD)
        _admin(url, "2.0/mlflow/registered-models/create", name=MODEL)
        created = _admin(url, "2.0/mlflow/experiments/create", name="mlci")
        _grant(url, "experiment", str(created["experiment_id"]))
        yield url


def _admin(url: str, endpoint: str, **body: str) -> dict[str, object]:
    """A request as admin, with urllib: mlflow.server.auth.client imports the whole server."""
    request = urllib.request.Request(
        f"{url}/api/{endpoint}",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        answered: dict[str, object] = json.loads(answer.read() or b"{}")
        return answered


def _grant(url: str, resource_type: str, resource_id: str) -> None:
    _admin(
        url,
        "3.0/mlflow/users/permissions/grant",
        username="bot",
        resource_type=resource_type,
        resource_id=resource_id,
        permission="EDIT",
    )


def _run(project: Project, url: str, monkeypatch: pytest.MonkeyPatch) -> pipeline.Outcome:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    return pipeline.run(
        config_path=project.config, env=dict(os.environ), console=Console(io.StringIO())
    )


@pytest.mark.slow
def test_a_wrong_password_names_the_variables_and_still_writes_the_report(
    auth_server: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_user(monkeypatch, "bot", "wrong-password")

    outcome = _run(project, auth_server, monkeypatch)

    assert outcome.exit_code == EXIT_EXTERNAL
    message = outcome.report.error or ""
    assert "refused the credentials" in message and "(401)" in message
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in message
    assert "wrong-password" not in message
    assert "(401)" in (project.out / "report.md").read_text()
    assert project.gate_json()["error"] == {
        "stage": "preflight",  # a promoting build: the registry is checked before training
        "message": message,
        "exit_code": EXIT_EXTERNAL,
    }


@pytest.mark.slow
def test_a_user_without_edit_on_the_model_is_told_and_leaves_no_version(
    auth_server: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_user(monkeypatch, "bot", BOT_PASSWORD)

    refused = _run(project, auth_server, monkeypatch)

    assert refused.exit_code == EXIT_EXTERNAL
    message = refused.report.error or ""
    assert f"denied registering {MODEL} (403)" in message
    assert "needs EDIT permission on the registered model" in message
    assert "(403)" in (project.out / "report.md").read_text()
    registry = MlflowRegistry(auth_server)
    assert registry.versions(MODEL) == []  # the refused attempt left no version behind
    client = registry._client()
    runs = client.search_runs([client.get_experiment_by_name("mlci").experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]

    _grant(auth_server, "registered_model", MODEL)
    promoted = _run(project, auth_server, monkeypatch)

    assert promoted.exit_code == EXIT_OK
    assert promoted.report.promotion is not None
    assert promoted.report.promotion.version == "1"
    champion = registry.by_alias(MODEL, "champion")
    assert champion is not None and champion.commit == promoted.report.commit


@pytest.mark.slow
def test_doctor_reads_the_model_with_the_jobs_credentials(
    auth_server: str, project: Project
) -> None:
    def check(user: str, password: str) -> doctor.CheckResult:
        env = {
            "MLFLOW_TRACKING_URI": auth_server,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password,
        }
        return doctor.check_registry(doctor.context_for(project.config, env))

    wrong = check("bot", "wrong-password")
    right = check("bot", BOT_PASSWORD)

    assert (wrong.status, wrong.detail) == (
        "fail",
        f"MLflow server {auth_server} refused the credentials (401)",
    )
    assert wrong.fix is not None and "MLFLOW_TRACKING_PASSWORD" in wrong.fix
    assert "wrong-password" not in wrong.line()
    assert right.status == "ok", right.line()
    assert right.detail.startswith(f"MLflow server {auth_server} answers; the credentials read")


@pytest.mark.slow
def test_doctor_names_the_secret_a_pull_requests_job_lacks(
    auth_server: str, project: Project
) -> None:
    def check(event: str, user: str, password: str) -> doctor.CheckResult:
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event,
            "MLFLOW_TRACKING_URI": auth_server,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password,
        }
        return doctor.check_registry(doctor.context_for(project.config, env))

    missing = check("pull_request", "reader", "")  # GitHub's value of a missing secret
    assert missing.status == "fail" and missing.fix is not None, missing.line()
    assert "repository secrets MLFLOW_READER_USERNAME and MLFLOW_READER_PASSWORD" in missing.fix
    on_main = check("push", "bot", "")
    assert on_main.fix is not None
    assert (
        "secrets MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD of the environment "
        "mlci-promote" in on_main.fix
    )


@pytest.mark.slow
def test_a_build_without_the_secrets_that_does_not_promote_compares_with_git(
    auth_server: str, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Like a pull request from a fork: no MLFLOW_TRACKING_* secrets, so reads get 401.
    project.write(".gitignore", ".mlci/\nmodel/\n")
    project.write("metrics.json", json.dumps({"accuracy": 0.95, "log_loss": 0.30}))
    project.commit("metrics on main")
    project.branch("feature")
    project.set_params(metrics={"accuracy": 0.93, "log_loss": 0.30})
    project.commit("a worse model than main's")

    outcome = _run(project, auth_server, monkeypatch)

    assert outcome.exit_code == EXIT_GATE_FAILED  # against main's metrics, from git
    notes = " ".join(outcome.report.gate.notes if outcome.report.gate else ())
    assert "The registry could not be read: the MLflow server" in notes
    assert "refused the credentials while reading tiny-model@champion (401)" in notes
    assert "compared with the base branch in git instead." in notes
    assert "accuracy dropped 0.02 from 0.95 to 0.93" in (project.out / "report.md").read_text()
