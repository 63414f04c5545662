"""A report that another job wrote, read as untrusted data (`mlci publish --from DIR`).

In the fork-safe setup the pull request's job runs code nobody has reviewed yet, writes
`.mlci/out/` and uploads it; a privileged job posts it. That job believes the artifact's
data, never its verdict: the folder is bounded (files, bytes, JSON size and depth), only
plain values are read from report.json (the candidate's metrics and the facts the report
lists), and `rejudge` decides again with the rules and the baseline of the job's own
checkout, the base branch. When the artifact carries the candidate's predictions (`mlci
run` copies them, mlci.pipeline.outputs.keep_predictions), they are read with the limits
of a run, the metrics mlci computes from them replace the claimed ones, and the intervals,
the evaluation's size and the figures come from them as in a run. The artifact's gate,
notes, figures, sections and every Markdown text in it are left out: the comment is
rendered from data, as a run renders it. docs/security.md#the-fork-safe-publisher.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.config import Config
from mlci.console import Console
from mlci.core import yamlsafe
from mlci.core.metrics import Metrics, MetricValue, load_json
from mlci.core.numbers import format_number
from mlci.core.report.model import Figure, ReportInput
from mlci.errors import UsageError, shown
from mlci.pipeline.evaluate import draw_aside, recompute
from mlci.pipeline.facts import BaselineChoice, Evaluation
from mlci.pipeline.figures import build_figures
from mlci.pipeline.gate import apply_rules, auto_policy, measure
from mlci.pipeline.outputs import MAX_PREDICTIONS_BYTES, PREDICTIONS
from mlci.pipeline.report import Early

MAX_FILES = 200  # `mlci run` writes 5 files and a few plots
MAX_ARTIFACT_BYTES = 100_000_000
MAX_DOCUMENT_BYTES = 20_000_000  # report.json, gate.json
MAX_VALUES = 10_000  # metrics, params, datasets, output lines: each
SELF_REPORTED = (
    "Self-reported by the pull request's job: its metrics (and everything else this "
    "report lists of the run) were produced by code nobody has reviewed yet. The verdict "
    "is not the job's own: it was judged again from those metrics with the base branch's "
    "mlci.yaml and baseline."
)
SELF_REPORTED_PREDICTIONS = (
    "Self-reported by the pull request's job: its predictions (the labels and scores of "
    "the artifact's predictions file), the metrics not computed from them, and everything "
    "else this report lists of the run were produced by code nobody has reviewed yet. The "
    "verdict is not the job's own: mlci computed the metrics, their intervals and the "
    "figures again from those predictions, and judged them with the base branch's "
    "mlci.yaml and baseline."
)


@dataclass(frozen=True)
class Artifact:
    """What `mlci publish` believes of an artifact: its data, and what it claimed."""

    report: ReportInput  # plain values only: no gate, figures, sections or promotion
    claimed: tuple[str, ...]  # the verdicts report.json and gate.json claim
    left_out: tuple[str, ...]  # what the artifact held that is not posted ("2 report sections")
    figures: tuple[str, ...] = ()  # the keys of the artifact's figures (not posted)
    predictions: Path | None = None  # the candidate's predictions, as `mlci run` copied them


def read_artifact(source: Path) -> Artifact:
    """The artifact in `source`, bounded; raises UsageError (exit 2) naming the fix."""
    _check_folder(source)
    document = _load_json(source / "report.json")
    gate_json = _load_json(source / "gate.json") if (source / "gate.json").exists() else {}
    where = shown(source / "report.json")
    try:
        artifact = _artifact(document, gate_json)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: not a report this mlci can read ({exc})") from None
    return dataclasses.replace(artifact, predictions=_predictions_file(source))


def rejudge(
    artifact: Artifact, config: Config, choice: BaselineChoice, console: Console
) -> ReportInput:
    """The artifact's report judged by `config`'s rules (the base branch's) against
    `choice`, from its predictions where it has them; its notes say what is self-reported
    and where the claim differed. Raises MetricsError (exit 2) for predictions that a run
    would not have read."""
    report = artifact.report
    # The training log is the base checkout's: not drawn.
    drawn = dataclasses.replace(
        config, report=dataclasses.replace(config.report, training_log=None)
    )
    if artifact.predictions is not None:  # large ones drawn beside the numbers, as in a run
        draw_aside(drawn, artifact.predictions)
    evaluation, notes = _evaluation(artifact, config, console)
    early = Early(drawn)
    measured = measure(config, evaluation, choice, console, on_rows=early.rows)
    on_missing, policy_notes = (
        auto_policy(choice)
        if config.gate.on_missing_baseline == "auto"
        else (config.gate.on_missing_baseline, ())
    )
    gate = apply_rules(config, evaluation, choice, measured, on_missing)
    figures: tuple[Figure, ...] = ()
    if measured.candidate is not None:
        figures, figure_notes = build_figures(
            drawn, measured.candidate, measured.baseline, started=early.started
        )
        notes += figure_notes
    judged = dataclasses.replace(
        report,
        model=config.model_name,
        gate=gate,
        candidate=dict(evaluation.metrics.values),
        metric_sources=dict(evaluation.metrics.sources),
        figures=figures,
        flipped=measured.flipped.summary,
        baseline_params=choice.params,
        baseline_data=choice.data,
    )
    notes = [
        SELF_REPORTED if artifact.predictions is None else SELF_REPORTED_PREDICTIONS,
        *policy_notes,
        *notes,
    ]
    differing = [claim for claim in artifact.claimed if claim != judged.status]
    if differing:
        claims = " and ".join(f'"{claim}"' for claim in differing)
        notes.append(
            f"The pull request's job claimed {claims}; judged again from its metrics with "
            f'the base branch\'s rules, the verdict is "{judged.status}".'
        )
    rebuilt = {figure.key for figure in figures}
    missing = sum(1 for key in artifact.figures if key not in rebuilt)
    left_out = [*([_count(missing, "figure")] if missing else []), *artifact.left_out]
    if left_out:
        notes.append(
            f"Not shown: {', '.join(left_out)} of the artifact; the privileged job "
            "posts only what it renders from data."
        )
    notes += [*choice.notes, *measured.notes, *gate.notes]
    return dataclasses.replace(judged, gate=dataclasses.replace(gate, notes=tuple(notes)))


def _evaluation(
    artifact: Artifact, config: Config, console: Console
) -> tuple[Evaluation, list[str]]:
    """The candidate's metrics: computed again from the artifact's predictions where it
    has them (a claim that differs is named), else as claimed."""
    report = artifact.report
    claimed = Metrics(values=report.candidate, sources=report.metric_sources)
    path = artifact.predictions
    if path is None:
        return Evaluation(claimed), []
    source = f"the artifact's {path.name} (computed by mlci)"
    evaluation, recomputed = recompute(config, claimed, path, source, console=console)
    notes = [
        f"The pull request's job claimed {metric} {format_number(old)}; its predictions "
        f"give {format_number(new)}, the value judged."
        for metric, old, new in recomputed.metrics
    ]
    return evaluation, notes


def _predictions_file(source: Path) -> Path | None:
    """The predictions `mlci run` copied into the artifact, checked as a run would not
    have written them otherwise (one regular file, within its size limit)."""
    found = sorted(source.glob(f"{PREDICTIONS}.*"))
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(shown(path.name) for path in found[:5])
        raise UsageError(
            f"{shown(source)}: more than one predictions file ({names}); `mlci run` copies "
            "one: upload the .mlci/out/ of one run"
        )
    path = found[0]
    if path.is_symlink() or not path.is_file():
        raise UsageError(f"{shown(path)}: not a regular file; `mlci run` copies a file there")
    if path.stat().st_size > MAX_PREDICTIONS_BYTES:
        raise UsageError(
            f"{shown(path)}: larger than {MAX_PREDICTIONS_BYTES:,} bytes (mlci's limit); "
            "`mlci run` does not copy a larger one"
        )
    return path


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'s' if number != 1 else ''}"


def _check_folder(source: Path) -> None:
    if not source.is_dir():
        raise UsageError(
            f"{shown(source)}: no such folder; download the pull request job's .mlci/out/ "
            "artifact into it (actions/download-artifact) and pass it with --from"
        )
    count = size = 0
    for folder, dirs, files in os.walk(source):  # links are not followed
        count += len(dirs) + len(files)
        size += sum((Path(folder) / name).lstat().st_size for name in files)
        if count > MAX_FILES or size > MAX_ARTIFACT_BYTES:
            raise UsageError(
                f"{shown(source)}: more than {MAX_FILES} files or {MAX_ARTIFACT_BYTES:,} bytes, "
                "mlci's limits for an artifact; upload only .mlci/out/ from the pull "
                "request's job (report.json, gate.json, publish.json, plots/)"
            )


def _load_json(path: Path) -> Mapping[str, Any]:
    where = shown(path)
    try:
        if path.is_symlink() or not path.is_file():
            raise FileNotFoundError
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise UsageError(
                f"{where}: larger than {MAX_DOCUMENT_BYTES:,} bytes (mlci's limit); not a "
                "report `mlci run` wrote"
            )
        data = load_json(path.read_text(encoding="utf-8"), where)
    except FileNotFoundError:
        raise UsageError(
            f"{where}: not found; `mlci run` or `mlci gate` writes it (download the job's "
            f".mlci/out/ artifact into {shown(path.parent)})"
        ) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not a report this mlci can read ({exc})") from None
    if _depth(data) > yamlsafe.MAX_DEPTH:
        raise UsageError(_too_deep(where))
    if not isinstance(data, dict):
        raise UsageError(f"{where}: not a report this mlci can read (not a JSON object)")
    return data


def _too_deep(where: str) -> str:
    return f"{where}: nested more than {yamlsafe.MAX_DEPTH} levels deep (mlci's limit)"


def _depth(data: object) -> int:
    deepest, stack = 0, [(data, 0)]
    while stack:  # an explicit stack: depth is what is being checked
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > yamlsafe.MAX_DEPTH:
            return deepest
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)
    return deepest


def _artifact(document: Mapping[str, Any], gate_json: Mapping[str, Any]) -> Artifact:
    if document.get("document_version") != 1:
        raise ValueError("not a version 1 report document")
    error = _text(document, "error")
    report = ReportInput(
        model=_text(document, "model") or "(unknown model)",
        gate=None,
        candidate=_values(document, "candidate", _metric),
        metric_sources=_values(document, "metric_sources", _plain_text),
        commit=_text(document, "commit"),
        branch=_text(document, "branch"),
        ci=_text(document, "ci") or "github",
        event=_text(document, "event") or "pull_request",
        training_command=_text(document, "training_command"),
        training_seconds=_seconds(document.get("training_seconds")),
        stopped_by=_text(document, "stopped_by"),
        error=error,
        error_stage=_text(document, "error_stage"),
        exit_code=_exit_code(document.get("exit_code")) if error is not None else 0,
        output_tail=tuple(_plain_text(line) for line in _list(document, "output_tail")),
        params=_values(document, "params", _plain_text),
        data=_values(document, "data", _plain_text),
        data_pull=_text(document, "data_pull"),
        training_reused=_text(document, "training_reused"),
    )
    claimed = {"error"} if error is not None else set()
    gate = document.get("gate")
    if error is None and isinstance(gate, dict) and isinstance(gate.get("results"), list):
        claimed.add(_claimed_verdict(gate["results"]))
    if isinstance(gate_json.get("verdict"), str):
        claimed.add(_plain_text(gate_json["verdict"])[:20])
    sections = _list(document, "sections")
    left_out = [_count(len(sections), "report section")] if sections else []
    figures = tuple(_figure_key(item) for item in _list(document, "figures"))
    return Artifact(report, tuple(sorted(claimed)), tuple(left_out), figures)


def _figure_key(figure: object) -> str:
    key = figure.get("key") if isinstance(figure, dict) else None
    return key if isinstance(key, str) else ""


def _claimed_verdict(results: list[Any]) -> str:
    verdicts = {item.get("verdict") for item in results if isinstance(item, dict)}
    if "fail" in verdicts:
        return "fail"
    return "warn" if "warn" in verdicts else "pass"


def _text(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    return None if value is None else _plain_text(value)


def _plain_text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{shown(value)[:40]} is not a text")
    return value


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    value = document.get(key) or []
    if not isinstance(value, list) or len(value) > MAX_VALUES:
        raise TypeError(f"{key}: not a list of up to {MAX_VALUES:,} items")
    return value


def _values(document: Mapping[str, Any], key: str, read: Any) -> dict[str, Any]:
    value = document.get(key) or {}
    if not isinstance(value, dict) or len(value) > MAX_VALUES:
        raise TypeError(f"{key}: not a mapping of up to {MAX_VALUES:,} names")
    return {_plain_text(name): read(item) for name, item in value.items()}


def _metric(value: object) -> MetricValue:
    if isinstance(value, dict) and set(value) == {"$float"}:  # report.json's NaN and infinity
        number = float(_plain_text(value["$float"]))
        if math.isfinite(number):
            raise ValueError(f"{shown(value)[:40]} is not a metric value")
        return number
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"{shown(value)[:40]} is not a metric value")


def _exit_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 256:
        return 1
    return value


def _seconds(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("training_seconds is not a number")
    return float(value)
