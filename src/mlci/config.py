"""mlci.yaml: the schema, its defaults, and validation messages with key paths.

Every problem in the file is reported at once, each as `key.path: what is wrong`, and
unknown keys are errors (with a suggestion when one is close), never ignored.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar, cast

import yaml

from mlci.core import filetypes, yamlsafe
from mlci.core.device import DeviceSetting
from mlci.core.gate import (
    CORRECTIONS,
    RELATIVE_CHECKS,
    Binning,
    Correction,
    Rule,
    SliceSpec,
)
from mlci.core.metrics import read_text
from mlci.core.workflow import branch_name_problem
from mlci.errors import ConfigError, shown

CONFIG_NAME = "mlci.yaml"
DEFAULT_TRACKING_URI = "sqlite:///.mlci/mlflow.db"
BaselineMode = Literal["auto", "registry", "git", "file", "none"]
Task = Literal["classification", "regression"]
EngineName = Literal["duckdb", "spark"]
# gate.on_missing_baseline; `auto` is `pass` unless a baseline should exist but cannot be read.
MissingBaselinePolicy = Literal["auto", "pass", "fail"]
T = TypeVar("T")
MAX_RESAMPLES = 100_000  # gate.resamples: each confidence level draws this many, per metric


TrainOn = Literal["local", "ray", "skypilot"]


@dataclass(frozen=True)
class Resources:
    """What a training off the runner asks its engine for (train.resources)."""

    gpus: float = 0  # GPUs per training; Ray accepts fractions
    accelerator: str | None = None  # a GPU type, e.g. A100, L4, H100; None: any
    cpus: float | None = None
    memory_gb: float | None = None


@dataclass(frozen=True)
class RayConfig:
    """train.ray: the cluster a `train.on: ray` training is submitted to (docs/gpu.md)."""

    # the Jobs API of a running cluster, http://host:8265; None (and no cluster): RAY_ADDRESS
    address: str | None = None
    cluster: str | None = None  # a cluster config: `ray up` before the training, `ray down` after


@dataclass(frozen=True)
class SkyPilotConfig:
    """train.skypilot: where a `train.on: skypilot` task may run (docs/gpu.md)."""

    infra: str | None = None  # SkyPilot's infra: aws, gcp/us-central1, k8s...; None: any enabled
    spot: bool = False  # spot instances, with failover across regions and clouds
    managed: bool | None = None  # a managed job (recovers lost spot instances); None: = spot
    autostop_minutes: float = 10.0  # the backstop: a cluster idle this long goes down
    api_server: str | None = None  # None: SKYPILOT_API_SERVER_ENDPOINT, else a local one


@dataclass(frozen=True)
class TrainConfig:
    command: str | tuple[str, ...]
    timeout_minutes: float = 60.0
    stall_minutes: float | None = None  # stop a training silent this long; None: off
    device: DeviceSetting = "auto"
    on: TrainOn = "local"  # where the training runs: this runner, or a cloud GPU by an engine
    resources: Resources = Resources()
    storage: str | None = None  # where a training off the runner leaves its outputs (s3://...)
    ray: RayConfig | None = None
    skypilot: SkyPilotConfig | None = None


@dataclass(frozen=True)
class EvaluateConfig:
    metrics: tuple[str, ...]
    predictions: str | None = None
    task: Task = "classification"
    min_rows: int = 0  # fewer rows in the predictions fail the gate; 0: off
    min_row_fraction: float = 0.5  # of the baseline's rows, when both are known; 0: off
    slices: tuple[SliceSpec, ...] = ()  # columns of the predictions, and crosses of two
    slice_min_rows: int = 100  # smaller slices are listed, not gated

    @property
    def slice_columns(self) -> tuple[str, ...]:
        """The predictions file's columns the slices read."""
        names = (name for spec in self.slices for name in spec.names)
        return tuple(dict.fromkeys(names))

    id_column: str = "id"  # pairs the candidate's rows with the baseline's
    engine: EngineName | None = None  # None: mlci reads the predictions files itself
    spark_master: str = "local[2]"  # evaluate.spark.master, when no session is active
    # evaluate.spark.conf: (name, value) of the Spark settings of the session mlci starts
    spark_conf: tuple[tuple[str, str], ...] = ()
    duckdb_memory_limit: str | None = None  # evaluate.duckdb.memory_limit; None: DuckDB's
    # Up to this many rows, metrics and intervals are exact (rows in memory); above, from
    # summaries read batch by batch (docs/gate.md: exact and approximate results).
    exact_rows: int = 2_000_000


@dataclass(frozen=True)
class GateConfig:
    baseline: BaselineMode = "auto"
    baseline_file: str | None = None  # with baseline "file": `baseline: file:PATH`
    base_ref: str | None = None  # the branch a pull request is compared with (git baseline)
    on_missing_baseline: MissingBaselinePolicy = "auto"
    rules: tuple[Rule, ...] = ()
    resamples: int = 2000
    seed: int = 0
    slice_correction: Correction = "holm"  # across the slices of a rule: holm or bh


