"""DVC's Azure Blob remote against Azurite, Microsoft's emulator, with its dev account.

Azurite checks shared-key signatures and SAS permissions, so a wrong key, an expired SAS
and a SAS without the permission to read or list each get Azure's real answer. It is
reached through a connection string (its BlobEndpoint): AZURE_STORAGE_ACCOUNT with a key,
and service principals (Azure AD), can only reach the real *.blob.core.windows.net.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import data, pipeline
from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, EXIT_USAGE
from mlci.pipeline import preflight as doctor
from mlci.pipeline.preflight import context_for
from tests.dvc_project import DvcProject, build_template
from tests.emulators import (
    AZURITE_KEY,
    Azurite,
    azurite,
    in_github_job,
    missing_plugin_error,
    mlci_pull,
    project_on,
)

pytestmark = pytest.mark.slow
CONTAINER = "mlci-data"
VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"


@pytest.fixture(scope="session")
def blob() -> Iterator[Azurite]:
    pytest.importorskip("dvc_azure")
    with azurite() as emulator:
        emulator.create_container(CONTAINER)
        yield emulator


@pytest.fixture(scope="session")
def azure_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-azure-template"))


@pytest.fixture
def project(
    azure_template: Path, blob: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DvcProject:
    """The project with an Azure remote (a fresh prefix per test), its data pushed there."""
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-config"))  # no az login
    monkeypatch.setenv(VARIABLE, blob.connection_string())
    prefix = tmp_path.name.replace("_", "-")
    return project_on(azure_template, tmp_path / "copy", f"azure://{CONTAINER}/{prefix}")


@pytest.mark.parametrize("credential", ["account key", "SAS read and list"])
def test_a_connection_string_pulls(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    blob: Azurite,
    credential: str,
) -> None:
    if credential != "account key":
        monkeypatch.setenv(VARIABLE, blob.sas_connection_string(CONTAINER, "rl"))
    code, err = mlci_pull(project, capsys)
    assert code == EXIT_OK, err
    assert (project.root / "data" / "data.csv").read_text().count("\n") == 100


def test_no_credentials_names_the_ways_and_the_secret(
    project: DvcProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VARIABLE)
    in_github_job(monkeypatch, "pull_request")

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "DVC found no credentials for 'storage' (azure://mlci-data/" in err
    assert "set AZURE_STORAGE_CONNECTION_STRING (the account key's connection string" in err
    assert "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN" in err
    assert "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID" in err
    assert "repository secrets AZURE_STORAGE_READONLY_CONNECTION_STRING, read-only" in err


@pytest.mark.parametrize("case", ["wrong key", "expired SAS"])
def test_refused_credentials_say_key_or_sas(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    blob: Azurite,
    case: str,
) -> None:
    wrong = "A" * 20 + AZURITE_KEY[20:]
    value = (
        blob.connection_string(wrong)
        if case == "wrong key"
        else blob.sas_connection_string(CONTAINER, "rl", hours=-1)
    )
    monkeypatch.setenv(VARIABLE, value)
    in_github_job(monkeypatch, "push")

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "'storage' (azure://mlci-data/" in err and "refused the credentials (403)" in err
    assert "the account key in the connection string is wrong or was rotated" in err
    assert "or the SAS expired" in err
    assert "AZURE_STORAGE_CONNECTION_STRING of the environment mlci-promote" in err
    assert wrong not in err and "sig=" not in err


@pytest.mark.parametrize("permission", ["r", "w"])
def test_a_sas_without_read_and_list_is_named(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    blob: Azurite,
    permission: str,
) -> None:
    monkeypatch.setenv(VARIABLE, blob.sas_connection_string(CONTAINER, permission))

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "the credentials of 'storage'" in err
    assert "are valid but may not read the container mlci-data/" in err
    assert "read and list (sp=rl)" in err and "Storage Blob Data Reader" in err


def test_the_key_alone_is_not_a_connection_string(
    project: DvcProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, AZURITE_KEY)

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_USAGE
    assert "AZURE_STORAGE_CONNECTION_STRING of 'storage'" in err
    assert "is not a connection string" in err and "not the key alone" in err
    assert AZURITE_KEY not in err


def test_a_missing_container_is_named(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # Azure lists a missing container as empty: DVC finds no data there.
    project.dvc("remote", "modify", "storage", "url", "azure://no-such-container/store")

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "'storage' (azure://no-such-container/store) lacks the data of data/data.csv" in err
    assert "is no-such-container/store the right container and path?" in err


def test_check_remote_asks_the_container(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch, blob: Azurite
) -> None:
    ok, message = data.check_remote(project.root)
    assert ok, message
    assert "answers (azure)" in message

    monkeypatch.setenv(VARIABLE, blob.sas_connection_string(CONTAINER, "w"))
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "may not read the container" in message, message


def test_without_dvc_azure_the_extra_is_named(project: DvcProject) -> None:
    error = missing_plugin_error(project, "dvc_azure")

    assert error.exit_code == EXIT_USAGE
    assert "the DVC remote 'storage' (azure://mlci-data/" in error.message
    assert "needs dvc-azure, which is not installed: pip install 'dvc[azure]'" in error.message


def test_doctor_asks_the_container_with_the_connection_string_of_config_local(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch, blob: Azurite
) -> None:
    monkeypatch.delenv(VARIABLE)
    value = blob.connection_string()
    project.dvc("remote", "modify", "--local", "storage", "connection_string", value)

    result = doctor.check_dvc(context_for(project.config, dict(os.environ)))
    assert result.status == "ok", result.line()
    assert "answers (azure)" in result.line()

    sas = blob.sas_connection_string(CONTAINER, "w")
    project.dvc("remote", "modify", "--local", "storage", "connection_string", sas)
    result = doctor.check_dvc(context_for(project.config, dict(os.environ)))
    assert result.status == "fail"
    assert "may not read the container" in result.line()


def test_a_run_pulls_from_azure_and_records_the_hashes(project: DvcProject) -> None:
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(promote="never"),
    )

    assert outcome.exit_code == EXIT_OK, log.getvalue()
    assert "added from 'storage' (azure://mlci-data/" in log.getvalue()
    datasets = project.gate_json()["data"]["datasets"]  # type: ignore[index]
    assert datasets[0]["path"] == "data/data.csv"
    assert datasets[0]["hash"] == project.data_hash()
