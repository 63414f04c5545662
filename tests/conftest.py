"""Shared fixtures: an isolated environment, real git repositories, a real MLflow registry."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import git
from tests.servers import S3Server, s3_with_iam

_FOREIGN_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "MLFLOW_", "BITBUCKET_")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reaches a real CI, forge or registry through the environment."""
    for key in list(os.environ):
        if key.startswith(_FOREIGN_PREFIXES) or key in ("CI", "GITHUB_ACTIONS", "GITLAB_CI"):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.invalid")
    # The training subprocess must find this interpreter as `python`.
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )


# A tiny, fast "training": writes the metrics in params.json, a model file, prints a line.
TRAIN_SCRIPT = textwrap.dedent(
    """\
    import json, pathlib, sys, time
    params = json.loads(pathlib.Path("params.json").read_text())
    print("training with", json.dumps(params), flush=True)
    time.sleep(params.get("sleep", 0))
    if params.get("crash"):
        print("CUDA out of memory (simulated)", flush=True)
        sys.exit(3)
    pathlib.Path("metrics.json").write_text(json.dumps(params["metrics"]))
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/model.bin").write_text(json.dumps(params["metrics"]))
    """
)

CONFIG = textwrap.dedent(
    """\
    version: 1
    model: {name: tiny-model}
    train:
      command: python train.py
      timeout_minutes: 1
    evaluate:
      metrics: [metrics.json]
    gate:
      rules:
        - {metric: accuracy, min: 0.8, max_drop: 0.01}
        - {metric: log_loss, max_rise_pct: 10, severity: warn}
    registry:
      model: model/
      promote_on: [main]
    """
)


class Project:
    """A real git repository with mlci.yaml and the tiny training."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config(self) -> Path:
        return self.root / "mlci.yaml"

    @property
    def out(self) -> Path:
        return self.root / ".mlci" / "out"

    def set_params(self, **params: object) -> None:
        (self.root / "params.json").write_text(json.dumps(params))

    def write(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def commit(self, message: str = "change") -> str:
        return git.commit_all(self.root, message)

    def branch(self, name: str) -> None:
        git.switch(self.root, name, create=True)

    def gate_json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.out / "gate.json").read_text())
        return data


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One local S3 server with IAM for the session (see `tests.servers.s3_with_iam`);
    each test uses a bucket or a prefix of its own."""
    pytest.importorskip("moto")
    with s3_with_iam() as server:
        yield server


@pytest.fixture(scope="session")
def empty_registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite database with its schema created once (creating it takes seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("registry-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def project(tmp_path: Path, empty_registry_db: Path) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    git.init_repo(root, branch="main")
    (root / "train.py").write_text(TRAIN_SCRIPT)
    (root / "mlci.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text(".mlci/\nmodel/\nmetrics.json\n")
    (root / ".mlci").mkdir()
    shutil.copy(empty_registry_db, root / ".mlci" / "mlflow.db")
    proj = Project(root)
    proj.set_params(metrics={"accuracy": 0.9, "log_loss": 0.30, "f1": 0.88})
    proj.commit("initial")
    yield proj


@pytest.fixture(scope="session")
def shared_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One real `mlflow server` on 127.0.0.1 for the session: (URL, its artifact folder).

    Tests that share it name their models uniquely; it takes ~10 s to start."""
    from tests.test_registry_server import mlflow_server

    folder = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(folder) as url:
        yield url, folder / "artifacts"