@dataclass(frozen=True)
class RegistryConfig:
    kind: Literal["mlflow"] = "mlflow"
    tracking_uri: str = DEFAULT_TRACKING_URI
    model: str | None = None
    promote_on: tuple[str, ...] = ("main",)
    alias: str = "champion"
    challenger: str | None = None  # alias for passing pull-request candidates; None: off
    # All requests of one run to an MLflow server together, retries and waits included.
    timeout_minutes: float = 10.0


@dataclass(frozen=True)
class ReportConfig:
    params: tuple[str, ...] = ("params.yaml",)  # diffed against the baseline's, when present
    training_log: str | None = None  # a per-epoch CSV/JSON log: training curves
    plots: bool = True  # PNG plots in report.html and .mlci/out/plots/ (needs mlci[plots])
    sections: tuple[str, ...] = ()  # Markdown files and PNGs the training writes (report.sections)
    flipped_examples: int = 10  # broken rows listed in the report; flipped.csv has them all


@dataclass(frozen=True)
class DataConfig:
    dvc: bool = False  # `dvc pull` before training
    remote: str | None = None  # a DVC remote's name; None: DVC's default remote
    jobs: int | None = None  # parallel transfers (dvc pull --jobs); None: DVC's default
    run_cache: bool = False  # also pull the run cache (dvc pull --run-cache): reuse training
    targets: tuple[str, ...] = ()  # pull only these (.dvc files, stages or paths); (): all
    timeout_minutes: float = 30.0  # stop `dvc pull` after this long
    stall_minutes: float = 5.0  # stop it after this long without output or data arriving


@dataclass(frozen=True)
class S3Config:
    """The bucket for `publish.images: s3` (credentials come from AWS_* variables)."""

    bucket: str
    prefix: str = "mlci"
    endpoint_url: str | None = None  # None: AWS; else any S3-compatible server
    public_url: str | None = None  # None: presigned links (7 days)
    region: str | None = None  # None: AWS_REGION, else us-east-1


ImageStore = Literal["inline", "branch", "gitlab", "gitea", "bitbucket", "s3"]


@dataclass(frozen=True)
class PublishConfig:
    """How the report reaches the pull request (docs/forges.md)."""

    comment: Literal["update", "new", "hide", "off"] = "update"
    status: bool = True  # a commit status with the verdict, on the pull request's head
    check_run: bool = False  # GitHub only: also a check run (needs `checks: write`)
    summary: bool = True  # GitHub Actions job summary (GITHUB_STEP_SUMMARY)
    max_wait_seconds: float = 120.0  # all rate-limit and retry waits of one publish, together
    images: ImageStore = "inline"  # where the comment's PNG plots are hosted (mlci.assets)
    branch: str = "mlci-assets"  # with images: branch
    s3: S3Config | None = None  # with images: s3


@dataclass(frozen=True)
class Config:
    """A validated mlci.yaml. `root` is the folder holding it; paths are relative to it."""

    root: Path
    model_name: str
    train: TrainConfig | None
    evaluate: EvaluateConfig
    gate: GateConfig
    registry: RegistryConfig
    report: ReportConfig = ReportConfig()
    data: DataConfig = DataConfig()
    version: int = 1
    publish: PublishConfig = PublishConfig()


# Every key of mlci.yaml, by section ("" is the top level); docs/config.md documents each.
KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "version",
        "model",
        "train",
        "evaluate",
        "gate",
        "registry",
        "report",
        "publish",
        "data",
    ),
    "model": ("name",),
    "train": (
        "command",
        "timeout_minutes",
        "stall_minutes",
        "device",
        "on",
        "resources",
        "storage",
        "ray",
        "skypilot",
    ),
    "train.resources": ("gpus", "accelerator", "cpus", "memory_gb"),
    "train.ray": ("address", "cluster"),
    "train.skypilot": ("infra", "spot", "managed", "autostop_minutes", "api_server"),
    "evaluate": (
        "metrics",
        "predictions",
        "task",
        "min_rows",
        "min_row_fraction",
        "slices",
        "slice_min_rows",
        "id_column",
        "engine",
        "spark",
        "duckdb",
        "exact_rows",
    ),
    "evaluate.spark": ("master", "conf"),
    "evaluate.duckdb": ("memory_limit",),
    "evaluate.slices[]": ("column", "edges", "quantiles", "cross", "min_rows"),
    "gate": (
        "baseline",
        "base_ref",
        "on_missing_baseline",
        "rules",
        "resamples",
        "seed",
        "slice_correction",
    ),
    "gate.rules[]": (
        "metric",
        "direction",
        "min",
        "max",
        *RELATIVE_CHECKS,
        "severity",
        "confidence",
        "require_proof",
        "on_missing_metric",
        "slices",
    ),
    "registry": (
        "kind",
        "tracking_uri",
        "model",
        "promote_on",
        "alias",
        "challenger",
        "timeout_minutes",
    ),
    "report": ("params", "training_log", "plots", "sections", "flipped_examples"),
    "data": ("dvc", "remote", "jobs", "run_cache", "targets", "timeout_minutes", "stall_minutes"),
    "publish": (
        "comment",
        "status",
        "check_run",
        "summary",
        "max_wait_seconds",
        "images",
        "branch",
        "s3",
    ),
    "publish.s3": ("bucket", "prefix", "endpoint_url", "public_url", "region"),
}


