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
from tests.servers import free_port, postgres_binaries, postgres_server
from tests.test_registry_mlflow import lineage, trained


@contextlib.contextmanager
def mlflow_server(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, database: str | None = None
) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 keeping its data in `folder` (or its runs and
    registry in `database`, a backend store URI); yields its URL."""
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
            database or f"sqlite:///{folder / 'server.db'}",
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
        deadline = time.monotonic() + 180  # a new PostgreSQL database: all migrations
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
            pytest.fail("mlflow server did not start within 180 s")
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


@pytest.mark.slow
def test_a_server_on_postgresql_promotes_rolls_back_and_serves_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production setup of docs/registry.md: the server's runs and registry in
    PostgreSQL, the model files proxied to its artifact folder."""
    import mlflow.pyfunc

    if postgres_binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it (apt-get)")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    model, rows = trained()
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))

    with postgres_server() as database, mlflow_server(tmp_path, database=database) as url:
        registry = MlflowRegistry(url)
        first, _ = registry.register("pg-model", path, lineage("a" * 40, accuracy=0.9))
        registry.move_alias("pg-model", "champion", first)
        second, _ = registry.register("pg-model", path, lineage("b" * 40, accuracy=0.95))
        registry.move_alias("pg-model", "champion", second)
        again, created = registry.register("pg-model", path, lineage("b" * 40, accuracy=0.95))
        registry.move_alias("pg-model", "champion", first, reason="rollback")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        loaded = mlflow.pyfunc.load_model("models:/pg-model@champion")
        history = registry.history("pg-model", "champion")
        listed = registry.versions("pg-model")

    assert (again.version, created) == ("2", False)
    assert [(m.from_version, m.to_version, m.reason) for m in history] == [
        (None, "1", "promote"),
        ("1", "2", "promote"),
        ("2", "1", "rollback"),
    ]
    assert [(v.version, v.aliases, v.metrics) for v in listed] == [
        ("2", (), {"accuracy": 0.95}),
        ("1", ("champion",), {"accuracy": 0.9}),
    ]
    assert list(loaded.predict(rows)) == list(model.predict(rows))
    assert [p.name for p in tmp_path.glob("*.db")] == []  # nothing went to sqlite
