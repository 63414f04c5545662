"""train.device: the GPU check before training, what was sampled during it, and the report.

No GPU here: a stand-in nvidia-smi (tests/fakes/nvidia_smi.py) answers like the real one.
The real thing is checked on a GPU machine by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from mlci import gpu as gpus
from mlci.errors import EXIT_TRAINING, TrainingError
from tests.conftest import Project

FAKE = Path(__file__).parent / "fakes" / "nvidia_smi.py"
H200 = {
    "index": "0",
    "uuid": "GPU-5e1b6f4a-0000-4000-8000-000000000000",
    "name": "NVIDIA H200",
    "memory.total": 143771,
}


class FakeGpu:
    """The machine the stand-in nvidia-smi describes; on PATH for the test's duration."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state = folder / "state.json"
        bin_dir = folder / "bin"
        bin_dir.mkdir(parents=True)
        program = bin_dir / "nvidia-smi"
        program.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        program.chmod(program.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_NVIDIA_SMI", str(self.state))
        self.set(gpus=[H200])

    def set(self, *, gpus: list[dict[str, Any]], fail: dict[str, Any] | None = None) -> None:
        data = {"driver": "580.159.03", "cuda": "13.0", "gpus": gpus, "fail": fail}
        self.state.write_text(json.dumps(data))


@pytest.fixture
def gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    return FakeGpu(tmp_path / "fake-gpu", monkeypatch)


def test_the_probe_reads_model_memory_driver_and_cuda(gpu: FakeGpu) -> None:
    found = gpus.probe(os.environ)
    assert found.problem is None
    assert found.gpus == (gpus.Gpu("0", "NVIDIA H200", 143771),)
    assert (found.driver, found.cuda) == ("580.159.03", "13.0")


def test_cuda_visible_devices_selects_by_index_or_uuid_and_can_hide_all(
    gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = {**H200, "index": "1", "uuid": "GPU-77aa0000-0000", "name": "NVIDIA A100-SXM4-80GB"}
    gpu.set(gpus=[H200, second])
    assert [g.name for g in gpus.probe(os.environ).gpus] == ["NVIDIA H200", second["name"]]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [g.index for g in gpus.probe(os.environ).gpus] == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-77aa")
    assert [g.index for g in gpus.probe(os.environ).gpus] == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hidden = gpus.probe(os.environ)
    assert hidden.gpus == ()
    assert hidden.problem == "CUDA_VISIBLE_DEVICES='' hides all 2 GPU(s) of this machine"
    with pytest.raises(TrainingError) as caught:
        gpus.Monitor("cuda", os.environ, cwd=Path())
    assert "unset CUDA_VISIBLE_DEVICES in the job" in caught.value.message


def test_cuda_without_nvidia_smi_fails_before_training_and_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no nvidia-smi here
    with pytest.raises(TrainingError) as caught:
        gpus.Monitor("cuda", os.environ, cwd=tmp_path)
    message = caught.value.message
    assert message.startswith("train.device is cuda, but nvidia-smi was not found")
    assert "runs-on: [self-hosted, gpu]" in message
    assert "--gpus all" in message
    assert "train.device: auto" in message
    assert caught.value.exit_code == EXIT_TRAINING


def test_a_broken_driver_is_named_with_what_nvidia_smi_said(gpu: FakeGpu, tmp_path: Path) -> None:
    said = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running."
    )
    gpu.set(gpus=[H200], fail={"exit": 9, "message": said})
    with pytest.raises(TrainingError) as caught:
        gpus.Monitor("cuda", os.environ, cwd=tmp_path)
    assert f"nvidia-smi failed (exit code 9): {said}" in caught.value.message


def test_a_cpu_only_torch_on_a_gpu_runner_fails_before_training(
    gpu: FakeGpu, tmp_path: Path
) -> None:
    # The classic silent slowdown: the runner has a GPU, pip installed torch's CPU build.
    pytest.importorskip("torch")
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    with pytest.raises(TrainingError) as caught:
        gpus.Monitor("cuda", os.environ, cwd=tmp_path)
    assert f"the training's torch {torch.__version__} is a CPU-only build" in caught.value.message
    assert "this runner has NVIDIA H200" in caught.value.message


def test_sampling_records_peak_memory_and_mean_utilisation(gpu: FakeGpu, tmp_path: Path) -> None:
    gpu.set(gpus=[{**H200, "samples": [[0, 500], [80, 9000], [100, 12000], [60, 11000]]}])
    monitor = gpus.Monitor("auto", os.environ, cwd=tmp_path, interval_s=0.01)
    with monitor:
        while monitor.info().samples < 4:
            pass
    info = monitor.info()
    assert info.kind == "cuda"
    (sampled,) = info.gpus
    assert sampled.peak_memory_mib == 12000
    assert sampled.mean_utilization is not None and 60 <= sampled.mean_utilization <= 80
    assert info.describe().startswith("NVIDIA H200 (140.4 GiB); driver 580.159.03, CUDA 13.0")
    assert "peak memory 11.7 GiB" in info.describe()


def test_cpu_hides_the_gpus_from_the_training(gpu: FakeGpu, tmp_path: Path) -> None:
    monitor = gpus.Monitor("cpu", os.environ, cwd=tmp_path)
    assert monitor.env["CUDA_VISIBLE_DEVICES"] == ""
    assert monitor.env["MLCI_DEVICE"] == "cpu"
    with monitor:
        pass
    info = monitor.info()
    assert (info.kind, info.gpus, info.samples) == ("cpu", (), 0)
    assert info.describe().startswith("CPU (")


def test_the_cpu_model_is_read_once_per_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # info() runs before and after the training: /proc/cpuinfo is read for the first only.
    reads: list[str] = []
    real = gpus.cpu_model

    def counted() -> str | None:
        reads.append("read")
        return real()

    monkeypatch.setattr(gpus, "cpu_model", counted)
    monitor = gpus.Monitor("cpu", os.environ, cwd=tmp_path)
    first, second = monitor.info(), monitor.info()

    assert len(reads) == 1
    assert first.cpu == second.cpu == real()


def _use_device(project: Project, setting: str, sleep: float = 0) -> None:
    config = project.config.read_text().replace(
        "  timeout_minutes: 1\n", f"  timeout_minutes: 1\n  device: {setting}\n"
    )
    project.write("mlci.yaml", config)
    project.set_params(metrics={"accuracy": 0.9, "log_loss": 0.3}, sleep=sleep)
    project.commit("device")


def test_mlci_run_records_the_gpu_in_the_report_and_gate_json(
    project: Project, gpu: FakeGpu
) -> None:
    from mlci.cli import main

    gpu.set(gpus=[{**H200, "samples": [[95, 30000]]}])
    _use_device(project, "auto", sleep=1.5)
    assert main(["run", "--no-promote", "--config", str(project.config)]) == 0
    training = project.gate_json()["training"]
    assert isinstance(training, dict)
    assert training["device"]["kind"] == "cuda"
    assert training["device"]["gpus"][0]["name"] == "NVIDIA H200"
    assert training["device"]["gpus"][0]["peak_memory_mib"] == 30000
    report = (project.out / "report.md").read_text()
    assert "- Device: NVIDIA H200 (140.4 GiB); driver 580.159.03, CUDA 13.0" in report
    assert "idle during training" not in report


def test_a_gpu_that_stays_idle_is_called_out(project: Project, gpu: FakeGpu) -> None:
    from mlci.cli import main

    gpu.set(gpus=[{**H200, "samples": [[0, 4]]}])
    _use_device(project, "auto", sleep=2.5)
    assert main(["run", "--no-promote", "--config", str(project.config)]) == 0
    notes = project.gate_json()["notes"]
    assert isinstance(notes, list)
    assert any("NVIDIA H200) was visible but idle during training" in n for n in notes)


def test_a_stalled_training_is_reported_as_a_stall(project: Project) -> None:
    from mlci.cli import main

    config = project.config.read_text().replace(
        "  timeout_minutes: 1\n", "  timeout_minutes: 1\n  stall_minutes: 0.01\n"
    )
    project.write("mlci.yaml", config)
    project.set_params(metrics={"accuracy": 0.9}, sleep=30)
    project.commit("stalls")
    assert main(["run", "--no-promote", "--config", str(project.config)]) == EXIT_TRAINING
    data = project.gate_json()
    assert data["training"]["stopped_by"] == "stall"  # type: ignore[index]
    assert data["error"]["message"].startswith(  # type: ignore[index]
        "training stalled: no output for 0.6 s (train.stall_minutes)"
    )
    assert "training stalled" in (project.out / "report.md").read_text()


@pytest.mark.slow
def test_the_torch_example_trains_on_the_cpu_and_the_registry_keeps_the_device(
    tmp_path: Path, empty_registry_db: Path
) -> None:
    pytest.importorskip("torch")
    from mlflow import MlflowClient

    from mlci import git
    from mlci.cli import main
    from mlci.commands.init import write_project

    root = tmp_path / "digits-torch"
    write_project(root, example="torch", force=False)
    git.init_repo(root, branch="main")
    (root / ".mlci").mkdir()
    shutil.copy(empty_registry_db, root / ".mlci" / "mlflow.db")
    git.commit_all(root, "torch example")

    assert main(["run", "--config", str(root / "mlci.yaml")]) == 0

    gate = json.loads((root / ".mlci" / "out" / "gate.json").read_text())
    assert gate["metrics"]["accuracy"] > 0.9
    assert gate["training"]["device"]["kind"] == "cpu"
    assert gate["training"]["device"]["requested"] == "auto"
    assert {"state_dict", "architecture"} <= {
        "state_dict" if (root / "model" / "model.pt").exists() else "",
        "architecture" if (root / "model" / "architecture.json").exists() else "",
    }
    report = (root / ".mlci" / "out" / "report.md").read_text()
    assert "- Device: CPU (" in report
    assert "Training curves" in report or "val_accuracy" in report
    client = MlflowClient(tracking_uri=f"sqlite:///{root / '.mlci' / 'mlflow.db'}")
    version = client.get_model_version_by_alias("digits-torch", "champion")
    assert version.tags["mlci.device"].startswith("CPU (")
    assert json.loads(version.tags["mlci.device_json"])["kind"] == "cpu"