class _Problems:
    """Collects every validation problem so the user sees them all at once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path}: {message}" if path else message)


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{shown(value)}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


class _Section:
    """Typed access to one mapping of the file; each getter records its own problems."""

    def __init__(self, data: object, path: str, problems: _Problems, allowed: tuple[str, ...]):
        self.path = path
        self.problems = problems
        self.data: dict[str, Any] = {}
        if isinstance(data, dict):
            self.data = data
        elif data is not None:
            problems.add(path, f"expected a mapping, got {_describe(data)}")
        for key in self.data:
            if key not in allowed:
                self._unknown(_key_text(key), allowed)

    def _unknown(self, key: str, allowed: tuple[str, ...]) -> None:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]}?" if close else f"expected one of {', '.join(allowed)}"
        self.problems.add(self._at(key), f"unknown key; {hint}")

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: T, check: Callable[[Any], bool], expected: str) -> T:
        if self.data.get(key) is None:  # absent, or `key:` / `key: null`: the default
            return default
        value = self.data[key]
        if check(value):
            return cast(T, value)
        self.problems.add(self._at(key), f"expected {expected}, got {_describe(value)}")
        return default

    def string(self, key: str, default: str) -> str:
        return self._get(key, default, lambda v: isinstance(v, str) and v.strip() != "", "a text")

    def optional_string(self, key: str) -> str | None:
        return self._get(key, None, lambda v: isinstance(v, str) and v.strip() != "", "a text")

    def number(
        self, key: str, *, positive: bool = False, minimum: float | None = None
    ) -> float | None:
        value = self._get(key, None, _is_plain_number, "a number")
        if value is None:
            return None
        if positive and value <= 0:
            self.problems.add(self._at(key), f"expected a number above 0, got {_describe(value)}")
            return None
        if minimum is not None and value < minimum:
            self.problems.add(
                self._at(key), f"expected a number of at least {minimum:g}, got {_describe(value)}"
            )
            return None
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self._get(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"
        )
        if value < minimum:
            self.problems.add(
                self._at(key), f"expected a whole number of at least {minimum}, got {value}"
            )
            return default
        if maximum is not None and value > maximum:
            self.problems.add(
                self._at(key), f"expected a whole number of at most {maximum:,}, got {value:,}"
            )
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self._get(key, default, lambda v: isinstance(v, bool), "true or false")

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        value = self._get(key, default, lambda v: v in options, f"one of {', '.join(options)}")
        return value

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, str) and value.strip():
            return (value,)
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return tuple(value)
        self.problems.add(
            self._at(key), f"expected a text or a list of texts, got {_describe(value)}"
        )
        return default


def _key_text(key: object) -> str:
    """A key as YAML writes it: `null`, `true`, a name with its invisible characters escaped."""
    if key is None:
        return "null"
    return str(key).lower() if isinstance(key, bool) else shown(key)


# The name goes into HTML-comment markers, status contexts and the registry: no line breaks,
# no `--` or `>` to end a comment, nothing a forge or MLflow reads as syntax.
_MODEL_NAME = re.compile(r"(?=.{1,100}\Z)[A-Za-z0-9](?:[A-Za-z0-9._ ]|-(?!-))*(?<! )", re.ASCII)


def _is_plain_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def find_config(start: Path) -> Path:
    """mlci.yaml in `start` or the nearest folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} in {start} or any folder above it; run `mlci init` to write one "
        f"(or `mlci init --example` for a complete example project)"
    )


def locate(config: Path | None, *, start: Path | None = None) -> Path:
    """The mlci.yaml a command uses: `--config` when given, else the nearest one found
    from `start` (the working folder) upwards. The one place that finds mlci.yaml."""
    if config is None:
        return find_config(start or Path.cwd())
    if not config.is_file():
        raise ConfigError(f"--config {config}: no such file")
    return config


def locate_optional(config: Path | None, *, start: Path | None = None) -> Path | None:
    """Like `locate`, but None when no mlci.yaml is found and none was named: commands
    that can run on the defaults (`mlci publish` in a job without a checkout, `mlci comment`)."""
    try:
        return locate(config, start=start)
    except ConfigError:
        if config is not None:
            raise
        return None


def load_config(path: Path) -> Config:
    """Read and validate mlci.yaml; raises ConfigError listing every problem."""
    if not path.exists():
        raise ConfigError(f"{shown(path)}: not found; run `mlci init` to write one")
    text = read_text(path, source=shown(path), what="file", error=ConfigError)
    return parse_config(text, root=path.parent.resolve(), name=path.name)


