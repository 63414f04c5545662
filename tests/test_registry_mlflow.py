"""The MLflow adapter against real sqlite registries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlci.errors import ExternalError
from mlci.registry.base import Lineage
from mlci.registry.mlflow import MlflowRegistry, redact_uri, resolve_tracking_uri


def lineage(commit: str, **metrics: float) -> Lineage:
    return Lineage(
        commit=commit,
        branch="main",
        dirty=False,
        ci="local",
        event="local",
        metrics=metrics,
        gate_verdict="pass",
        gate_summary="passed: 1 rule met",
        baseline=None,
        run_url="https://ci.example/run/1",
    )


@pytest.fixture
def registry(tmp_path: Path, empty_registry_db: Path) -> MlflowRegistry:
    db = tmp_path / "mlflow.db"
    shutil.copy(empty_registry_db, db)
    return MlflowRegistry(f"sqlite:///{db}", artifact_root=tmp_path / "artifacts")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01weights")
    return folder


def test_register_records_metrics_lineage_and_artifacts(
    registry: MlflowRegistry, model_dir: Path, tmp_path: Path
) -> None:
    version, created = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.91))

    assert created is True
    assert version.version == "1"
    assert version.commit == "a" * 40
    assert version.metrics == {"accuracy": 0.91}
    assert version.gate_verdict == "pass"
    stored = list((tmp_path / "artifacts").rglob("weights.bin"))
    assert [p.read_bytes() for p in stored] == [b"\x00\x01weights"]


def test_register_is_idempotent_per_commit(registry: MlflowRegistry, model_dir: Path) -> None:
    first, _ = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.91))
    again, created = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.91))
    other, _ = registry.register("clf", model_dir, lineage("b" * 40, accuracy=0.93))

    assert created is False
    assert again.version == first.version == "1"
    assert other.version == "2"


def test_a_single_file_model_is_registered_too(registry: MlflowRegistry, tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(b"pickle")
    version, _ = registry.register("clf", model, lineage("c" * 40, accuracy=0.5))
    assert version.source is not None and version.source.endswith("/model")
    assert [p.name for p in (tmp_path / "artifacts").rglob("model.pkl")] == ["model.pkl"]


def test_alias_moves_and_reports_where_it_was(registry: MlflowRegistry, model_dir: Path) -> None:
    v1, _ = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    v2, _ = registry.register("clf", model_dir, lineage("b" * 40, accuracy=0.95))

    first = registry.move_alias("clf", "champion", v1)
    second = registry.move_alias("clf", "champion", v2)

    assert (first.from_version, first.to_version) == (None, "1")
    assert (second.from_version, second.to_version) == ("1", "2")
    champion = registry.by_alias("clf", "champion")
    assert champion is not None
    assert champion.version == "2"
    assert champion.metrics == {"accuracy": 0.95}
    assert champion.label == "clf v2 (@champion)"


def test_versions_are_listed_newest_first_with_their_aliases(
    registry: MlflowRegistry, model_dir: Path
) -> None:
    v1, _ = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    registry.register("clf", model_dir, lineage("b" * 40, accuracy=0.95))
    registry.move_alias("clf", "champion", v1)

    listed = registry.versions("clf")

    assert [(v.version, v.aliases) for v in listed] == [("2", ()), ("1", ("champion",))]


def test_unknown_model_or_alias_reads_as_none(registry: MlflowRegistry, model_dir: Path) -> None:
    assert registry.by_alias("nothing-here", "champion") is None
    registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    assert registry.by_alias("clf", "champion") is None
    assert registry.versions("nothing-here") == []


def test_a_registry_file_that_does_not_exist_is_empty_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "mlflow.db"
    registry = MlflowRegistry(f"sqlite:///{db}")

    assert registry.by_alias("clf", "champion") is None
    assert registry.versions("clf") == []
    assert not db.exists()


def test_a_locked_sqlite_file_names_the_cause(registry: MlflowRegistry, model_dir: Path) -> None:
    import sqlite3

    db = registry.tracking_uri.removeprefix("sqlite:///")
    registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    holder = sqlite3.connect(db, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ExternalError) as failed:
            MlflowRegistry(registry.tracking_uri).register(
                "clf", model_dir, lineage("d" * 40, accuracy=0.9)
            )
    finally:
        holder.rollback()
        holder.close()
    assert "is locked" in failed.value.message
    assert failed.value.exit_code == 3


def test_redact_uri_hides_credentials() -> None:
    assert (
        redact_uri("https://bot:hunter2@mlflow.example:8443/x")
        == "https://***@mlflow.example:8443/x"
    )
    assert redact_uri("https://mlflow.example") == "https://mlflow.example"
    assert redact_uri("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_relative_sqlite_paths_are_relative_to_the_project(tmp_path: Path) -> None:
    resolved = resolve_tracking_uri("sqlite:///.mlci/mlflow.db", tmp_path)
    assert resolved == f"sqlite:///{tmp_path.resolve()}/.mlci/mlflow.db"
    assert resolve_tracking_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_predictions_are_stored_with_the_version_and_read_back(
    registry: MlflowRegistry, model_dir: Path, tmp_path: Path
) -> None:
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("y_true,y_pred\n1,1\n0,1\n")
    with_predictions, _ = registry.register(
        "clf", model_dir, lineage("a" * 40, accuracy=0.5), predictions=predictions
    )
    without, _ = registry.register("clf", model_dir, lineage("b" * 40, accuracy=0.5))

    fetched = registry.predictions(with_predictions, tmp_path / "download")

    assert fetched is not None
    assert fetched.read_text() == "y_true,y_pred\n1,1\n0,1\n"
    assert registry.predictions(without, tmp_path / "download2") is None


def test_every_alias_move_is_recorded(registry: MlflowRegistry, model_dir: Path) -> None:
    v1, _ = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    v2, _ = registry.register("clf", model_dir, lineage("b" * 40, accuracy=0.95))
    registry.move_alias("clf", "champion", v1, run_url="https://ci.example/run/1")
    registry.move_alias("clf", "champion", v2)
    registry.move_alias("clf", "champion", v1, reason="rollback")

    history = registry.history("clf", "champion")

    assert [(m.from_version, m.to_version, m.reason) for m in history] == [
        (None, "1", "promote"),
        ("1", "2", "promote"),
        ("2", "1", "rollback"),
    ]
    assert history[0].run_url == "https://ci.example/run/1"
    assert history[1].commit == "b" * 40
    assert all(m.when_ms for m in history)
    assert registry.history("clf", "challenger") == []
    assert registry.history("no-such-model", "champion") == []


def test_a_version_is_found_by_number(registry: MlflowRegistry, model_dir: Path) -> None:
    registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    found = registry.version("clf", "1")
    assert found is not None and found.commit == "a" * 40
    assert registry.version("clf", "7") is None
    assert registry.version("nothing", "1") is None
