"""What the training ran on, and where (off the runner): the record the report shows and
the registry keeps.

Pure values; `mlci.gpu` fills them in from nvidia-smi and the operating system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DeviceSetting = Literal["auto", "cuda", "cpu"]


@dataclass(frozen=True)
class Gpu:
    """One GPU the training could see, with what was sampled during the training."""

    index: str
    name: str
    memory_total_mib: int | None = None
    peak_memory_mib: int | None = None  # highest memory.used sampled during training
    mean_utilization: float | None = None  # mean utilization.gpu (%) over the samples


@dataclass(frozen=True)
class DeviceInfo:
    """The device block of a run.

    `kind` is "cuda" when GPUs were visible to the training, else "cpu"; `requested` is
    train.device. Peak memory is the GPU's memory.used, all processes included: on a
    runner of its own that is the training's.
    """

    kind: Literal["cuda", "cpu"]
    requested: DeviceSetting = "auto"
    cpu: str | None = None
    cpu_count: int | None = None
    gpus: tuple[Gpu, ...] = ()
    driver: str | None = None
    cuda: str | None = None
    samples: int = 0  # how many times utilization and memory were read

    @property
    def idle(self) -> bool:
        """True when GPUs were visible and sampled, but none ever did any work."""
        utilizations = [g.mean_utilization for g in self.gpus if g.mean_utilization is not None]
        return self.samples >= 2 and bool(utilizations) and max(utilizations) == 0

    def describe(self) -> str:
        """One line for people: what trained, on how much, how busy."""
        if self.kind == "cpu" or not self.gpus:
            cores = f", {self.cpu_count} cores" if self.cpu_count else ""
            return f"CPU ({self.cpu or 'unknown model'}{cores})"
        return "; ".join([_gpus_text(self.gpus), *_usage_text(self)])

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "requested": self.requested,
            "cpu": self.cpu,
            "cpu_count": self.cpu_count,
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "memory_total_mib": g.memory_total_mib,
                    "peak_memory_mib": g.peak_memory_mib,
                    "mean_utilization": g.mean_utilization,
                }
                for g in self.gpus
            ],
            "driver": self.driver,
            "cuda": self.cuda,
            "samples": self.samples,
            "summary": self.describe(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceInfo:
        fields = {k: v for k, v in data.items() if k not in ("gpus", "summary")}
        return cls(gpus=tuple(Gpu(**g) for g in data.get("gpus", ())), **fields)


def _gpus_text(gpus: tuple[Gpu, ...]) -> str:
    names = sorted({g.name for g in gpus})
    count = f"{len(gpus)}× " if len(gpus) > 1 else ""
    memory = {g.memory_total_mib for g in gpus}
    size = f" ({_gib(memory.pop())} each)" if len(memory) == 1 and None not in memory else ""
    if len(gpus) == 1:
        size = size.replace(" each", "")
    return f"{count}{' + '.join(names)}{size}"


def _usage_text(info: DeviceInfo) -> list[str]:
    parts = []
    versions = [
        f"driver {info.driver}" if info.driver else "",
        f"CUDA {info.cuda}" if info.cuda else "",
    ]
    if any(versions):
        parts.append(", ".join(v for v in versions if v))
    peaks = [g.peak_memory_mib for g in info.gpus if g.peak_memory_mib is not None]
    if peaks:
        parts.append(f"peak memory {_gib(max(peaks))}")
    utilizations = [g.mean_utilization for g in info.gpus if g.mean_utilization is not None]
    if utilizations:
        parts.append(f"mean utilisation {sum(utilizations) / len(utilizations):.0f}%")
    return parts


def _gib(mib: int | None) -> str:
    if mib is None:
        return "?"
    if mib < 1024:
        return f"{mib} MiB"
    return f"{mib / 1024:.1f} GiB"


ENGINE_NAMES = {"ray": "Ray", "skypilot": "SkyPilot"}
_WHERE_TEXT_LIMIT = 100  # an engine's names are shown in full up to this many characters


@dataclass(frozen=True)
class Where:
    """Where a training off the runner ran (train.on: ray | skypilot), as the engine told
    it; None: not reported. Every text is the engine's: each format escapes it."""

    engine: str
    cloud: str | None = None
    region: str | None = None
    instance_type: str | None = None
    accelerator: str | None = None  # e.g. "A100:1"
    spot: bool | None = None
    price_per_hour: float | None = None  # USD, where the engine reports it
    minutes: float | None = None  # the machine's time used, where the engine reports it
    name: str | None = None  # the job's or the cluster's name (mlci-...)

    def describe(self) -> str:
        """One line: `Ray job mlci-1a2b on aws us-east-1, g5.xlarge, A10G:1, spot, $0.41/h,
        12.3 min`; what the engine did not report is left out."""
        head = ENGINE_NAMES.get(self.engine, _cut(self.engine))
        if self.name:
            head += f" job {_cut(self.name)}"
        place = " ".join(_cut(text) for text in (self.cloud, self.region) if text)
        details = [_cut(text) for text in (self.instance_type, self.accelerator) if text]
        if self.spot is not None:
            details.append("spot" if self.spot else "on-demand")
        if self.price_per_hour is not None:
            details.append(f"${self.price_per_hour:.2f}/h")
        if self.minutes is not None:
            details.append(f"{self.minutes:.1f} min")
        return ", ".join([head + (f" on {place}" if place else ""), *details])

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "name": self.name,
            "cloud": self.cloud,
            "region": self.region,
            "instance_type": self.instance_type,
            "accelerator": self.accelerator,
            "spot": self.spot,
            "price_per_hour": self.price_per_hour,
            "minutes": self.minutes,
            "summary": self.describe(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Where:
        return cls(**{k: v for k, v in data.items() if k != "summary"})


def _cut(text: str) -> str:
    return text if len(text) <= _WHERE_TEXT_LIMIT else text[: _WHERE_TEXT_LIMIT - 1] + "…"