def parse_config(text: str, *, root: Path, name: str = CONFIG_NAME) -> Config:
    try:
        data = yamlsafe.load(text)
    except yaml.YAMLError as exc:
        separator = ", " if getattr(exc, "problem_mark", None) else ": "
        raise ConfigError(f"{name}{separator}{yamlsafe.describe_error(exc)}") from None
    if data is None:
        raise ConfigError(f"{name}: the file is empty; run `mlci init` for a starting point")
    problems = _Problems()
    config = _parse(data, root, problems)
    if len(problems.lines) == 1:
        raise ConfigError(f"{name}: {problems.lines[0]}")
    if problems.lines:
        listed = "\n".join(f"  {line}" for line in problems.lines)
        raise ConfigError(f"{name} has {len(problems.lines)} problems:\n{listed}")
    assert config is not None
    return config


def load_publish_config(path: Path) -> PublishConfig:
    """Only the `publish` section of mlci.yaml (for `mlci comment`, which needs no model)."""
    text = read_text(path, source=shown(path), what="file", error=ConfigError)
    try:
        data = yamlsafe.load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: {yamlsafe.describe_error(exc)}") from None
    problems = _Problems()
    publish = data.get("publish") if isinstance(data, dict) else None
    settings = _parse_publish(publish, problems)
    if problems.lines:
        raise ConfigError(f"{path.name}: " + "; ".join(problems.lines))
    return settings


def _parse(data: object, root: Path, problems: _Problems) -> Config | None:
    top = _Section(data, "", problems, KEYS[""])
    if not isinstance(data, dict):
        return None
    version = top.data.get("version", 1)
    if version != 1 or isinstance(version, bool):
        problems.add("version", f"expected 1 (the only version so far), got {_describe(version)}")
    model = _Section(top.data.get("model"), "model", problems, ("name",))
    model_name = model.string("name", "")
    if not model_name and not model.has("name"):
        problems.add("model.name", "required: the registered model's name, e.g. digits-classifier")
    elif model_name and not _MODEL_NAME.fullmatch(model_name):
        problems.add(
            "model.name",
            f"{shown(model_name)}: use letters, digits, spaces and . _ - (no --), starting with "
            "a letter or digit, at most 100 characters: it keys the registry, the pull "
            "request's comment and the commit status",
        )
    evaluate = _parse_evaluate(top.data.get("evaluate"), problems)
    gate = _parse_gate(top.data.get("gate"), problems)
    _check_rule_slices(gate, evaluate, problems)
    return Config(
        root=root,
        model_name=model_name,
        train=_parse_train(top.data.get("train"), problems) if top.has("train") else None,
        evaluate=evaluate,
        gate=gate,
        registry=_parse_registry(top.data.get("registry"), problems),
        report=_parse_report(top.data.get("report"), problems),
        publish=_parse_publish(top.data.get("publish"), problems),
        data=_parse_data(top.data.get("data"), problems),
    )


def _parse_publish(data: object, problems: _Problems) -> PublishConfig:
    section = _Section(data, "publish", problems, KEYS["publish"])
    comment = "off"  # YAML 1.1 reads `comment: off` (and false) as false
    if section.data.get("comment") is not False:
        comment = section.choice("comment", "update", ("update", "new", "hide", "off"))
    wait = section.number("max_wait_seconds", minimum=0)
    images = section.choice(
        "images", "inline", ("inline", "branch", "gitlab", "gitea", "bitbucket", "s3")
    )
    s3 = None
    if section.has("s3") or images == "s3":
        bucket = _Section(section.data.get("s3"), "publish.s3", problems, KEYS["publish.s3"])
        name = bucket.string("bucket", "")
        if not name and not bucket.has("bucket"):
            problems.add("publish.s3.bucket", "required with publish.images: s3, e.g. ml-reports")
        s3 = S3Config(
            bucket=name,
            prefix=bucket.string("prefix", "mlci"),
            endpoint_url=bucket.optional_string("endpoint_url"),
            public_url=bucket.optional_string("public_url"),
            region=bucket.optional_string("region"),
        )
    return PublishConfig(
        comment=cast(Any, comment),
        status=section.boolean("status", True),
        check_run=section.boolean("check_run", False),
        summary=section.boolean("summary", True),
        max_wait_seconds=120.0 if wait is None else wait,
        images=cast(ImageStore, images),
        branch=section.string("branch", "mlci-assets"),
        s3=s3,
    )


def _parse_data(data: object, problems: _Problems) -> DataConfig:
    section = _Section(data, "data", problems, KEYS["data"])
    jobs = section.integer("jobs", 0, minimum=1) if section.data.get("jobs") is not None else 0
    return DataConfig(
        dvc=section.boolean("dvc", False),
        remote=section.optional_string("remote"),
        jobs=jobs or None,
        run_cache=section.boolean("run_cache", False),
        targets=section.string_list("targets", ()),
        timeout_minutes=section.number("timeout_minutes", positive=True) or 30.0,
        stall_minutes=section.number("stall_minutes", positive=True) or 5.0,
    )


def _parse_report(data: object, problems: _Problems) -> ReportConfig:
    section = _Section(data, "report", problems, KEYS["report"])
    params = (
        () if section.data.get("params") == [] else section.string_list("params", ("params.yaml",))
    )
    training_log = section.optional_string("training_log")
    for index, name in enumerate(params):
        _check_type(name, f"report.params[{index}]", filetypes.METRICS, problems)
    _check_type(training_log, "report.training_log", filetypes.TRAINING_LOGS, problems)
    return ReportConfig(
        params=params,
        training_log=training_log,
        plots=section.boolean("plots", True),
        sections=_report_sections(section.string_list("sections", ()), problems),
        flipped_examples=section.integer("flipped_examples", 10, minimum=0, maximum=1000),
    )


