"""One run: the stages of DESIGN.md in order, each returning the facts it adds.

The report and gate.json are written to `.mlci/out/` before anything is published or
promoted, and again whenever a later stage fails, so a run never ends without them.
One module per stage: preflight, data, train, evaluate, baseline, gate, report, outputs,
publish, promote; `facts` groups what they learn for the report and the registry.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlci.config import Config, load_config
from mlci.console import Console
from mlci.core.report.model import ReportInput
from mlci.errors import (
    EXIT_EXTERNAL,
    EXIT_GATE_FAILED,
    EXIT_OK,
    Interrupted,
    MlciError,
    StopSignal,
)
from mlci.pipeline import (
    baseline,
    data,
    evaluate,
    gate,
    preflight,
    promote,
    report,
    train,
    trust,
)
from mlci.pipeline.baseline import RegistryFactory, open_registry
from mlci.pipeline.facts import BaselineRequest, Facts, Params, PromoteMode
from mlci.pipeline.outputs import OUT_DIR, FlippedCsv, keep_predictions, write_outputs
from mlci.pipeline.publish import Publisher, open_publisher
from mlci.secrets import secret_values

__all__ = [
    "OUT_DIR",
    "BaselineRequest",
    "Outcome",
    "PromoteMode",
    "RunOptions",
    "run",
    "write_outputs",
]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    report: ReportInput
    out_dir: Path
    files: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOptions:
    """What `mlci run` and `mlci gate` change about the stages."""

    train: bool = True
    promote: PromoteMode = "auto"
    baseline: BaselineRequest | None = None  # None: gate.baseline from mlci.yaml
    metrics: tuple[Path, ...] | None = None  # None: evaluate.metrics from mlci.yaml
    # None: evaluate.predictions from mlci.yaml; a str: an s3://, gs://, az:// URL
    predictions: Path | str | None = None


def run(
    *,
    config_path: Path,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    options: RunOptions | None = None,
    open_registry: RegistryFactory = open_registry,
) -> Outcome:
    """Run every stage for the project of `config_path`; raises no MlciError but
    ReportNotWritten, when the disk refuses .mlci/out/ (the caller prints the verdict it
    carries).

    With `mlci gate` (no training, a baseline from a file) no registry is opened, so
    mlflow is never imported.
    """
    env = os.environ if env is None else env
    console = console or Console()
    options = options or RunOptions()
    root = config_path.parent.resolve()
    out_dir = root / OUT_DIR
    facts, stage = Facts(secrets=secret_values(env)), "config"
    config: Config | None = None
    publisher: Publisher | None = None
    try:
        loaded = load_config(config_path)
        facts = replace(facts, model=loaded.model_name)
        trains = options.train and loaded.train is not None
        if not trains:
            # matplotlib imported while the gate works
            evaluate.draw_aside(loaded, options.predictions)
        stage = "context"
        # Training records a commit, and a git baseline reads one; `mlci gate` on files needs none.
        asked = options.baseline or baseline.request_from_config(loaded)
        commit = options.train or asked.mode == "git"
        source = preflight.context(loaded, env, console, commit=commit)
        facts = replace(facts, source=source)
        # A pull request is judged by its base branch's rules, not its own (docs/security.md).
        rules = trust.rules(loaded, config_path.name, source, env, console)
        config = rules.config
        facts = replace(facts, rules=rules.notes)
        request = options.baseline or baseline.request_from_config(config)
        plan = promote.plan(config, source, options.promote)
        if options.train and options.baseline is None:
            stage = "preflight"  # the cheap checks of `mlci doctor`, before training
            needed = request.mode == "registry" or plan.eligible  # else auto may do without
            preflight.warn(config, env, console, registry=needed)
        registry = baseline.registry_for(request, options.promote, config, env, open_registry)
        if options.train and config.data.dvc:
            stage = "data"
            facts = replace(facts, data=data.pull(config, console, env))
        if options.train and config.train is not None:
            stage = "train"
            facts = replace(facts, training=train.train(config, console, env, source))
            if facts.training and facts.training.failure:
                raise facts.training.failure
        stage = "evaluate"
        if trains:
            # after the training: not kept waiting through it
            evaluate.draw_aside(config, options.predictions)
        known = request.predictions if request.mode == "file" else None
        early = report.Early(config)  # the figures drawn while the gate computes
        evaluation = evaluate.evaluate(
            config,
            options.metrics,
            options.predictions,
            console,
            baseline=known,
            on_baseline=early.ahead,
        )
        # The fork-safe publisher judges the artifact from these (docs/security.md).
        kept = keep_predictions(evaluation.predictions, out_dir)
        evaluation = replace(evaluation, notes=(*evaluation.notes, *kept))
        facts = replace(facts, metrics=evaluation.metrics)
        stage = "baseline"
        choice = baseline.choose(config, source, registry, request, plan, out_dir, console)
        facts = replace(
            facts,
            params=Params(baseline.read_params(config), choice.params),
            data=data.versions(config, facts.data, choice.data),  # after `dvc repro`
        )
        stage = "gate"
        judged = gate.judge(
            config, request, choice, plan, evaluation, facts, console, on_rows=early.rows
        )
        facts = replace(facts, gate=judged.result, flipped=judged.flipped)
        facts = replace(facts, promotion=promote.after_gate(plan, judged))
        stage = "report"
        flipped = None
        if judged.flipped_csv is not None:
            flipped = FlippedCsv(judged.flipped_csv, out_dir, facts.secrets)
            early.meanwhile = flipped.write  # while the last PNGs are drawn
        facts = report.add(config, facts, judged.candidate, judged.baseline, judged.summary, early)
        files = write_outputs(facts.report(), out_dir, flipped=flipped)
        stage = "publish"
        publisher = open_publisher(config, source, root, env, console)
        published = publisher.publish(facts.report(), out_dir)
        if registry is not None and promote.due(facts):
            stage = "promote"
            promotion = promote.promote(config, facts, registry, evaluation.predictions, console)
            facts = replace(facts, promotion=promotion)
            files = write_outputs(facts.report(), out_dir, flipped=flipped)
            published = publisher.publish(facts.report(), out_dir)
        passed = facts.gate is not None and facts.gate.passed
        # A gate that passed but a pull request that did not get the report: say so (3).
        exit_code = EXIT_OK if passed else EXIT_GATE_FAILED
        exit_code = EXIT_EXTERNAL if published.failed and passed else exit_code
        return Outcome(exit_code=exit_code, report=facts.report(), out_dir=out_dir, files=files)
    except MlciError as exc:
        console.error(exc.message)
        failed = facts.report(exc, stage)
        files = write_outputs(failed, out_dir)
        publisher = publisher or open_publisher(config, facts.source, root, env, console)
        publisher.publish(failed, out_dir)
        return Outcome(exit_code=exc.exit_code, report=failed, out_dir=out_dir, files=files)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the report, then on out
        write_outputs(facts.report(_interrupted(exc, stage), stage), out_dir)
        raise
    except Exception as exc:  # a bug in mlci: the report says so, and the CLI exits 4
        bug = MlciError(f"internal error during {stage}: {type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):  # the bug may be in the report itself
            write_outputs(facts.report(bug, stage), out_dir)
        raise


def _interrupted(exc: KeyboardInterrupt, stage: str) -> Interrupted:
    """What the report says of a run a signal stopped, with the exit code mlci ends with."""
    if isinstance(exc, StopSignal) and exc.name != "SIGINT":
        return Interrupted(f"stopped by {exc.name} during {stage}", exit_code=exc.exit_code)
    return Interrupted(f"interrupted during {stage}")
