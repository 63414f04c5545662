"""train.on: ray against a real Ray head on 127.0.0.1 (one per test session, CPU only).

`mlci run` runs in a subprocess, as in CI, and submits the tiny training through the Ray
Jobs REST API; the tests check what a user finds: the output in the CI log while the job
runs, the metrics brought back and judged, the exit code of a failing training, a stalled
or pending job stopped, a cancelled run (SIGTERM) and a crashed one (SIGKILL, then `mlci
gpu down`) leaving no job running.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import UsageError
from mlci.remote import entry, package
from mlci.remote.base import Plan
from tests.conftest import Project
from tests.remote_runs import (
    cli,
    end,
    failed_with_its_exit_code,
    start,
    train_off_runner,
    trained_and_judged,
    wait_for_text,
)
from tests.servers import ray_head

pytest.importorskip("ray")
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="Ray's head, POSIX signals"),
    pytest.mark.xdist_group("ray"),  # one worker, so one Ray head for the whole suite
]


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    # A short folder, not pytest's: Ray's sockets live under it, and a socket's path has at
    # most 107 bytes (pytest's folders of xdist workers pass it).
    folder = Path(tempfile.mkdtemp(prefix="mlci-ray-", dir="/tmp"))
    try:
        with ray_head(folder, resources={"accelerator_type:A100": 1}) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _on_ray(project: Project, address: str, tmp_path: Path, **train: object) -> Path:
    """The project trains on Ray; returns the file that lets its training finish."""
    settings = {
        "on": "ray",
        "storage": str(tmp_path / "storage"),
        "resources": {"gpus": 1, "accelerator": "A100"},
        "ray": {"address": address},
        **train,
    }
    return train_off_runner(project, tmp_path, **settings)


def _jobs(address: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{address}/api/jobs/", timeout=10) as answer:
        jobs: list[dict[str, Any]] = json.loads(answer.read())
    return jobs


def _run_id(log: Path) -> str:
    """The job's name, from mlci's line `train: python train.py on ray as mlci-…`."""
    return log.read_text().split(" on ray as ")[1].split()[0]


def _status(address: str, run_id: str) -> str:
    [status] = [job["status"] for job in _jobs(address) if job["submission_id"] == run_id]
    return str(status)


def _running(address: str, log: Path, after: float = 10.0) -> list[str]:
    """The run's job, if still pending or running `after` seconds from now (a stop takes
    Ray a moment: SIGTERM, then SIGKILL 3 s later)."""
    deadline = time.monotonic() + after
    run_id = _run_id(log)
    while True:
        status = _status(address, run_id)
        alive = [f"{run_id} {status}"] if status in ("PENDING", "RUNNING") else []
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_a_training_on_ray_streams_its_output_and_its_metrics_come_back(
    project: Project, ray_address: str, tmp_path: Path
) -> None:
    go = _on_ray(project, ray_address, tmp_path)
    log = tmp_path / "mlci.log"

    trained_and_judged(project, go, log)

    assert _status(ray_address, _run_id(log)) == "SUCCEEDED"  # it ran on Ray, not here
    # train.resources became the job's: Ray gave it the (declared) GPU.
    assert "GPU 0" in log.read_text()
    where = json.loads((project.out / "report.json").read_text())["where"]
    assert (where["engine"], where["name"]) == ("ray", _run_id(log))
    assert f"Ran on: Ray job {_run_id(log)}" in (project.out / "report.md").read_text()


def test_the_exit_code_and_output_of_a_failing_training_come_back(
    project: Project, ray_address: str, tmp_path: Path
) -> None:
    go = _on_ray(project, ray_address, tmp_path)
    log = tmp_path / "mlci.log"

    failed_with_its_exit_code(project, go, log)

    assert _status(ray_address, _run_id(log)) == "FAILED"  # Ray's job, not a local run
    # Ray's reason comes once, without the job's last output over again
    text = log.read_text()
    assert text.count("CUDA out of memory (simulated)") == 1, text
    assert "ray: Job entrypoint command failed with exit code 3" in text


def test_a_stalled_job_is_stopped(project: Project, ray_address: str, tmp_path: Path) -> None:
    _on_ray(project, ray_address, tmp_path, stall_minutes=0.05)  # 3 s; go never comes
    log = tmp_path / "mlci.log"

    exit_code = end(start(project, log), log)

    assert exit_code == 5, log.read_text()
    assert "training stalled: no output for 3 s" in log.read_text()
    assert _running(ray_address, log) == []


def test_a_job_no_node_can_take_is_stopped_at_the_timeout(
    project: Project, ray_address: str, tmp_path: Path
) -> None:
    _on_ray(project, ray_address, tmp_path, resources={"gpus": 1, "accelerator": "H100"})
    config = project.config.read_text().replace("timeout_minutes: 1\n", "timeout_minutes: 0.1\n")
    project.write("mlci.yaml", config)
    project.commit("6 s")
    log = tmp_path / "mlci.log"

    exit_code = end(start(project, log), log)

    assert exit_code == 5, log.read_text()
    assert (
        "training timed out after 6 s before it started (python train.py): ray had no machine "
        "with what train.resources asks (1 GPU H100)" in log.read_text()
    )
    # Ray cannot stop a job before a node takes it: the stop waits for one (and Ray drops
    # the job after RAY_JOB_START_TIMEOUT_SECONDS); the training never runs.
    assert _status(ray_address, _run_id(log)) == "PENDING"


def _training_on_ray(
    project: Project, address: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """`mlci run`, once its training runs on Ray (and waits for a go that never comes)."""
    _on_ray(project, address, tmp_path)
    log = tmp_path / "mlci.log"
    mlci = start(project, log)
    wait_for_text(log, "epoch 1 loss 0.5", mlci)
    return mlci, log


def test_sigterm_to_mlci_leaves_no_job_running(
    project: Project, ray_address: str, tmp_path: Path
) -> None:
    mlci, log = _training_on_ray(project, ray_address, tmp_path)

    started = time.monotonic()
    mlci.send_signal(signal.SIGTERM)
    exit_code = end(mlci, log)

    assert exit_code == 143, log.read_text()
    assert time.monotonic() - started < 7.5  # GitHub's grace after a cancel
    assert _running(ray_address, log) == []


def test_a_job_a_crashed_mlci_left_is_listed_and_taken_down(
    project: Project, ray_address: str, tmp_path: Path
) -> None:
    mlci, log = _training_on_ray(project, ray_address, tmp_path)
    mlci.kill()  # no teardown: the job runs on
    mlci.wait()

    name = _run_id(log)
    # (Another test's job may wait on this head for a GPU no node has: only this one counts.)
    listed = json.loads(cli(project, "gpu", "list", "--json").stdout)["launched"]
    assert [(item["kind"], item["state"]) for item in listed if item["name"] == name] == [
        ("job", "RUNNING")
    ]
    assert f"job {name} (RUNNING)" in cli(project, "doctor").stdout
    dry = cli(project, "gpu", "down", name)
    assert f"would take down: ray job {name}: RUNNING" in dry.stdout
    assert _running(ray_address, log, after=0) != []

    down = cli(project, "gpu", "down", name, "--yes")

    assert down.returncode == 0, down.stderr
    assert f"down: ray job {name}" in down.stdout
    assert _running(ray_address, log) == []
    assert name not in cli(project, "gpu", "list").stdout


def test_the_cluster_address_comes_from_ray_address_when_mlci_yaml_names_none(
    project: Project, ray_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = _on_ray(project, ray_address, tmp_path, ray={})
    go.write_text("")
    monkeypatch.setenv("RAY_ADDRESS", ray_address)  # as a CI variable gives it
    log = tmp_path / "mlci.log"

    exit_code = end(start(project, log), log)

    assert exit_code == 0, log.read_text()
    assert _status(ray_address, _run_id(log)) == "SUCCEEDED"


@pytest.mark.parametrize(
    ("address", "told"),
    [
        (None, "set train.ray.address (a running cluster's Jobs API, e.g. "
               "http://127.0.0.1:8265) in mlci.yaml, or the RAY_ADDRESS environment variable"),
        ("ray://head:10001", "RAY_ADDRESS is 'ray://head:10001': mlci submits through the "
                             "cluster's Jobs API, so give its dashboard's http(s) address"),
    ],
)  # fmt: skip
def test_no_address_or_one_not_of_the_jobs_api_is_refused_with_the_fix(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    address: str | None,
    told: str,
) -> None:
    # No head needed: mlci stops before it submits anything.
    _on_ray(project, "http://127.0.0.1:9", tmp_path, ray={})
    if address is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", address)

    listed = cli(project, "gpu", "list")
    log = tmp_path / "mlci.log"
    exit_code = end(start(project, log), log)

    assert listed.returncode == exit_code == 2, listed.stderr
    assert told in listed.stderr and told in log.read_text()
    assert (project.out / "gate.json").exists()


# -- what goes up, and the wrapper's own deadline (no Ray needed) ------------------------------


def _plan(root: Path, storage: Path, **changes: Any) -> Plan:
    from mlci.config import Resources

    values: dict[str, Any] = {
        "run_id": "mlci-test",
        "command": "python train.py",
        "workdir": root,
        "env": {},
        "resources": Resources(),
        "outputs": ("metrics.json",),
        "storage": str(storage),
        "timeout_s": 60.0,
        "stall_s": None,
        **changes,
    }
    return Plan(**values)


def test_the_package_holds_the_project_and_the_data_dvc_pulled_not_the_caches(
    project: Project, tmp_path: Path
) -> None:
    import zipfile

    project.write(".gitignore", ".mlci/\n.venv/\ndata/\n")
    project.write("data.dvc", "outs:\n- path: data\n  md5: abc.dir\n")
    (project.root / "data").mkdir()
    project.write("data/train.csv", "x,y\n1,2\n")
    (project.root / ".venv").mkdir()
    project.write(".venv/big", "x")
    project.commit("data")

    built = package.build(_plan(project.root, tmp_path), limit_bytes=2**20, limit_hint="")

    names = zipfile.ZipFile(__import__("io").BytesIO(built.data)).namelist()
    assert {"train.py", "mlci.yaml", "data.dvc", "data/train.csv", package.ENTRY} <= set(names)
    assert entry.SPEC in names
    assert not [name for name in names if name.startswith((".venv", ".mlci", ".git/"))]


def test_a_package_over_the_limit_is_refused_with_the_fix(project: Project, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="over the 0 MiB the engine takes: pull it there"):
        package.build(_plan(project.root, tmp_path), limit_bytes=100, limit_hint="pull it there")


def test_the_wrapper_stops_a_training_past_its_deadline_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The backstop when mlci is gone: the job ends at the deadline with nobody watching.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(entry, "BACKSTOP_GRACE_S", 0.0)
    spec = {
        "run_id": "mlci-x",
        "command": [sys.executable, "-c", "import time; time.sleep(60)"],
        "env": {},
        "timeout_s": 1.0,
        "outputs": ["metrics.json"],
        "storage": str(tmp_path / "storage"),
    }
    (tmp_path / entry.SPEC).write_text(json.dumps(spec))

    started = time.monotonic()
    assert entry.main(["entry"]) == entry.TIMED_OUT
    assert time.monotonic() - started < 15
    done = json.loads((tmp_path / "storage" / "mlci-x" / entry.DONE).read_text())
    assert done["exit_code"] == entry.TIMED_OUT


def test_a_relative_storage_is_refused_with_the_fix(project: Project, tmp_path: Path) -> None:
    # No head needed: mlci stops before it submits anything.
    _on_ray(project, "http://127.0.0.1:9", tmp_path, storage="runs")
    completed = subprocess.run(
        [sys.executable, "-m", "mlci", "run", "--no-promote"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert (
        "train.storage: runs is a relative path, which the remote machine cannot see; give a "
        "folder both machines mount (an absolute path or file://) or a bucket" in completed.stderr
    )
    assert (project.out / "gate.json").exists()


def test_a_chatty_trainings_whole_log_is_fetched_at_a_pace_every_line_arriving(
    ray_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's Jobs API gives a job's whole log on each request: a training that prints
    megabytes has it fetched again only after ten times what the last fetch took (at most
    LOG_FETCH_SHARE of the time spent fetching), not on every poll; every line arrives,
    in order, the last ones once the job has ended."""
    import uuid

    from mlci.config import RayConfig, Resources
    from mlci.http import HttpClient
    from mlci.remote.base import NAME_PREFIX
    from mlci.remote.ray import LOG_FETCH_SHARE, RayEngine

    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "chatty.py").write_text(
        "import time\n"
        "for i in range(200_000):\n"  # about 18 MB
        "    print(f'line {i:06d} ' + 'x' * 80)\n"
        "time.sleep(3)\n"
        "print('done')\n"
    )
    plan = Plan(
        run_id=f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}",
        command="python chatty.py",
        workdir=workdir,
        env={},
        resources=Resources(),
        outputs=(),
        storage=str(tmp_path / "storage"),
        timeout_s=120.0,
        stall_s=None,
    )
    fetches: list[tuple[float, float]] = []  # each log fetch's start and duration
    request = HttpClient.request

    def timed(client: HttpClient, method: str, path: str, **kwargs: Any) -> Any:
        began = time.monotonic()
        answer = request(client, method, path, **kwargs)
        if path.endswith("/logs"):
            fetches.append((began, time.monotonic() - began))
        return answer

    monkeypatch.setattr(HttpClient, "request", timed)
    engine = RayEngine(RayConfig(address=ray_address), {}, root=workdir)
    engine.launch(plan)
    lines: list[str] = []
    polls = 0
    try:
        while True:
            progress = engine.poll()
            polls += 1
            lines += progress.lines
            if progress.state not in ("pending", "running"):
                break
            time.sleep(0.02)
    finally:
        engine.teardown()

    printed = [line for line in lines if line.startswith("line ")]
    assert printed == [f"line {i:06d} " + "x" * 80 for i in range(200_000)]
    assert lines[-1] == "done" and progress.state == "succeeded"
    # Between two fetches while it ran, ten times the first one's duration or more (the
    # last fetch, once the job has ended, comes whatever the pace).
    assert len(fetches) >= 3 and polls > 2 * len(fetches)
    for (began, took), (after, _) in itertools.pairwise(fetches[:-1]):
        assert after - began >= took / LOG_FETCH_SHARE
    # New lines are what tells a stall: with train.stall_minutes, read four times in it.
    from dataclasses import replace

    engine.plan = replace(plan, stall_s=2.0)
    assert engine._log_pause(5.0) == 0.5 and engine._log_pause(0.01) == pytest.approx(0.1)
