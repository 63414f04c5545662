"""What a project's own files say about its training, for `mlci init`: the stages,
metrics, params, plots and model of `dvc.yaml`, and the mlci.yaml made from them.

Pure: the caller reads the files. dvc.yaml is controlled by whoever committed it, so a
name with a control character is refused, a path outside the project is left out, and
every value written into mlci.yaml is quoted when YAML would read it otherwise.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from mlci.core import yamlsafe
from mlci.errors import UsageError

# The files a training writes that look like a model (registry.model), by suffix or name.
MODEL_SUFFIXES = (
    *(".pkl", ".pickle", ".joblib", ".pt", ".pth", ".onnx", ".h5", ".keras"),
    *(".safetensors", ".ckpt", ".cbm", ".ubj"),
)
METRICS_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".tsv")  # what evaluate.metrics reads
STAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*")
FILL_IN = "FILL IN"


@dataclass(frozen=True)
class DvcPipeline:
    """What dvc.yaml says: its stages and the files mlci.yaml takes from them."""

    stages: tuple[str, ...]
    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # PNG plots: the report shows them (report.sections)
    model: str | None = None
    model_from: str = ""  # why that file: "artifact NAME (type: model)" or "outs of stage S"
    left_out: tuple[str, ...] = ()  # what mlci cannot use, and why: said in the summary


@dataclass(frozen=True)
class Reading:
    """What `mlci init` read from a project; None (or empty) where it found nothing, so
    mlci.yaml marks the line FILL IN instead of guessing."""

    name: str
    command: str | None = None
    command_from: str = ""
    dvc: bool = False
    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    model: str | None = None
    model_from: str = ""
    branch: str = "main"
    branch_from: str = ""
    notes: tuple[str, ...] = ()
    metric_names: tuple[str, ...] = ()  # in the metrics files already there (a past run's)

    def to_fill(self) -> list[str]:
        """The keys of mlci.yaml the user must fill in or check."""
        keys = [] if self.command else ["train.command"]
        keys += [] if self.metrics else ["evaluate.metrics"]
        # Which metrics matter is the user's to say; the files' names make a first guess.
        keys += [] if proposed_rules(self.metric_names) else ["gate.rules"]
        return keys + ([] if self.model else ["registry.model"])


# Words of a metric's name that say which way is better (the lower ones checked first:
# "val_loss", "error_rate").
_LOWER_BETTER = frozenset(
    {"loss", "logloss", "error", "err", "rmse", "mse", "mae", "mape", "smape", "brier"}
    | {"perplexity", "ppl", "wer", "cer"}
)
_HIGHER_BETTER = frozenset(
    {"acc", "accuracy", "auc", "roc", "f1", "fscore", "precision", "prec", "recall", "ap"}
    | {"map", "iou", "dice", "r2", "bleu", "rouge", "kappa", "mcc", "top1", "top5"}
)
MAX_PROPOSED_RULES = 4


def proposed_rules(names: tuple[str, ...]) -> list[str]:
    """gate.rules lines for the metrics whose names say which way is better: higher,
    no drop over 0.01; lower, no rise over 5%. The training side's metrics (a `train`
    word beside others) are left out: the rules judge held-out data."""
    held_out = [n for n in names if "train" not in _words(n)] or list(names)
    rules = []
    for name in held_out:
        words = _words(name)
        if words & _LOWER_BETTER:
            rules.append(f"    - {{metric: {_value(name)}, max_rise_pct: 5}}")
        elif words & _HIGHER_BETTER:
            rules.append(f"    - {{metric: {_value(name)}, max_drop: 0.01}}")
    return rules[:MAX_PROPOSED_RULES]


def _words(name: str) -> set[str]:
    return {word for word in re.split(r"[^a-z0-9]+", name.lower()) if word}


def read_dvc_yaml(text: str, *, chosen: tuple[str, ...] = ()) -> DvcPipeline:
    """dvc.yaml's text -> its stages, metrics, params, PNG plots and the model's guess;
    `chosen` are the stages the user named (`mlci init --stage`)."""
    try:
        document = yamlsafe.load_bounded(text)
    except yaml.YAMLError as exc:
        raise UsageError(
            f"dvc.yaml is not valid YAML ({yamlsafe.describe_error(exc)}); correct it "
            f"(`dvc stage list` shows the error) and run mlci init again"
        ) from None
    document = document if isinstance(document, dict) else {}
    raw_stages = document.get("stages")
    stages = raw_stages if isinstance(raw_stages, dict) else {}
    names = tuple(_stage_name(name) for name in stages)
    for name in chosen:
        if name.partition("@")[0] not in names:
            raise UsageError(
                f"--stage {_shown(name)}: dvc.yaml has no such stage; its stages are "
                f"{', '.join(names) or 'none'}"
            )
    bodies = [_body(body) for body in stages.values()]
    left_out: list[str] = []
    metrics = _paths(document.get("metrics"), left_out, "metrics")
    params = _params(document.get("params"), left_out)
    plots = _plot_paths(document.get("plots"), left_out)
    for body in bodies:
        metrics += _paths(body.get("metrics"), left_out, "metrics")
        params += _params(body.get("params"), left_out)
        plots += _plot_paths(body.get("plots"), left_out)
    readable = [path for path in metrics if path.lower().endswith(METRICS_SUFFIXES)]
    left_out += [
        f"metrics {_shown(p)}: not JSON, YAML, CSV or TSV" for p in metrics if p not in readable
    ]
    images = [path for path in plots if path.lower().endswith(".png")]
    if len(images) < len(plots):
        left_out.append(
            f"{len(plots) - len(images)} data plot(s) of DVC (mlci draws its own from "
            f"evaluate.predictions)"
        )
    model, model_from = _model(document, dict(zip(names, bodies, strict=True)), left_out)
    return DvcPipeline(
        stages=names,
        metrics=_unique(readable),
        params=_unique(params),
        images=_unique(images),
        model=model,
        model_from=model_from,
        left_out=tuple(dict.fromkeys(left_out)),
    )


def repro_command(chosen: tuple[str, ...]) -> str:
    """`dvc repro`, or `dvc repro` of the stages the user named (each one shell word)."""
    return " ".join(["dvc repro", *(shlex.quote(name) for name in chosen)])


def _stage_name(name: object) -> str:
    if isinstance(name, str) and STAGE_NAME.fullmatch(name):
        return name
    raise UsageError(
        f"dvc.yaml: the stage name {_shown(str(name))} is not one DVC accepts (letters, "
        f"digits, _ - . @); rename the stage, then run mlci init again"
    )


def _body(body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        return {}
    inner = body.get("do")  # foreach / matrix: the template of each generated stage
    return inner if isinstance(inner, dict) else body


def _path(value: object, left_out: list[str], what: str) -> str | None:
    """A file of dvc.yaml, or None (said in `left_out`) when mlci.yaml cannot take it."""
    if not isinstance(value, str) or not value.strip():
        return None
    if not value.isprintable():
        raise UsageError(
            f"dvc.yaml: the {what} path {_shown(value)} holds a control character; rename "
            f"the file, then run mlci init again"
        )
    pure = PurePosixPath(value)
    if "${" in value:
        left_out.append(f"{what} {_shown(value)}: templated by DVC")
        return None
    if pure.is_absolute() or ".." in pure.parts:
        left_out.append(f"{what} {_shown(value)}: outside the project")
        return None
    return value.removeprefix("./")


def _paths(entries: object, left_out: list[str], what: str) -> list[str]:
    """The paths of a list whose entries are `path` or `{path: {options}}`."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        keys = list(entry) if isinstance(entry, dict) else [entry]
        found += [p for key in keys if (p := _path(key, left_out, what)) is not None]
    return found


