"""One run: the stages of DESIGN.md in order, one state object passed along.

The report and gate.json are written to `.mlci/out/` before anything is published or
promoted, and again whenever a later stage fails, so a run never ends without them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlci import baselines, ci, data, doctor, git
from mlci import config as config_module
from mlci.baselines import BaselineRequest
from mlci.config import Config
from mlci.console import Console
from mlci.core import report as report_module
from mlci.core.device import DeviceInfo
from mlci.core.gate import (
    GateResult,
    MetricIntervals,
    MissingBaseline,
    evaluate_gate,
    format_number,
)
from mlci.core.metrics import Metrics, is_number, read_metrics
from mlci.core.report import Figure, Promotion, ReportInput, ReportSection
from mlci.errors import (
    EXIT_EXTERNAL,
    EXIT_GATE_FAILED,
    EXIT_OK,
    Interrupted,
    MetricsError,
    MlciError,
    TrainingError,
    UsageError,
)
from mlci.publish import Publisher
from mlci.registry.base import Lineage, Registry
from mlci.registry.mlflow import MlflowRegistry, resolve_tracking_uri

if TYPE_CHECKING:
    from mlci.core.stats import Predictions

OUT_DIR = Path(".mlci") / "out"
PromoteMode = Literal["auto", "never", "force"]
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
    device: DeviceInfo | None = None
    notes: list[str] = field(default_factory=list)  # from stages before the gate
    promotion: Promotion | None = None
    params: dict[str, str] = field(default_factory=dict)
    baseline_params: Mapping[str, str] | None = None
    figures: tuple[Figure, ...] = ()
    sections: tuple[ReportSection, ...] = ()  # report.sections, read after training
    data: dict[str, str] = field(default_factory=dict)  # dataset path -> DVC hash
    baseline_data: Mapping[str, str] | None = None
    data_pull: str | None = None
    training_reused: str | None = None
    publisher: Publisher | None = None

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
            report_url=context.report_url if context else None,
            training_command=self.training_command,
            training_seconds=self.training_seconds,
            device=self.device,
            stopped_by=error.stopped_by if isinstance(error, TrainingError) else None,
            promotion=self.promotion,
            error=error.message if error else None,
            error_stage=self.stage if error else None,
            exit_code=error.exit_code if error else 0,
            output_tail=error.output_tail if isinstance(error, TrainingError) else (),
            params=self.params,
            baseline_params=self.baseline_params,
            figures=self.figures,
            sections=self.sections,
            data=self.data,
            baseline_data=self.baseline_data,
            data_pull=self.data_pull,
            training_reused=self.training_reused,
        )


@dataclass(frozen=True)
class RunOptions:
    """What `mlci run` and `mlci gate` change about the stages."""

    train: bool = True
    promote: PromoteMode = "auto"
    baseline: BaselineRequest | None = None  # None: gate.baseline from mlci.yaml
    metrics: tuple[Path, ...] | None = None  # None: evaluate.metrics from mlci.yaml
    predictions: Path | None = None  # None: evaluate.predictions from mlci.yaml


def run(
    *,
    config_path: Path,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    options: RunOptions | None = None,
    open_registry: RegistryFactory = open_registry,
) -> Outcome:
    """Run every stage for the project of `config_path`; never raises MlciError.

    With `mlci gate` (no training, a baseline from a file) no registry is opened, so
    mlflow is never imported.
    """
    env = os.environ if env is None else env
    console = console or Console()
    options = options or RunOptions()
    state = _State(root=config_path.parent.resolve())
    out_dir = state.root / OUT_DIR
    config: Config | None = None
    try:
        config = config_module.load_config(config_path)
        state.model = config.model_name
        state.stage = "context"
        state.context = ci.detect_context(config.root, env)
        _describe_context(state.context, console)
        if options.train and options.baseline is None:
            state.stage = "preflight"  # the cheap checks of `mlci doctor`, before training
            for warning in doctor.preflight(config, env):
                console.warn(warning.line())
        request = options.baseline or baselines.request_from_config(config)
        registry = _registry_for(request, options, config, env, open_registry)
        if options.train and config.data.dvc:
            state.stage = "data"
            _pull_data(config, state, console, env)
        if options.train and config.train is not None:
            state.stage = "train"
            _train(config, state, console, env)
        state.stage = "evaluate"
        evaluation = _evaluate(config, options, state, console)
        state.stage = "baseline"
        plan = _promotion_plan(config, state, options.promote)
        choice = baselines.find_baseline(
            config,
            state.context,
            registry,
            request,
            cache=out_dir.parent / "cache",
            console=console,
            # A build that writes nothing to the registry can do without reading it.
            registry_optional=not plan.eligible,
        )
        if choice.baseline is not None:
            console.step("baseline", f"{choice.baseline.label} ({choice.baseline.source})")
        state.params = baselines.read_params(config)
        state.baseline_params = choice.params
        state.data = data.lineage(config.root)  # after training: `dvc repro` updates dvc.lock
        state.baseline_data = choice.data
        state.stage = "gate"
        on_missing, seed_note = _missing_baseline_policy(config, request, choice, plan)
        intervals, interval_notes, paired = _intervals(
            config, evaluation, choice.predictions, console
        )
        gate = evaluate_gate(
            config.gate.rules,
            state.metrics.values if state.metrics else {},
            choice.baseline,
            on_missing_baseline=on_missing,
            intervals=intervals,
        )
        notes = (
            *state.notes,
            *choice.notes,
            *seed_note,
            *evaluation.notes,
            *interval_notes,
            *gate.notes,
        )
        state.gate = dataclasses.replace(gate, notes=notes)
        console.step("gate", state.gate.summary() if state.gate.results else "no rules configured")
        if plan.eligible and not state.gate.passed:
            plan = dataclasses.replace(plan, eligible=False, reason="the gate failed")
        state.promotion = plan
        state.stage = "report"
        candidate, baseline = paired or (evaluation.loaded, None)
        state.figures, figure_notes = _figures(config, candidate, baseline)
        if figure_notes:
            state.gate = dataclasses.replace(state.gate, notes=(*state.gate.notes, *figure_notes))
        if config.report.sections:
            from mlci.sections import read_sections

            state.sections = read_sections(config.root, config.report.sections)
        files = write_outputs(state.report(), out_dir)
        state.stage = "publish"
        publish_failed = _publish(state, out_dir, env, console, config)
        if registry is not None and state.promotion.eligible and state.gate.passed:
            state.stage = "promote"
            state.promotion = _promote(config, state, registry, evaluation.predictions, console)
            files = write_outputs(state.report(), out_dir)
            publish_failed = _publish(state, out_dir, env, console, config)
        exit_code = EXIT_OK if state.gate.passed else EXIT_GATE_FAILED
        if publish_failed and exit_code == EXIT_OK:
            # The gate passed but the pull request did not get the report: say so (3).
            exit_code = EXIT_EXTERNAL
        return Outcome(exit_code=exit_code, report=state.report(), out_dir=out_dir, files=files)
    except MlciError as exc:
        console.error(exc.message)
        failed = state.report(exc)
        files = write_outputs(failed, out_dir)
        _publish(state, out_dir, env, console, config, report=failed)
        return Outcome(exit_code=exc.exit_code, report=failed, out_dir=out_dir, files=files)
    except KeyboardInterrupt:
        write_outputs(state.report(Interrupted(f"interrupted during {state.stage}")), out_dir)
        raise


def _figures(
    config: Config, candidate: Predictions | None, baseline: Predictions | None
) -> tuple[tuple[Figure, ...], tuple[str, ...]]:
    if candidate is None and config.report.training_log is None:
        return (), ()
    from mlci.figures import build_figures

    return build_figures(config, candidate, baseline)


def _registry_for(
    request: BaselineRequest,
    options: RunOptions,
    config: Config,
    env: Mapping[str, str],
    factory: RegistryFactory,
) -> Registry | None:
    """The registry, when this run reads its champion or may promote; else None."""
    reads = request.mode in ("auto", "registry")
    writes = options.promote != "never"
    return factory(config, env) if reads or writes else None


@dataclass(frozen=True)
class _Evaluation:
    predictions: Path | None  # the candidate's predictions file
    loaded: Predictions | None  # loaded once, for the metrics and the intervals
    notes: tuple[str, ...] = ()


def _evaluate(config: Config, options: RunOptions, state: _State, console: Console) -> _Evaluation:
    """Read the metrics files, and compute metrics from the predictions when given."""
    files = (
        options.metrics
        if options.metrics is not None
        else tuple(Path(p) for p in config.evaluate.metrics)
    )
    metrics = read_metrics(files, root=config.root)
    name = options.predictions or (
        Path(config.evaluate.predictions) if config.evaluate.predictions else None
    )
    if name is None:
        state.metrics = metrics
        console.step("evaluate", f"{len(metrics.values)} metrics from {', '.join(map(str, files))}")
        return _Evaluation(predictions=None, loaded=None)
    from mlci.core import stats
    from mlci.predictions import load_predictions

    path = name if name.is_absolute() else config.root / name
    loaded = load_predictions(path, task=config.evaluate.task)
    computed = stats.compute_metrics(loaded, config.evaluate.task)
    values = dict(metrics.values)
    sources = dict(metrics.sources)
    differing = []
    for metric, value in computed.items():
        old = values.get(metric)
        # Files round what they write (probabilities to a few decimals): only a real
        # disagreement, such as a different test set, is worth a note.
        if (
            isinstance(old, int | float)
            and is_number(old)
            and not math.isclose(old, value, rel_tol=1e-3, abs_tol=1e-6)
        ):
            shown = f"{sources[metric]}: {format_number(old)}, predictions: {format_number(value)}"
            differing.append(f"{metric} ({shown})")
        values[metric] = value
        sources[metric] = f"{name} (computed by mlci)"
    state.metrics = Metrics(values=values, sources=sources)
    console.step(
        "evaluate",
        f"{len(metrics.values)} metrics from files, {len(computed)} computed from {name}",
    )
    notes: tuple[str, ...] = ()
    if differing:
        listed = ", ".join(differing)
        notes = (f"The predictions disagree with the metrics files; using them for {listed}.",)
    return _Evaluation(predictions=path, loaded=loaded, notes=notes)


def _intervals(
    config: Config, evaluation: _Evaluation, baseline_predictions: Path | None, console: Console
) -> tuple[dict[float, MetricIntervals], tuple[str, ...], tuple[Predictions, Predictions] | None]:
    """Intervals at each confidence level the rules use (and 0.95 for the report).

    Also returns the candidate's and the baseline's predictions aligned row by row, when
    the baseline's are known, for the plots.
    """
    if evaluation.loaded is None:
        return {}, (), None
    from mlci.core import stats
    from mlci.predictions import align, load_predictions

    candidate = evaluation.loaded
    task = config.evaluate.task
    paired: tuple[Predictions, Predictions] | None = None
    notes: tuple[str, ...] = ()
    if baseline_predictions is not None:
        try:
            paired = align(candidate, load_predictions(baseline_predictions, task=task))
        except MetricsError as exc:
            notes = (f"Intervals are not paired: {exc.message}",)
    levels = sorted({rule.confidence for rule in config.gate.rules if rule.confidence} | {0.95})
    shown = ", ".join(f"{level:.0%}" for level in levels)
    kind = "paired with the baseline" if paired else "candidate only"
    console.step("gate", f"intervals at {shown}, {config.gate.resamples} resamples, {kind}")
    result = {}
    for level in levels:
        draws, seed = config.gate.resamples, config.gate.seed
        value = stats.metric_intervals(
            candidate, task, confidence=level, resamples=draws, seed=seed
        )
        change = {}
        if paired is not None:
            change = stats.paired_difference_intervals(
                *paired, task, confidence=level, resamples=draws, seed=seed
            )
        result[level] = MetricIntervals(value=value, change=change)
    return result, notes, paired


def _describe_context(context: ci.CiContext, console: Console) -> None:
    where = f"{context.branch or 'detached HEAD'} @ {(context.sha or 'no commit')[:12]}"
    dirty = " (uncommitted changes)" if context.dirty else ""
    kind = "local" if context.ci == "local" else f"{context.ci} {context.event}"
    console.step("context", f"{kind} build of {where}{dirty}")


def _train(config: Config, state: _State, console: Console, env: Mapping[str, str]) -> None:
    from mlci.gpu import Monitor
    from mlci.training import run_training

    train = config.train
    assert train is not None
    state.training_command = (
        train.command if isinstance(train.command, str) else " ".join(train.command)
    )
    monitor = Monitor(train.device, env, cwd=config.root)
    state.device = monitor.info()
    limits = f"timeout {train.timeout_minutes:g} min"
    if train.stall_minutes is not None:
        limits += f", stall {train.stall_minutes:g} min"
    console.step("train", f"{state.training_command} on {state.device.describe()} ({limits})")
    lines: list[str] = []
    try:
        with monitor:
            info = run_training(
                train.command,
                cwd=config.root,
                timeout_s=train.timeout_minutes * 60,
                stall_s=None if train.stall_minutes is None else train.stall_minutes * 60,
                echo=console.stream,
                env=monitor.env,
                on_line=lines.append if data.is_repro(train.command) else None,
            )
    finally:
        state.device = monitor.info()
    state.training_seconds = info.duration_s
    state.training_reused = data.read_repro_output(lines).describe()
    if state.device.idle:
        gpu = state.device.gpus[0].name
        state.notes.append(
            f"The GPU ({gpu}) was visible but idle during training (0% utilisation in "
            f"{state.device.samples} samples): the training probably ran on the CPU. Check "
            f"that it moves the model and data to the GPU and that its torch is a CUDA build."
        )
    done = f"done in {info.duration_s:.1f} s on {state.device.describe()}"
    console.step("train", state.training_reused or done)


def _pull_data(config: Config, state: _State, console: Console, env: Mapping[str, str]) -> None:
    """`dvc pull` (data.dvc: true), before training."""
    settings = config.data
    what = "the data and the run cache" if settings.run_cache else "the data"
    limits = f"timeout {settings.timeout_minutes:g} min, stall {settings.stall_minutes:g} min"
    console.step("data", f"dvc pull: {what} ({limits})")
    result = data.pull(
        config.root,
        remote=settings.remote,
        jobs=settings.jobs,
        run_cache=settings.run_cache,
        targets=settings.targets,
        console=console,
        env=env,
        timeout_s=settings.timeout_minutes * 60,
        stall_s=settings.stall_minutes * 60,
    )
    state.data_pull = result.summary()
    console.step("data", state.data_pull)
    if (
        config.data.run_cache
        and config.train is not None
        and data.is_repro(config.train.command)
        and "--pull" not in str(config.train.command)
    ):
        console.warn(
            "data.run_cache is true but train.command runs `dvc repro` without --pull: "
            "outputs that are only on the remote are not restored (see docs/data.md)"
        )


def _missing_baseline_policy(
    config: Config, request: BaselineRequest, choice: baselines.BaselineChoice, plan: Promotion
) -> tuple[MissingBaseline, tuple[str, ...]]:
    """gate.on_missing_baseline, except for the build that seeds an empty registry.

    With `fail`, a registry without a champion could never get one: the first build of
    the main branch would fail for want of a baseline. That build is judged on its
    absolute limits and becomes the first champion.
    """
    policy = config.gate.on_missing_baseline
    seeding = (
        plan.eligible
        and plan.alias == config.registry.alias
        and choice.baseline is None
        and request.mode in ("auto", "registry")
    )
    if policy == "fail" and seeding:
        note = (
            "First champion: this build seeds the empty registry on its absolute limits; "
            "gate.on_missing_baseline: fail applies from the next build on."
        )
        return "pass", (note,)
    return policy, ()


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
    if promote == "force" and not eligible:
        reason = f"forced with --force-promote, although {reason}"
        return Promotion(eligible=True, reason=reason, alias=config.registry.alias, forced=True)
    if not eligible and config.registry.challenger:
        # A candidate that does not promote can still be registered as the challenger.
        why = f"a candidate from outside registry.promote_on becomes @{config.registry.challenger}"
        return Promotion(
            eligible=True, reason=why, alias=config.registry.challenger, role="challenger"
        )
    return Promotion(eligible=eligible, reason=reason, alias=config.registry.alias)


def _promote(
    config: Config,
    state: _State,
    registry: Registry,
    predictions: Path | None,
    console: Console,
) -> Promotion:
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
        device=state.device,
        params=state.params,
        forced=state.promotion.forced,
        data=state.data,
        training_reused=state.training_reused is not None,
    )
    version, created = registry.register(
        config.model_name, artifact, lineage, predictions=predictions
    )
    promotion = dataclasses.replace(state.promotion, version=version.version, created=created)
    alias = state.promotion.alias or config.registry.alias
    current = registry.by_alias(config.model_name, alias)
    champion = alias == config.registry.alias
    if (
        champion
        and current is not None
        and _is_newer(config.root, current.commit, state.context.sha)
    ):
        # An older commit's build finished last: it must not replace a newer champion.
        kept = f"@{alias} stays on v{current.version}, from the newer commit "
        kept += f"{(current.commit or '')[:8]}"
        promotion = dataclasses.replace(promotion, previous=current.version, kept=kept)
    else:
        move = registry.move_alias(
            config.model_name, alias, version, run_url=state.context.run_url, current=current
        )
        promotion = dataclasses.replace(promotion, previous=move.from_version)
    console.step("promote", f"{config.model_name} {promotion.describe()}")
    return promotion


def _is_newer(root: Path, champion_commit: str | None, commit: str) -> bool:
    """True when the champion's commit descends from `commit` (so it is newer)."""
    if champion_commit is None or champion_commit == commit:
        return False
    return git.is_ancestor(root, commit, champion_commit) is True


