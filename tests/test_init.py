"""`mlci init`: the files it writes load, run, and never overwrite silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlci.config import load_config
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
