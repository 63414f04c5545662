"""Hostile files from a pull request: each is exit 2 with a message naming the file and the
limit, and the report still lands in .mlci/out/ (issue #23, "Bounded input").

Every case runs `mlci gate` in a subprocess under a 1 GB address-space limit, so an alias
bomb or a 298 GiB allocation that comes back cannot take the machine down with it.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlci import git, pipeline
from mlci.console import Console
from mlci.errors import EXIT_USAGE
from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import Project

MEMORY_LIMIT = 1 << 30
MAX_FILE_BYTES = 50_000_000  # docs/config.md

CONFIG = textwrap.dedent(
    """\
    version: 1
    model: {name: tiny-model}
    evaluate:
      metrics: [metrics.json]
    gate:
      rules:
        - {metric: accuracy, min: 0.8}
    """
)

# 9 levels of 9 aliases: 342 bytes (the was 294) that PyYAML expands to 9**9
# (387 million) values.
ALIAS_BOMB = textwrap.dedent(
    """\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """
)
TOO_MANY = "more than 100,000 values once its aliases (*name) are expanded (mlci's limit)"


def _nested_json(depth: int) -> str:
    return '{"accuracy": 0.9, "deep": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


def _classes_csv(count: int) -> str:
    return "y_true,y_pred\n" + "".join(f"{n},{n}\n" for n in range(count))


@dataclass(frozen=True)
class Hostile:
    """A project's files (text, or a symbolic link when the value is a Path), and what
    `mlci gate` must say about them on stderr and in gate.json."""

    files: dict[str, str | bytes | Path]
    message: str
    config: str = CONFIG
    extra: tuple[str, ...] = field(default=())


def _metrics_as(name: str) -> str:
    return CONFIG.replace("[metrics.json]", f"[{name}]")


CASES: dict[str, Hostile] = {
    "alias bomb in params.yaml": Hostile(
        {"params.yaml": ALIAS_BOMB}, f"params.yaml: line 6, column 8: {TOO_MANY}"
    ),
    "alias bomb in a metrics YAML": Hostile(
        {"m.yaml": ALIAS_BOMB}, f"m.yaml: line 6, column 8: {TOO_MANY}", _metrics_as("m.yaml")
    ),
    "alias bomb in mlci.yaml": Hostile({}, TOO_MANY, CONFIG + "x-" + ALIAS_BOMB),
    "alias that repeats itself": Hostile(
        {"m.yaml": "accuracy: 0.9\nloop: &a [*a]\n"},
        "m.yaml: line 2, column 11: the alias *a repeats a list or mapping that contains it",
        _metrics_as("m.yaml"),
    ),
    "unhashable key in a metrics YAML": Hostile(
        {"m.yaml": "? [a, b]\n: 1\n"},
        "m.yaml: line 1, column 3: a key is a list; write a name or a number as the key",
        _metrics_as("m.yaml"),
    ),
    "unhashable key in mlci.yaml": Hostile(
        {}, "mlci.yaml, line 8, column 3: a key is a mapping", CONFIG + "? {a: 1}\n: 1\n"
    ),
    "JSON nested 100,000 deep": Hostile(
        {"metrics.json": _nested_json(100_000)},
        "metrics.json: nested more than 100 levels deep (mlci's limit)",
    ),
    "JSON nested 900 deep": Hostile(
        {"metrics.json": _nested_json(900)},
        "metrics.json: nested more than 100 levels deep (mlci's limit)",
    ),
    "YAML nested 100,000 deep": Hostile(
        {"m.yaml": "a: " + "[" * 100_000 + "]" * 100_000 + "\n"},
        "m.yaml: line 1, column 103: nested more than 100 levels deep (mlci's limit)",
        _metrics_as("m.yaml"),
    ),
    "400-digit integer in a metrics YAML": Hostile(
        {"m.yaml": f"accuracy: {'9' * 400}\n"},
        "m.yaml: line 1, column 11: a number of 400 characters; mlci reads numbers of up to "
        "100 characters",
        _metrics_as("m.yaml"),
    ),
    "400-digit integer in mlci.yaml": Hostile(
        {}, "a number of 400 characters", CONFIG.replace("min: 0.8", f"min: {'9' * 400}")
    ),
    "5,000-digit metric in JSON": Hostile(
        {"metrics.json": f'{{"accuracy": {"9" * 5000}}}'},
        "metrics.json: a number of 5,000 digits; mlci reads numbers of up to 100 digits",
    ),
    "5,000-digit metric in CSV": Hostile(
        {"m.csv": f"accuracy,{'9' * 5000}\n"},
        "m.csv: a number of 5,000 digits; mlci reads numbers of up to 100 digits",
        _metrics_as("m.csv"),
    ),
    "metrics.json is /dev/zero": Hostile(
        {"metrics.json": Path("/dev/zero")},
        "metrics.json: cannot read the metrics file: it is a device or a pipe, not a regular file",
    ),
    "metrics file over 50 MB": Hostile(
        {"metrics.json": b" " * (MAX_FILE_BYTES + 1)},
        "metrics.json: the metrics file is larger than 50 MB, mlci's limit for it",
    ),
    "200,000 classes in a predictions file": Hostile(
        {"predictions.csv": _classes_csv(200_000)},
        "predictions.csv: y_true and y_pred hold 200,000 classes; mlci computes metrics for "
        "at most 1,000. If the labels are numbers to predict, set evaluate.task: regression",
        CONFIG.replace("[metrics.json]", "[metrics.json]\n  predictions: predictions.csv"),
    ),
    "gate.resamples of 100,000,000": Hostile(
        {},
        "gate.resamples: expected a whole number of at most 100,000, got 100,000,000",
        CONFIG.replace("gate:\n", "gate:\n  resamples: 100000000\n"),
    ),
    "test.accuracy from nested and dotted keys": Hostile(
        {"m.yaml": "test:\n  accuracy: 0.9\ntest.accuracy: 0.5\n"},
        "m.yaml: the metric name 'test.accuracy' comes from both the nested keys test > "
        "accuracy and the key 'test.accuracy'; rename one of them",
        _metrics_as("m.yaml"),
    ),
    "a metric named twice in a CSV": Hostile(
        {"m.csv": "accuracy,0.9\nloss,0.2\naccuracy,0.5\n"},
        "m.csv: rows 1 and 3 both name the metric 'accuracy'; keep one of them",
        _metrics_as("m.csv"),
    ),
    "UTF-16 metrics file": Hostile(
        {"metrics.json": '{"accuracy": 0.9}'.encode("utf-16")},
        "metrics.json: the metrics file is UTF-16 text, not UTF-8; save it as UTF-8",
    ),
    "null key in mlci.yaml": Hostile(
        {}, "mlci.yaml: null: unknown key; expected one of version, model", CONFIG + "~: 1\n"
    ),
    "a date where mlci.yaml wants a number": Hostile(
        {},
        'mlci.yaml: gate.rules[0].min: expected a number, got "2024-01-31"',
        CONFIG.replace("min: 0.8", "min: 2024-01-31"),
    ),
    "ESC and U+202E in a key of mlci.yaml": Hostile(
        {}, "mlci.yaml: ev\\x1b[31m\\u202eil: unknown key", CONFIG + '"ev\\e[31m\\u202eil": 1\n'
    ),
    "registry.model outside the project": Hostile(
        {},
        "registry.model: /etc/hostname: give a path inside the project, relative to mlci.yaml",
        CONFIG + "registry: {model: /etc/hostname}\n",
    ),
    "registry.model that climbs out with ..": Hostile(
        {},
        "registry.model: ../outside: give a path inside the project, relative to mlci.yaml",
        CONFIG + "registry: {model: ../outside}\n",
    ),
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _gate(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlci", "gate", "--no-baseline"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
        preexec_fn=_limit_memory,
    )


def _project(root: Path, config: str, files: dict[str, str | bytes | Path]) -> Path:
    root.mkdir()
    git.init_repo(root, branch="main")
    (root / ".gitignore").write_text(".mlci/\n")
    (root / "mlci.yaml").write_text(config)
    (root / "metrics.json").write_text('{"accuracy": 0.9}')
    for name, content in files.items():
        path = root / name
        path.unlink(missing_ok=True)
        if isinstance(content, Path):
            path.symlink_to(content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git.commit_all(root, "hostile")
    return root


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_hostile_file_is_exit_2_naming_the_file_and_the_limit(
    case: Hostile, tmp_path: Path
) -> None:
    root = _project(tmp_path / "project", case.config, case.files)

    result = _gate(root)

    assert result.returncode == EXIT_USAGE, result.stderr
    assert case.message in result.stderr
    assert "Traceback" not in result.stderr
    gate = json.loads((root / ".mlci" / "out" / "gate.json").read_text())
    assert case.message in gate["error"]["message"]


def test_plain_params_and_metrics_yaml_still_work(tmp_path: Path) -> None:
    params = textwrap.dedent(
        """\
        train:
          lr: 1e-05
          layers: [64, 32]
          released: 2024-01-31
        defaults: &defaults {seed: 1}
        eval: *defaults
        """
    )
    metrics = "accuracy: 0.9\ntest:\n  f1: {cat: 0.8, dog: 0.7}\nloss: 2.5e-01\n"
    root = _project(
        tmp_path / "project", _metrics_as("m.yaml"), {"params.yaml": params, "m.yaml": metrics}
    )

    result = _gate(root)

    assert result.returncode == 0, result.stderr
    report = json.loads((root / ".mlci" / "out" / "report.json").read_text())
    assert report["params"] == {
        "train.lr": "1e-05",
        "train.layers.0": "64",
        "train.layers.1": "32",
        "train.released": "2024-01-31",
        "defaults.seed": "1",
        "eval.seed": "1",
    }


LEAKING_TRAINING = textwrap.dedent(
    """\
    import json, os, pathlib
    pathlib.Path("metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/model.bin").write_text("weights")
    os.symlink("../../secret.txt", "model/secret.txt")
    """
)


@pytest.mark.parametrize(
    ("model", "shown"),
    [("model/", "registry.model: model/ (secret.txt) "), ("model/secret.txt", "registry.model:")],
)
def test_a_model_with_a_link_out_of_the_project_is_not_registered(
    project: Project, model: str, shown: str
) -> None:
    secret = project.root.parent / "secret.txt"
    secret.write_text("not for the registry")
    project.write("train.py", LEAKING_TRAINING)
    project.write(
        "mlci.yaml", project.config.read_text().replace("model: model/", f"model: {model}")
    )
    project.commit("a model that links to /etc/hostname")

    outcome = pipeline.run(
        config_path=project.config, env=dict(os.environ), console=Console(io.StringIO())
    )

    assert outcome.exit_code == EXIT_USAGE
    message = project.gate_json()["error"]["message"]  # type: ignore[index]
    assert message.startswith(shown)
    assert f"leads outside the project (to {secret}): nothing was registered" in message
    registry = MlflowRegistry(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}")
    assert registry.by_alias("tiny-model", "champion") is None