SECTION_SUFFIXES = (".md", ".markdown", ".png")


def _report_sections(paths: tuple[str, ...], problems: _Problems) -> tuple[str, ...]:
    for index, path in enumerate(paths):
        where = f"report.sections[{index}]"
        if not _inside_project(path, where, problems):
            continue
        if not path.lower().endswith(SECTION_SUFFIXES):
            problems.add(
                where, f"{shown(path)}: expected a Markdown file (.md) or a PNG image (.png)"
            )
    return paths


def _check_type(path: str | None, where: str, types: Collection[str], problems: _Problems) -> None:
    """A problem for a file mlci could not read, by its extension: found when mlci.yaml is
    loaded, before the training runs, not when the file is read after it."""
    suffix = PurePosixPath(path).suffix.lower() if path else ""
    if path and types is filetypes.PREDICTIONS:
        suffix = filetypes.predictions_suffix(PurePosixPath(path).suffixes)
    if path is None or suffix in types:
        return
    kind = f"a {suffix} file" if suffix else "a file without an extension"
    problems.add(
        where, f"{shown(path)}: mlci cannot read {kind} here; use one of {', '.join(types)}"
    )


def _inside_project(path: str, where: str, problems: _Problems) -> bool:
    """False, with a problem, for an absolute path or one that climbs out with `..`."""
    if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
        problems.add(where, f"{shown(path)}: give a path inside the project, relative to mlci.yaml")
        return False
    return True


def _parse_train(data: object, problems: _Problems) -> TrainConfig | None:
    section = _Section(data, "train", problems, KEYS["train"])
    raw = section.data.get("command")
    command: str | tuple[str, ...] = ""
    if isinstance(raw, str) and raw.strip():
        command = raw
    elif isinstance(raw, list) and raw and all(isinstance(v, str) for v in raw):
        command = tuple(raw)
    elif raw is None:
        problems.add("train.command", "required: the command that trains, e.g. python train.py")
    else:
        problems.add("train.command", f"expected a text or a list of texts, got {_describe(raw)}")
    timeout = section.number("timeout_minutes", positive=True)
    stall = section.number("stall_minutes", positive=True)
    device = section.choice("device", "auto", ("auto", "cuda", "cpu"))
    on = cast(TrainOn, section.choice("on", "local", ("local", "ray", "skypilot")))
    storage = section.optional_string("storage")
    ray = _parse_ray(section, problems) if section.has("ray") or on == "ray" else None
    skypilot = None
    if section.has("skypilot") or on == "skypilot":
        skypilot = _parse_skypilot(section.data.get("skypilot"), problems)
    for name in ("resources", "storage", "ray", "skypilot"):
        if section.has(name) and on == "local":
            problems.add(
                f"train.{name}",
                "applies to a training off the runner; set train.on: ray or skypilot, or remove it",
            )
    if on != "local" and storage is None:
        problems.add(
            "train.storage",
            f"required with train.on: {on}: where the training leaves the files mlci reads, "
            "e.g. s3://my-bucket/mlci-runs (docs/gpu.md)",
        )
    return TrainConfig(
        command=command,
        timeout_minutes=timeout or 60.0,
        stall_minutes=stall,
        device=cast(DeviceSetting, device),
        on=on,
        resources=_parse_resources(section.data.get("resources"), problems),
        storage=storage,
        ray=ray,
        skypilot=skypilot,
    )


def _parse_resources(data: object, problems: _Problems) -> Resources:
    section = _Section(data, "train.resources", problems, KEYS["train.resources"])
    return Resources(
        gpus=section.number("gpus", minimum=0) or 0,
        accelerator=section.optional_string("accelerator"),
        cpus=section.number("cpus", positive=True),
        memory_gb=section.number("memory_gb", positive=True),
    )


def _parse_ray(train: _Section, problems: _Problems) -> RayConfig:
    section = _Section(train.data.get("ray"), "train.ray", problems, KEYS["train.ray"])
    address = section.optional_string("address")
    cluster = section.optional_string("cluster")
    if address is not None and cluster is not None:
        problems.add(
            "train.ray",
            "set one of address (a running cluster's Jobs API, e.g. http://127.0.0.1:8265) "
            "and cluster (a Ray cluster config mlci brings up with `ray up` and down after), "
            "not both",
        )
    if address is not None and not address.startswith(("http://", "https://")):
        problems.add(
            "train.ray.address",
            f"expected the Jobs API's http(s) address, e.g. http://127.0.0.1:8265, got "
            f"{shown(address)}",
        )
    return RayConfig(address=address, cluster=cluster)


def _parse_skypilot(data: object, problems: _Problems) -> SkyPilotConfig:
    section = _Section(data, "train.skypilot", problems, KEYS["train.skypilot"])
    managed = section.data.get("managed")
    return SkyPilotConfig(
        infra=section.optional_string("infra"),
        spot=section.boolean("spot", False),
        managed=section.boolean("managed", False) if managed is not None else None,
        autostop_minutes=section.number("autostop_minutes", positive=True) or 10.0,
        api_server=section.optional_string("api_server"),
    )


