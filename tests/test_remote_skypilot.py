"""The SkyPilot engine: the tasks it generates, checked by SkyPilot's own validation, and
its launch, logs, stop and teardown through the real SDK against a stand-in of SkyPilot
0.14.1's API server (tests/skypilot_standin.py)."""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci import git
from mlci.config import Resources, SkyPilotConfig
from mlci.errors import EXIT_EXTERNAL, EXIT_USAGE, ExternalError, UsageError
from mlci.remote import entry
from mlci.remote.base import Plan, Progress
from mlci.remote.skypilot import ENDPOINT_ENV, STORAGE_MOUNT, SkyPilotEngine, task_config
from tests.servers import free_port

sky = pytest.importorskip("sky", reason="the SkyPilot tests need `pip install mlci[skypilot]`")

from tests.skypilot_standin import SkyPilotStandIn  # noqa: E402 - only with sky installed

# SkyPilot 0.14.1's upload passes cookies per request, which httpx deprecates: theirs to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning")

A100 = Resources(gpus=1, accelerator="A100", cpus=4, memory_gb=16)
TRAIN = """\
import json, sys, time
for epoch in range(3):
    print(f"epoch {epoch}", flush=True)
    time.sleep(float(sys.argv[2]))
json.dump({"accuracy": 0.9}, open("metrics.json", "w"))
sys.exit(int(sys.argv[1]))
"""


