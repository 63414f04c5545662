"""The MLflow adapter against real sqlite registries."""

from __future__ import annotations

import itertools
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import ExternalError
from mlci.registry.base import Lineage, ModelVersion
from mlci.registry.mlflow import MlflowRegistry, redact_uri, resolve_tracking_uri
from mlci.registry.packaging import package_model


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


@dataclass(frozen=True)
class Backend:
    """A registry to test, the name of a model new to it, and where its artifacts land."""

    registry: MlflowRegistry
    name: str
    artifacts: Path

    def files(self, version: ModelVersion, name: str) -> list[Path]:
        """The files called `name` stored in the run of `version`."""
        assert version.run_id is not None
        return sorted(p for p in self.artifacts.rglob(name) if version.run_id in p.parts)


_names = itertools.count(1)


@pytest.fixture(params=["sqlite", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each case twice: a sqlite file (through MlflowClient) and a real `mlflow server`
    (through mlci's REST client); the server is shared, so each test names a new model."""
    if request.param == "sqlite":
        registry = request.getfixturevalue("registry")
        return Backend(registry, "clf", tmp_path / "artifacts")
    url, artifacts = request.getfixturevalue("shared_mlflow_server")
    return Backend(MlflowRegistry(url), f"clf-{next(_names)}", artifacts)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01weights")
    return folder


def test_register_records_metrics_lineage_and_artifacts(
    backend: Backend, model_dir: Path, tmp_path: Path
) -> None:
    registry, clf = backend.registry, backend.name
    version, created = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.91))

    assert created is True
    assert version.version == "1"
    assert version.commit == "a" * 40
    assert version.metrics == {"accuracy": 0.91}
    assert version.gate_verdict == "pass"
    stored = backend.files(version, "weights.bin")
    assert [p.read_bytes() for p in stored] == [b"\x00\x01weights"]


def test_register_is_idempotent_per_commit(backend: Backend, model_dir: Path) -> None:
    registry, clf = backend.registry, backend.name
    first, _ = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.91))
    again, created = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.91))
    other, _ = registry.register(clf, model_dir, lineage("b" * 40, accuracy=0.93))

    assert created is False
    assert again.version == first.version == "1"
    assert other.version == "2"


def test_a_single_file_model_is_registered_too(backend: Backend, tmp_path: Path) -> None:
    registry, clf = backend.registry, backend.name
    model = tmp_path / "model.pkl"
    model.write_bytes(b"pickle")
    version, _ = registry.register(clf, model, lineage("c" * 40, accuracy=0.5))
    assert version.source is not None and version.source.endswith("/model")
    assert [p.name for p in backend.files(version, "model.pkl")] == ["model.pkl"]


def test_alias_moves_and_reports_where_it_was(backend: Backend, model_dir: Path) -> None:
    registry, clf = backend.registry, backend.name
    v1, _ = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    v2, _ = registry.register(clf, model_dir, lineage("b" * 40, accuracy=0.95))

    first = registry.move_alias(clf, "champion", v1)
    second = registry.move_alias(clf, "champion", v2)

    assert (first.from_version, first.to_version) == (None, "1")
    assert (second.from_version, second.to_version) == ("1", "2")
    champion = registry.by_alias(clf, "champion")
    assert champion is not None
    assert champion.version == "2"
    assert champion.metrics == {"accuracy": 0.95}
    assert champion.label == f"{clf} v2 (@champion)"


def test_versions_are_listed_newest_first_with_their_aliases(
    backend: Backend, model_dir: Path
) -> None:
    registry, clf = backend.registry, backend.name
    v1, _ = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    registry.register(clf, model_dir, lineage("b" * 40, accuracy=0.95))
    registry.move_alias(clf, "champion", v1)

    listed = registry.versions(clf)

    assert [(v.version, v.aliases) for v in listed] == [("2", ()), ("1", ("champion",))]


def test_unknown_model_or_alias_reads_as_none(backend: Backend, model_dir: Path) -> None:
    registry, clf = backend.registry, backend.name
    assert registry.by_alias("nothing-here", "champion") is None
    registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    assert registry.by_alias(clf, "champion") is None
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
    backend: Backend, model_dir: Path, tmp_path: Path
) -> None:
    registry, clf = backend.registry, backend.name
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("y_true,y_pred\n1,1\n0,1\n")
    with_predictions, _ = registry.register(
        clf, model_dir, lineage("a" * 40, accuracy=0.5), predictions=predictions
    )
    without, _ = registry.register(clf, model_dir, lineage("b" * 40, accuracy=0.5))

    fetched = registry.predictions(with_predictions, tmp_path / "download")

    assert fetched is not None
    assert fetched.read_text() == "y_true,y_pred\n1,1\n0,1\n"
    assert registry.predictions(without, tmp_path / "download2") is None


