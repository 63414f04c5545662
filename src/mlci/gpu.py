"""The device the training runs on: nvidia-smi's view of the GPUs, the `train.device: cuda`
check before training, and utilisation and memory sampled while it trains.

nvidia-smi is the only source (no extra dependency): it ships with the NVIDIA driver, so
a runner without it has no usable GPU. Its CSV query output is stable across drivers.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

from mlci.core.device import DeviceInfo, DeviceSetting, Gpu
from mlci.errors import TrainingError

NVIDIA_SMI = "nvidia-smi"
_QUERY_TIMEOUT_S = 15.0
_HIDDEN = ("", "-1", "NoDevFiles")
FIX = (
    "run the job on a GPU runner (GitHub Actions: `runs-on: [self-hosted, gpu]` or a larger "
    "GPU runner's label, which `mlci init --gpu` writes; GitLab: a runner tag with a GPU), "
    "give a container the GPU (`docker run --gpus all`, the NVIDIA Container Toolkit), or "
    "set train.device: auto in mlci.yaml to let it train on the CPU"
)
# Run by the training's own python: is its torch a CUDA build that sees a GPU?
_TORCH_PROBE = """
import importlib.util, json
if importlib.util.find_spec("torch") is None:
    print(json.dumps({"torch": None}))
else:
    import torch
    print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda,
                      "available": torch.cuda.is_available()}))