def _params(entries: object, left_out: list[str]) -> list[str]:
    """params: `key` (of params.yaml) or `{file: [keys]}`."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str):
            found.append("params.yaml")
        elif isinstance(entry, dict):
            found += _paths([entry], left_out, "params")
    return found


def _plot_paths(entries: object, left_out: list[str]) -> list[str]:
    """plots: a path, `{path: {options}}`, or `{id: {y: {path: field}}}` (top level)."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            for key, options in entry.items():
                axes = options if isinstance(options, dict) else {}
                ys = axes.get("y")
                if isinstance(ys, dict):
                    found += _paths(list(ys), left_out, "plots")
                elif "." in str(key):  # a plot id without files names nothing to show
                    found += _paths([key], left_out, "plots")
        else:
            found += _paths([entry], left_out, "plots")
    return found


def _model(
    document: dict[str, object], stages: dict[str, dict[str, object]], left_out: list[str]
) -> tuple[str | None, str]:
    """The model file: a `type: model` artifact, else a model-like output of the training
    stage (a stage named train*), else of any stage."""
    artifacts = document.get("artifacts")
    for name, artifact in (artifacts if isinstance(artifacts, dict) else {}).items():
        if isinstance(artifact, dict) and artifact.get("type") == "model":
            path = _path(artifact.get("path"), left_out, "artifact")
            if path is not None:
                return path, f"artifact {_shown(str(name))} (type: model) of dvc.yaml"
    ordered = sorted(stages, key=lambda stage: not stage.startswith("train"))
    for stage in ordered:
        for path in _paths(stages[stage].get("outs"), left_out, "outs"):
            if _looks_like_a_model(path):
                return path, f"an output of stage {stage}"
    return None, ""


