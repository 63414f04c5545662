"""The baseline stage: the registry's champion, the pull request's base in git, a file, or none.

`auto` tries the registry, then git, then none, and says which one it used and why the
others were not. An explicit source that cannot be read is an error that names the fix;
`auto` falls through to the next source instead, with a note in the report. A registry
that cannot be read at all (unreachable, or refusing a fork's pull request that gets no
secrets) is passed over the same way, but only by a build that will not write to it;
the choice then says so (`unreadable`), and gate.on_missing_baseline: auto fails it.

The git baseline reads each file with `git show`, or, for a file a DVC stage writes,
through that commit's dvc.lock and DVC's cache or remote (mlci.data.tracked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlci import git
from mlci.ci import CiContext
from mlci.config import Config
from mlci.console import Console
from mlci.core.gate import Baseline
from mlci.core.metrics import MetricValue, format_for, parse_metrics, read_metrics, read_text
from mlci.core.redact import redact_url
from mlci.core.report.model import Promotion
from mlci.data import hashes, remotes, tracked
from mlci.errors import ExternalError, MetricsError, MlciError, UsageError, shown
from mlci.pipeline.basecommit import base_commit
from mlci.pipeline.facts import BaselineChoice, BaselineRequest, PromoteMode
from mlci.registry import open_registry
from mlci.scan.storage import scheme

if TYPE_CHECKING:
    from mlci.registry.base import Registry

RegistryFactory = Callable[[Config, Mapping[str, str]], "Registry"]
__all__ = ["BaselineChoice", "BaselineRequest", "RegistryFactory", "open_registry"]


def request_from_config(config: Config) -> BaselineRequest:
    file = Path(config.gate.baseline_file) if config.gate.baseline_file else None
    return BaselineRequest(mode=config.gate.baseline, file=file)


def registry_for(
    request: BaselineRequest,
    promote: PromoteMode,
    config: Config,
    env: Mapping[str, str],
    factory: RegistryFactory,
) -> Registry | None:
    """The registry, when this run reads its champion or may promote; else None."""
    reads = request.mode in ("auto", "registry")
    writes = promote != "never"
    return factory(config, env) if reads or writes else None


def choose(
    config: Config,
    context: CiContext,
    registry: Registry | None,
    request: BaselineRequest,
    plan: Promotion,
    out_dir: Path,
    console: Console,
) -> BaselineChoice:
    """The baseline of this run, said on the log; its files are cached beside `out_dir`."""
    choice = find_baseline(
        config,
        context,
        registry,
        request,
        cache=out_dir.parent / "cache",
        console=console,
        # A build that writes nothing to the registry can do without reading it.
        registry_optional=not plan.eligible,
    )
    if choice.baseline is not None:
        console.step("baseline", f"{choice.baseline.label} ({choice.baseline.source})")
    return choice


def find_baseline(
    config: Config,
    context: CiContext,
    registry: Registry | None,
    request: BaselineRequest,
    *,
    cache: Path,
    console: Console,
    registry_optional: bool = False,
) -> BaselineChoice:
    """The baseline this run is compared against, by `request.mode`.

    With `registry_optional` (a build that will not promote), `auto` compares with git
    when the registry cannot be read, instead of failing the run.
    """
    if request.mode == "none":
        return BaselineChoice(None, notes=("No baseline: gate.baseline is none.",))
    if request.mode == "file":
        return _from_file(config, request.file, request.predictions, console)
    if request.mode == "registry":
        return _from_registry(config, registry, cache) or BaselineChoice(
            None, notes=(f"No baseline: {config.model_name} has no @{config.registry.alias} yet.",)
        )
    if request.mode == "git":
        return _from_git(config, context, request.ref, cache, console, strict=True)
    unread = None  # why the registry could not be read, when it could not
    try:
        found = _from_registry(config, registry, cache)
    except ExternalError as exc:
        if not registry_optional:
            raise
        found, unread = None, exc.message
    if found is not None:
        return found
    from_git = _from_git(config, context, request.ref, cache, console, strict=False)
    if unread is None:
        notes = [f"{config.model_name} has no @{config.registry.alias} in the registry yet"]
    elif from_git.baseline is not None:
        base = "the pull request's base" if context.event == "pull_request" else "the base branch"
        notes = [f"The registry could not be read: {unread}; compared with {base} in git instead."]
        console.warn(notes[0])
    else:
        notes = [f"the registry could not be read: {unread}"]
        console.warn(f"the registry could not be read, and there is no git baseline: {unread}")
    if from_git.baseline is not None:
        return BaselineChoice(
            from_git.baseline,
            from_git.predictions,
            (*notes, *from_git.notes),
            params=from_git.params,
            data=from_git.data,
        )
    notes += from_git.notes
    console.step("baseline", "none: " + "; ".join(notes))
    return BaselineChoice(
        None,
        notes=(f"No baseline ({'; '.join(notes)}).",),
        unreadable=_unreadable(from_git, unread),
    )


def of_base_checkout(
    config: Config,
    context: CiContext,
    registry: Registry | None,
    cache: Path,
    console: Console,
) -> BaselineChoice:
    """The baseline `mlci publish` judges an artifact against: gate.baseline of the job's
    own checkout (the base branch), the git baseline read at that checkout's HEAD; in a
    pull request's own job, at the merge base, as `mlci run` reads it."""
    mode = config.gate.baseline
    if mode == "none":
        return BaselineChoice(None, notes=("No baseline: gate.baseline is none.",))
    if mode == "file":
        assert config.gate.baseline_file is not None
        return _from_file(config, Path(config.gate.baseline_file), None, console)
    if mode == "git":
        return from_checkout(config, context, cache, console)
    unread: str | None = None  # why the registry could not be read, when it could not
    try:
        found = _from_registry(config, registry, cache)
    except MlciError as exc:  # a job without the registry's credentials, or without mlflow
        if mode == "registry":
            raise
        found, unread = None, exc.message
        note = f"The registry could not be read: {exc.message}; compared with git instead."
        console.warn(note)
    else:
        note = f"{config.model_name} has no @{config.registry.alias} in the registry yet."
    if found is not None:
        return found
    if mode == "registry":
        return BaselineChoice(None, notes=(note,))
    from_git = from_checkout(config, context, cache, console)
    unreadable = _unreadable(from_git, unread)
    return dataclasses.replace(from_git, notes=(note, *from_git.notes), unreadable=unreadable)


