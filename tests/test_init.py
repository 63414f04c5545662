"""`mlci init`: the files it writes load, run, and never overwrite silently."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlci import pipeline
from mlci.cli import main
from mlci.config import load_config
from mlci.console import Console
from mlci.errors import UsageError
from mlci.init import init_command, write_project


def test_init_writes_a_valid_config_named_after_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "Fraud Detector"
    assert init_command(folder=folder, example=None, force=False) == 0

    config = load_config(folder / "mlci.yaml")
    assert config.model_name == "Fraud-Detector"
    assert config.train is not None and config.train.command == "python train.py"
    assert [rule.metric for rule in config.gate.rules] == ["accuracy"]
    assert ".mlci/" in (folder / ".gitignore").read_text().splitlines()
    assert not (folder / "train.py").exists()


def test_example_writes_a_project_that_trains(tmp_path: Path) -> None:
    written = write_project(tmp_path, example="sklearn", force=False)

    assert {p.name for p in written} == {"mlci.yaml", "train.py", "params.yaml", ".gitignore"}
    config = load_config(tmp_path / "mlci.yaml")
    assert config.model_name == "digits-classifier"
    subprocess.run([sys.executable, "train.py"], cwd=tmp_path, check=True, capture_output=True)
    for produced in ("metrics.json", "predictions.csv", "model/model.pkl"):
        assert (tmp_path / produced).exists(), produced


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text("mine: true\n")

    with pytest.raises(UsageError) as refused:
        write_project(tmp_path, example="sklearn", force=False)

    assert "mlci.yaml already exists" in refused.value.message
    assert "--force" in refused.value.message
    assert (tmp_path / "mlci.yaml").read_text() == "mine: true\n"
    assert not (tmp_path / "train.py").exists()  # nothing written half-way


def test_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text("mine: true\n")
    write_project(tmp_path, example=None, force=True)
    assert "version: 1" in (tmp_path / "mlci.yaml").read_text()


def test_an_existing_gitignore_keeps_its_lines(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("data/\n.mlci/")
    write_project(tmp_path, example="sklearn", force=False)
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["data/", ".mlci/"]
    assert lines.count(".mlci/") == 1
    assert "metrics.json" in lines


@pytest.mark.slow
def test_the_dvc_example_runs_its_steps_and_then_reuses_the_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], empty_registry_db: Path
) -> None:
    folder = tmp_path / "digits"
    assert main(["init", "--example", "sklearn-dvc", "--dir", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert (folder / "dvc.yaml").exists() and (folder / "make_data.py").exists()
    steps = [line.strip() for line in printed.splitlines() if line.startswith("  ")]
    assert steps[-1] == "mlci run"
    for step in steps[:-1]:  # exactly what the user is told to type
        subprocess.run(step, shell=True, cwd=folder, check=True, capture_output=True)
    assert (tmp_path / "digits-dvc-remote" / "files" / "md5").is_dir()
    (folder / ".mlci").mkdir()
    shutil.copy(empty_registry_db, folder / ".mlci" / "mlflow.db")
    env = dict(os.environ)

    first = pipeline.run(config_path=folder / "mlci.yaml", env=env, console=Console(io.StringIO()))
    assert first.exit_code == 0, first.report.error
    assert first.report.training_reused is None
    assert list(first.report.data) == ["data/digits.csv"]

    second = pipeline.run(config_path=folder / "mlci.yaml", env=env, console=Console(io.StringIO()))
    assert second.exit_code == 0, second.report.error
    assert second.report.training_reused == "training reused from cache: stage 'train' unchanged"
    assert (
        "Data changed since the baseline: no (1 dataset)"
        in (folder / ".mlci" / "out" / "report.md").read_text()
    )