def test_every_alias_move_is_recorded(backend: Backend, model_dir: Path) -> None:
    registry, clf = backend.registry, backend.name
    v1, _ = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    v2, _ = registry.register(clf, model_dir, lineage("b" * 40, accuracy=0.95))
    registry.move_alias(clf, "champion", v1, run_url="https://ci.example/run/1")
    registry.move_alias(clf, "champion", v2)
    registry.move_alias(clf, "champion", v1, reason="rollback")

    history = registry.history(clf, "champion")

    assert [(m.from_version, m.to_version, m.reason) for m in history] == [
        (None, "1", "promote"),
        ("1", "2", "promote"),
        ("2", "1", "rollback"),
    ]
    assert history[0].run_url == "https://ci.example/run/1"
    assert history[1].commit == "b" * 40
    assert all(m.when_ms for m in history)
    assert registry.history(clf, "challenger") == []
    assert registry.history("no-such-model", "champion") == []


def test_a_version_is_found_by_number(backend: Backend, model_dir: Path) -> None:
    registry, clf = backend.registry, backend.name
    registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    found = registry.version(clf, "1")
    assert found is not None and found.commit == "a" * 40
    assert registry.version(clf, "7") is None
    assert registry.version("nothing", "1") is None


# -- the model as an MLflow model -----------------------------------------------------------


def trained() -> tuple[Any, Any]:
    """A small scikit-learn pipeline and the rows to predict."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return model.fit(features, labels), features[::7]


def _load_champion(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, loader: str = "pyfunc"
) -> Any:
    import mlflow.pyfunc
    import mlflow.sklearn

    monkeypatch.setenv("MLFLOW_TRACKING_URI", backend.registry.tracking_uri)
    load = mlflow.sklearn.load_model if loader == "sklearn" else mlflow.pyfunc.load_model
    return load(f"models:/{backend.name}@champion")


def test_a_pickled_sklearn_model_loads_back_from_the_champion_alias(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, clf = backend.registry, backend.name
    model, rows = trained()
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model))  # as the example's train.py
    (folder / "labels.txt").write_text("setosa\n")

    version, _ = registry.register(clf, folder, lineage("a" * 40, accuracy=0.9))
    registry.move_alias(clf, "champion", version)

    assert version.model_format == "sklearn"
    loaded = _load_champion(backend, monkeypatch)
    assert list(loaded.predict(rows)) == list(model.predict(rows))
    estimator = _load_champion(backend, monkeypatch, loader="sklearn")
    assert (estimator.predict_proba(rows) == model.predict_proba(rows)).all()
    stored = backend.files(version, "MLmodel")[0].parent
    assert (stored / "labels.txt").read_text() == "setosa\n"  # the folder's other files stay
    requirements = (stored / "requirements.txt").read_text().splitlines()
    assert {r.split("==")[0] for r in requirements} == {"mlflow", "numpy", "scikit-learn"}
    assert all("==" in r for r in requirements)


def test_a_joblib_model_loads_back_through_the_shipped_loader(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, clf = backend.registry, backend.name
    import joblib

    model, rows = trained()
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)

    version, _ = registry.register(clf, path, lineage("a" * 40, accuracy=0.9))
    registry.move_alias(clf, "champion", version)

    assert version.model_format == "pyfunc"
    loaded = _load_champion(backend, monkeypatch)
    assert list(loaded.predict(rows)) == list(model.predict(rows))


def test_an_mlflow_model_folder_is_logged_as_it_is(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, clf = backend.registry, backend.name
    model, rows = trained()
    folder = tmp_path / "mlflow-model"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    generated = package_model(folder / "model.pkl", tmp_path / "work").generated
    assert generated is not None
    for name in ("MLmodel", "requirements.txt"):
        (folder / name).write_bytes((generated / name).read_bytes())
    (folder / "requirements.txt").write_text("scikit-learn\n")  # the training's own choice

    version, _ = registry.register(clf, folder, lineage("a" * 40, accuracy=0.9))
    registry.move_alias(clf, "champion", version)

    assert version.model_format == "mlflow"
    assert list(_load_champion(backend, monkeypatch).predict(rows)) == list(model.predict(rows))
    stored = backend.files(version, "MLmodel")[0].parent
    assert (stored / "requirements.txt").read_text() == "scikit-learn\n"


class Local:
    """Pickled from the test's module: loadable, but no scikit-learn class."""

    def predict(self, rows: list[int]) -> list[int]:
        return rows


