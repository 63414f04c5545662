"""One run: the stages of DESIGN.md in order, one state object passed along.

The report and gate.json are written to `.mlci/out/` before anything is published or
promoted, and again whenever a later stage fails, so a run never ends without them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlci import ci
from mlci import config as config_module
from mlci.config import Config
from mlci.console import Console
from mlci.core import report as report_module
from mlci.core.gate import Baseline, GateResult, evaluate_gate
from mlci.core.metrics import Metrics, is_number, read_metrics
from mlci.core.report import Promotion, ReportInput
from mlci.errors import (
    EXIT_GATE_FAILED,
    EXIT_OK,
    Interrupted,
    MlciError,
    TrainingError,
    UsageError,
)
from mlci.forges.local import LocalForge
from mlci.registry.base import Lineage, Registry
from mlci.registry.mlflow import MlflowRegistry, resolve_tracking_uri

OUT_DIR = Path(".mlci") / "out"
PromoteMode = Literal["auto", "never"]
RegistryFactory = Callable[[Config, Mapping[str, str]], Registry]


def open_registry(config: Config, env: Mapping[str, str]) -> MlflowRegistry:
    """The configured registry; MLFLOW_TRACKING_URI overrides registry.tracking_uri."""
    uri = env.get("MLFLOW_TRACKING_URI") or config.registry.tracking_uri
    return MlflowRegistry(
        resolve_tracking_uri(uri, config.root),
        artifact_root=config.root / ".mlci" / "mlartifacts",
    )


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    report: ReportInput
    out_dir: Path
    files: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class _State:
    """What the run has learned so far; becomes the report at any stage."""

    root: Path
    model: str = "(unknown model)"
    stage: str = "config"
    context: ci.CiContext | None = None
    metrics: Metrics | None = None
    gate: GateResult | None = None
    training_command: str | None = None
    training_seconds: float | None = None
    promotion: Promotion | None = None

    def report(self, error: MlciError | None = None) -> ReportInput:
        context = self.context
        return ReportInput(
            model=self.model,
            gate=self.gate,
            candidate=dict(self.metrics.values) if self.metrics else {},
            metric_sources=dict(self.metrics.sources) if self.metrics else {},
            commit=context.sha if context else None,
            branch=context.branch if context else None,
            dirty=context.dirty if context else False,
            ci=context.ci if context else "local",
            event=context.event if context else "local",
            run_url=context.run_url if context else None,
            training_command=self.training_command,
            training_seconds=self.training_seconds,
            promotion=self.promotion,
            error=error.message if error else None,
            error_stage=self.stage if error else None,
            exit_code=error.exit_code if error else 0,
            output_tail=error.output_tail if isinstance(error, TrainingError) else (),
        )


def run(
    *,
    config_path: Path,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    train: bool = True,
    promote: PromoteMode = "auto",
    baseline_file: Path | None = None,
    open_registry: RegistryFactory = open_registry,
) -> Outcome:
    """Run every stage for the project of `config_path`; never raises MlciError.

    `train=False` and `baseline_file` serve `mlci gate` (metrics already on disk, the
    baseline from a file: no registry is opened, so mlflow is never imported).
    """
    env = os.environ if env is None else env
    console = console or Console()
    state = _State(root=config_path.parent.resolve())
    out_dir = state.root / OUT_DIR
    try:
        config = config_module.load_config(config_path)
        state.model = config.model_name
        state.stage = "context"
        state.context = ci.detect_context(config.root, env)
        _describe_context(state.context, console)
        registry = None if baseline_file else open_registry(config, env)
        if train and config.train is not None:
            state.stage = "train"
            _train(config, state, console, env)
        state.stage = "evaluate"
        state.metrics = read_metrics([Path(p) for p in config.evaluate.metrics], root=config.root)
        console.step(
            "evaluate",
            f"{len(state.metrics.values)} metrics from {', '.join(config.evaluate.metrics)}",
        )
        state.stage = "baseline"
        baseline = _baseline(config, registry, baseline_file, console)
        state.stage = "gate"
        state.gate = evaluate_gate(
            config.gate.rules,
            state.metrics.values,
            baseline,
            on_missing_baseline=config.gate.on_missing_baseline,
        )
        console.step("gate", state.gate.summary() if state.gate.results else "no rules configured")
        state.promotion = _promotion_plan(config, state, promote)
        state.stage = "report"
        files = _write_outputs(state.report(), out_dir)
        state.stage = "publish"
        _publish(state.report(), out_dir)
        if registry is not None and state.promotion.eligible and state.gate.passed:
            state.stage = "promote"
            state.promotion = _promote(config, state, registry, console)
            files = _write_outputs(state.report(), out_dir)
            _publish(state.report(), out_dir)
        exit_code = EXIT_OK if state.gate.passed else EXIT_GATE_FAILED
        return Outcome(exit_code=exit_code, report=state.report(), out_dir=out_dir, files=files)
    except MlciError as exc:
        console.error(exc.message)
        failed = state.report(exc)
        files = _write_outputs(failed, out_dir)
        _publish(failed, out_dir)
        return Outcome(exit_code=exc.exit_code, report=failed, out_dir=out_dir, files=files)
    except KeyboardInterrupt:
        _write_outputs(state.report(Interrupted(f"interrupted during {state.stage}")), out_dir)
        raise


def _describe_context(context: ci.CiContext, console: Console) -> None:
    where = f"{context.branch or 'detached HEAD'} @ {(context.sha or 'no commit')[:12]}"
    dirty = " (uncommitted changes)" if context.dirty else ""
    kind = "local" if context.ci == "local" else f"{context.ci} {context.event}"
    console.step("context", f"{kind} build of {where}{dirty}")


def _train(config: Config, state: _State, console: Console, env: Mapping[str, str]) -> None:
    from mlci.training import run_training

    assert config.train is not None
    command = config.train.command
    state.training_command = command if isinstance(command, str) else " ".join(command)
    timeout = config.train.timeout_minutes * 60
    console.step(
        "train", f"{state.training_command} (timeout {config.train.timeout_minutes:g} min)"
    )
    info = run_training(command, cwd=config.root, timeout_s=timeout, echo=console.stream, env=env)
    state.training_seconds = info.duration_s
    console.step("train", f"done in {info.duration_s:.1f} s")


def _baseline(
    config: Config, registry: Registry | None, baseline_file: Path | None, console: Console
) -> Baseline | None:
    if baseline_file is not None:
        metrics = read_metrics([baseline_file], root=config.root)
        console.step("baseline", f"metrics from {baseline_file}")
        return Baseline(source="file", label=str(baseline_file), metrics=metrics.values)
    if config.gate.baseline == "none" or registry is None:
        console.step("baseline", "none (gate.baseline: none)")
        return None
    champion = registry.by_alias(config.model_name, config.registry.alias)
    if champion is None:
        console.step(
            "baseline", f"none: {config.model_name} has no @{config.registry.alias} yet (first run)"
        )
        return None
    console.step("baseline", champion.label)
    return Baseline(source="registry", label=champion.label, metrics=champion.metrics)


def _promotion_plan(config: Config, state: _State, promote: PromoteMode) -> Promotion:
    assert state.context is not None
    if promote == "never":
        return Promotion(eligible=False, reason="promotion turned off for this run")
    if config.registry.model is None:
        return Promotion(
            eligible=False, reason="registry.model is not set in mlci.yaml: nothing to register"
        )
    if state.context.sha is None:
        return Promotion(eligible=False, reason="the repository has no commit yet")
    eligible, reason = state.context.promotes(config.registry.promote_on)
    return Promotion(eligible=eligible, reason=reason, alias=config.registry.alias)


def _promote(config: Config, state: _State, registry: Registry, console: Console) -> Promotion:
    assert state.context is not None and state.context.sha is not None
    assert state.gate is not None and state.metrics is not None and state.promotion is not None
    assert config.registry.model is not None
    artifact = config.root / config.registry.model
    if not artifact.exists():
        raise UsageError(
            f"registry.model: {config.registry.model} does not exist after training; make the "
            f"training write the model there, or fix the path in mlci.yaml"
        )
    lineage = Lineage(
        commit=state.context.sha,
        branch=state.context.branch,
        dirty=state.context.dirty,
        ci=state.context.ci,
        event=state.context.event,
        metrics={k: float(v) for k, v in state.metrics.values.items() if is_number(v)},  # type: ignore[arg-type]
        gate_verdict=state.gate.verdict,
        gate_summary=state.gate.summary(),
        baseline=state.gate.baseline.label if state.gate.baseline else None,
        run_url=state.context.run_url,
        pr_number=state.context.pr_number,
        training_seconds=state.training_seconds,
    )
    version, created = registry.register(config.model_name, artifact, lineage)
    move = registry.move_alias(config.model_name, config.registry.alias, version)
    promotion = dataclasses.replace(
        state.promotion, version=version.version, previous=move.from_version, created=created
    )
    console.step("promote", f"{config.model_name} {promotion.describe()}")
    return promotion


def _write_outputs(report: ReportInput, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "report.md": report_module.render_markdown(report),
        "report.html": report_module.render_html(report),
        "gate.json": report_module.dumps(report_module.render_json(report)),
    }
    written = {}
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written


def _publish(report: ReportInput, out_dir: Path) -> None:
    forge = LocalForge(out_dir)
    forge.upsert_comment(report.model, report_module.render_markdown(report))
    forge.set_status(report.commit, report.status, report_module.headline(report))