"""


@dataclass(frozen=True)
class Probe:
    """What nvidia-smi said before training; `problem` says why no GPU is usable."""

    gpus: tuple[Gpu, ...] = ()
    driver: str | None = None
    cuda: str | None = None
    problem: str | None = None
    hidden: bool = False  # GPUs there, but CUDA_VISIBLE_DEVICES hides them all


def probe(env: Mapping[str, str]) -> Probe:
    """The GPUs the training will see (CUDA_VISIBLE_DEVICES applied), or why there are none."""
    smi = shutil.which(NVIDIA_SMI, path=env.get("PATH"))
    if smi is None:
        return Probe(problem="nvidia-smi was not found, so this machine has no NVIDIA driver")
    fields = "index,uuid,name,memory.total,driver_version"
    result, problem = _smi(smi, env, f"--query-gpu={fields}", "--format=csv,noheader,nounits")
    if problem is not None:
        return Probe(problem=problem)
    rows = [_split(line) for line in result.splitlines() if line.strip()]
    gpus = [
        (row[1], Gpu(index=row[0], name=row[2], memory_total_mib=_int(row[3])))
        for row in rows
        if len(row) >= 5
    ]
    if not gpus:
        return Probe(problem="nvidia-smi lists no GPU")
    driver = rows[0][4] if rows and len(rows[0]) >= 5 else None
    visible = _visible(gpus, env.get("CUDA_VISIBLE_DEVICES"))
    if not visible:
        hidden = env.get("CUDA_VISIBLE_DEVICES", "")
        return Probe(
            driver=driver,
            problem=f"CUDA_VISIBLE_DEVICES={hidden!r} hides all {len(gpus)} GPU(s) of this machine",
            hidden=True,
        )
    header, _ = _smi(smi, env)  # the plain table is the one place that names CUDA's version
    match = re.search(r"CUDA Version:\s*([\d.]+)", header)
    cuda = match.group(1) if match else None
    return Probe(gpus=tuple(visible), driver=_clean(driver), cuda=cuda)


def _smi(smi: str, env: Mapping[str, str], *args: str) -> tuple[str, str | None]:
    """nvidia-smi's output, and a sentence saying why it failed (None when it did not)."""
    try:
        done = subprocess.run(
            [smi, *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=_QUERY_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "", f"nvidia-smi did not answer within {_QUERY_TIMEOUT_S:g} s (a hung driver?)"
    except OSError as exc:
        return "", f"nvidia-smi could not run ({exc.strerror})"
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        first = said[0] if said else "no output"
        return "", f"nvidia-smi failed (exit code {done.returncode}): {first}"
    return done.stdout, None


def _split(line: str) -> list[str]:
    return [part.strip() for part in line.split(",")]


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _clean(text: str | None) -> str | None:
    return None if text is None or text.startswith("[") else text


def _visible(gpus: list[tuple[str, Gpu]], setting: str | None) -> list[Gpu]:
    """The GPUs CUDA_VISIBLE_DEVICES lets through, in its order (indices or UUID prefixes)."""
    if setting is None:
        return [gpu for _, gpu in gpus]
    if setting.strip() in _HIDDEN:
        return []
    chosen: list[Gpu] = []
    for entry in (part.strip() for part in setting.split(",")):
        found = [g for uuid, g in gpus if entry == g.index or (entry and uuid.startswith(entry))]
        if not found:
            break  # CUDA ignores the devices after the first one it does not know
        chosen.extend(g for g in found if g not in chosen)
    return chosen


def cpu_model() -> str | None:
    """The processor's model name, from /proc/cpuinfo on Linux."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or None
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or None)


def torch_build(env: Mapping[str, str], cwd: Path) -> dict[str, object] | None:
    """What the training's `python` reports about its torch; None if that cannot be run."""
    python = shutil.which("python", path=env.get("PATH")) or shutil.which(
        "python3", path=env.get("PATH")
    )
    if python is None:
        return None
    try:
        done = subprocess.run(
            [python, "-c", _TORCH_PROBE],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None
    return data if isinstance(data, dict) else None


def require_cuda(found: Probe, env: Mapping[str, str], cwd: Path) -> None:
    """Fail before training when train.device is cuda and the training cannot reach a GPU."""
    if found.hidden:
        raise TrainingError(
            f"train.device is cuda, but {found.problem}: unset CUDA_VISIBLE_DEVICES in the job, "
            f"or set it to the indices of the GPUs the training may use (e.g. 0)"
        )
    if found.problem is not None:
        raise TrainingError(f"train.device is cuda, but {found.problem}: {FIX}")
    build = torch_build(env, cwd)
    if build is None or build.get("torch") is None:
        return  # not a torch training, or no python to ask: nvidia-smi's word is enough
    if build.get("cuda") is None:
        raise TrainingError(
            f"train.device is cuda, and this runner has {found.gpus[0].name}, but the training's "
            f"torch {build['torch']} is a CPU-only build: install a CUDA build of torch on GPU "
            f"runners (e.g. `pip install torch --index-url https://download.pytorch.org/whl/cu126`)"
        )
    if build.get("available") is not True:
        raise TrainingError(
            f"train.device is cuda, and nvidia-smi lists {found.gpus[0].name}, but torch "
            f"{build['torch']} (CUDA {build['cuda']}) cannot use it: the driver "
            f"({found.driver or 'unknown version'}) may be older than that CUDA build needs; "
            f"install a torch built for the driver's CUDA ({found.cuda or 'see nvidia-smi'})"
        )


@dataclass
class _Totals:
    peak_mib: dict[str, int] = field(default_factory=dict)
    utilization: dict[str, list[float]] = field(default_factory=dict)
    samples: int = 0


class Monitor:
    """Probes before training, samples during it, and says what the training ran on.

    `env` is the environment to train with: MLCI_DEVICE carries train.device to the
    training, and `cpu` hides the GPUs (CUDA_VISIBLE_DEVICES="").
    """

    def __init__(
        self,
        setting: DeviceSetting,
        env: Mapping[str, str],
        *,
        cwd: Path,
        interval_s: float = 1.0,
    ) -> None:
        self.setting = setting
        self.env = {**env, "MLCI_DEVICE": setting}
        if setting == "cpu":
            self.env["CUDA_VISIBLE_DEVICES"] = ""
        self._interval = interval_s
        self._probe = Probe() if setting == "cpu" else probe(self.env)
        self._cpu = cpu_model()  # read once: info() is called before and after training
        if setting == "cuda":
            require_cuda(self._probe, self.env, cwd)
        self._totals = _Totals()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Monitor:
        if self._probe.gpus:
            self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_QUERY_TIMEOUT_S + 1)

    def info(self) -> DeviceInfo:
        totals = self._totals
        gpus = tuple(
            replace(
                gpu,
                peak_memory_mib=totals.peak_mib.get(gpu.index),
                mean_utilization=_mean(totals.utilization.get(gpu.index)),
            )
            for gpu in self._probe.gpus
        )
        return DeviceInfo(
            kind="cuda" if gpus else "cpu",
            requested=self.setting,
            cpu=self._cpu,
            cpu_count=os.cpu_count(),
            gpus=gpus,
            driver=self._probe.driver,
            cuda=self._probe.cuda,
            samples=totals.samples,
        )

    def _sample_until_stopped(self) -> None:
        smi = shutil.which(NVIDIA_SMI, path=self.env.get("PATH")) or NVIDIA_SMI
        wanted = {gpu.index for gpu in self._probe.gpus}
        fields = "--query-gpu=index,utilization.gpu,memory.used"
        while True:
            output, problem = _smi(smi, self.env, fields, "--format=csv,noheader,nounits")
            if problem is None:
                self._add(output, wanted)
            if self._stop.wait(self._interval):
                return

    def _add(self, output: str, wanted: set[str]) -> None:
        totals = self._totals
        counted = False
        for row in (_split(line) for line in output.splitlines() if line.strip()):
            if len(row) < 3 or row[0] not in wanted:
                continue
            utilization, used = _float(row[1]), _int(row[2])
            if utilization is not None:
                totals.utilization.setdefault(row[0], []).append(utilization)
            if used is not None:
                totals.peak_mib[row[0]] = max(used, totals.peak_mib.get(row[0], 0))
            counted = True
        totals.samples += counted


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
