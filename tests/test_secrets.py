"""The job's secrets never leave: which values are masked, and where credentials may go."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from mlci.cli import main
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, ExternalError
from mlci.registry.base import Lineage
from mlci.registry.mlflow import MlflowRegistry
from mlci.secrets import secret_values
from tests.conftest import Project

SECRET = "sk-live-9Qe4Rt7Yu2Io"
URL_PASSWORD = "hunter2-in-a-url"


def test_which_values_are_masked(tmp_path: Path) -> None:
    key_file = tmp_path / "gcp.json"
    key_file.write_text(json.dumps({"private_key": "-----BEGIN-----\nMIIEvAIBADAN\n-----END-----"}))
    env = {
        "GITLAB_TOKEN": "glpat-abcdef",
        "AZURE_STORAGE_ACCOUNT_KEY": "azkey123456",
        "DB_CONNECTION_STRING": "Server=db;Pwd=xyz",
        "MY_API_KEY": "key-123456",
        "TOKENIZERS_PARALLELISM": "false",  # too short to mask ordinary words
        "GITHUB_SHA": "a" * 40,  # not secret-looking
        "SERVICE_PASSWORD_FILE": "/run/secrets/pw",  # a path, not the secret
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "MLCI_SECRETS": "HF_HUB_READ, OTHER",
        "HF_HUB_READ": "hf_readonly",
    }
    found = secret_values(env)
    for value in ("glpat-abcdef", "azkey123456", "Server=db;Pwd=xyz", "key-123456"):
        assert value in found
    assert "hf_readonly" in found and "MIIEvAIBADAN" in found  # a key file's lines
    assert "false" not in found and "a" * 40 not in found
    assert "/run/secrets/pw" not in found and str(key_file) not in found


def test_a_key_pasted_into_google_application_credentials_is_masked() -> None:
    # The variable should hold a key file's path; a job that puts the key's JSON there
    # instead must not print the private key in DVC's "File {...} was not found".
    key = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEv"}
    found = secret_values({"GOOGLE_APPLICATION_CREDENTIALS": json.dumps(key)})
    assert key["private_key"] in found


def _leaks(folder: Path) -> list[str]:
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file()
        and (SECRET.encode() in (data := path.read_bytes()) or URL_PASSWORD.encode() in data)
    ]


def test_a_metric_name_a_section_and_params_keep_secrets_out_of_reports_and_registry(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    metrics = {"accuracy": 0.9, "log_loss": 0.3, f"loss_{SECRET}": 0.1}
    project.set_params(metrics=metrics)
    project.write("notes.md", f"# Notes\n\nthe key was {SECRET}\n")
    project.write("params.yaml", f"source: https://bot:{URL_PASSWORD}@data.example/set\n")
    config = project.config.read_text() + "report:\n  sections: [notes.md]\n"
    project.write("mlci.yaml", config)
    project.commit("leaky names")

    assert main(["run", "--config", str(project.config)]) == EXIT_OK

    report = (project.out / "report.json").read_text()
    assert "loss_***" in report and "the key was ***" in report
    assert "https://***@data.example/set" in report
    assert _leaks(project.out) == []
    database = (project.root / ".mlci" / "mlflow.db").read_bytes()
    assert b"mlci.gate" in database  # the run registered a version: its tags are there
    assert SECRET.encode() not in database and URL_PASSWORD.encode() not in database


def test_the_registry_masks_the_tags_it_is_given(
    tmp_path: Path, empty_registry_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", SECRET)
    shutil.copy(empty_registry_db, tmp_path / "mlflow.db")
    registry = MlflowRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "a")
    (tmp_path / "model.bin").write_bytes(b"weights")
    lineage = Lineage(
        commit="a" * 40,
        branch=f"leak-{SECRET}",
        dirty=False,
        ci="local",
        event="local",
        metrics={"accuracy": 0.9},
        gate_verdict="pass",
        gate_summary=f"passed; {SECRET}",
        baseline=None,
        params={"token": SECRET},
    )

    version, _ = registry.register("clf", tmp_path / "model.bin", lineage)

    assert version.branch == "leak-***"
    assert SECRET.encode() not in (tmp_path / "mlflow.db").read_bytes()


# -- credentials over plain HTTP --------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking a host up fails the test: a refusal must come before any connection."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"connected to {args[0]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("no_network")
def test_a_forge_token_is_not_sent_over_plain_http() -> None:
    from mlci.http import HttpClient, PlainHttp

    client = HttpClient(base_url="http://forge.invalid/api", headers={"Authorization": "token x"})
    client.forge_name = "GitHub"
    with pytest.raises(PlainHttp) as refused:
        client.request("POST", "/repos/a/b/issues/1/comments", body={"body": "hi"})

    assert refused.value.exit_code == EXIT_EXTERNAL
    message = refused.value.message
    assert "plain HTTP" in message and "'http'" in message and "https://" in message
    assert "forge.invalid" in message and "token x" not in message


@pytest.mark.usefixtures("no_network")
def test_s3_keys_are_not_sent_over_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlci.assets import open_store
    from mlci.config import PublishConfig, S3Config
    from mlci.forges.local import LocalForge
    from mlci.http import PlainHttp

    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "SECRETEXAMPLE"}
    settings = PublishConfig(
        images="s3", s3=S3Config(bucket="reports", endpoint_url="http://s3.invalid:9000")
    )
    store = open_store(settings, env, LocalForge(Path()), folder="m")
    with pytest.raises(PlainHttp) as refused:
        store.url_for("plot.png", b"\x89PNG")

    assert "publish.s3.endpoint_url" in refused.value.message
    assert "SECRETEXAMPLE" not in refused.value.message


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("uri", "env"),
    [
        (
            "http://mlflow.invalid",
            {"MLFLOW_TRACKING_USERNAME": "ci", "MLFLOW_TRACKING_PASSWORD": "pw"},
        ),
        ("http://mlflow.invalid:5000", {"MLFLOW_TRACKING_TOKEN": "tok-123456"}),
        ("http://ci:pw@mlflow.invalid", {}),
        ("http://mlflow.invalid", {"MLFLOW_TRACKING_TOKEN": "t", "MLCI_REGISTRY_CLIENT": "mlflow"}),
    ],
)
def test_mlflow_credentials_are_not_sent_over_plain_http(
    uri: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ExternalError) as refused:
        MlflowRegistry(uri).by_alias("clf", "champion")

    assert refused.value.exit_code == EXIT_EXTERNAL
    message = refused.value.message
    assert "plain HTTP" in message and "mlflow.invalid" in message
    assert "registry.tracking_uri" in message and "pw" not in message.replace("https", "")


def test_loopback_stays_allowed() -> None:
    from mlci.core.redact import plain_http_refusal

    for url in (
        "http://127.0.0.1:5000",
        "http://localhost/x",
        "http://[::1]:80",
        "http://127.9.9.9",
    ):
        assert plain_http_refusal(url, "the token", "X") is None
    for url in ("http://10.0.0.1", "http://localhost.example", "http://mlflow.invalid"):
        assert plain_http_refusal(url, "the token", "X") is not None
    assert plain_http_refusal("https://mlflow.invalid", "the token", "X") is None
