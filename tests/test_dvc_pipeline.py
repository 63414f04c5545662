"""DVC pipelines end to end on a project built like DVC's example-get-started (issue #16)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import pipeline
from mlci.console import Console
from tests.dvc_pipeline import build_pipeline_template, copy_pipeline
from tests.dvc_project import DvcProject


@pytest.fixture(scope="session")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pipeline_template(tmp_path_factory.mktemp("dvc-pipeline-template"))


@pytest.fixture
def project(pipeline_template: Path, tmp_path: Path) -> Iterator[DvcProject]:
    yield copy_pipeline(pipeline_template, tmp_path / "copy")


def run(project: DvcProject) -> tuple[pipeline.Outcome, str]:
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(promote="never"),
    )
    return outcome, log.getvalue()


def test_the_stage_written_metrics_are_evaluated_on_the_first_build(project: DvcProject) -> None:
    assert (project.root / "eval" / "metrics.json").read_text()
    tracked = project.dvc("ls", "--dvc-only", ".", "eval").stdout
    assert "metrics.json" in tracked  # a DVC output, not a git file
    outcome, log = run(project)
    assert outcome.exit_code == 0, log
    metrics = project.gate_json()["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["avg_prec.test"] == pytest.approx(0.85)
    assert metrics["roc_auc.test"] == pytest.approx(0.9)
    assert json.loads((project.root / "model.pkl").read_text())["quality"] == 0.9