@pytest.mark.parametrize(
    ("name", "content", "format_", "note"),
    [
        ("weights.onnx", b"\x08\x07onnx", "files", "weights.onnx is not a pickle or joblib file"),
        ("model.pkl", b"not a pickle", "files", "model.pkl is not a pickle mlci can read"),
        ("model.pkl", pickle.dumps({"weights": [1, 2]}), "files", "not a pickled object"),
        ("model.pkl", pickle.dumps(Local(), protocol=2), "pyfunc", None),
        ("model.pkl", pickle.dumps(Local()), "pyfunc", None),
    ],
)
def test_what_is_not_a_scikit_learn_pickle(
    tmp_path: Path, name: str, content: bytes, format_: str, note: str | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    packaged = package_model(path, tmp_path / "work")
    assert packaged.format == format_
    assert (packaged.note is None) if note is None else (note in (packaged.note or ""))
    if format_ == "pyfunc":
        assert "numpy" not in " ".join(packaged.requirements)  # only what the pickle names
        assert any(r.startswith("mlflow==") for r in packaged.requirements)


def test_a_class_of_the_training_script_is_named_as_the_reason(tmp_path: Path) -> None:
    script = "import pickle\nclass Model: pass\npickle.dump(Model(), open('m.pkl', 'wb'))\n"
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    packaged = package_model(tmp_path / "m.pkl", tmp_path / "work")
    assert packaged.format == "files"
    assert "classes of the training script (__main__)" in (packaged.note or "")


def test_a_folder_with_two_model_files_is_logged_as_files(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("a.pkl", "b.joblib"):
        (folder / name).write_bytes(pickle.dumps(Local()))
    packaged = package_model(folder, tmp_path / "work")
    assert (packaged.format, packaged.note) == (
        "files",
        "model/ has no MLmodel file and 2 pickle or joblib files",
    )


# -- failed attempts leave nothing behind ---------------------------------------------------


def test_a_failed_upload_leaves_no_version_and_the_retry_registers_cleanly(
    tmp_path: Path, empty_registry_db: Path, model_dir: Path
) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copy(empty_registry_db, db)
    blocked = tmp_path / "artifacts"
    blocked.write_text("a file where the artifact folder should be")
    registry = MlflowRegistry(f"sqlite:///{db}", artifact_root=blocked)

    with pytest.raises(ExternalError) as failed:
        registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))

    assert failed.value.exit_code == 3
    assert registry.versions("clf") == []
    client = registry._client()
    runs = client.search_runs([client.get_experiment_by_name("mlci").experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]
    blocked.unlink()
    version, created = registry.register("clf", model_dir, lineage("a" * 40, accuracy=0.9))
    registry.move_alias("clf", "champion", version)
    assert (version.version, created) == ("1", True)
    champion = registry.by_alias("clf", "champion")
    assert champion is not None and champion.version == "1"


def test_a_version_left_by_a_failed_attempt_is_not_reused_but_deleted(
    backend: Backend, model_dir: Path
) -> None:
    registry, clf = backend.registry, backend.name
    # What an attempt that died after creating its version leaves: the version, tagged
    # with the commit, and its run marked FAILED (or never finished).
    registry.register(clf, model_dir, lineage("0" * 40, accuracy=0.5))  # v1, complete
    client = registry._client()
    experiment = client.get_experiment_by_name("mlci").experiment_id
    for status in ("FAILED", "RUNNING"):
        run = client.create_run(experiment)
        if status == "FAILED":
            client.set_terminated(run.info.run_id, status="FAILED")
        client.create_model_version(
            clf,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"mlci.commit": "a" * 40},
        )  # v2 (failed), v3 (still running)

    version, created = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))

    assert (version.version, created) == ("4", True)
    assert [v.version for v in registry.versions(clf)] == ["4", "3", "1"]  # v2 deleted
    again, created = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    assert (again.version, created) == ("4", False)


def test_a_rerun_on_a_promoted_commit_records_no_alias_move(
    backend: Backend, model_dir: Path
) -> None:
    from mlci.commands.registry import _previous

    registry, clf = backend.registry, backend.name
    v1, _ = registry.register(clf, model_dir, lineage("a" * 40, accuracy=0.9))
    v2, _ = registry.register(clf, model_dir, lineage("b" * 40, accuracy=0.95))
    registry.move_alias(clf, "champion", v1)
    registry.move_alias(clf, "champion", v2)
    again = registry.move_alias(clf, "champion", v2)  # the same commit built again

    moves = registry.history(clf, "champion")
    assert [(m.from_version, m.to_version) for m in moves] == [(None, "1"), ("1", "2")]
    assert (again.from_version, again.to_version) == ("2", "2")
    assert _previous(moves, "2") == "1"  # what `mlci rollback` moves back to
