"""A bug is a bug: what fails in MLflow's client exits 3 (an external system), while a
defect in mlci's own reading of the client's answers exits 4 ("this is a bug in mlci"),
not disguised as the registry's failure."""

from __future__ import annotations

import types
from typing import Any

import pytest

from mlci.cli import main
from mlci.errors import EXIT_EXTERNAL, EXIT_INTERNAL, EXIT_OK
from mlci.registry import mlflow_rest
from tests.conftest import Project

URL = "http://mlflow.invalid"


class StubClient:
    """A working stand-in for the REST client (`mlflow_rest.RestClient`): a registry in
    memory holding tiny-model v1 as @champion, read through the same methods. A subclass
    sets `lacking`, a field its version answers leave out (as an MLflow that changed its
    API would), or `reachable = False`, a server that is down."""

    lacking: str | None = None
    reachable = True

    def __init__(self, tracking_uri: str, *, budget: object = None) -> None:
        assert tracking_uri == URL
        self.aliases = {"tiny-model": {"champion": "1"}}
        self.versions = {
            ("tiny-model", "1"): {
                "name": "tiny-model",
                "version": "1",
                "run_id": "run-1",
                "status": "READY",
                "source": "mlflow-artifacts:/1/run-1/artifacts/model",
                "creation_timestamp": 1_700_000_000_000,
                "tags": {"mlci.commit": "c" * 40, "mlci.gate": "pass"},
            }
        }
        self.runs = {"run-1": {"accuracy": 0.85, "log_loss": 0.3, "f1": 0.8}}

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        self._connect()
        if alias not in self.aliases.get(name, {}):
            raise mlflow_rest.RestError(
                f"alias {alias} not found (404)", status=404, error_code="RESOURCE_DOES_NOT_EXIST"
            )
        answer = dict(self.versions[(name, self.aliases[name][alias])])
        answer.pop(self.lacking or "", None)
        return types.SimpleNamespace(**answer)

    def get_registered_model(self, name: str) -> Any:
        self._connect()
        return types.SimpleNamespace(name=name, aliases=self.aliases.get(name, {}), tags={})

    def get_run(self, run_id: str) -> Any:
        self._connect()
        data = types.SimpleNamespace(metrics=self.runs[run_id], params={})
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id), data=data)

    def close(self) -> None:
        pass

    def _connect(self) -> None:
        if not self.reachable:
            raise mlflow_rest.RestError("cannot connect to mlflow.invalid:80: Connection refused")


def use_stub(monkeypatch: pytest.MonkeyPatch, **behaviour: object) -> None:
    """Point the project at an MLflow server answered by a StubClient with `behaviour`."""
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)  # the REST client is used without a proxy
    monkeypatch.setenv("MLFLOW_TRACKING_URI", URL)
    monkeypatch.setattr(mlflow_rest, "RestClient", type("Stub", (StubClient,), behaviour))


def test_the_champion_is_read_through_the_stand_in(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_stub(monkeypatch)

    assert main(["run", "--config", str(project.config), "--no-promote"]) == EXIT_OK

    assert "baseline: tiny-model v1 (@champion) (registry)" in capsys.readouterr().err
    results = project.gate_json()["results"]
    assert isinstance(results, list)
    assert results[0]["metric"] == "accuracy" and results[0]["baseline"] == 0.85


def test_a_field_mlci_cannot_read_in_the_answer_is_a_bug_not_the_registrys_failure(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_stub(monkeypatch, lacking="creation_timestamp")

    # --no-promote: the run can do without the registry, so it is first read by the baseline.
    assert main(["run", "--config", str(project.config), "--no-promote"]) == EXIT_INTERNAL

    err = capsys.readouterr().err
    assert "mlci: internal error: AttributeError:" in err and "creation_timestamp" in err
    assert "This is a bug in mlci" in err
    assert "MLflow failed" not in err
    # The report still lands, and says where the run stopped.
    error = project.gate_json()["error"]
    assert isinstance(error, dict) and error["stage"] == "baseline"
    assert error["exit_code"] == EXIT_INTERNAL
    assert "internal error during baseline: AttributeError" in str(error["message"])


def test_a_registry_that_is_down_is_still_an_external_failure(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_stub(monkeypatch, reachable=False)

    assert main(["run", "--config", str(project.config)]) == EXIT_EXTERNAL

    # A build that would promote cannot do without the registry: stopped before training.
    err = capsys.readouterr().err
    assert f"registry: {URL} does not answer" in err
    assert "bug" not in err and "mlci train:" not in err
    assert project.gate_json()["error"] == {
        "stage": "preflight",
        "message": err.split("mlci: error: ")[-1].strip(),
        "exit_code": EXIT_EXTERNAL,
    }
