"""Predictions in S3 (moto's server, IAM enforced), scanned in place by DuckDB through
fsspec: the same summary as the local file, and the DVC remotes' credential messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci.config import EvaluateConfig
from mlci.core.summary import Summary
from mlci.engines.scan import scan
from mlci.errors import ExternalError
from tests.engines.data import assert_same, write_classification
from tests.servers import S3Server

pytest.importorskip("duckdb")
pytest.importorskip("s3fs")
BUCKET = "mlci-predictions"


@pytest.fixture(scope="module")
def uploaded(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("s3-predictions")
    candidate, _ = write_classification(folder, rows=1500)
    client = s3_server.client()
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(candidate), BUCKET, "eval/cand.parquet")
    return candidate


def use(monkeypatch: pytest.MonkeyPatch, server: S3Server, keys: tuple[str, str] | None) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    if keys is not None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])


REMOTE = f"s3://{BUCKET}/eval/cand.parquet"


def scanned(path: object) -> Summary:
    """What the evaluate stage scans: a local file or a URL, through DuckDB."""
    return scan(EvaluateConfig((), engine="duckdb"), str(path)).summary


def test_s3_predictions_give_the_local_files_summary(
    uploaded: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, s3_server, s3_server.reader)
    assert_same(scanned(REMOTE), scanned(uploaded))


def test_no_credentials_name_the_ci_secrets(
    uploaded: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, s3_server, None)
    with pytest.raises(ExternalError, match=r"no credentials to read the predictions s3://") as e:
        scanned(REMOTE)
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the CI job" in e.value.message


def test_a_key_without_permission_is_refused_with_what_to_check(
    uploaded: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, s3_server, s3_server.nobody)
    with pytest.raises(ExternalError, match=r"refused the credentials .* \(403\)"):
        scanned(REMOTE)


def test_a_missing_object_names_the_setting(
    uploaded: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, s3_server, s3_server.reader)
    missing = f"s3://{BUCKET}/eval/nothing.parquet"
    with pytest.raises(ExternalError, match=r"are not there .* evaluate\.predictions"):
        scanned(missing)


def test_azure_predictions_give_the_local_files_summary(
    uploaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("adlfs")
    from azure.storage.blob import BlobServiceClient

    from tests.emulators import azurite

    local = scanned(uploaded)
    with azurite() as emulator:
        emulator.create_container("evals")
        client = BlobServiceClient.from_connection_string(emulator.connection_string())
        client.get_blob_client("evals", "run/cand.parquet").upload_blob(uploaded.read_bytes())
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", emulator.connection_string())
        remote = "az://evals/run/cand.parquet"
        assert_same(scanned(remote), local)
        wrong = emulator.connection_string("d3Jvbmc=")
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
        with pytest.raises(ExternalError, match=r"refused the credentials"):
            scanned(remote)


def test_gcs_predictions_give_the_local_files_summary(
    uploaded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As tests/test_data_gcs.py, before gcsfs reads them: no probe of the metadata server,
    # and no gRPC call the emulator cannot answer (gcsfs would retry it for minutes).
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    gcsfs = pytest.importorskip("gcsfs")
    from tests.emulators import gcs_emulator

    local = scanned(uploaded)
    with gcs_emulator() as gcs:
        gcs.create_bucket("evals")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        store = gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)
        store.put(str(uploaded), "evals/run/cand.parquet")
        remote = "gs://evals/run/cand.parquet"
        assert_same(scanned(remote), local)
