"""DVC's Google Cloud Storage remote against a local GCS emulator (gcp-storage-emulator).

The emulator checks no credentials; Google's token endpoint stands beside it
(tests/emulators.py) and refuses a key it does not know, as Google does a deleted one.
gcsfs takes a key it cannot read for no key and goes on anonymously, which the emulator
allows: those cases are caught by mlci before DVC runs. A key without permission on the
bucket (Google's 403) is beyond the emulator: docs/data.md says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import data
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, EXIT_USAGE
from mlci.pipeline import preflight as doctor
from mlci.pipeline.preflight import context_for
from tests.dvc_project import DvcProject, build_template
from tests.emulators import (
    GcsEmulator,
    gcs_emulator,
    in_github_job,
    missing_plugin_error,
    mlci_pull,
    project_on,
)

pytestmark = pytest.mark.slow
BUCKET = "mlci-data"


@pytest.fixture(scope="session")
def gcs() -> Iterator[GcsEmulator]:
    pytest.importorskip("dvc_gs")
    with gcs_emulator() as emulator:
        emulator.create_bucket(BUCKET)
        yield emulator


@pytest.fixture(scope="session")
def gcs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-gcs-template"))


def write_key(folder: Path, key: dict[str, str]) -> Path:
    path = folder / "gcp-key.json"
    path.write_text(json.dumps(key))
    return path


@pytest.fixture
def project(
    gcs_template: Path,
    gcs: GcsEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DvcProject:
    """The project with a GCS remote (a fresh prefix per test), its data pushed there with
    a service-account key that Google's endpoint knows."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # no probe of the metadata server
    # gcsfs asks GCS's gRPC control API for the bucket's type, which the emulator lacks:
    # with a token it would retry for minutes against the emulator's plain HTTP port.
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(write_key(tmp_path, gcs.tokens.new_key()))
    )
    prefix = tmp_path.name.replace("_", "-")
    return project_on(gcs_template, tmp_path / "copy", f"gs://{BUCKET}/{prefix}")


def test_a_service_account_key_pulls(
    project: DvcProject, capsys: pytest.CaptureFixture[str], gcs: GcsEmulator
) -> None:
    asked = gcs.tokens.requests
    code, err = mlci_pull(project, capsys)
    assert code == EXIT_OK, err
    assert (project.root / "data" / "data.csv").read_text().count("\n") == 100
    assert gcs.tokens.requests > asked  # the key was used, not anonymous access


def test_the_key_json_in_the_variable_is_named_before_dvc_runs(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    gcs: GcsEmulator,
) -> None:
    key = gcs.tokens.new_key()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", json.dumps(key))
    in_github_job(monkeypatch, "pull_request")

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_USAGE
    assert "GOOGLE_APPLICATION_CREDENTIALS (for the DVC remote 'storage' (gs://" in err
    assert "holds a key's JSON, not the path of a key file" in err
    assert '> "$RUNNER_TEMP/gcp-key.json"' in err
    assert "dvc remote modify --local storage credentialpath FILE" in err
    assert "repository secrets GCP_READONLY_SERVICE_ACCOUNT_KEY, read-only" in err
    assert key["private_key_id"] not in err and "PRIVATE KEY" not in err
    assert not (project.root / "data" / "data.csv").exists()


def test_credentialpath_holding_the_json_names_the_option(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    gcs: GcsEmulator,
) -> None:
    in_github_job(monkeypatch, "push")
    key = json.dumps(gcs.tokens.new_key())
    project.dvc("remote", "modify", "--local", "storage", "credentialpath", key)

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_USAGE
    assert "credentialpath of the DVC remote 'storage'" in err
    assert "holds a key's JSON" in err
    assert "secrets GCP_SERVICE_ACCOUNT_KEY of the environment mlci-promote" in err
    assert "PRIVATE KEY" not in err


@pytest.mark.parametrize("case", ["no such file", "empty file"])
def test_a_key_file_that_is_not_there_is_named(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    case: str,
) -> None:
    path = tmp_path / "runner-temp" / "gcp-key.json"
    if case == "empty file":  # the secret was not set: the job wrote nothing
        path.parent.mkdir()
        path.write_text("")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_USAGE
    if case == "empty file":
        assert "which is not a Google credentials file" in err
        assert "it is empty: is the secret set, and does this job get it?" in err
    else:
        assert f"names {path}, which is not a file on this runner" in err


def test_a_key_google_does_not_know_is_refused(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    gcs: GcsEmulator,
    tmp_path: Path,
) -> None:
    # gcsfs retries a refused key for about 30 s before DVC gives up: one test only.
    key = gcs.tokens.new_key(known=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_key(tmp_path, key)))
    in_github_job(monkeypatch, "pull_request")

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "Google refused the service-account key of 'storage' (gs://" in err
    assert "create a new key (IAM > Service accounts > Keys)" in err
    assert "repository secrets GCP_READONLY_SERVICE_ACCOUNT_KEY" in err
    assert "invalid_grant: Invalid JWT Signature." in err
    assert key["private_key"] not in err


def test_a_missing_bucket_is_named(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> None:
    # With more than one object DVC lists the bucket, and GCS answers 404 for it.
    (project.root / "data" / "extra.csv").write_text("1\n2\n")
    project.dvc("add", "-q", "data/extra.csv")
    project.dvc("remote", "modify", "storage", "url", "gs://no-such-bucket/store")
    project.forget_local_data()
    (project.root / "data" / "extra.csv").unlink()

    code, err = mlci_pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "the bucket of 'storage' (gs://no-such-bucket/store) does not exist" in err


def test_check_remote_asks_the_bucket_and_checks_the_key(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch, gcs: GcsEmulator
) -> None:
    ok, message = data.check_remote(project.root)
    assert ok, message
    assert "answers (gs)" in message

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", json.dumps(gcs.tokens.new_key()))
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "holds a key's JSON" in message


def test_without_dvc_gs_the_extra_is_named(project: DvcProject) -> None:
    error = missing_plugin_error(project, "dvc_gs")

    assert error.exit_code == EXIT_USAGE
    assert "the DVC remote 'storage' (gs://mlci-data/" in error.message
    assert "needs dvc-gs, which is not installed: pip install 'dvc[gs]'" in error.message


def test_doctor_asks_the_bucket_with_the_key_of_credentialpath(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gcs: GcsEmulator
) -> None:
    path = write_key(tmp_path / "copy", gcs.tokens.new_key())
    project.dvc("remote", "modify", "--local", "storage", "credentialpath", str(path))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")

    result = doctor.check_dvc(context_for(project.config, dict(os.environ)))

    assert result.status == "ok", result.line()
    assert "answers (gs)" in result.line()