def _parse_evaluate(data: object, problems: _Problems) -> EvaluateConfig:
    section = _Section(data, "evaluate", problems, KEYS["evaluate"])
    metrics = section.string_list("metrics", ())
    predictions = section.optional_string("predictions")
    if not metrics and not section.has("metrics") and predictions is None:
        problems.add(
            "evaluate.metrics",
            "required: the metrics files training writes, e.g. [metrics.json] "
            "(or evaluate.predictions, from which mlci computes the metrics)",
        )
    for index, name in enumerate(metrics):
        _check_type(name, f"evaluate.metrics[{index}]", filetypes.METRICS, problems)
    _check_type(predictions, "evaluate.predictions", filetypes.PREDICTIONS, problems)
    task = section.choice("task", "classification", ("classification", "regression"))
    min_rows = section.integer("min_rows", 0, minimum=0)
    fraction = section.number("min_row_fraction", minimum=0)
    if fraction is not None and fraction > 1:
        problems.add(
            "evaluate.min_row_fraction",
            f"expected a fraction of the baseline's rows, 0 to 1 (0.5: half), got {fraction:g}",
        )
        fraction = None
    slices = _parse_slices(section.data.get("slices"), problems)
    if slices and predictions is None:
        problems.add("evaluate.slices", "needs evaluate.predictions: slices are its columns")
    id_column = section.string("id_column", "id")
    if id_column in ("y_true", "y_pred", "score") or id_column.startswith(("p_", "proba_")):
        problems.add(
            "evaluate.id_column",
            f"{shown(id_column)} is a column mlci computes metrics from; name the column that "
            "identifies each row, e.g. id",
        )
    chosen = section.choice("engine", "none", ("none", "duckdb", "spark"))
    engine = None if chosen == "none" else chosen
    if engine is not None and predictions is None:
        problems.add("evaluate.engine", "needs evaluate.predictions: the files it scans")
    spark = _Section(section.data.get("spark"), "evaluate.spark", problems, KEYS["evaluate.spark"])
    if section.has("spark") and engine != "spark":
        problems.add("evaluate.spark", "is read only with evaluate.engine: spark")
    duckdb = _Section(
        section.data.get("duckdb"), "evaluate.duckdb", problems, KEYS["evaluate.duckdb"]
    )
    if section.has("duckdb") and engine == "spark":
        problems.add("evaluate.duckdb", "is not read with evaluate.engine: spark")
    memory_limit = duckdb.optional_string("memory_limit")
    if memory_limit is not None and not _MEMORY.fullmatch(memory_limit.strip()):
        problems.add(
            "evaluate.duckdb.memory_limit",
            f"expected an amount of memory such as 2GB, 500MB or 50%, got {shown(memory_limit)}",
        )
        memory_limit = None
    return EvaluateConfig(
        metrics=metrics,
        predictions=predictions,
        task=cast(Task, task),
        min_rows=min_rows,
        min_row_fraction=0.5 if fraction is None else fraction,
        slices=slices,
        slice_min_rows=section.integer("slice_min_rows", 100, minimum=2),
        id_column=id_column,
        engine=cast("EngineName | None", engine),
        spark_master=spark.string("master", "local[2]"),
        spark_conf=_spark_conf(spark.data.get("conf"), problems),
        duckdb_memory_limit=memory_limit,
        exact_rows=section.integer("exact_rows", 2_000_000, minimum=0),
    )


_RESERVED_COLUMNS = ("y_true", "y_pred", "id", "score")


# DuckDB's memory_limit: a number and a unit (decimal or binary), or a share of the memory.
_MEMORY = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|%)", re.IGNORECASE)


def _spark_conf(raw: object, problems: _Problems) -> tuple[tuple[str, str], ...]:
    """evaluate.spark.conf: each Spark setting's full name (spark.*) and its value, a
    text, a number or true/false, written as Spark reads it (true, not True)."""
    path = "evaluate.spark.conf"
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.add(
            path,
            f"expected a mapping of Spark settings such as {{spark.driver.memory: 4g}}, got "
            f"{_describe(raw)}",
        )
        return ()
    settings = []
    for name, value in raw.items():
        at = f"{path}.{_key_text(name)}"
        if not isinstance(name, str) or not name.startswith("spark.") or name == "spark.":
            problems.add(
                at,
                "expected a Spark setting, its full name on one line: spark.driver.memory: 4g",
            )
        elif name == "spark.master":
            problems.add(at, "the master is evaluate.spark.master: set it there")
        elif isinstance(value, bool):
            settings.append((name, str(value).lower()))
        elif _is_plain_number(value) or (isinstance(value, str) and value.strip()):
            settings.append((name, str(value)))
        else:
            problems.add(at, f"expected a text, a number or true/false, got {_describe(value)}")
    return tuple(settings)


