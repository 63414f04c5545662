"""`mlci demo`: the whole flow, as a new user sees it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mlci.commands.demo import demo_command, isolated_env, run_demo
from mlci.console import Console
from mlci.errors import UsageError
from mlci.registry.mlflow import MlflowRegistry


@pytest.mark.slow
def test_demo_runs_the_four_builds_with_the_expected_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "demo"

    assert demo_command(folder=folder) == 0

    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [row[:3] for row in table[1:5]] == [
        ["1", "main", "pass"],
        ["2", "pr/less-data", "fail"],
        ["3", "pr/less-regularisation", "pass"],
        ["4", "main", "pass"],
    ]
    assert (
        "Why build 2 failed: failed against digits-classifier v1 (@champion): accuracy dropped"
        in out
    )
    registry = MlflowRegistry(f"sqlite:///{folder / '.mlci' / 'mlflow.db'}")
    assert [(v.version, v.aliases) for v in registry.versions("digits-classifier")] == [
        ("2", ("champion",)),
        ("1", ()),
    ]
    for build in ("1-main", "2-pr-less-data", "3-pr-less-regularisation", "4-main"):
        assert (folder / ".mlci" / "demo" / build / "report.html").exists()
    # The example's model/model.pkl became a scikit-learn MLflow model.
    assert registry.versions("digits-classifier")[0].model_format == "sklearn"
    import mlflow.pyfunc
    from sklearn.datasets import load_digits

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri)
    champion = mlflow.pyfunc.load_model("models:/digits-classifier@champion")
    features, labels = load_digits(return_X_y=True)
    assert (champion.predict(features) == labels).mean() > 0.95


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError) as refused:
        run_demo(tmp_path, console=Console(io.StringIO()))
    assert "is not empty" in refused.value.message
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_demo_environment_cannot_reach_real_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://prod-registry.example")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("CI", "true")
    env = isolated_env(os.environ)
    assert "MLFLOW_TRACKING_URI" not in env
    assert "GITHUB_ACTIONS" not in env
    assert "CI" not in env
    assert env["PATH"].split(os.pathsep)[0] == str(Path(os.sys.executable).parent)


@pytest.mark.slow
def test_demo_with_dvc_shows_the_data_and_reuses_the_merged_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"

    assert demo_command(folder=folder, dvc=True) == 0

    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [row[2] for row in table[1:5]] == ["pass", "fail", "pass", "pass"]
    assert "build 4 data: data/digits.csv " in out
    assert "training reused from cache: stage 'train' unchanged" in out
    report = (folder / ".mlci" / "demo" / "4-main" / "report.md").read_text()
    assert "Data changed since the baseline: no (1 dataset)" in report
    registry = MlflowRegistry(f"sqlite:///{folder / '.mlci' / 'mlflow.db'}")
    champion = registry.by_alias("digits-classifier", "champion")
    assert champion is not None and list(champion.data) == ["data/digits.csv"]
