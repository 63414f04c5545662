"""train.ray.cluster: mlci brings a Ray cluster up for the run (`ray up`) and down after
(`ray down`), for real, with Ray's local node provider: `ray up` logs in over SSH to
127.0.0.1 (a sshd of the test's own, in namespaces of its own, so that the `ray stop` of
`ray down` stops only that cluster), starts the head there, and mlci submits through the
port forward of `ray dashboard`. The tests check what a user finds: the training ran on
the cluster, its outputs came back, and the cluster went down, after a success, a failure
and a cancel (SIGTERM).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project
from tests.remote_runs import (
    end,
    failed_with_its_exit_code,
    start,
    train_off_runner,
    trained_and_judged,
    wait_for_text,
)
from tests.servers import RayNodeHost, can_host_ray_nodes, ray_node_host

pytest.importorskip("ray")
pytestmark = [
    pytest.mark.skipif(can_host_ray_nodes() is not None, reason=str(can_host_ray_nodes())),
    pytest.mark.xdist_group("ray"),  # with the other Ray tests: one worker runs Ray at a time
]
DOWN_WAIT_S = 120  # `ray down` runs after mlci ends: `ray stop` on the head, then the state


@pytest.fixture(scope="session")
def ray_host() -> Iterator[RayNodeHost]:
    folder = Path(tempfile.mkdtemp(prefix="mlci-rayhost-", dir="/tmp"))
    try:
        with ray_node_host(folder) as host:
            yield host
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Cluster:
    """The project trains on a cluster of its own (ray/cluster.yaml) whose head is `host`."""

    host: RayNodeHost
    files: Path  # the head's --temp-dir; the runner's RAY_TMPDIR is its folder runner/
    go: Path  # the file that lets the training finish
    log: Path  # mlci's output

    def run_id(self) -> str:
        return self.log.read_text().split(" on ray as ")[1].split()[0]

    def state(self) -> Path:
        """The cluster's state, which the local provider keeps where `ray up` ran."""
        return self.files / "runner" / "ray" / f"cluster-{self.run_id()}.state"

    def ran_there(self) -> bool:
        """The head ran the job: its driver's log is in the head's files."""
        return any(self.files.glob(f"session_*/logs/job-driver-{self.run_id()}.log"))

    def went_down(self) -> str:
        """The head's state once `ray down` took it down (or the time ran out), when no Ray
        process of the cluster's is left."""
        deadline = time.monotonic() + DOWN_WAIT_S
        while True:
            head = json.loads(self.state().read_text())["127.0.0.1"]
            down = head.get("teardown_complete") and not self.host.ray_processes()
            if down or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert self.host.ray_processes() == []
        return str(head["state"])


@pytest.fixture
def cluster(
    project: Project, ray_host: RayNodeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    # A short folder, not pytest's: Ray's sockets live under it (107 bytes at most).
    files = Path(tempfile.mkdtemp(prefix="mlci-rayup-", dir="/tmp"))
    config = ray_host.cluster_config(files, {"accelerator_type:A100": 1})
    (project.root / "ray").mkdir()
    project.write("ray/cluster.yaml", yaml.safe_dump(config))
    # The runner's `ray` (`ray up`, `ray dashboard`, `ray down`) is this Python's; the local
    # provider keeps a cluster's state in $RAY_TMPDIR/ray (/tmp/ray by default).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RAY_TMPDIR", str(files / "runner"))
    go = train_off_runner(
        project,
        tmp_path,
        on="ray",
        storage=str(tmp_path / "storage"),
        resources={"gpus": 1, "accelerator": "A100"},
        ray={"cluster": "ray/cluster.yaml"},
    )
    yield Cluster(ray_host, files, go, tmp_path / "mlci.log")
    shutil.rmtree(files, ignore_errors=True)


def test_a_training_on_a_cluster_of_its_own_runs_there_and_the_cluster_goes_down(
    project: Project, cluster: Cluster
) -> None:
    trained_and_judged(project, cluster.go, cluster.log)  # up, the job, its outputs back

    assert cluster.ran_there()
    assert "GPU 0" in cluster.log.read_text()  # train.resources reached the cluster's head
    assert cluster.went_down() == "terminated"


def test_the_cluster_of_a_failing_training_goes_down(project: Project, cluster: Cluster) -> None:
    failed_with_its_exit_code(project, cluster.go, cluster.log)

    assert cluster.ran_there()
    assert cluster.went_down() == "terminated"


def test_sigterm_to_mlci_takes_the_cluster_down(project: Project, cluster: Cluster) -> None:
    mlci = start(project, cluster.log)
    wait_for_text(cluster.log, "epoch 1 loss 0.5", mlci)  # the training runs on the cluster
    assert cluster.host.ray_processes() != []

    started = time.monotonic()
    mlci.send_signal(signal.SIGTERM)
    exit_code = end(mlci, cluster.log)

    assert exit_code == 143, cluster.log.read_text()
    assert time.monotonic() - started < 7.5  # GitHub's grace after a cancel
    # `ray down` was started before mlci ended, and takes the head down after it.
    assert cluster.went_down() == "terminated"


def test_a_dashboard_port_that_is_no_number_is_refused_before_any_cluster_comes_up(
    project: Project, cluster: Cluster
) -> None:
    config = yaml.safe_load(project.root.joinpath("ray/cluster.yaml").read_text())
    config["head_start_ray_commands"] = ["ray start --head --dashboard-port=$DASHBOARD"]
    project.write("ray/cluster.yaml", yaml.safe_dump(config))
    project.commit("a port from the head's environment")

    exit_code = end(start(project, cluster.log), cluster.log)

    assert exit_code == 2, cluster.log.read_text()
    assert (
        "train.ray.cluster: ray/cluster.yaml starts the head with --dashboard-port "
        "'$DASHBOARD': give a port number" in cluster.log.read_text()
    )
    assert not cluster.state().exists()  # `ray up` never ran
    assert (project.out / "gate.json").exists()