def _parse_slices(raw: object, problems: _Problems) -> tuple[SliceSpec, ...]:
    """evaluate.slices: column names, `{column, edges | quantiles}`, `{cross: [a, b]}`."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("evaluate.slices", f"expected a list of columns, got {_describe(raw)}")
        return ()
    binnings: dict[str, Binning] = {}
    entries: list[tuple[tuple[str, ...], int | None]] = []
    for index, item in enumerate(raw):
        path = f"evaluate.slices[{index}]"
        parsed = _parse_slice(item, path, problems)
        if parsed is None:
            continue
        names, binning, min_rows = parsed
        for name in names:
            if name in _RESERVED_COLUMNS or name.startswith(("p_", "proba_")):
                problems.add(path, f"{shown(name)} is a column of the predictions, not a slice")
        if binning is not None:
            binnings[binning.column] = binning
        entries.append((names, min_rows))
    return tuple(
        SliceSpec(tuple(binnings.get(name, Binning(name)) for name in names), min_rows)
        for names, min_rows in entries
    )


def _parse_slice(
    item: object, path: str, problems: _Problems
) -> tuple[tuple[str, ...], Binning | None, int | None] | None:
    if isinstance(item, str) and item.strip():
        return (item,), None, None
    if not isinstance(item, dict):
        problems.add(
            path,
            f"expected a column's name or a mapping like {{column: age, edges: [18, 65]}}, "
            f"got {_describe(item)}",
        )
        return None
    section = _Section(item, path, problems, KEYS["evaluate.slices[]"])
    min_rows = section.integer("min_rows", 0, minimum=2) if section.has("min_rows") else None
    if section.has("cross"):
        cross = section.data["cross"]
        if section.has("column") or section.has("edges") or section.has("quantiles"):
            problems.add(path, "cross names two columns; bin a column in its own entry")
        ok = isinstance(cross, list) and len(cross) == 2 and len(set(map(str, cross))) == 2
        if not ok or not all(isinstance(name, str) and name for name in cross):
            problems.add(f"{path}.cross", f"expected two columns' names, got {_describe(cross)}")
            return None
        return (cross[0], cross[1]), None, min_rows
    column = section.string("column", "")
    if not column:
        problems.add(f"{path}.column", "required: the predictions file's column to slice by")
        return None
    edges = _parse_edges(section, path, problems)
    quantiles = None
    if section.has("quantiles"):
        quantiles = section.integer("quantiles", 4, minimum=2, maximum=100)
        if edges:
            problems.add(path, "give edges or quantiles, not both")
    binning = Binning(column, edges, quantiles) if edges or quantiles else None
    return (column,), binning, min_rows


def _parse_edges(section: _Section, path: str, problems: _Problems) -> tuple[float, ...]:
    if not section.has("edges"):
        return ()
    edges = section.data["edges"]
    numbers = isinstance(edges, list) and edges and all(_is_plain_number(e) for e in edges)
    if not numbers or edges != sorted(set(edges)):
        problems.add(
            f"{path}.edges",
            f"expected increasing numbers like [18, 30, 65], got {_describe(edges)}",
        )
        return ()
    return tuple(float(edge) for edge in edges)


def _parse_gate(data: object, problems: _Problems) -> GateConfig:
    section = _Section(data, "gate", problems, KEYS["gate"])
    baseline, baseline_file = _parse_baseline(section.data.get("baseline", "auto"), problems)
    missing = section.choice("on_missing_baseline", "auto", ("auto", "pass", "fail"))
    resamples = section.integer("resamples", 2000, minimum=100, maximum=MAX_RESAMPLES)
    seed = section.integer("seed", 0, minimum=0)
    correction = section.choice("slice_correction", "holm", tuple(CORRECTIONS))
    raw_rules = section.data.get("rules", [])
    rules: list[Rule] = []
    if not isinstance(raw_rules, list):
        problems.add("gate.rules", f"expected a list of rules, got {_describe(raw_rules)}")
        raw_rules = []
    for index, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"gate.rules[{index}]", problems)
        if rule is not None:
            rules.append(rule)
    return GateConfig(
        baseline=baseline,
        baseline_file=baseline_file,
        base_ref=section.optional_string("base_ref"),
        on_missing_baseline=cast(MissingBaselinePolicy, missing),
        rules=tuple(rules),
        resamples=resamples,
        seed=seed,
        slice_correction=cast(Correction, correction),
    )


def _parse_baseline(value: object, problems: _Problems) -> tuple[BaselineMode, str | None]:
    if isinstance(value, str) and value.startswith("file:") and value[5:].strip():
        _check_type(value[5:].strip(), "gate.baseline", filetypes.METRICS, problems)
        return "file", value[5:].strip()
    if value in ("auto", "registry", "git", "none"):
        return value, None
    problems.add(
        "gate.baseline",
        f"expected one of auto, registry, git, none or file:PATH, got {_describe(value)}",
    )
    return "auto", None


def _parse_rule(raw: object, path: str, problems: _Problems) -> Rule | None:
    if not isinstance(raw, dict):
        problems.add(
            path, f"expected a mapping like {{metric: accuracy, min: 0.9}}, got {_describe(raw)}"
        )
        return None
    section = _Section(raw, path, problems, KEYS["gate.rules[]"])
    metric = section.string("metric", "")
    if not metric:
        if not section.has("metric"):
            problems.add(f"{path}.metric", "required: the metric's name as in the metrics file")
        return None
    direction = section.choice("direction", "", ("higher", "lower")) or None
    values = {name: section.number(name, minimum=0) for name in RELATIVE_CHECKS}
    confidence = section.number("confidence")
    if confidence is not None and not 0.5 <= confidence <= 0.999:
        problems.add(
            f"{path}.confidence", f"expected a level like 0.95 (0.5 to 0.999), got {confidence:g}"
        )
        confidence = None
    require_proof = section.boolean("require_proof", False)
    if require_proof and confidence is None and not section.has("confidence"):
        problems.add(f"{path}.require_proof", "needs confidence too, e.g. confidence: 0.95")
    rule = Rule(
        metric=metric,
        direction=cast(Any, direction),
        min=section.number("min"),
        max=section.number("max"),
        max_drop=values["max_drop"],
        max_drop_pct=values["max_drop_pct"],
        max_rise=values["max_rise"],
        max_rise_pct=values["max_rise_pct"],
        min_gain=values["min_gain"],
        min_gain_pct=values["min_gain_pct"],
        severity=cast(Any, section.choice("severity", "fail", ("fail", "warn"))),
        confidence=confidence,
        require_proof=require_proof,
        on_missing_metric=cast(Any, section.choice("on_missing_metric", "fail", ("fail", "skip"))),
        slices=_parse_rule_slices(section, path, problems),
    )
    if not any(key in raw for key in ("min", "max", *RELATIVE_CHECKS)):
        problems.add(
            path, f"rule for {metric} sets no limit; add min, max, max_drop, max_rise or min_gain"
        )
    _check_direction(rule, path, problems)
    return rule


def _parse_rule_slices(section: _Section, path: str, problems: _Problems) -> bool | tuple[str, ...]:
    value = section.data.get("slices")
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    expected = "true or a list of evaluate.slices columns"
    problems.add(f"{path}.slices", f"expected {expected}, got {_describe(value)}")
    return False


def _check_rule_slices(gate: GateConfig, evaluate: EvaluateConfig, problems: _Problems) -> None:
    """A rule's `slices` needs evaluate.slices, and its columns must be among them."""
    known = evaluate.slice_columns
    for index, rule in enumerate(gate.rules):
        if not rule.slices:
            continue
        path = f"gate.rules[{index}].slices"
        if not evaluate.slices:
            problems.add(path, "needs evaluate.slices: the predictions' columns to slice by")
            continue
        listed = () if isinstance(rule.slices, bool) else rule.slices
        unknown = [name for name in listed if name not in known]
        if unknown:
            problems.add(
                path,
                f"{', '.join(map(shown, unknown))} not in evaluate.slices "
                f"({', '.join(map(shown, known))}); add it there or remove it here",
            )


