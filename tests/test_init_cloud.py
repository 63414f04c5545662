"""`mlci init --gpu ray|skypilot`: the job stays on a hosted runner, the training goes to a
cloud GPU; the workflow logs in keylessly (never for a fork's pull request), the engine's
config is written with comments, and actionlint and zizmor find nothing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlci import git
from mlci.commands.init import InitOptions, init_command
from mlci.config import load_config
from mlci.core import project, workflow
from tests.conftest import CONFIG
from tests.linters import actionlint, schema, zizmor

WORKFLOW = Path(".github/workflows/ml-pipeline.yml")
FORK_RULE = "github.event.pull_request.head.repo.full_name == github.repository"


def init(folder: Path, engine: str, *, example: str | None = "torch", **more: object) -> None:
    git.init_repo(folder)
    options = InitOptions(forge="github", gpu=engine, free_disk=False, **more)  # type: ignore[arg-type]
    assert init_command(folder=folder, example=example, force=False, options=options) == 0


@pytest.mark.parametrize("engine", ["ray", "skypilot"])
@pytest.mark.parametrize("fork_safe", [False, True])
def test_the_workflow_passes_actionlint_and_zizmor(
    tmp_path: Path, engine: str, fork_safe: bool
) -> None:
    init(tmp_path, engine, fork_safe=fork_safe)
    files = sorted((tmp_path / ".github" / "workflows").glob("*.yml"))

    linted = actionlint(files, set(), tmp_path)
    audited = zizmor(tmp_path / ".github" / "workflows")
    pedantic = zizmor(tmp_path / ".github" / "workflows", extra=("--persona", "auditor"))

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert audited.returncode == 0 and "No findings to report" in audited.stdout, audited.stdout
    assert pedantic.returncode == 0, pedantic.stdout


@pytest.mark.parametrize("engine", ["ray", "skypilot"])
def test_the_job_stays_on_a_hosted_runner_and_only_a_fork_gets_no_log_in(
    tmp_path: Path, engine: str
) -> None:
    init(tmp_path, engine)
    text = (tmp_path / WORKFLOW).read_text()
    jobs = yaml.safe_load(text)["jobs"]

    for name in ("pull-request", "main"):
        job = jobs[name]
        login = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
        assert job["runs-on"] == "ubuntu-latest"
        assert job["permissions"]["id-token"] == "write"
        assert job["timeout-minutes"] == 20 + workflow.SETUP_MINUTES + workflow.PROVISION_MINUTES
        assert login["with"]["role-to-assume"] == "${{ vars.MLCI_AWS_ROLE }}"
        assert login["uses"].split("@")[1] == workflow.KEYLESS_PINS[login["uses"].split("@")[0]][0]
        assert login.get("if") == (FORK_RULE if name == "pull-request" else None)
    assert f'"mlci[mlflow,plots,torch,{engine}]==' in text
    assert "download.pytorch.org" not in text  # the runner never trains: no torch there
    assert "secrets." not in text  # no key: the log-in is keyless


def test_ray_gets_its_keys_in_mlci_yaml_and_a_cluster_config_ray_accepts(tmp_path: Path) -> None:
    init(tmp_path, "ray")

    config = load_config(tmp_path / "mlci.yaml")
    cluster = yaml.safe_load((tmp_path / project.RAY_CLUSTER).read_text())

    assert config.train is not None and config.train.on == "ray"
    assert config.train.ray is not None and config.train.ray.cluster == project.RAY_CLUSTER
    assert config.train.storage == project.STORAGE_PLACEHOLDER
    assert config.train.resources.gpus == 1
    assert cluster["cluster_name"].startswith("mlci-")
    assert cluster["idle_timeout_minutes"] == 10 and cluster["max_workers"] == 1
    assert cluster["available_node_types"]["gpu"]["min_workers"] == 0
    spec = importlib.util.find_spec("ray")
    if spec is None or spec.origin is None:
        pytest.skip("Ray is not installed: its cluster-config schema is not here")
    schema = Path(spec.origin).parent / "autoscaler" / "ray-schema.json"
    jsonschema.validate(cluster, json.loads(schema.read_text()))


@pytest.mark.parametrize("fork_safe", [False, True])
def test_ray_offers_a_running_clusters_address_from_a_repository_variable(
    tmp_path: Path, fork_safe: bool
) -> None:
    init(tmp_path, "ray", fork_safe=fork_safe)
    path = tmp_path / WORKFLOW
    offered = "RAY_ADDRESS: ${{ vars.MLCI_RAY_ADDRESS }}"
    assert f"# {offered}" in path.read_text()
    assert "RAY_ADDRESS" not in str(yaml.safe_load(path.read_text()))  # only offered

    # Taken up: the lines uncommented, train.ray.cluster removed from mlci.yaml.
    text = path.read_text().replace("        # env:\n", "        env:\n")
    path.write_text(text.replace(f"#   {offered}", f"  {offered}").replace(f"# {offered}", offered))
    config = (tmp_path / "mlci.yaml").read_text()
    cluster = next(line for line in config.splitlines() if "cluster: " in line)
    (tmp_path / "mlci.yaml").write_text(config.replace(cluster + "\n", ""))

    for job in yaml.safe_load(path.read_text())["jobs"].values():
        run = next(step for step in job["steps"] if "mlci run" in step.get("run", ""))
        assert run["env"]["RAY_ADDRESS"] == "${{ vars.MLCI_RAY_ADDRESS }}"
    linted = actionlint([path], set(), tmp_path)
    audited = zizmor(tmp_path / ".github" / "workflows")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert audited.returncode == 0 and "No findings to report" in audited.stdout, audited.stdout
    train = load_config(tmp_path / "mlci.yaml").train
    assert train is not None and train.ray is not None
    assert (train.ray.address, train.ray.cluster) == (None, None)  # RAY_ADDRESS, at run time


def test_skypilot_gets_its_keys_in_mlci_yaml_and_a_gcp_log_in_to_choose(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('training')\n")
    init(tmp_path, "skypilot", example=None)

    config = load_config(tmp_path / "mlci.yaml")
    text = (tmp_path / WORKFLOW).read_text()

    assert config.train is not None and config.train.command == "python train.py"
    assert config.train.on == "skypilot" and config.train.skypilot is not None
    assert config.train.skypilot.spot and config.train.skypilot.autostop_minutes == 10
    assert "# - uses: google-github-actions/auth@" in text
    assert not (tmp_path / project.RAY_CLUSTER).exists()


def test_the_summary_says_what_to_set_up_and_a_kept_config_gets_the_keys_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mlci.yaml").write_text(CONFIG)
    init(tmp_path, "skypilot", example=None)

    out = capsys.readouterr().out

    assert "kept mlci.yaml" in out.replace(str(tmp_path) + "/", "")
    assert "    on: skypilot" in out  # the keys to add to the kept mlci.yaml
    assert "MLCI_AWS_ROLE" in out and "MLCI_AWS_REGION" in out
    assert "train.storage" in out and "SKYPILOT_API_SERVER_ENDPOINT" in out
    assert "`mlci gpu down`" in out
    assert "on: skypilot" not in (tmp_path / "mlci.yaml").read_text()


@pytest.mark.parametrize("engine", ["ray", "skypilot"])
def test_gitlab_logs_in_with_its_oidc_token_and_passes_its_schema(
    tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    git.init_repo(tmp_path)
    options = InitOptions(forge="gitlab", gpu=engine, free_disk=False, fork_safe=False)
    assert init_command(folder=tmp_path, example="torch", force=False, options=options) == 0
    path = tmp_path / workflow.GITLAB_CI
    job = yaml.safe_load(path.read_text())[".mlci"]

    checked = schema("vendor.gitlab-ci", path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert job["id_tokens"] == {"MLCI_AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}
    assert job["variables"]["AWS_ROLE_ARN"] == "$MLCI_AWS_ROLE"
    assert job["before_script"][-1] == workflow.GITLAB_TOKEN_FILE_LINE
    assert job["timeout"] == f"{20 + workflow.SETUP_MINUTES + workflow.PROVISION_MINUTES}m"
    assert "tags" not in job  # a shared runner: the GPU is the cloud's
    assert "GitLab's OIDC provider" in capsys.readouterr().out
