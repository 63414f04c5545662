"""`mlci init`: the files it writes load, run, and never overwrite silently."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlci import __version__, git, pipeline
from mlci.cli import main
from mlci.commands.init import (
    InitOptions,
    dvc_remote_type,
    init_command,
    resolve_options,
    write_project,
)
from mlci.config import load_config
from mlci.console import Console
from mlci.errors import UsageError
from tests import dvc_pipeline
from tests.conftest import CONFIG
from tests.golden import compare_golden
from tests.linters import actionlint, zizmor


def test_init_writes_a_valid_config_named_after_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "Fraud Detector"
    folder.mkdir()
    (folder / "train.py").write_text("print('training')\n")
    assert init_command(folder=folder, example=None, force=False) == 0

    config = load_config(folder / "mlci.yaml")
    assert config.model_name == "Fraud-Detector"
    assert config.train is not None and config.train.command == "python train.py"
    assert [rule.metric for rule in config.gate.rules] == ["accuracy"]
    assert ".mlci/" in (folder / ".gitignore").read_text().splitlines()


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
    write_project(tmp_path, example="sklearn", force=True)
    assert "digits-classifier" in (tmp_path / "mlci.yaml").read_text()


def test_an_existing_config_is_kept_without_example(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text("mine: true\n")
    assert write_project(tmp_path, example=None, force=True) == [tmp_path / ".gitignore"]
    assert (tmp_path / "mlci.yaml").read_text() == "mine: true\n"


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


# -- the CI workflow ---------------------------------------------------------------------------

WORKFLOW = Path(".github/workflows/ml-pipeline.yml")


def _init(folder: Path, **options: object) -> int:
    return init_command(
        folder=folder,
        example=None,
        force=bool(options.pop("force", False)),
        options=InitOptions(**options),  # type: ignore[arg-type]
    )


def test_init_writes_the_workflow_that_follows_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git.init_repo(tmp_path)
    (tmp_path / "mlci.yaml").write_text(
        CONFIG.replace("timeout_minutes: 1", "timeout_minutes: 30").replace(
            "promote_on: [main]", "promote_on: [trunk]"
        )
    )

    assert _init(tmp_path, forge="github", gpu="", free_disk=False, fork_safe=False) == 0

    data = yaml.safe_load((tmp_path / WORKFLOW).read_text())
    assert data["jobs"]["main"]["timeout-minutes"] == 45
    assert data[True]["push"] == {"branches": ["trunk"]}
    assert "kept mlci.yaml" in capsys.readouterr().out.replace(str(tmp_path) + "/", "")
    assert (tmp_path / "mlci.yaml").read_text().count("timeout_minutes: 30") == 1


def test_a_crafted_branch_name_stays_one_branch_of_the_workflow(tmp_path: Path) -> None:
    # git accepts "dev,hotfix#x"; written plain into `branches: [...]` it becomes two.
    git.init_repo(tmp_path)
    crafted = 'promote_on: [main, "dev,hotfix#x", "{x}"]'
    (tmp_path / "mlci.yaml").write_text(CONFIG.replace("promote_on: [main]", crafted))

    assert _init(tmp_path, forge="github", gpu="", free_disk=False, fork_safe=False) == 0

    data = yaml.safe_load((tmp_path / WORKFLOW).read_text())
    branches = ["main", "dev,hotfix#x", "{x}"]
    assert data[True] == {"pull_request": None, "push": {"branches": branches}}
    linted = actionlint([tmp_path / WORKFLOW], set(), tmp_path)
    assert linted.returncode == 0, linted.stdout


def test_a_branch_name_git_refuses_never_reaches_the_workflow(tmp_path: Path) -> None:
    git.init_repo(tmp_path)
    crafted = 'promote_on: ["main]\\n  workflow_dispatch:\\n#"]'
    (tmp_path / "mlci.yaml").write_text(CONFIG.replace("promote_on: [main]", crafted))

    with pytest.raises(UsageError) as refused:
        _init(tmp_path, forge="github", gpu="", free_disk=False, fork_safe=False)

    assert refused.value.exit_code == 2
    assert "registry.promote_on: main]\\n  workflow_dispatch:\\n# is not a branch name" in (
        refused.value.message
    )
    assert not (tmp_path / WORKFLOW).exists()


def test_a_project_in_a_subfolder_gets_the_workflow_at_the_repository_top(tmp_path: Path) -> None:
    git.init_repo(tmp_path)
    project = tmp_path / "models" / "churn"

    _init(project, forge="github", gpu="", free_disk=False, fork_safe=False)

    assert (project / "mlci.yaml").is_file()
    assert not (project / ".github").exists()
    data = yaml.safe_load((tmp_path / WORKFLOW).read_text())
    job = data["jobs"]["pull-request"]
    assert job["defaults"] == {"run": {"working-directory": "models/churn"}}
    assert job["steps"][-1]["with"]["path"] == "models/churn/.mlci/out/"


def test_a_changed_workflow_is_shown_as_a_diff_and_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _init(tmp_path, forge="github", gpu="", free_disk=False, fork_safe=False)
    before = (tmp_path / WORKFLOW).read_text()
    capsys.readouterr()

    with pytest.raises(UsageError) as refused:
        _init(tmp_path, forge="github", gpu="", free_disk=True, fork_safe=False)

    out = capsys.readouterr().out
    assert "--force" in refused.value.message and "nothing was written" in refused.value.message
    assert "+          sudo rm -rf /usr/share/dotnet" in out
    assert out.startswith("--- ") and "(mlci init)" in out
    assert (tmp_path / WORKFLOW).read_text() == before

    _init(tmp_path, forge="github", gpu="", free_disk=True, fork_safe=False, force=True)
    assert "sudo rm -rf" in (tmp_path / WORKFLOW).read_text()


def test_running_init_again_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {"forge": "github", "gpu": "self-hosted:gpu", "fork_safe": True}
    _init(tmp_path, free_disk=False, **options)
    capsys.readouterr()
    assert _init(tmp_path, free_disk=False, **options) == 0
    out = capsys.readouterr().out
    assert "wrote" not in out and out.count("unchanged") == 3


def test_fork_safe_writes_the_report_workflow(tmp_path: Path) -> None:
    _init(tmp_path, forge="github", gpu="", free_disk=False, fork_safe=True)
    report = tmp_path / ".github" / "workflows" / "ml-report.yml"
    assert "workflow_run:" in report.read_text()


def test_gitlab_writes_gitlab_ci_only(tmp_path: Path) -> None:
    _init(tmp_path, forge="gitlab", gpu="self-hosted:gpu", free_disk=False, fork_safe=False)
    data = yaml.safe_load((tmp_path / ".gitlab-ci.yml").read_text())
    assert data[".mlci"]["tags"] == ["gpu"]
    assert not (tmp_path / ".github").exists()


def test_the_dvc_remote_of_the_repository_brings_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git.init_repo(tmp_path)
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        [dvc, "remote", "add", "-d", "store", "s3://bucket/path"], cwd=tmp_path, check=True
    )

    _init(tmp_path, forge="github", gpu="", free_disk=False, fork_safe=False)

    text = (tmp_path / WORKFLOW).read_text()
    assert "AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}" in text
    assert '"mlci[mlflow,dvc,plots]==' in text and '"dvc[s3]"' in text
    assert "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("forge", "readers", "writers"),
    [
        (
            "github",
            "repository secrets, read-only credentials for pull requests: "
            "AWS_READONLY_ACCESS_KEY_ID, AWS_READONLY_SECRET_ACCESS_KEY, "
            "MLFLOW_READER_USERNAME, MLFLOW_READER_PASSWORD",
            "secrets of the environment mlci-promote (Settings > Environments, deployment "
            "branches: trunk), for promotion: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD",
        ),
        (
            "gitlab",
            "for merge requests, read-only credentials: AWS_READONLY_ACCESS_KEY_ID, "
            "AWS_READONLY_SECRET_ACCESS_KEY, MLFLOW_READER_USERNAME, MLFLOW_READER_PASSWORD",
            "for trunk, protected (the write access): AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD",
        ),
    ],
)
def test_init_says_which_secrets_are_read_only_and_where_the_write_ones_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], forge: str, readers: str, writers: str
) -> None:
    git.init_repo(tmp_path)
    config = CONFIG.replace("promote_on: [main]", "promote_on: [trunk]").replace(
        "  model: model/", "  model: model/\n  tracking_uri: https://mlflow.example.com"
    )
    (tmp_path / "mlci.yaml").write_text(config)

    _init(tmp_path, forge=forge, gpu="", free_disk=False, fork_safe=False, dvc_remote="s3")

    out = capsys.readouterr().out
    assert readers in out
    assert writers in out


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("s3://b/p", "s3"),
        ("gs://b/p", "gs"),
        ("azure://c/p", "azure"),
        ("../store", "local"),
        ("ssh://host/p", "ssh"),
        ("https://files.example.com/dvc", "http"),
        ("https://files.example.com/dvc%20store", "http"),  # no configparser interpolation
        ("hdfs://host/p", "none"),
    ],
)
def test_dvc_remote_types_are_read_from_the_dvc_config(tmp_path: Path, url: str, kind: str) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        f"[core]\n    remote = main\n['remote \"other\"']\n    url = /tmp/x\n"
        f"['remote \"main\"']\n    url = {url}\n"
    )
    assert dvc_remote_type(tmp_path) == kind


def test_the_example_installs_its_training_dependencies(tmp_path: Path) -> None:
    init_command(
        folder=tmp_path,
        example="sklearn",
        force=False,
        options=InitOptions(forge="github", gpu="", free_disk=False, fork_safe=False),
    )
    assert '"mlci[mlflow,plots,example]==' in (tmp_path / WORKFLOW).read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"forge": "gitlab", "fork_safe": True}, "--fork-safe is for GitHub Actions"),
        ({"forge": "gitlab", "free_disk": True}, "--free-disk is for GitHub Actions"),
        ({"gpu": "self-hosted", "free_disk": True}, "must not run on a self-hosted machine"),
        ({"gpu": "gpu runner"}, "is not a runner label"),
        ({"action": "acme/mlci@v1"}, "pin mlci's action by its full commit SHA"),
        ({"python_version": "3.11\nx: y"}, "expected a version like 3.11"),
        ({"action": f"acme/mlci@{'a' * 40}", "dvc_remote": "http"}, "leave out --action"),
    ],
)
def test_options_that_cannot_work_are_refused(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    settings = {"forge": "github", "gpu": "", "free_disk": False, "fork_safe": False, **options}
    with pytest.raises(UsageError) as refused:
        _init(tmp_path, **settings)
    assert message in refused.value.message
    assert not (tmp_path / "mlci.yaml").exists()


def test_the_questions_fill_what_the_flags_left_open() -> None:
    asked: list[str] = []
    answers = iter(["", "self-hosted:gpu,a100", "y"])

    def ask(question: str, default: str) -> str:
        asked.append(question)
        return next(answers)

    options = resolve_options(InitOptions(free_disk=None), ask)

    assert options.forge == "github"
    assert options.gpu == "self-hosted:gpu,a100"
    assert options.free_disk is False  # never asked on a self-hosted runner
    assert options.fork_safe is True
    assert len(asked) == 3


def test_without_a_terminal_nothing_is_asked(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mlci", "init", "--dir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no prompt
    assert (tmp_path / WORKFLOW).is_file()
    assert (tmp_path / "mlci.yaml").is_file()


def test_the_cli_prints_the_diff_and_exits_2(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlci", "init", "--yes", "--dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run().returncode == 0
    refused = run("--gpu", "gpu-4core")
    assert refused.returncode == 2
    assert "+    runs-on: gpu-4core" in refused.stdout
    assert "use --force to overwrite" in refused.stderr.lower()
    assert run("--gpu", "gpu-4core", "--force").returncode == 0
    assert "gpu-4core" in (tmp_path / ".github" / "actionlint.yaml").read_text()


# -- reading the project (issue #16) ----------------------------------------------------------

GOLDEN = Path(__file__).parent / "golden" / "init"
PLOTS = """\
plots:
  - ROC:
      x: fpr
      y: {eval/plots/roc.json: tpr}
  - eval/plots/importance.png
