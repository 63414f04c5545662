"""`mlci run` of a project whose training runs off the runner (train.on: ray | skypilot),
as in CI: in a subprocess, its output in a log file the test reads while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import Project

WAIT_S = 90  # for a job to start and mlci to end, on a loaded machine

# Prints, then waits for the test's go-ahead (a file at an absolute path: the job runs in
# the engine's copy of the project), so the test sees the output arrive while the job runs.
TRAINING = textwrap.dedent(
    """\
    import json, os, pathlib, sys, time
    params = json.loads(pathlib.Path("params.json").read_text())
    print("GPU", os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
    print("epoch 1 loss 0.5", flush=True)
    go = pathlib.Path(params["go"])
    while not go.exists():
        time.sleep(0.1)
    if params.get("crash"):
        print("CUDA out of memory (simulated)", flush=True)
        sys.exit(3)
    pathlib.Path("metrics.json").write_text(json.dumps(params["metrics"]))
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/model.bin").write_text("weights")
    print("saved", flush=True)
    """
)


def train_off_runner(project: Project, tmp_path: Path, **train: object) -> Path:
    """The project trains with `train` (train.on and its settings) and TRAINING; returns the
    file that lets its training finish."""
    go = tmp_path / "go"
    config = project.config.read_text().replace(
        "  command: python train.py\n  timeout_minutes: 1\n",
        "  command: python train.py\n  timeout_minutes: 1\n"
        + "".join(f"  {key}: {json.dumps(value)}\n" for key, value in train.items()),
    )
    project.write("mlci.yaml", config)
    project.write("train.py", TRAINING)
    project.set_params(go=str(go), metrics={"accuracy": 0.9, "log_loss": 0.3, "f1": 0.88})
    project.commit(f"train on {train['on']}")
    return go


def start(project: Project, log: Path) -> subprocess.Popen[bytes]:
    """`mlci run --no-promote`, its output into `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "mlci", "run", "--no-promote"],
            cwd=project.root,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for_text(log: Path, text: str, mlci: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_S
    while text not in log.read_text():
        if mlci.poll() is not None or time.monotonic() > deadline:
            mlci.kill()
            pytest.fail(f"{text!r} never came; mlci said:\n{log.read_text()}")
        time.sleep(0.1)


def end(mlci: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return mlci.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        mlci.kill()
        pytest.fail(f"mlci did not end; it said:\n{log.read_text()}")


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """`mlci ARGS` in the project, to its end."""
    argv = [sys.executable, "-m", "mlci", *args]
    return subprocess.run(argv, cwd=project.root, capture_output=True, text=True, timeout=60)


def trained_and_judged(project: Project, go: Path, log: Path) -> None:
    """`mlci run` of TRAINING: its output in the CI log while it runs (before `go`), then
    its outputs brought back into the project and judged."""
    mlci = start(project, log)
    wait_for_text(log, "epoch 1 loss 0.5", mlci)  # in the CI log while the job waits
    assert not (project.root / "metrics.json").exists()
    go.write_text("")
    exit_code = end(mlci, log)

    assert exit_code == 0, log.read_text()
    assert "saved" in log.read_text()
    assert project.gate_json()["passed"] is True
    assert json.loads((project.root / "metrics.json").read_text())["accuracy"] == 0.9
    assert (project.root / "model" / "model.bin").read_text() == "weights"


def failed_with_its_exit_code(project: Project, go: Path, log: Path) -> None:
    """`mlci run` of TRAINING failing with exit code 3: the run's exit 5, the code and the
    training's last output in the report."""
    params = json.loads((project.root / "params.json").read_text())
    project.set_params(**params, crash=True)
    project.commit("crash")
    go.write_text("")

    exit_code = end(start(project, log), log)

    assert exit_code == 5, log.read_text()
    error = project.gate_json()["error"]
    assert isinstance(error, dict)
    assert "`python train.py` exited with code 3" in error["message"]
    assert "CUDA out of memory (simulated)" in (project.out / "report.md").read_text()
