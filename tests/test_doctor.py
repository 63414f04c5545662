"""`mlci doctor` against real parts: git clones, DVC remotes, a sqlite registry, an HTTP
server answering /health; every check seen passing and failing; `mlci run` failing fast."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from mlci.config import load_config
from mlci.pipeline import preflight as doctor
from mlci.pipeline.preflight import CheckResult, DoctorContext, context_for, context_of
from tests.conftest import CONFIG, Project
from tests.test_gpu import FakeGpu

DVC = str(Path(sys.executable).parent / "dvc")


def _ctx(root: Path, env: dict[str, str] | None = None) -> DoctorContext:
    return context_for(root / "mlci.yaml", env or {})


def _status(result: CheckResult) -> tuple[str, str]:
    return result.status, result.line()


# -- disk ------------------------------------------------------------------------------------


def test_disk_passes_warns_and_fails_by_the_free_space(project: Project) -> None:
    ctx = _ctx(project.root)
    free = shutil.disk_usage(project.root).free

    assert doctor.check_disk(ctx, warn_below=free // 2, fail_below=free // 4).status == "ok"
    warned = doctor.check_disk(ctx, warn_below=free * 2, fail_below=free // 2)
    assert warned.status == "warn" and "mlci init --free-disk" in warned.line()
    failed = doctor.check_disk(ctx, warn_below=free * 4, fail_below=free * 2)
    assert failed.status == "fail" and "GB free" in failed.detail


# -- git history -----------------------------------------------------------------------------


def _shallow_clone(project: Project, tmp_path: Path) -> Path:
    project.write("notes.txt", "more history\n")
    project.commit("second")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{project.root}", str(clone)], check=True
    )
    return clone


def test_a_shallow_clone_fails_the_git_baseline_and_warns_auto(
    project: Project, tmp_path: Path
) -> None:
    clone = _shallow_clone(project, tmp_path)
    auto = doctor.check_git_history(_ctx(clone))
    assert auto.status == "warn" and "fetch-depth: 0" in auto.line()

    (clone / "mlci.yaml").write_text(CONFIG.replace("gate:\n", "gate:\n  baseline: git\n"))
    git_baseline = doctor.check_git_history(_ctx(clone))
    assert git_baseline.status == "fail"
    assert "shallow clone" in git_baseline.detail and "git fetch --unshallow" in git_baseline.line()


def test_the_whole_history_passes(project: Project) -> None:
    assert doctor.check_git_history(_ctx(project.root)).status == "ok"


def test_outside_git_the_git_baseline_fails(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(CONFIG.replace("gate:\n", "gate:\n  baseline: git\n"))
    result = doctor.check_git_history(_ctx(tmp_path))
    assert result.status == "fail" and "not in a git repository" in result.detail


def test_a_file_baseline_needs_no_history(tmp_path: Path) -> None:
    text = CONFIG.replace("gate:\n", "gate:\n  baseline: file:base.json\n")
    (tmp_path / "mlci.yaml").write_text(text)
    assert doctor.check_git_history(_ctx(tmp_path)).status == "skip"


# -- timeout ---------------------------------------------------------------------------------


def test_the_timeout_set_passes_and_unset_warns(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(CONFIG)
    assert _status(doctor.check_timeout(_ctx(tmp_path))) == (
        "ok",
        "timeout: train.timeout_minutes: 1",
    )
    (tmp_path / "mlci.yaml").write_text(CONFIG.replace("  timeout_minutes: 1\n", ""))
    unset = doctor.check_timeout(_ctx(tmp_path))
    assert unset.status == "warn" and "set train.timeout_minutes" in unset.line()


_GITHUB_JOB = """\
jobs:
  evaluate:
    runs-on: ubuntu-latest
    timeout-minutes: {minutes}
    steps:
      - uses: actions/checkout@v6
      - run: exec mlci run --no-promote
  lint:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - run: ruff check
"""
_GITLAB_JOBS = """\
.mlci:
  timeout: 1h 15m
main:
  extends: .mlci
  script: [mlci run]