"""


def _get_started(root: Path, *, branch: str = "main", dvc_yaml: str | None = None) -> Path:
    """The files of a project built like DVC's example-get-started (not reproduced)."""
    git.init_repo(root, branch=branch)
    for name, text in dvc_pipeline.STAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "dvc.yaml").write_text(dvc_yaml or dvc_pipeline.DVC_YAML + PLOTS)
    (root / "params.yaml").write_text(dvc_pipeline.PARAMS)
    (root / "src" / "requirements.txt").write_text("pyyaml\n")
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://bucket/get-started\n"
    )
    return root


def _run_init(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", "init", "--yes", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _versionless(text: str) -> str:
    return text.replace(__version__, "VERSION")


def test_a_dvc_project_gets_its_stages_metrics_params_model_data_and_requirements(
    tmp_path: Path,
) -> None:
    """Golden: mlci.yaml, the workflow and the summary for an example-get-started project.
    MLCI_UPDATE_GOLDEN=1 rewrites them after an intended change."""
    root = _get_started(tmp_path / "get-started")

    done = _run_init(root)

    assert done.returncode == 0, done.stderr
    compare_golden(GOLDEN / "dvc-get-started" / "mlci.yaml", (root / "mlci.yaml").read_text())
    compare_golden(
        GOLDEN / "dvc-get-started" / "ml-pipeline.yml", _versionless((root / WORKFLOW).read_text())
    )
    compare_golden(GOLDEN / "dvc-get-started" / "summary.txt", _versionless(done.stdout))
    config = load_config(root / "mlci.yaml")
    assert config.train is not None and config.train.command == "dvc repro"
    assert config.data.dvc and config.evaluate.metrics == ("eval/metrics.json",)
    assert config.registry.model == "model.pkl" and config.report.params == ("params.yaml",)
    assert config.report.sections == ("eval/plots/importance.png",)
    job = yaml.safe_load((root / WORKFLOW).read_text())["jobs"]["pull-request"]
    assert job["timeout-minutes"] == 60 + 30 + 15  # training + dvc pull + set-up
    assert "python -m pip install -r src/requirements.txt" in str(job["steps"])
    assert "AWS_SECRET_ACCESS_KEY" in job["steps"][-2]["env"]
    assert actionlint([root / WORKFLOW], set(), tmp_path).returncode == 0
    linted = zizmor(root / WORKFLOW)
    assert linted.returncode == 0, linted.stdout


def test_the_stages_the_user_names_are_the_training(tmp_path: Path) -> None:
    root = _get_started(tmp_path / "p")

    assert _run_init(root, "--stage", "train", "--stage", "evaluate").returncode == 0
    config = load_config(root / "mlci.yaml")
    assert config.train is not None and config.train.command == "dvc repro train evaluate"

    (root / "mlci.yaml").unlink()
    refused = _run_init(root, "--stage", "deploy")
    assert refused.returncode == 2
    assert "--stage deploy: dvc.yaml has no such stage" in refused.stderr
    assert "prepare, featurize, train, evaluate" in refused.stderr


@pytest.mark.parametrize(
    ("crafted", "message"),
    [
        ('"train\\nrun: curl x": {cmd: x}', 'the stage name "train\\nrun: curl x" is not'),
        ('train: {cmd: x, metrics: ["m\\u0007.json"]}', 'the metrics path "m\\u0007.json"'),
    ],
)
def test_a_crafted_dvc_yaml_is_refused_and_nothing_is_written(
    tmp_path: Path, crafted: str, message: str
) -> None:
    root = _get_started(tmp_path / "p", dvc_yaml=f"stages:\n  {crafted}\n")

    refused = _run_init(root)

    assert refused.returncode == 2, refused.stderr
    assert message in refused.stderr
    assert not (root / "mlci.yaml").exists() and not (root / WORKFLOW).exists()


def test_file_names_of_dvc_yaml_that_yaml_would_misread_stay_one_value(tmp_path: Path) -> None:
    odd = ["a: b #c.json", "yes.json", "-x.json", "[x].json"]
    stage = f'  evaluate:\n    cmd: x\n    metrics: {json.dumps(odd)}\n    outs: ["m: #1.pkl"]\n'
    root = _get_started(tmp_path / "p", dvc_yaml=f"stages:\n{stage}")

    assert _run_init(root).returncode == 0

    config = load_config(root / "mlci.yaml")
    assert config.evaluate.metrics == tuple(odd)
    assert config.registry.model == "m: #1.pkl"


def test_a_master_repository_promotes_on_master(tmp_path: Path) -> None:
    root = tmp_path / "p"
    git.init_repo(root, branch="master")
    (root / "train.py").write_text("print('training')\n")

    done = _run_init(root)

    assert done.returncode == 0, done.stderr
    assert load_config(root / "mlci.yaml").registry.promote_on == ("master",)
    data = yaml.safe_load((root / WORKFLOW).read_text())
    assert data[True]["push"] == {"branches": ["master"]}
    assert "default branch: master (the checked-out branch)" in done.stdout


def test_the_default_branch_is_origins_head_not_the_checked_out_one(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    git.init_repo(upstream, branch="trunk")
    (upstream / "train.py").write_text("print('training')\n")
    git.commit_all(upstream, "first")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    git.switch(clone, "feature", create=True)

    assert _run_init(clone).returncode == 0

    assert load_config(clone / "mlci.yaml").registry.promote_on == ("trunk",)


def test_a_kept_config_that_promotes_elsewhere_is_warned_about(tmp_path: Path) -> None:
    root = tmp_path / "p"
    git.init_repo(root, branch="master")
    (root / "mlci.yaml").write_text(CONFIG)

    done = _run_init(root)

    assert done.returncode == 0, done.stderr
    assert "the default branch is master (the checked-out branch), but registry.promote_on" in (
        done.stdout
    )


def test_the_requirements_of_the_project_are_installed_by_each_ci(tmp_path: Path) -> None:
    root = tmp_path / "p"
    git.init_repo(root)
    (root / "train.py").write_text("print('training')\n")
    (root / "src").mkdir()
    (root / "src" / "requirements.txt").write_text("torch\n")
    (root / "requirements-extra.txt").write_text("pandas\n")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "1"\n'
        '[project.optional-dependencies]\ntrain = ["xgboost"]\ndev = ["pytest"]\n'
    )
    wanted = 'python -m pip install -r requirements-extra.txt -r src/requirements.txt ".[train]"'

    assert _run_init(root).returncode == 0
    steps = yaml.safe_load((root / WORKFLOW).read_text())["jobs"]["main"]["steps"]
    install = next(step["run"] for step in steps if step.get("name") == "Install mlci")
    assert wanted in install.splitlines()
    assert "--index-url https://download.pytorch.org/whl/cpu" in install  # src/ names torch

    assert _run_init(root, "--forge", "gitlab").returncode == 0
    gitlab = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    assert wanted in gitlab[".mlci"]["before_script"]


def test_a_project_with_nothing_to_read_gets_a_template_to_fill_in(tmp_path: Path) -> None:
    root = tmp_path / "p"
    git.init_repo(root, branch="develop")
    (root / "README.md").write_text("a model, some day\n")

    done = _run_init(root)

    assert done.returncode == 0, done.stderr
    text = (root / "mlci.yaml").read_text()
    assert "# train:" in text and "FILL IN: the command that trains" in text
    config = load_config(root / "mlci.yaml")
    assert config.train is None and config.registry.model is None
    assert config.registry.promote_on == ("develop",)
    assert "No training found (no dvc.yaml, train.py, src/train.py, scripts/train.py)" in (
        done.stdout
    )
    fill = "fill in mlci.yaml (train.command, evaluate.metrics, gate.rules, registry.model)"
    assert fill in done.stdout


@pytest.mark.parametrize(
    ("metrics", "rules"),
    [
        # example-get-started's shape: each metric on the training and the test data
        (
            {"avg_prec": {"train": 0.97, "test": 0.94}, "roc_auc": {"train": 0.98, "test": 0.96}},
            [("avg_prec.test", "max_drop", 0.01), ("roc_auc.test", "max_drop", 0.01)],
        ),
        (
            {"accuracy": 0.9, "val_loss": 0.31, "epoch": 12},
            [("accuracy", "max_drop", 0.01), ("val_loss", "max_rise_pct", 5)],
        ),
        ({"throughput": 120.0}, []),  # no word says which way is better: left to fill in
    ],
)
def test_rules_are_proposed_from_the_names_in_a_metrics_file_a_past_run_left(
    tmp_path: Path, metrics: dict[str, object], rules: list[tuple[str, str, float]]
) -> None:
    root = _get_started(tmp_path / "get-started")
    (root / "eval").mkdir(exist_ok=True)
    (root / "eval" / "metrics.json").write_text(json.dumps(metrics))

    done = _run_init(root)

    assert done.returncode == 0, done.stderr
    config = load_config(root / "mlci.yaml")
    found = [
        (rule.metric, key, value)
        for rule in config.gate.rules
        for key, value in (("max_drop", rule.max_drop), ("max_rise_pct", rule.max_rise_pct))
        if value is not None
    ]
    text = (root / "mlci.yaml").read_text()
    if rules:
        assert found == rules
        assert "CHECK: from the metrics files' names" in text
        assert "Next: check the lines of mlci.yaml marked CHECK" in done.stdout
        assert "could not read everything" not in text  # nothing left to fill in
    else:
        assert found == [("accuracy", "max_drop", 0.01)]  # the template's example
        assert "FILL IN: the metrics that must not get worse" in text