def _unreadable(from_git: BaselineChoice, unread: str | None) -> str | None:
    """Why a baseline should exist but could not be read, when git gave none: a champion
    may exist behind a registry that could not be read (`unread`: why), and a git baseline
    that DVC names but cannot fetch exists too; neither is a first build."""
    if from_git.baseline is not None:
        return None
    return from_git.unreadable or (f"the registry could not be read: {unread}" if unread else None)


def _from_file(
    config: Config, file: Path | None, predictions: Path | str | None, console: Console
) -> BaselineChoice:
    if file is None:  # only its predictions: its metrics computed as the candidate's are
        assert predictions is not None
        values = _computed(config, predictions, console)
        baseline = Baseline(source="file", label=redact_url(str(predictions)), metrics=dict(values))
        return BaselineChoice(baseline, predictions=predictions)
    metrics = read_metrics([file], root=config.root)
    return BaselineChoice(
        Baseline(source="file", label=str(file), metrics=metrics.values), predictions=predictions
    )


def _computed(config: Config, predictions: Path | str, console: Console) -> dict[str, float]:
    """The metrics of the baseline's predictions: a URL scanned in place by the engine (as
    the candidate's are; its warnings on `console`), a file read as the candidate's would
    be."""
    if scheme(str(predictions)) is not None:
        from mlci.core import summary_stats
        from mlci.scan.run import scan

        scanned = scan(config.evaluate, str(predictions), console=console)
        return summary_stats.compute_metrics(scanned.summary)
    from mlci.predictions import hand_on
    from mlci.streaming import compute_metrics

    task, id_column = config.evaluate.task, config.evaluate.id_column
    path = Path(predictions)
    values, loaded, _ = compute_metrics(
        path, task=task, exact_rows=config.evaluate.exact_rows, id_column=id_column
    )
    if loaded is not None:  # the gate's to pair with the candidate's: not read twice
        hand_on(path, loaded, task=task, id_column=id_column)
    return values


def _from_registry(config: Config, registry: Registry | None, cache: Path) -> BaselineChoice | None:
    if registry is None:
        return None
    champion = registry.by_alias(config.model_name, config.registry.alias)
    if champion is None:
        return None
    predictions = (
        registry.predictions(champion, cache / "registry") if config.evaluate.predictions else None
    )
    baseline = Baseline(source="registry", label=champion.label, metrics=champion.metrics)
    notes: tuple[str, ...] = ()
    if config.evaluate.predictions and predictions is None:
        notes = (f"{champion.label} has no stored predictions: intervals are not paired.",)
    datasets = dict(champion.data) or None  # a version registered without DVC: unknown
    return BaselineChoice(baseline, predictions, notes, params=champion.params, data=datasets)


def read_params(config: Config) -> dict[str, str]:
    """The candidate's params: report.params files, flattened, values as text."""
    values: dict[str, str] = {}
    for name in config.report.params:
        path = config.root / name
        if path.exists():
            source = shown(name)
            text = read_text(
                path, source=source, what="params file (report.params)", error=MetricsError
            )
            values.update(_param_texts(text, name))
    return values


