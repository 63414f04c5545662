"""train.on: skypilot through `mlci run`, as in CI: the real SkyPilot client against the
stand-in of its API server (tests/skypilot_standin.py), the outputs back through an S3
bucket (moto on 127.0.0.1) that the stand-in's mount writes to and the runner reads.

What a user finds: the output in the CI log while the task runs, the metrics brought back
and judged, where it ran in the report, the exit code of a failing training, a cancelled
run (SIGTERM) leaving no cluster, and one a crashed mlci left listed and taken down.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci.remote.skypilot import ENDPOINT_ENV
from tests import remote_runs as runs
from tests.conftest import Project
from tests.servers import S3Server

pytest.importorskip("sky", reason="the SkyPilot tests need `pip install mlci[skypilot]`")
pytest.importorskip("pyarrow", reason="the runner reads s3:// storage through pyarrow")

from tests.skypilot_standin import SkyPilotStandIn  # only with sky installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning"),
]
BUCKET = "mlci-skypilot-runs"


@pytest.fixture(scope="session")
def bucket(s3_server: S3Server) -> str:
    s3_server.client().create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def standin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, bucket: str
) -> Iterator[SkyPilotStandIn]:
    # The runner's and the "cloud's" S3 credentials, as a CI job's secrets give them.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.reader[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.reader[1])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    with SkyPilotStandIn(tmp_path / "cloud", sync_mounts=True) as server:
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        yield server


def _on_skypilot(project: Project, tmp_path: Path) -> Path:
    return runs.train_off_runner(
        project,
        tmp_path,
        on="skypilot",
        storage=f"s3://{BUCKET}/{tmp_path.name}",
        resources={"gpus": 1, "accelerator": "A100"},
        skypilot={"infra": "aws", "autostop_minutes": 5},
    )


def _run_id(log: Path) -> str:
    """The cluster's name, from mlci's line `train: python train.py on skypilot as mlci-…`."""
    return log.read_text().split(" on skypilot as ")[1].split()[0]


def _gone(standin: SkyPilotStandIn, limit_s: float = 10.0) -> bool:
    """Nothing of the run is in the stand-in's cluster table, nor running, within `limit_s`."""
    deadline = time.monotonic() + limit_s
    while standin.clusters or any(
        job.process is not None and job.process.poll() is None for job in standin.started
    ):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_training_on_skypilot_streams_its_output_and_its_outputs_come_back(
    project: Project, standin: SkyPilotStandIn, tmp_path: Path
) -> None:
    go = _on_skypilot(project, tmp_path)
    log = tmp_path / "mlci.log"

    runs.trained_and_judged(project, go, log)

    # It ran as a SkyPilot task (the stand-in's cluster), which went down after.
    assert [job.name for job in standin.started] == [_run_id(log)]
    assert "/down" in standin.paths() and _gone(standin)
    where = json.loads((project.out / "report.json").read_text())["where"]
    assert (where["engine"], where["cloud"], where["accelerator"]) == ("skypilot", "AWS", "A100:1")


def test_the_exit_code_and_output_of_a_failing_training_come_back(
    project: Project, standin: SkyPilotStandIn, tmp_path: Path
) -> None:
    go = _on_skypilot(project, tmp_path)
    log = tmp_path / "mlci.log"

    runs.failed_with_its_exit_code(project, go, log)

    assert standin.started[0].status == "FAILED"  # the task's, not a local run


def test_sigterm_to_mlci_cancels_the_job_and_takes_its_cluster_down(
    project: Project, standin: SkyPilotStandIn, tmp_path: Path
) -> None:
    _on_skypilot(project, tmp_path)  # go never comes
    log = tmp_path / "mlci.log"
    mlci = runs.start(project, log)
    runs.wait_for_text(log, "epoch 1 loss 0.5", mlci)

    started = time.monotonic()
    mlci.send_signal(signal.SIGTERM)
    exit_code = runs.end(mlci, log)

    assert exit_code == 143, log.read_text()
    assert time.monotonic() - started < 7.5  # GitHub's grace after a cancel
    assert standin.paths().count("/cancel") == 1
    assert standin.paths().count("/down") == 1
    assert _gone(standin)


def test_a_cluster_a_crashed_mlci_left_is_listed_and_taken_down(
    project: Project, standin: SkyPilotStandIn, tmp_path: Path
) -> None:
    _on_skypilot(project, tmp_path)
    log = tmp_path / "mlci.log"
    mlci = runs.start(project, log)
    runs.wait_for_text(log, "epoch 1 loss 0.5", mlci)
    mlci.kill()  # no teardown: the cluster runs on (its autostop would take it down)
    mlci.wait()
    name = _run_id(log)

    listed = json.loads(runs.cli(project, "gpu", "list", "--json").stdout)
    assert listed["engine"] == "skypilot"
    assert [(item["name"], item["kind"], item["state"]) for item in listed["launched"]] == [
        (name, "cluster", "UP")
    ]
    assert f"skypilot: 1 of mlci's alive: cluster {name} (UP)" in runs.cli(project, "doctor").stdout

    down = runs.cli(project, "gpu", "down", "--all", "--yes")

    assert down.returncode == 0, down.stderr
    assert f"down: skypilot cluster {name}: UP" in down.stdout
    assert _gone(standin)
    assert "skypilot: nothing of mlci's is alive" in runs.cli(project, "gpu", "list").stdout
    assert "skypilot: nothing of mlci's is alive" in runs.cli(project, "doctor").stdout
