"""A registry that accepts the connection and never answers (issue #23): the registry work
of a run has a total deadline (registry.timeout_minutes), through the REST client and
through MLflow's own client; the run ends with exit 3 and its report."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from mlci.registry import mlflow_rest
from mlci.registry.budget import Budget, DeadlineExceeded
from tests.conftest import Project
from tests.servers import silent_server
from tests.test_cli import mlci

# Without the deadline, MLflow's defaults as mlci sets them (3 retries, backoff factor 1,
# 120 s per request) hold a run for about 490 s on such a server: each test's bound is far
# below that, and far above the deadline it configures.
_BOUND_S = 60.0


def test_the_rest_client_gives_up_when_the_budget_is_spent() -> None:
    with silent_server() as server:
        client = mlflow_rest.RestClient(server.url, {}, budget=Budget(2.0))
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as failed:
            client.get_registered_model("clf")
        elapsed = time.monotonic() - started
        again = time.monotonic()
        with pytest.raises(DeadlineExceeded):  # spent: the next call does not wait again
            client.get_registered_model("clf")
        assert server.wait_all_closed()

    assert 1.5 < elapsed < _BOUND_S
    assert time.monotonic() - again < 1.0
    assert f"no answer from 127.0.0.1:{server.port}" in str(failed.value)
    assert "registry.timeout_minutes: 0.0333333" in str(failed.value)


def test_the_budget_counts_only_the_time_spent_on_the_registry() -> None:
    now = [0.0]
    budget = Budget(10.0, clock=lambda: now[0])
    with budget.counting():
        now[0] += 4.0
        with budget.counting():  # a lookup inside a request: charged once
            now[0] += 2.0
    now[0] += 3600.0  # the training, between two reads of the registry
    assert budget.left() == 4.0
    with budget.counting():
        now[0] += 5.0
    assert budget.spent()


def _against_a_silent_server(
    project: Project, monkeypatch: pytest.MonkeyPatch, *command: str
) -> tuple[subprocess.CompletedProcess[str], float, str]:
    """`mlci COMMAND` with a 3-second registry deadline and a server that never answers:
    what it did, how long it took, the server's URL."""
    config = project.config.read_text().replace(
        "  promote_on: [main]\n", "  promote_on: [main]\n  timeout_minutes: 0.05\n"
    )
    project.write("mlci.yaml", config)
    project.commit("a 3-second registry deadline")
    with silent_server() as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        started = time.monotonic()
        result = mlci(*command, cwd=project.root)
        return result, time.monotonic() - started, server.url


def test_a_run_against_a_silent_registry_ends_within_its_deadline_with_the_report(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, elapsed, url = _against_a_silent_server(project, monkeypatch, "run")

    assert result.returncode == 3, result.stderr
    assert elapsed < _BOUND_S
    assert f"the MLflow server {url} did not answer in time" in result.stderr
    assert "registry.timeout_minutes: 0.05" in result.stderr
    gate = json.loads((project.out / "gate.json").read_text())
    assert gate["verdict"] == "error"
    assert "did not answer in time" in (project.out / "report.md").read_text()


def test_mlflows_own_client_keeps_the_deadline_too(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCI_REGISTRY_CLIENT", "mlflow")
    result, elapsed, url = _against_a_silent_server(project, monkeypatch, "registry", "show")

    assert result.returncode == 3, result.stderr
    assert elapsed < _BOUND_S
    assert f"the MLflow server {url} did not answer in time" in result.stderr
    assert "registry.timeout_minutes: 0.05" in result.stderr
