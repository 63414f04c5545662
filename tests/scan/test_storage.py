"""Predictions in S3 (moto's server, IAM enforced), scanned in place by DuckDB through
fsspec: the same summary as the local file, and the DVC remotes' credential messages;
`mlci gate --predictions URL --baseline-predictions URL` read the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci import git
from mlci.cli import main
from mlci.config import EvaluateConfig
from mlci.core.summary import Summary
from mlci.errors import ExternalError
from mlci.scan.run import scan
from tests.scan.data import assert_same, write_classification
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


GATED = """\
version: 1
model: {name: urls}
evaluate:
  predictions: cand.parquet
gate:
  resamples: 200
  rules:
    - {metric: accuracy, direction: higher, max_drop: 0.5}
report:
  plots: false
"""


def gate(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, dict[str, object]]:
    """`mlci gate ARGS` in a project holding cand.parquet and base.parquet (2,000 rows each,
    paired): its exit code and gate.json."""
    if not root.exists():
        root.mkdir()
        write_classification(root, rows=2000, partial=False)
        git.init_repo(root, branch="main")
        (root / "mlci.yaml").write_text(GATED)
        (root / ".gitignore").write_text(".mlci/\n")
        git.commit_all(root, "initial")
    monkeypatch.chdir(root)
    code = main(["gate", *args])
    result = json.loads((root / ".mlci" / "out" / "gate.json").read_text())
    assert isinstance(result, dict)
    return code, result


def test_gate_reads_both_models_predictions_from_s3_urls(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    code, local = gate(root, monkeypatch, "--baseline-predictions", "base.parquet")
    assert code == 0
    client = s3_server.client()
    client.create_bucket(Bucket="gate-urls")
    for name in ("cand", "base"):
        client.upload_file(str(root / f"{name}.parquet"), "gate-urls", f"run/{name}.parquet")
    use(monkeypatch, s3_server, s3_server.reader)
    candidate, baseline = "s3://gate-urls/run/cand.parquet", "s3://gate-urls/run/base.parquet"
    args = ("--predictions", candidate, "--baseline-predictions", baseline)
    code, remote = gate(root, monkeypatch, *args)
    assert code == 0, remote["error"]
    assert remote["baseline"] == {"source": "file", "label": baseline}
    rows = remote["rows"]
    assert isinstance(rows, dict) and (rows["candidate"], rows["baseline"]) == (2000, 2000)
    (note,) = remote["notes"]
    assert f"read in place from the candidate's {candidate} and the baseline's {baseline}" in note
    ours, theirs = remote["metrics"], local["metrics"]
    assert isinstance(ours, dict) and isinstance(theirs, dict)
    assert ours["accuracy"] == theirs["accuracy"]
    assert ours["log_loss"] == pytest.approx(theirs["log_loss"], rel=1e-12)


def test_gate_with_an_s3_url_and_no_credentials_names_the_ci_secrets(
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use(monkeypatch, s3_server, None)
    code, result = gate(tmp_path / "project", monkeypatch, "--predictions", REMOTE)
    assert code == 3
    error = result["error"]
    assert isinstance(error, dict)
    assert error["message"].startswith(f"no credentials to read the predictions {REMOTE}: ")
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the CI job" in error["message"]
    assert "AWS_ACCESS_KEY_ID" in capsys.readouterr().err


def test_gate_computes_the_baseline_from_its_predictions_in_azure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("adlfs")
    from azure.storage.blob import BlobServiceClient

    from tests.emulators import azurite

    root = tmp_path / "project"
    code, local = gate(root, monkeypatch, "--baseline-predictions", "base.parquet")
    assert code == 0
    with azurite() as emulator:
        emulator.create_container("evals")
        client = BlobServiceClient.from_connection_string(emulator.connection_string())
        blob = client.get_blob_client("evals", "run/base.parquet")
        blob.upload_blob((root / "base.parquet").read_bytes())
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", emulator.connection_string())
        baseline = "az://evals/run/base.parquet"
        code, remote = gate(root, monkeypatch, "--baseline-predictions", baseline)
    assert code == 0, remote["error"]
    assert remote["baseline"] == {"source": "file", "label": baseline}
    rows = remote["rows"]
    assert isinstance(rows, dict) and rows["baseline"] == 2000  # paired with the candidate's
    (note,) = remote["notes"]
    assert f"read in place from the baseline's {baseline}" in note
    (change,) = [item for item in remote["diff"] if item["metric"] == "accuracy"]
    (before,) = [item for item in local["diff"] if item["metric"] == "accuracy"]
    assert change["old"] == before["old"]  # the baseline's accuracy, computed from the URL
