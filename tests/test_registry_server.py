"""The MLflow adapter against a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlci.registry.mlflow import MlflowRegistry
from tests.servers import free_port
from tests.test_registry_mlflow import lineage, trained


@contextlib.contextmanager
def mlflow_server(folder: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 keeping its data in `folder`; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            *args,
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})},
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"mlflow server exited with {process.returncode}")
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 90 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def server(shared_mlflow_server: tuple[str, Path]) -> tuple[str, Path]:
    """The session's MLflow server with its own artifact store: (URL, artifact folder)."""
    return shared_mlflow_server


@pytest.mark.slow
def test_promotion_through_a_server_stores_the_model_on_the_server(
    server: tuple[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url, artifacts = server
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"weights")
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("y_true,y_pred\n1,1\n")
    registry = MlflowRegistry(url, artifact_root=tmp_path / "local-artifacts")

    version, created = registry.register(
        "served", model, lineage("e" * 40, accuracy=0.9), predictions=predictions
    )
    registry.move_alias("served", "champion", version)

    assert created
    assert version.source is not None and version.source.startswith("mlflow-artifacts:")
    stored = [p for p in artifacts.rglob("weights.bin") if str(version.run_id) in p.parts]
    assert [p.read_bytes() for p in stored] == [b"weights"]
    assert not (tmp_path / "local-artifacts").exists()  # nothing left on the CI runner
    champion = registry.by_alias("served", "champion")
    assert champion is not None and champion.metrics == {"accuracy": 0.9}
    listed = registry.versions("served")  # runs read with one search, not one per version
    assert [(v.version, v.metrics, v.commit) for v in listed] == [
        ("1", {"accuracy": 0.9}, "e" * 40)
    ]
    fetched = registry.predictions(champion, tmp_path / "download")
    assert fetched is not None and fetched.read_text() == "y_true,y_pred\n1,1\n"
    assert "View run" not in capfd.readouterr().out  # MLflow's URL printing is off


@pytest.mark.slow
def test_the_champion_loads_from_the_server_and_predicts_as_trained(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    url, _ = server
    model, rows = trained()
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    registry = MlflowRegistry(url)
    version, _ = registry.register("served-sklearn", path, lineage("f" * 40, accuracy=0.9))
    registry.move_alias("served-sklearn", "champion", version)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    loaded = mlflow.pyfunc.load_model("models:/served-sklearn@champion")

    assert version.model_format == "sklearn"
    assert list(loaded.predict(rows)) == list(model.predict(rows))