def _check_direction(rule: Rule, path: str, problems: _Problems) -> None:
    better = rule.better
    for name, _ in rule.thresholds():
        wanted = RELATIVE_CHECKS.get(name)
        if name in ("min_gain", "min_gain_pct") and better is None:
            problems.add(
                f"{path}.direction",
                f"required for {name}: mlci cannot tell whether higher or lower {rule.metric} "
                f"is better; add direction: higher or direction: lower",
            )
        elif wanted is not None and better is not None and wanted != better:
            other = name.replace("drop", "rise") if "drop" in name else name.replace("rise", "drop")
            worse = "rise" if better == "lower" else "drop"
            problems.add(
                f"{path}.{name}",
                f"{rule.metric} is {better}-is-better, so limit how far it may {worse}: "
                f"use {other}",
            )


_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


def _parse_registry(data: object, problems: _Problems) -> RegistryConfig:
    section = _Section(data, "registry", problems, KEYS["registry"])
    section.choice("kind", "mlflow", ("mlflow",))
    alias = section.string("alias", "champion")
    if _RESERVED_ALIAS.match(alias):
        problems.add("registry.alias", f'"{alias}" is reserved by MLflow; use e.g. champion')
    challenger = section.optional_string("challenger")
    if challenger is not None and (_RESERVED_ALIAS.match(challenger) or challenger == alias):
        problems.add(
            "registry.challenger",
            f'"{challenger}" is reserved or already registry.alias; use e.g. challenger',
        )
        challenger = None
    model = section.optional_string("model")
    if model is not None and not _inside_project(model, "registry.model", problems):
        model = None
    promote_on = section.string_list("promote_on", ("main",))
    for branch in promote_on:
        if (problem := branch_name_problem(branch)) is not None:
            problems.add("registry.promote_on", f"{shown(branch)} is not a branch name: {problem}")
            promote_on = ("main",)
    return RegistryConfig(
        tracking_uri=section.string("tracking_uri", DEFAULT_TRACKING_URI),
        model=model,
        promote_on=promote_on,
        alias=alias,
        challenger=challenger,
        timeout_minutes=section.number("timeout_minutes", positive=True) or 10.0,
    )