def _looks_like_a_model(path: str) -> bool:
    name = PurePosixPath(path).name.lower()
    return name.endswith(MODEL_SUFFIXES) or name.startswith("model")


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _shown(value: str) -> str:
    """A name from a file, printable in one line of a message."""
    return json.dumps(value) if not value.isprintable() or not value else value


# -- mlci.yaml --------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_][\w./@+ -]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


def _value(text: str) -> str:
    """A YAML scalar that reads back as `text` (double-quoted, JSON-escaped, if need be)."""
    plain = _PLAIN.fullmatch(text) and not text.endswith(" ") and " -" not in text
    if plain and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_value(value) for value in values) + "]"


def _line(key: str, value: str, comment: str) -> str:
    return f"{key}: {value}".ljust(27) + f"  # {comment}"


def config_text(reading: Reading) -> str:
    """mlci.yaml for the project: what was read, and FILL IN where nothing was found."""
    r = reading
    lines = ["# mlci configuration. Every key is described in docs/config.md."]
    if any(key != "gate.rules" for key in r.to_fill()):  # the rules' FILL IN says itself
        lines += [f"# mlci could not read everything: fill in the lines marked {FILL_IN}."]
    lines += ["version: 1", "model:", "  " + _line("name", _value(r.name), "the registered model")]
    lines += _train_lines(r)
    if r.dvc:
        lines += ["data:", "  " + _line("dvc", "true", "dvc pull the data this commit names")]
    lines += ["evaluate:"]
    if r.metrics:
        source = "from dvc.yaml" if r.command_from.startswith("dvc.yaml") else "CHECK: the files"
        lines += ["  " + _line("metrics", _list(r.metrics), f"{source} (JSON, YAML, CSV, TSV)")]
    else:
        lines += ["  " + _line("metrics", "[metrics.json]", f"{FILL_IN}: the files it writes")]
    lines += [
        "  # predictions: predictions.csv  # y_true, y_pred[, p_<class>...]: noise-aware rules",
        "gate:",
        "  baseline: auto               # the registry's champion, else git, else none",
        "  on_missing_baseline: auto    # unreadable baseline: fails; first run: passes",
    ]
    proposed = proposed_rules(r.metric_names)
    if proposed:
        lines += ["  rules:                       # CHECK: from the metrics files' names"]
        lines += proposed
    else:
        lines += [
            f"  rules:                       # {FILL_IN}: the metrics that must not get worse",
            "    - {metric: accuracy, min: 0.80, max_drop: 0.01}",
        ]
    if r.params or r.sections:
        lines += ["report:"]
    if r.params:
        lines += ["  " + _line("params", _list(r.params), "from dvc.yaml")]
    if r.sections:
        lines += ["  " + _line("sections", _list(r.sections), "the PNG plots of dvc.yaml")]
    lines += [
        "registry:",
        "  kind: mlflow",
        "  tracking_uri: sqlite:///.mlci/mlflow.db   # MLFLOW_TRACKING_URI overrides it",
    ]
    if r.model:
        lines += ["  " + _line("model", _value(r.model), f"CHECK: {r.model_from}")]
    else:
        lines += [f"  # model: model/             # {FILL_IN}: the file or folder it writes"]
    branch = f"the default branch ({r.branch_from})" if r.branch_from else FILL_IN
    lines += ["  " + _line("promote_on", _list((r.branch,)), branch), "  alias: champion"]
    return "\n".join(lines) + "\n"


def _train_lines(r: Reading) -> list[str]:
    if r.command is None:
        return [
            f"# train:                       # {FILL_IN}: the command that trains, e.g.",
            "#   command: python train.py   # (it writes the metrics file and the model)",
            "#   timeout_minutes: 60",
        ]
    why = (
        "the stages of dvc.yaml" if r.command.startswith("dvc repro") else f"from {r.command_from}"
    )
    return [
        "train:",
        "  " + _line("command", _value(r.command), why),
        "  timeout_minutes: 60",
    ]