def _param_texts(text: str, name: str) -> dict[str, str]:
    parsed = parse_metrics(text, fmt=format_for(Path(name)), source=shown(name))
    return {key: param_text(value) for key, value in parsed.items()}


def param_text(value: MetricValue) -> str:
    """A param as text, the same whether read from a file or from the registry."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def _from_git(
    config: Config,
    context: CiContext,
    ref: str | None,
    cache: Path,
    console: Console,
    *,
    strict: bool,
) -> BaselineChoice:
    try:
        base = base_commit(config, context, ref)
    except UsageError as exc:
        if strict:
            raise
        return BaselineChoice(None, notes=(f"no git baseline: {exc.message}",))
    commit, label = base.commit, base.label
    if base.note is not None:
        console.warn(base.note)
    if commit is None:
        return BaselineChoice(None, notes=(f"no git baseline: {label}",))
    return at_commit(config, commit, label, cache, strict=strict, note=base.note)


def from_checkout(
    config: Config, context: CiContext, cache: Path, console: Console
) -> BaselineChoice:
    """The metrics committed at this checkout's HEAD: the git baseline of `mlci publish`,
    whose job checks out the base branch (its last commit stands for the merge base)."""
    if context.event == "pull_request":  # the pull request's checkout: its merge base
        return _from_git(config, context, None, cache, console, strict=False)
    commit = git.resolve_commit(config.root, "HEAD")
    if commit is None:
        return BaselineChoice(None, notes=("no git baseline: this folder is not a git checkout",))
    return at_commit(config, commit, f"the base branch's checkout ({commit[:8]})", cache)


def at_commit(
    config: Config,
    commit: str,
    label: str,
    cache: Path,
    *,
    strict: bool = False,
    note: str | None = None,
) -> BaselineChoice:
    """The baseline committed at `commit`: its metrics files (in git, or DVC outputs that
    its dvc.lock names), predictions, params, data; `note` (which of two commits a branch's
    name meant) goes first in its notes."""
    try:
        return _read_git_baseline(config, commit, label, cache, strict=strict, note=note)
    except ExternalError as exc:  # DVC's remote refused or lacks the output
        if strict:
            raise
        return BaselineChoice(
            None, notes=(f"no git baseline: {exc.message}",), unreadable=exc.message
        )


def _read_git_baseline(
    config: Config, commit: str, label: str, cache: Path, *, strict: bool, note: str | None
) -> BaselineChoice:
    values: dict[str, MetricValue] = {}
    missing = []
    for name in config.evaluate.metrics:
        content = _read_at(config, commit, name)
        if content is None:
            missing.append(name)
            continue
        text = content.decode("utf-8", errors="replace")
        values.update(
            parse_metrics(text, fmt=format_for(Path(name)), source=f"{name} at {commit[:8]}")
        )
    predictions = _predictions_at(config, commit, cache)
    if not values and predictions is None:
        files = ", ".join(config.evaluate.metrics)
        why = (
            f"{files} {'is' if len(missing) == 1 else 'are'} neither committed at {label} "
            f"nor a DVC output that its dvc.lock names"
        )
        if strict:
            raise UsageError(
                f"gate.baseline is git, but {why}; commit the metrics files, or write them "
                f"from a dvc.yaml stage (or use the registry baseline)"
            )
        return BaselineChoice(None, notes=(f"no git baseline: {why}",))
    notes = (f"Not committed at {label}: {', '.join(missing)}.",) if missing else ()
    notes = notes if note is None else (note, *notes)
    params: dict[str, str] = {}
    for name in config.report.params:
        content = _read_at(config, commit, name)
        if content is not None:
            params.update(_param_texts(content.decode("utf-8", errors="replace"), name))
    baseline = Baseline(source="git", label=label, metrics=values)
    datasets = (
        hashes.lineage(config.root, commit=commit) if remotes.find_dvc_root(config.root) else None
    )
    return BaselineChoice(baseline, predictions, notes, params=params, data=datasets)


def _read_at(config: Config, commit: str, name: str) -> bytes | None:
    """`name` at `commit`: from git, else through the commit's dvc.lock (DVC's cache or remote)."""
    content = git.read_file_at(config.root, commit, git.prefix(config.root) + name)
    return content if content is not None else tracked.read_at(config.root, commit, name)


def _predictions_at(config: Config, commit: str, cache: Path) -> Path | None:
    name = config.evaluate.predictions
    if name is None:
        return None
    content = _read_at(config, commit, name)
    if content is None:
        return None
    path = cache / "git" / commit[:12] / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path