def plan(workdir: Path, *, exit_code: int = 0, pause: float = 0.3, **changes: Any) -> Plan:
    values: dict[str, Any] = {
        "run_id": "mlci-test-1",
        "command": (sys.executable, "train.py", str(exit_code), str(pause)),
        "workdir": workdir,
        "env": {"LEARNING_RATE": "0.1"},
        "resources": A100,
        "outputs": ("metrics.json",),
        "storage": "s3://my-bucket/mlci-runs",
        "timeout_s": 600.0,
        "stall_s": None,
    }
    return Plan(**{**values, **changes})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    return folder


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SkyPilotStandIn]:
    monkeypatch.setenv("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    with SkyPilotStandIn(tmp_path / "cloud") as server:
        monkeypatch.setenv(ENDPOINT_ENV, server.url)  # restored after the test
        yield server


def run_to_end(engine: SkyPilotEngine, *, limit_s: float = 60) -> tuple[list[str], Progress]:
    """Poll as mlci's loop does; the lines in order, with the state they arrived in."""
    lines: list[str] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        progress = engine.poll()
        lines.extend(f"{progress.state}: {line}" for line in progress.lines)
        if progress.state in ("succeeded", "failed", "stopped"):
            return lines, progress
        time.sleep(0.05)
    raise AssertionError(f"still running after {limit_s} s: {lines}")


# -- the task mlci generates -------------------------------------------------------------

VARIATIONS = {
    "on-demand": SkyPilotConfig(infra="aws"),
    "spot": SkyPilotConfig(spot=True),
    "managed on demand": SkyPilotConfig(infra="gcp/us-central1", managed=True),
    "kubernetes": SkyPilotConfig(infra="k8s"),
}


@pytest.mark.parametrize("settings", VARIATIONS.values(), ids=VARIATIONS.keys())
def test_the_generated_task_passes_skypilots_own_validation(
    project: Path, settings: SkyPilotConfig, tmp_path: Path
) -> None:
    config = task_config(plan(project), settings, tmp_path)
    # SkyPilot's schema (raises on a wrong key or value); it consumes what it is given
    task = sky.Task.from_yaml_config(copy.deepcopy(config))
    (resources,) = task.resources
    assert resources.accelerators == {"A100": 1}
    assert resources.use_spot is settings.spot
    assert task.workdir == str(tmp_path)
    # The run is mlci's wrapper, as on Ray, writing to where the bucket is mounted.
    assert task.run == f"python _mlci_entry.py _mlci_run.json {STORAGE_MOUNT}"
    assert task.envs == {"LEARNING_RATE": "0.1", "MLCI_RUN_ID": "mlci-test-1"}
    assert config["file_mounts"] == {
        STORAGE_MOUNT: {"source": "s3://my-bucket/mlci-runs", "mode": "MOUNT"}
    }
    if settings.infra is not None:
        assert config["resources"]["infra"] == settings.infra


def test_a_task_without_gpus_asks_for_none(project: Path) -> None:
    no_gpu = plan(project, resources=Resources(cpus=2))
    task = sky.Task.from_yaml_config(task_config(no_gpu, SkyPilotConfig(), project))
    (resources,) = task.resources
    assert resources.accelerators is None
    assert resources.cpus == "2+"


def test_gpus_without_a_type_and_a_storage_skypilot_cannot_mount_are_usage_errors(
    project: Path,
) -> None:
    with pytest.raises(UsageError, match=r"train\.resources\.accelerator") as untyped:
        task_config(plan(project, resources=Resources(gpus=1)), SkyPilotConfig(), project)
    with pytest.raises(UsageError, match="s3://my-bucket") as local:
        task_config(plan(project, storage="/srv/runs"), SkyPilotConfig(), project)
    assert untyped.value.exit_code == local.value.exit_code == EXIT_USAGE


def test_an_infra_skypilot_does_not_know_is_refused_before_anything_launches(
    project: Path, standin: SkyPilotStandIn
) -> None:
    engine = SkyPilotEngine(SkyPilotConfig(infra="nocloud", api_server=standin.url))
    with pytest.raises(UsageError, match=r"SkyPilot refused the task.*infra") as refused:
        engine.launch(plan(project))
    assert refused.value.exit_code == EXIT_USAGE
    assert "/launch" not in standin.paths()


# -- launch, logs, stop, teardown through the real SDK ------------------------------------


def test_a_launch_streams_its_logs_and_leaves_the_outputs_and_exit_code_in_storage(
    project: Path, standin: SkyPilotStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = SkyPilotEngine(SkyPilotConfig(api_server=standin.url, autostop_minutes=7))
    engine.launch(plan(project, exit_code=0))
    lines, end = run_to_end(engine)

    # Each line arrived while the training ran, not all at the end.
    assert lines == ["running: epoch 0", "running: epoch 1", "running: epoch 2"]
    assert end.state == "succeeded"
    out, err = capsys.readouterr()
    assert out == ""  # SkyPilot's progress goes to stderr: stdout is mlci's results
    assert "Running on cluster: mlci-test-1" in err
    assert (standin.bucket / "mlci-test-1" / "metrics.json").read_text() == '{"accuracy": 0.9}'
    assert json.loads((standin.bucket / "mlci-test-1" / entry.DONE).read_text())["exit_code"] == 0
    # The project went up through the API server, and the backstop is on the cluster.
    assert "/upload_v2" in standin.paths()
    launched = next(call for call in standin.calls if call.path == "/launch")
    task = next(doc for doc in yaml.safe_load_all(launched.body["task"]) if doc and "run" in doc)
    assert task["resources"]["autostop"] == {"idle_minutes": 7, "down": True}
    assert launched.body["cluster_name"] == "mlci-test-1"
    where = engine.where()
    assert (where.engine, where.cloud, where.region, where.accelerator) == (
        "skypilot", "AWS", "us-east-1", "A100:1",
    )  # fmt: skip


def test_a_failing_task_reports_failed_and_leaves_the_trainings_exit_code_in_storage(
    project: Path, standin: SkyPilotStandIn
) -> None:
    engine = SkyPilotEngine(SkyPilotConfig(api_server=standin.url))
    engine.launch(plan(project, exit_code=3, pause=0))
    lines, end = run_to_end(engine)
    assert end.state == "failed"
    assert lines[-1].endswith("epoch 2")
    # The wrapper's done.json, which mlci.remote.run reads back through train.storage.
    assert json.loads((standin.bucket / "mlci-test-1" / entry.DONE).read_text())["exit_code"] == 3


def test_the_data_dvc_pulled_reaches_the_task_though_gitignored(
    project: Path, standin: SkyPilotStandIn
) -> None:
    # SkyPilot's upload skips what .gitignore lists; DVC lists the data it pulls there.
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("x,y\n1,2\n")
    (project / "data.dvc").write_text("outs:\n- path: data\n  md5: abc.dir\n")
    (project / ".gitignore").write_text("/data\n")
    (project / "train.py").write_text("print(open('data/train.csv').read().splitlines()[1])\n")
    git.init_repo(project, branch="main")
    git.commit_all(project, "data")

    engine = SkyPilotEngine(SkyPilotConfig(api_server=standin.url))
    engine.launch(plan(project, command=(sys.executable, "train.py")))
    lines, end = run_to_end(engine)

    assert (end.state, lines) == ("succeeded", ["running: 1,2"])


def test_stop_cancels_the_job_and_teardown_takes_the_cluster_down(
    project: Path, standin: SkyPilotStandIn
) -> None:
    engine = SkyPilotEngine(SkyPilotConfig(api_server=standin.url))
    engine.launch(plan(project, pause=60))
    while not engine.poll().lines:  # the training has started
        time.sleep(0.05)
    job = standin.clusters["mlci-test-1"]
    assert [item.name for item in engine.launched()] == ["mlci-test-1"]

    engine.stop()
    engine.teardown()
    engine.teardown()  # idempotent: one removal

    assert standin.paths().count("/cancel") == 1
    assert standin.paths().count("/down") == 1
    assert job.process is not None and job.process.wait(10) != 0
    assert engine.poll().state == "stopped"
    assert engine.launched() == []


def test_a_run_stopped_while_its_cluster_is_launching_ends_stopped_and_never_trains(
    project: Path, standin: SkyPilotStandIn
) -> None:
    standin.provision_s = 1.0
    engine = SkyPilotEngine(SkyPilotConfig(api_server=standin.url))
    engine.launch(plan(project))
    engine.stop()  # no job to cancel yet: the cluster goes down
    engine.teardown()
    lines, end = run_to_end(engine)
    assert (end.state, lines) == ("stopped", [])
    # The launch then fails (its cluster is gone): still stopped, not an error of its own.
    standin.settle()
    for _ in range(20):
        assert engine.poll().state == "stopped"
        time.sleep(0.05)
    assert "/down" in standin.paths() and standin.started == []


def test_spot_runs_as_a_managed_job_and_stop_cancels_it(
    project: Path, standin: SkyPilotStandIn
) -> None:
    engine = SkyPilotEngine(SkyPilotConfig(spot=True, api_server=standin.url))
    engine.launch(plan(project, pause=60))
    while not engine.poll().lines:
        time.sleep(0.05)
    assert "/jobs/launch" in standin.paths() and "/launch" not in standin.paths()
    launched = next(call for call in standin.calls if call.path == "/jobs/launch")
    assert launched.body["name"] == "mlci-test-1"
    assert [(item.name, item.kind) for item in engine.launched()] == [("mlci-test-1", "job")]

    engine.stop()
    engine.teardown()

    assert "/jobs/cancel" in standin.paths()
    assert standin.jobs[1].status == "CANCELLED"
    assert engine.launched() == []


def test_a_managed_job_leaves_its_exit_code_in_storage(
    project: Path, standin: SkyPilotStandIn
) -> None:
    engine = SkyPilotEngine(SkyPilotConfig(spot=True, api_server=standin.url))
    engine.launch(plan(project, exit_code=4, pause=0))
    lines, end = run_to_end(engine)
    assert end.state == "failed"
    assert len(lines) == 3
    assert json.loads((standin.bucket / "mlci-test-1" / entry.DONE).read_text())["exit_code"] == 4


def test_an_api_server_that_is_not_running_is_an_external_error_naming_the_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:1")  # restored after the test
    url = f"http://ci-bot:hunter2-secret@127.0.0.1:{free_port()}"
    engine = SkyPilotEngine(SkyPilotConfig(api_server=url))
    with pytest.raises(ExternalError) as failed:
        engine.launch(plan(project))
    message = failed.value.message
    assert failed.value.exit_code == EXIT_EXTERNAL
    assert "no SkyPilot API server answered" in message
    assert "sky api start" in message and ENDPOINT_ENV in message
    assert "hunter2-secret" not in message + "".join(capsys.readouterr())


def test_a_login_for_the_api_server_never_goes_over_plain_http_to_another_machine(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:1")  # restored after the test
    url = "http://ci-bot:hunter2-secret@skypilot.example.com:46580"
    engine = SkyPilotEngine(SkyPilotConfig(api_server=url))
    with pytest.raises(
        ExternalError, match=r"use an https:// URL in train\.skypilot\.api_server"
    ) as refused:
        engine.launch(plan(project))
    assert "hunter2-secret" not in refused.value.message