"""


def test_a_workflow_that_stops_before_the_pull_and_the_training_end_warns(
    tmp_path: Path,
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    config = CONFIG.replace("timeout_minutes: 1", "timeout_minutes: 60")
    (tmp_path / "mlci.yaml").write_text(config + "data: {dvc: true}\n")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ml.yml").write_text(_GITHUB_JOB.format(minutes=75))
    (tmp_path / ".gitlab-ci.yml").write_text(_GITLAB_JOBS)

    warned = doctor.check_job_timeout(_ctx(tmp_path))

    assert warned.status == "warn"
    assert warned.detail == (
        ".github/workflows/ml.yml: job evaluate stops after 75; .gitlab-ci.yml: job main stops "
        "after 75 minutes, but the run needs 105 (train.timeout_minutes 60 + "
        "data.timeout_minutes 30 + 15 for set-up and the upload): the job would be killed "
        "before mlci stops and writes the report"
    )
    assert "raise the job's timeout to 105 minutes" in warned.line()
    (workflows / "ml.yml").write_text(_GITHUB_JOB.format(minutes=105))
    (tmp_path / ".gitlab-ci.yml").unlink()
    assert doctor.check_job_timeout(_ctx(tmp_path)).status == "ok"


def test_a_timeout_beyond_the_ci_jobs_limit_fails(tmp_path: Path) -> None:
    long = CONFIG.replace("timeout_minutes: 1", "timeout_minutes: 400")
    (tmp_path / "mlci.yaml").write_text(long)
    hosted = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "github-hosted"}
    github = doctor.check_timeout(_ctx(tmp_path, hosted))
    assert github.status == "fail" and "after 360 minutes" in github.detail
    self_hosted = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "self-hosted"}
    assert doctor.check_timeout(_ctx(tmp_path, self_hosted)).status == "ok"
    gitlab = doctor.check_timeout(_ctx(tmp_path, {"GITLAB_CI": "true", "CI_JOB_TIMEOUT": "3600"}))
    assert gitlab.status == "fail" and "below 60" in gitlab.line()


def test_the_data_pulls_limit_counts_against_the_ci_jobs_limit_too(tmp_path: Path) -> None:
    text = CONFIG.replace("timeout_minutes: 1", "timeout_minutes: 300")
    hosted = {"GITHUB_ACTIONS": "true", "RUNNER_ENVIRONMENT": "github-hosted"}
    (tmp_path / "mlci.yaml").write_text(text + "data:\n  dvc: true\n  timeout_minutes: 30\n")
    assert _status(doctor.check_timeout(_ctx(tmp_path, hosted))) == (
        "ok",
        "timeout: train.timeout_minutes: 300, data.timeout_minutes: 30",
    )
    (tmp_path / "mlci.yaml").write_text(text + "data:\n  dvc: true\n  timeout_minutes: 60\n")
    failed = doctor.check_timeout(_ctx(tmp_path, hosted))
    assert failed.status == "fail"
    assert "300 plus data.timeout_minutes 60, but a GitHub-hosted runner" in failed.detail
    assert failed.fix == (
        "set train.timeout_minutes + data.timeout_minutes below 360 "
        "(leave time for set-up and the upload)"
    )


# -- registry --------------------------------------------------------------------------------


def test_a_sqlite_registry_is_writable(project: Project) -> None:
    result = doctor.check_registry(_ctx(project.root))
    assert result.status == "ok" and "is writable" in result.detail


def test_a_sqlite_registry_that_is_not_a_database_fails(project: Project) -> None:
    (project.root / ".mlci" / "mlflow.db").write_text("not a database")
    result = doctor.check_registry(_ctx(project.root))
    assert result.status == "fail" and "not an SQLite database" in result.detail


def test_a_registry_under_a_file_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(CONFIG)
    (tmp_path / "blocker").write_text("a file, not a folder")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/blocker/sub/mlflow.db"}
    result = doctor.check_registry(_ctx(tmp_path, env))
    assert result.status == "fail"


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    api = True  # answers MLflow's registry API (the model is not registered), else 404 text
    seen_auth: ClassVar[list[str | None]] = []  # a new list per fixture

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization"))
        if self.api and self.path.startswith("/api/2.0/mlflow/registered-models/get?"):
            body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"OK" if code == 200 else b"unavailable")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    """A stand-in for `mlflow server`'s /health: 200 "OK" (or the status set)."""
    handler = type("Handler", (_Health,), {"seen_auth": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://user:s3cret@127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_an_mlflow_server_answering_health_passes_and_its_password_is_hidden(
    tmp_path: Path, health_server: tuple[str, type[_Health]]
) -> None:
    url, handler = health_server
    (tmp_path / "mlci.yaml").write_text(CONFIG)

    ok = doctor.check_registry(_ctx(tmp_path, {"MLFLOW_TRACKING_URI": url}))
    assert ok.status == "ok" and "s3cret" not in ok.line() and "***@127.0.0.1" in ok.line()
    assert ok.detail.endswith("answers; tiny-model is not registered yet")
    assert handler.seen_auth[-1] == "Basic dXNlcjpzM2NyZXQ="  # user:s3cret, as MLflow sends it

    handler.api = False  # /health answers, the API does not: a wrong path in the URI
    wrong = doctor.check_registry(_ctx(tmp_path, {"MLFLOW_TRACKING_URI": url}))
    assert wrong.status == "fail" and "status code 404" in wrong.detail
    assert wrong.fix is not None and "its path included" in wrong.fix

    handler.status = 503
    failed = doctor.check_registry(_ctx(tmp_path, {"MLFLOW_TRACKING_URI": url}))
    assert failed.status == "fail" and "503" in failed.detail and "s3cret" not in failed.line()


def test_a_server_that_does_not_answer_fails(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    (tmp_path / "mlci.yaml").write_text(CONFIG)
    result = doctor.check_registry(
        _ctx(tmp_path, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    )
    assert result.status == "fail" and "does not answer" in result.detail


# -- DVC -------------------------------------------------------------------------------------


def _dvc(root: Path, *args: str) -> None:
    subprocess.run([DVC, *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def dvc_project(project: Project) -> Project:
    _dvc(project.root, "init", "-q")
    _dvc(project.root, "config", "core.analytics", "false")
    return project


def test_a_project_without_dvc_skips_the_check(project: Project) -> None:
    assert doctor.check_dvc(_ctx(project.root)).status == "skip"


@pytest.mark.slow
def test_dvc_without_a_remote_fails(dvc_project: Project) -> None:
    result = doctor.check_dvc(_ctx(dvc_project.root))
    assert result.status == "fail" and "dvc remote add -d" in result.line()


@pytest.mark.slow
def test_a_local_remote_passes_when_its_folder_exists(dvc_project: Project, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _dvc(dvc_project.root, "remote", "add", "-d", "store", str(store))
    missing = doctor.check_dvc(_ctx(dvc_project.root))
    assert missing.status == "fail" and str(store) in missing.detail

    store.mkdir()
    assert doctor.check_dvc(_ctx(dvc_project.root)).status == "ok"


@pytest.mark.slow
def test_a_remote_with_a_long_path_or_a_relative_one_is_found(
    dvc_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `dvc remote list` wraps a long URL to the terminal's width (80 columns in a CI log):
    # the doctor reads the config files instead. A relative folder is relative to .dvc/,
    # as DVC reads it.
    monkeypatch.setenv("COLUMNS", "80")
    # A 76-character folder: with the remote's name and "(default)" the line is over 80,
    # so `dvc remote list` puts each column on a line of its own.
    store = tmp_path / ("f" * max(1, 76 - len(f"{tmp_path}//store"))) / "store"
    store.mkdir(parents=True)
    _dvc(dvc_project.root, "remote", "add", "-d", "far", str(store))
    result = doctor.check_dvc(_ctx(dvc_project.root))
    assert result.status == "ok" and f"'far' ({store})" in result.detail

    near = dvc_project.root.parent / "near-store"
    near.mkdir()
    _dvc(dvc_project.root, "remote", "add", "-f", "-d", "near", "../near-store")
    result = doctor.check_dvc(_ctx(dvc_project.root))
    assert result.status == "ok" and "'near'" in result.detail and "near-store" in result.detail


@pytest.mark.slow
def test_an_s3_remote_needs_credentials_in_the_environment(dvc_project: Project) -> None:
    _dvc(dvc_project.root, "remote", "add", "-d", "s3store", "s3://bucket/path")
    warned = doctor.check_dvc(_ctx(dvc_project.root))
    assert warned.status == "warn" and "AWS_SECRET_ACCESS_KEY" in warned.line()

    # With credentials, the remote itself is asked: here an endpoint where nothing listens.
    _dvc(dvc_project.root, "remote", "modify", "s3store", "endpointurl", "http://127.0.0.1:9")
    (dvc_project.root / "data.csv").write_text("x\n1\n")
    _dvc(dvc_project.root, "add", "-q", "data.csv")
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "hidden-value"}
    asked = doctor.check_dvc(_ctx(dvc_project.root, env))
    assert asked.status == "fail", asked.line()
    assert "hidden-value" not in asked.line() and "AKIAEXAMPLE" not in asked.line()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"},
            "the pull-request job of `mlci init` fills them from the repository secrets "
            "AWS_READONLY_ACCESS_KEY_ID and AWS_READONLY_SECRET_ACCESS_KEY",
        ),
        (
            {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"},
            "the main job of `mlci init` fills them from the secrets AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY of the environment mlci-promote",
        ),
        (
            {"GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "merge_request_event"},
            "the CI/CD variables AWS_READONLY_ACCESS_KEY_ID and AWS_READONLY_SECRET_ACCESS_KEY",
        ),
    ],
)
def test_missing_data_credentials_name_the_secret_of_this_job(
    project: Project, env: dict[str, str], named: str
) -> None:
    # GitHub gives a secret that does not exist as an empty variable.
    (project.root / ".dvc").mkdir()
    (project.root / ".dvc" / "config").write_text(
        "[core]\n    remote = store\n['remote \"store\"']\n    url = s3://bucket/path\n"
    )
    result = doctor.check_dvc(_ctx(project.root, {**env, "AWS_ACCESS_KEY_ID": ""}))
    assert result.status == "warn"
    assert named in result.line()


# -- forge token -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "status", "text"),
    [
        ({"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "ghs_secret"}, "ok", "GITHUB_TOKEN is set"),
        ({"GITHUB_ACTIONS": "true"}, "warn", "GITHUB_TOKEN: ${{ github.token }}"),
        ({"GITLAB_CI": "true", "GITLAB_TOKEN": "glpat-secret"}, "ok", "GITLAB_TOKEN is set"),
        ({"GITLAB_CI": "true", "CI_JOB_TOKEN": "job-secret"}, "warn", "project access token"),
        ({"GITLAB_CI": "true"}, "warn", "masked CI/CD variable GITLAB_TOKEN"),
        ({}, "skip", ".mlci/out/comment.md"),
    ],
)
def test_the_forge_token_is_checked_for_presence_never_shown(
    tmp_path: Path, env: dict[str, str], status: str, text: str
) -> None:
    (tmp_path / "mlci.yaml").write_text(CONFIG)
    result = doctor.check_forge_token(_ctx(tmp_path, env))
    assert result.status == status and text in result.line()
    assert "secret" not in result.line()


# -- GPU -------------------------------------------------------------------------------------


def test_no_gpu_asked_for_skips(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(CONFIG)
    assert doctor.check_gpu(_ctx(tmp_path)).status == "skip"


CUDA_CONFIG = CONFIG.replace("  timeout_minutes: 1\n", "  timeout_minutes: 1\n  device: cuda\n")


def test_a_gpu_asked_for_without_nvidia_smi_fails(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(CUDA_CONFIG)
    result = doctor.check_gpu(_ctx(tmp_path, {"PATH": str(tmp_path)}))
    assert result.status == "fail" and "nvidia-smi was not found" in result.detail
    assert "mlci init --gpu" in result.line()


@pytest.fixture
def fake_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    return FakeGpu(tmp_path / "fake-gpu", monkeypatch)


@pytest.mark.usefixtures("fake_gpu")
def test_a_gpu_listed_by_nvidia_smi_passes(tmp_path: Path) -> None:
    """The stand-in nvidia-smi of tests/test_device.py, answering like the real one."""
    (tmp_path / "mlci.yaml").write_text(CUDA_CONFIG)
    result = doctor.check_gpu(_ctx(tmp_path, dict(os.environ)))
    assert _status(result) == ("ok", "gpu: GPU 0: NVIDIA H200 (driver 580.159.03, CUDA 13.0)")

    hidden = doctor.check_gpu(_ctx(tmp_path, {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}))
    assert hidden.status == "fail" and "unset CUDA_VISIBLE_DEVICES" in hidden.line()


# -- the command -----------------------------------------------------------------------------


def _doctor(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", "doctor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_doctor_prints_one_line_per_check_and_exits_0(project: Project) -> None:
    completed = _doctor(project.root)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert [line.split()[1].rstrip(":") for line in lines] == [
        "config",
        "disk",
        "git",
        "baseline",
        "timeout",
        "job",
        "mlci",  # mlci install
        "registry",
        "registry",  # registry consistency
        "dvc",
        "forge",
        "forge",
        "gpu",
        "cloud",  # cloud gpu: what train.on's engine runs of mlci's
    ]
    assert "forge access: a local run: nothing is posted" in completed.stdout


def test_doctor_json_and_exit_3_when_a_check_fails(project: Project) -> None:
    (project.root / "blocker").write_text("a file where the registry's folder should be")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{project.root}/blocker/mlflow.db"}
    completed = _doctor(project.root, "--json", env=env)
    assert completed.returncode == 3
    data = json.loads(completed.stdout)
    assert data["ok"] is False
    registry = next(check for check in data["checks"] if check["name"] == "registry")
    assert registry["status"] == "fail" and "tracking_uri" in registry["fix"]
    assert set(registry) == {"name", "status", "detail", "fix"}
    warned = _doctor(project.root, "--json", env={"GITLAB_CI": "true"})  # no GITLAB_TOKEN
    assert warned.returncode == 0 and json.loads(warned.stdout)["ok"] is True


def test_doctor_without_a_config_fails_and_names_mlci_init(tmp_path: Path) -> None:
    completed = _doctor(tmp_path)
    assert completed.returncode == 3
    assert completed.stdout.splitlines()[0].startswith("fail  config:")
    assert "mlci init" in completed.stdout


# -- mlci run fails fast ---------------------------------------------------------------------


def test_run_stops_before_training_in_a_shallow_clone_with_a_git_baseline(
    project: Project, tmp_path: Path
) -> None:
    clone = _shallow_clone(project, tmp_path)
    (clone / "mlci.yaml").write_text(CONFIG.replace("gate:\n", "gate:\n  baseline: git\n"))

    command = [sys.executable, "-m", "mlci", "run"]
    completed = subprocess.run(command, cwd=clone, capture_output=True, text=True, timeout=120)

    assert completed.returncode == 2, completed.stderr
    message = doctor.check_git_history(context_of(load_config(clone / "mlci.yaml"), {})).line()
    assert message in completed.stderr  # the same words as `mlci doctor`
    assert "training with" not in completed.stderr + completed.stdout  # never trained
    gate = json.loads((clone / ".mlci" / "out" / "gate.json").read_text())
    assert "shallow clone" in json.dumps(gate)


@pytest.mark.slow
def test_run_warns_about_an_unset_timeout_and_goes_on(project: Project) -> None:
    project.write("mlci.yaml", CONFIG.replace("  timeout_minutes: 1\n", ""))
    project.commit("no timeout")
    completed = subprocess.run(
        [sys.executable, "-m", "mlci", "run", "--no-promote"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "warning: timeout: train.timeout_minutes is not set" in completed.stderr
    assert completed.returncode == 0, completed.stderr