# -- a training off the runner (`mlci init --gpu ray|skypilot`) ------------------------------

RAY_CLUSTER = "ray/cluster.yaml"  # the cluster config `mlci init --gpu ray` writes
STORAGE_PLACEHOLDER = "s3://FILL-IN-BUCKET/mlci-runs"

_ENGINE_LINES = {
    "ray": (
        "on: ray                     # the training runs on a cloud GPU, as a Ray job",
        f"storage: {STORAGE_PLACEHOLDER}   # {FILL_IN}: the outputs come back through it",
        "resources:                  # what the training asks for",
        "  gpus: 1",
        "  # accelerator: A10G       # a GPU type (Ray's accelerator_type); omitted: any",
        "ray:",
        f"  cluster: {RAY_CLUSTER}   # `ray up` before the training, `ray down` after",
        "  # A running cluster instead (KubeRay, or an autoscaler that adds GPU nodes on",
        "  # demand): remove cluster; its Jobs API address (http://HEAD:8265) comes from",
        "  # RAY_ADDRESS (the workflow's commented line), or put it here as address:",
    ),
    "skypilot": (
        "on: skypilot                # the training runs on a cloud GPU, as a SkyPilot task",
        f"storage: {STORAGE_PLACEHOLDER}   # {FILL_IN}: the outputs come back through it",
        "resources:                  # what the training asks for",
        "  gpus: 1",
        "  accelerator: L4           # any GPU type SkyPilot knows: L4, A10G, A100, H100...",
        "skypilot:",
        "  infra: aws                # aws[/region], gcp, k8s...; the workflow logs in to AWS",
        "  spot: true                # failover across regions; a managed job recovers a loss",
        "  autostop_minutes: 10      # the backstop: an idle cluster goes down after this long",
    ),
}


def with_engine(config_text: str, engine: str) -> str:
    """mlci.yaml with the keys of a training off the runner (train.on: `engine`) added at
    the top of its `train:` section; unchanged when it has none (it then says what to fill)."""
    lines = config_text.splitlines()
    if "train:" not in lines:
        return config_text
    at = lines.index("train:") + 1
    added = [f"  {line}" for line in _ENGINE_LINES[engine]]
    return "\n".join([*lines[:at], *added, *lines[at:]]) + "\n"


def engine_lines(engine: str) -> tuple[str, ...]:
    """The keys `with_engine` adds under `train:`, for a summary to show."""
    return _ENGINE_LINES[engine]


def ray_cluster_config(model: str) -> str:
    """An example Ray cluster config on AWS for `train.ray.cluster`: one GPU worker type,
    scaled from zero, idle workers removed (Ray's cluster-config schema checks it)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:40] or "model"
    return "\n".join(
        [
            "# The Ray cluster mlci brings up for a training (train.ray.cluster in mlci.yaml):",
            "# `ray up` before it, `ray down` after, whatever happens (docs/gpu.md#ray). Written",
            "# by `mlci init --gpu ray`; Ray's docs describe every key (cluster YAML reference).",
            f"cluster_name: mlci-{name}   # mlci-...: how `mlci gpu list` finds what mlci launched",
            "max_workers: 1               # the most GPU machines at once",
            "idle_timeout_minutes: 10     # the backstop: an idle worker goes down after this long",
            "provider:",
            "  type: aws",
            "  region: us-east-1          # CHOOSE: where your GPU quota is",
            "  cache_stopped_nodes: false # terminate, not stop: a stopped node bills its disk",
            "auth:",
            "  ssh_user: ubuntu",
            "available_node_types:",
            "  head:                      # a small CPU machine: schedules, runs no training",
            "    resources: {}",
            "    node_config:",
            "      InstanceType: m5.large",
            "  gpu:",
            "    min_workers: 0           # no GPU machine until the training asks for one",
            "    max_workers: 1",
            "    resources: {}            # Ray reads the GPUs of the instance type itself",
            "    node_config:",
            "      InstanceType: g5.xlarge  # CHOOSE: g5.xlarge one A10G, g6.xlarge one L4",
            "      # InstanceMarketOptions: {MarketType: spot}  # cheaper, may be taken back",
            "head_node_type: head",
            "",
        ]
    )
