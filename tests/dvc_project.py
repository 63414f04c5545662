"""A real git + DVC project with a local-directory remote, for the data tests.

Built once per session (dvc init, dvc add, dvc push take seconds) and copied for each
test; the remote's URL is relative (`../remote`), so every copy has its own remote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlci import git

TRAIN = textwrap.dedent(
    """\
    import json, pathlib
    rows = pathlib.Path("data/data.csv").read_text().split()
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/model.txt").write_text(str(len(rows)))
    pathlib.Path("metrics.json").write_text(json.dumps({"accuracy": 0.9, "rows": len(rows)}))
    print("trained on", len(rows), "rows")
    """
)

DVC_YAML = textwrap.dedent(
    """\
    stages:
      train:
        cmd: python train.py
        deps: [train.py, data/data.csv]
        outs: [model]
        metrics:
          - metrics.json: {cache: false}
    """
)

CONFIG = textwrap.dedent(
    """\
    version: 1
    model: {name: dvc-model}
    train: {command: dvc repro, timeout_minutes: 2}
    data: {dvc: true}
    evaluate: {metrics: [metrics.json]}
    gate:
      baseline: none
      rules: [{metric: accuracy, min: 0.5}]
    registry: {model: model/}
    """
)


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run this interpreter's dvc, as mlci does."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


class DvcProject:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.remote = root.parent / "remote"

    @property
    def config(self) -> Path:
        return self.root / "mlci.yaml"

    @property
    def out(self) -> Path:
        return self.root / ".mlci" / "out"

    def gate_json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.out / "gate.json").read_text())
        return data

    def report(self) -> str:
        return (self.out / "report.md").read_text()

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return dvc(self.root, *args, check=check)

    def set_data(self, rows: int, *, push: bool = True) -> str:
        """A new version of data/data.csv, tracked (and pushed); returns its md5."""
        (self.root / "data" / "data.csv").write_text("".join(f"{i}\n" for i in range(rows)))
        self.dvc("add", "-q", "data/data.csv")
        if push:
            self.dvc("push", "-q")
        return self.data_hash()

    def data_hash(self) -> str:
        import yaml

        tracked = yaml.safe_load((self.root / "data" / "data.csv.dvc").read_text())
        digest: str = tracked["outs"][0]["md5"]
        return digest

    def forget_local_data(self) -> None:
        """As on a fresh CI runner: no workspace data, no DVC cache."""
        shutil.rmtree(self.root / ".dvc" / "cache", ignore_errors=True)
        (self.root / "data" / "data.csv").unlink(missing_ok=True)

    def edit_config(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text, old
        self.config.write_text(text.replace(old, new))

    def use_registry(self, empty_db: Path) -> None:
        """The default MLflow registry (.mlci/mlflow.db), from an empty database."""
        (self.root / ".mlci").mkdir(exist_ok=True)
        shutil.copy(empty_db, self.root / ".mlci" / "mlflow.db")

    def commit(self, message: str = "change") -> str:
        return git.commit_all(self.root, message)


def build_template(base: Path) -> Path:
    """base/project (git + DVC, data pushed to base/remote); returns the project."""
    root = base / "project"
    root.mkdir(parents=True)
    git.init_repo(root, branch="main")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    dvc(root, "remote", "add", "-q", "-d", "local", "../remote")
    (root / "data").mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "mlci.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text(".mlci/\nmetrics.json\n")
    project = DvcProject(root)
    project.set_data(100)
    project.commit("initial: data v1")
    return root


def copy_template(template: Path, dest: Path) -> DvcProject:
    shutil.copytree(template.parent, dest, symlinks=True)
    return DvcProject(dest / "project")


def data_pull(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mlci data pull` on the project: its exit code, and what it wrote (stderr, stdout)."""
    from mlci.cli import main

    code = main(["data", "pull", "--config", str(project.config)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out
