"""SIGTERM and SIGHUP, as CI systems and containers stop a job, handled like Ctrl-C.

`mlci run` runs in a subprocess with a real training (a shell with children) and a real
sqlite registry; the test sends the signal once the training (or the promotion) is under
way and checks what a user would find: the exit code, the report, no process of the
training left running, no stray version in the registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import Project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

_WAIT_S = 60  # for the training to start, and for mlci to end: generous on a loaded machine

# A child that ignores SIGTERM (as a training busy in a CUDA call may seem to) and one that
# does not, both in the shell's process group; the shell says its group once both run.
_STUBBORN_CHILD = textwrap.dedent(
    """\
    import pathlib, signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pathlib.Path("child.ready").write_text("")
    time.sleep(300)
    """
)
_TRAINING = (
    "python child.py & sleep 300 & "
    "while [ ! -e child.ready ]; do sleep 0.1; done; echo $$ > training.pgid; wait"
)

# `mlci run`, with the registry's alias move slowed down: the signal arrives after the
# version is registered and before the alias moves to it.
_SLOW_PROMOTION = textwrap.dedent(
    """\
    import pathlib, sys, time
    from mlci.registry import mlflow

    moving = mlflow.MlflowRegistry.move_alias

    def slow_move_alias(self, *args, **kwargs):
        pathlib.Path("promoting").write_text("")
        time.sleep(120)
        return moving(self, *args, **kwargs)

    mlflow.MlflowRegistry.move_alias = slow_move_alias
    from mlci.cli import main
    sys.exit(main(["run"]))
    """
)


def _training_project(project: Project) -> None:
    config = project.config.read_text().replace(
        "command: python train.py", f"command: {json.dumps(_TRAINING)}"
    )
    project.write("mlci.yaml", config)
    project.write("child.py", _STUBBORN_CHILD)
    project.commit("a training that runs children")


def _start(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # a file, not a pipe: nothing blocks on a full pipe
        return subprocess.Popen(argv, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)


def _wait_for(path: Path, mlci: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not path.exists():
        if mlci.poll() is not None or time.monotonic() > deadline:
            mlci.kill()
            pytest.fail(f"{path.name} never appeared; mlci said:\n{log.read_text()}")
        time.sleep(0.05)


def _stop(mlci: subprocess.Popen[bytes], number: signal.Signals, log: Path) -> int:
    mlci.send_signal(number)
    try:
        return mlci.wait(timeout=_WAIT_S)
    except subprocess.TimeoutExpired:
        mlci.kill()
        pytest.fail(f"mlci did not end after {number.name}; it said:\n{log.read_text()}")


def _running_in_group(pgid: int) -> list[str]:
    """The processes of group `pgid` still running (zombies, already dead, left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended while we looked
        name = text[text.index("(") + 1 : text.rindex(")")]
        state, _parent, group = text[text.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append(f"{stat.parent.name} {name} ({state})")
    return found


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # what a failing test left behind


@pytest.mark.parametrize(
    ("number", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["TERM", "HUP"]
)
def test_a_signal_during_training_stops_its_processes_and_leaves_the_report(
    project: Project, tmp_path: Path, number: signal.Signals, code: int
) -> None:
    _training_project(project)
    log = tmp_path / "mlci.log"
    mlci = _start([sys.executable, "-m", "mlci", "run"], project.root, log)
    _wait_for(project.root / "training.pgid", mlci, log)
    pgid = int((project.root / "training.pgid").read_text())
    try:
        started = time.monotonic()
        exit_code = _stop(mlci, number, log)
        took = time.monotonic() - started
        left = _running_in_group(pgid)
    finally:
        _kill_group(pgid)

    assert exit_code == code, log.read_text()
    assert left == [], "the training's processes outlived mlci"
    # The stubborn child got SIGKILL after the grace: all within GitHub's 7.5 s (and slack).
    assert took < 15, log.read_text()
    assert f"mlci: stopped by {number.name}" in log.read_text()
    gate = json.loads((project.out / "gate.json").read_text())
    assert gate["passed"] is False
    assert gate["error"] == {
        "stage": "train",
        "message": f"stopped by {number.name} during train",
        "exit_code": code,
    }
    assert f"stopped by {number.name} during train" in (project.out / "report.md").read_text()


def test_sigterm_between_registering_and_moving_the_alias_leaves_no_version(
    project: Project, tmp_path: Path
) -> None:
    log = tmp_path / "mlci.log"
    mlci = _start([sys.executable, "-c", _SLOW_PROMOTION], project.root, log)
    _wait_for(project.root / "promoting", mlci, log)
    registry = MlflowRegistry(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}")
    assert [v.version for v in registry.versions("tiny-model")] == ["1"]  # registered, no alias

    exit_code = _stop(mlci, signal.SIGTERM, log)

    assert exit_code == 143, log.read_text()
    gate = json.loads((project.out / "gate.json").read_text())
    assert gate["error"]["stage"] == "promote"
    assert registry.versions("tiny-model") == []
    assert registry.by_alias("tiny-model", "champion") is None
    # The next run registers afresh and promotes: one version, the champion.
    again = subprocess.run(
        [sys.executable, "-m", "mlci", "run"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=_WAIT_S * 3,
    )
    assert again.returncode == 0, again.stderr
    versions = MlflowRegistry(registry.tracking_uri).versions("tiny-model")
    assert [v.aliases for v in versions] == [("champion",)]
