"""`mlci init`: write mlci.yaml, or with --example a complete example project."""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

from mlci.errors import EXIT_OK, UsageError

EXAMPLE = "sklearn"
EXAMPLES = ("sklearn", "sklearn-dvc", "torch")  # sklearn-dvc: its data in DVC, a local remote
_IGNORED = ".mlci/"

CONFIG_TEMPLATE = """\
# mlci configuration. Every key is described in docs/config.md.
version: 1
model:
  name: {name}                 # the registered model's name
train:
  command: python train.py     # trains and writes the metrics file (and the model)
  timeout_minutes: 60
evaluate:
  metrics: [metrics.json]      # JSON, YAML, CSV or TSV files that the training writes
  # predictions: predictions.csv  # y_true, y_pred[, p_<class>...]: noise-aware rules
gate:
  baseline: auto               # the registry's champion, else git, else none (first run)
  on_missing_baseline: pass    # first run: only absolute rules (min, max) apply
  rules:
    - {{metric: accuracy, min: 0.80, max_drop: 0.01}}
registry:
  kind: mlflow
  tracking_uri: sqlite:///.mlci/mlflow.db   # MLFLOW_TRACKING_URI overrides it
  model: model/                # the file or folder the training writes
  promote_on: [main]
  alias: champion
"""


def example_files(name: str = EXAMPLE) -> dict[str, str]:
    """The example project's files, by relative path."""
    folder = resources.files("mlci") / "examples" / name
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.is_file()
    }


def model_name_for(folder: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.")
    return slug or "my-model"


def write_project(folder: Path, *, example: str | None, force: bool) -> list[Path]:
    """Write mlci.yaml (or the example project of that name); returns the files written."""
    if example is not None:
        files = example_files(example)
    else:
        files = {"mlci.yaml": CONFIG_TEMPLATE.format(name=model_name_for(folder))}
    gitignore = files.pop(".gitignore", f"{_IGNORED}\n")
    existing = sorted(name for name in files if (folder / name).exists())
    if existing and not force:
        raise UsageError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''} in "
            f"{folder}; use --force to overwrite"
        )
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if _extend_gitignore(folder / ".gitignore", gitignore):
        written.append(folder / ".gitignore")
    return written


def _extend_gitignore(path: Path, wanted: str) -> bool:
    """Add the lines of `wanted` that .gitignore lacks; keeps the user's own lines."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    have = {line.strip() for line in current.splitlines()}
    missing = [line for line in wanted.splitlines() if line.strip() and line.strip() not in have]
    if not missing:
        return False
    joined = current + ("" if current.endswith("\n") or not current else "\n") + "\n".join(missing)
    path.write_text(joined + "\n", encoding="utf-8")
    return True


_DVC_STEPS = """
Next: commit the project with its data tracked by DVC (a local remote beside it), and
run the pipeline once on the main branch:
  git init -b main && dvc init -q && dvc remote add -d local ../{name}-dvc-remote
  python make_data.py && dvc add data/digits.csv && dvc push
  git add . && git commit -m 'Example project with DVC'
  mlci run
Run `mlci run` again: DVC reuses the training, and the report says so (docs/data.md).
"""


def init_command(*, folder: Path, example: str | None, force: bool) -> int:
    written = write_project(folder, example=example, force=force)
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
    if example == "torch":
        sys.stdout.write("\nThe torch example needs PyTorch: pip install 'mlci[torch]'\n")
    if example == "sklearn-dvc":
        sys.stdout.write(_DVC_STEPS.format(name=model_name_for(folder)))
    elif example is not None:
        sys.stdout.write(
            "\nNext: commit the project and run the pipeline once on the main branch:\n"
            "  git init -b main && git add . && git commit -m 'Example project'\n"
            "  mlci run\n"
        )
    else:
        sys.stdout.write(
            "\nNext: edit mlci.yaml (train.command, metrics, gate.rules), then `mlci run`.\n"
        )
    return EXIT_OK