def write_outputs(report: ReportInput, out_dir: Path) -> dict[str, Path]:
    """report.md, report.html, gate.json, report.json and plots/*.png into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = out_dir / "plots"
    for old in plots.glob("*.png"):
        old.unlink()
    for figure in report.figures:
        for name, png in zip(report_module.png_names(figure), figure.pngs, strict=True):
            plots.mkdir(exist_ok=True)
            (plots / name).write_bytes(png)
    for index, section in enumerate(report.sections):
        if section.png is not None:
            plots.mkdir(exist_ok=True)
            (plots / report_module.section_png_name(index)).write_bytes(section.png)
    files = {
        "report.md": report_module.render_markdown(report),
        "report.html": report_module.render_html(report),
        "gate.json": report_module.dumps(report_module.render_json(report)),
        "report.json": report_module.dumps(report_module.to_document(report)),
    }
    written = {}
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written[name] = path
    return written


def _publish(
    state: _State,
    out_dir: Path,
    env: Mapping[str, str],
    console: Console,
    config: Config | None,
    *,
    report: ReportInput | None = None,
) -> bool:
    """Job summary, comment and status (mlci.publish); True when a part of it failed."""
    if state.publisher is None:
        settings = config.publish if config else config_module.PublishConfig()
        if config is None:
            # mlci.yaml did not load: no model to key a comment or a status by, but the
            # CI's job summary still shows the error, next to the run that hit it.
            settings = config_module.PublishConfig(comment="off", status=False)
            if state.context is None:
                with contextlib.suppress(MlciError):
                    state.context = ci.detect_context(state.root, env)
        state.publisher = Publisher(
            context=state.context, settings=settings, env=env, console=console
        )
    return state.publisher.publish(report or state.report(), out_dir).failed
