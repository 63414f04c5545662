"""A project built like DVC's `example-get-started`, for the DVC-native tests (issue #16).

Stages prepare -> featurize -> train -> evaluate, `params.yaml`, raw data added with
`dvc add` (the only *dataset*), stage outputs that are not data (data/prepared,
data/features, model.pkl), and `eval/metrics.json` written by a stage and cached by DVC
(never committed to git), as in the real project. The stages are plain Python (no
scikit-learn) so that a `dvc repro` takes about a second.

The metrics are a function of `params.yaml` (`train.quality`), so a test makes a worse or
better pull request by changing one param:

    avg_prec.test  = quality - 0.05      avg_prec.train = quality
    roc_auc.test   = quality             rows.test      = the test rows (from the data)

`build_pipeline_template(base)` makes base/project (git on `main`, data and every output
pushed to base/remote) once per session; `copy_pipeline(template, dest)` copies it for a
test. The remote's URL is relative, so each copy has its own remote.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from mlci import git
from tests.dvc_project import DvcProject, dvc

STAGES = {
    "src/prepare.py": """\
        import pathlib, sys, yaml
        split = yaml.safe_load(open("params.yaml"))["prepare"]["split"]
        rows = pathlib.Path("data/data.csv").read_text().split()
        cut = int(len(rows) * (1 - split))
        out = pathlib.Path("data/prepared"); out.mkdir(parents=True, exist_ok=True)
        (out / "train.csv").write_text("\\n".join(rows[:cut]) + "\\n")
        (out / "test.csv").write_text("\\n".join(rows[cut:]) + "\\n")
        """,
    "src/featurize.py": """\
        import pathlib
        out = pathlib.Path("data/features"); out.mkdir(parents=True, exist_ok=True)
        for part in ("train", "test"):
            rows = pathlib.Path(f"data/prepared/{part}.csv").read_text().split()
            (out / f"{part}.csv").write_text("".join(f"{r},{int(r) % 7}\\n" for r in rows))
        """,
    "src/train.py": """\
        import json, pathlib, yaml
        quality = yaml.safe_load(open("params.yaml"))["train"]["quality"]
        rows = pathlib.Path("data/features/train.csv").read_text().split()
        pathlib.Path("model.pkl").write_text(json.dumps({"quality": quality, "rows": len(rows)}))
        print("trained on", len(rows), "rows")
        """,
    "src/evaluate.py": """\
        import json, pathlib
        model = json.loads(pathlib.Path("model.pkl").read_text())
        test = pathlib.Path("data/features/test.csv").read_text().split()
        q = model["quality"]
        out = pathlib.Path("eval"); out.mkdir(exist_ok=True)
        metrics = {
            "avg_prec": {"train": q, "test": round(q - 0.05, 6)},
            "roc_auc": {"test": q},
            "rows": {"test": len(test)},
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        """,
}

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data/data.csv]
    params: [prepare.split]
    outs: [data/prepared]
  featurize:
    cmd: python src/featurize.py
    deps: [src/featurize.py, data/prepared]
    outs: [data/features]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/features]
    params: [train.quality]
    outs: [model.pkl]
  evaluate:
    cmd: python src/evaluate.py
    deps: [src/evaluate.py, model.pkl, data/features]
    metrics:
      - eval/metrics.json
"""

PARAMS = "prepare:\n  split: 0.2\ntrain:\n  quality: 0.9\n"

CONFIG = """\
version: 1
model: {name: get-started}
train: {command: dvc repro, timeout_minutes: 5}
data: {dvc: true}
evaluate: {metrics: [eval/metrics.json]}
gate:
  baseline: git
  rules:
    - {metric: avg_prec.test, max_drop: 0.02}
    - {metric: roc_auc.test, min: 0.5}
registry: {model: model.pkl}
"""


def build_pipeline_template(base: Path, *, rows: int = 200) -> Path:
    """base/project: the four-stage project, reproduced, committed on main and pushed."""
    root = base / "project"
    (root / "src").mkdir(parents=True)
    git.init_repo(root, branch="main")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    dvc(root, "remote", "add", "-q", "-d", "storage", "../remote")
    for name, text in STAGES.items():
        (root / name).write_text(textwrap.dedent(text))
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(PARAMS)
    (root / "mlci.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text(".mlci/\n")
    (root / "data").mkdir()
    project = DvcProject(root)
    project.set_data(rows, push=False)
    project.dvc("repro", "-q")
    project.dvc("push", "-q")
    project.commit("initial: four stages, data v1, quality 0.9")
    return root


def copy_pipeline(template: Path, dest: Path) -> DvcProject:
    shutil.copytree(template.parent, dest, symlinks=True)
    return DvcProject(dest / "project")


def set_param(project: DvcProject, old: str, new: str) -> None:
    """Edit params.yaml (e.g. `quality: 0.9` -> `quality: 0.8`)."""
    params = project.root / "params.yaml"
    text = params.read_text()
    assert old in text, old
    params.write_text(text.replace(old, new))
