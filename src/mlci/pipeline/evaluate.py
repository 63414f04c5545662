"""The evaluate stage: read the metrics files, and compute metrics from the predictions."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.config import Config
from mlci.console import Console
from mlci.core.metrics import Metrics, is_number, read_metrics
from mlci.core.numbers import format_number
from mlci.core.redact import redact_url
from mlci.pipeline.facts import Evaluation
from mlci.scan.storage import scheme

if TYPE_CHECKING:
    from mlci.core.predictions import Predictions
    from mlci.core.summary import Summary


# Given the candidate's rows and the baseline's, read ahead (`evaluate`'s on_baseline).
BaselineRead = Callable[["Predictions", "Predictions"], None]

# Below this many rows the gate's numbers take less time than starting the drawing
# worker (a fresh process importing matplotlib): their PNGs are drawn in mlci's process.
# Measured (10 classes, paired): 10,000 rows even, 50,000 rows 0.3 s faster with it.
DRAW_ASIDE_ROWS = 20_000


def large(config: Config, predictions: Path | str | None) -> bool:
    """Whether the predictions to evaluate (the command line's, else evaluate.predictions)
    have DRAW_ASIDE_ROWS rows or more: a file's estimated, a URL's taken as so."""
    wanted = predictions if predictions is not None else config.evaluate.predictions
    if wanted is None:
        return False
    if scheme(str(wanted)):
        return True
    from mlci.predictions import estimate_rows

    name = Path(wanted)
    path = name if name.is_absolute() else config.root / name
    return path.is_file() and estimate_rows(path) >= DRAW_ASIDE_ROWS  # not a FIFO's wait


def draw_aside(config: Config, predictions: Path | str | None) -> None:
    """Start mlci.drawing's worker, where the PNGs are drawn beside the gate's numbers,
    for predictions large enough to pay for its start (`predictions`: the file the run
    evaluates; None: evaluate.predictions)."""
    if config.report.plots and large(config, predictions):
        from mlci import drawing, plots  # numpy: imported where there are predictions to draw

        drawing.start(warm_up=plots.warm_up)


def evaluate(
    config: Config,
    metrics: tuple[Path, ...] | None,
    predictions: Path | str | None,
    console: Console,
    *,
    baseline: Path | str | None = None,
    on_baseline: BaselineRead | None = None,
) -> Evaluation:
    """The candidate's metrics: from `metrics` and `predictions` (the command line's), else
    from evaluate.metrics and evaluate.predictions of mlci.yaml. `baseline`: the baseline's
    predictions when known already, read with the candidate's above evaluate.exact_rows,
    else on a thread beside the candidate's metrics, then handed to `on_baseline` with
    the candidate's rows (on that thread). Predictions in object storage (either model's)
    are scanned by the engine."""
    files = metrics if metrics is not None else tuple(Path(p) for p in config.evaluate.metrics)
    read = read_metrics(files, root=config.root)
    wanted = predictions if predictions is not None else config.evaluate.predictions
    if wanted is None:
        console.step("evaluate", f"{len(read.values)} metrics from {', '.join(map(str, files))}")
        return Evaluation(metrics=read)
    if any(scheme(str(where)) for where in (wanted, baseline) if where is not None):
        return _remote(config, read, wanted, console)
    name = Path(wanted)
    path = name if name.is_absolute() else config.root / name
    source = f"{name} (computed by mlci)"
    known = None if baseline is None else Path(baseline)  # local, as the candidate's
    evaluation, recomputed = recompute(
        config, read, path, source, baseline=known, console=console, on_baseline=on_baseline
    )
    console.step(
        "evaluate",
        f"{len(read.values)} metrics from files, {len(recomputed.computed)} computed from {name}",
    )
    if not recomputed.metrics:
        return evaluation
    listed = ", ".join(
        f"{metric} ({read.sources[metric]}: {format_number(old)}, "
        f"predictions: {format_number(new)})"
        for metric, old, new in recomputed.metrics
    )
    note = f"The predictions disagree with the metrics files; using them for {listed}."
    return dataclasses.replace(evaluation, notes=(note,))


@dataclass(frozen=True)
class Recomputed:
    """The metrics mlci computed from predictions, and those another source had otherwise:
    (name, the other source's value, the computed value)."""

    computed: tuple[str, ...]
    metrics: tuple[tuple[str, float, float], ...]


def recompute(
    config: Config,
    read: Metrics,
    path: Path,
    source: str,
    *,
    baseline: Path | None = None,
    console: Console | None = None,
    on_baseline: BaselineRead | None = None,
) -> tuple[Evaluation, Recomputed]:
    """`read` with the metrics mlci computes from the predictions in `path` in their place
    (each computed metric's source is `source`), and where the two disagreed; an engine's
    warnings on `console`. Raises MetricsError (exit 2) when the file is not predictions
    mlci can read, or too large."""
    if config.evaluate.engine is not None:  # the engine scans: no rows in memory
        from mlci.core import summary_stats

        scanned = _scan(config, str(path), console)
        loaded: Predictions | None = None
        summary: Summary | None = scanned
        computed = summary_stats.compute_metrics(scanned)
    else:
        from mlci.core.flipped import MAX_EXTRA_COLUMNS
        from mlci.streaming import compute_metrics

        computed, loaded, summary = compute_metrics(
            path,
            task=config.evaluate.task,
            id_column=config.evaluate.id_column,
            exact_rows=config.evaluate.exact_rows,
            extra_columns=MAX_EXTRA_COLUMNS,  # shown beside the flipped examples
            columns=config.evaluate.slice_columns,
            baseline=baseline,
            on_baseline=on_baseline,
        )
    metrics, differing = _merged(read, computed, source)
    where = str(path) if config.evaluate.engine is not None else None
    evaluation = Evaluation(metrics, path, loaded, (), summary, where)
    return evaluation, Recomputed(tuple(computed), differing)


def _merged(
    read: Metrics, computed: dict[str, float], source: str
) -> tuple[Metrics, tuple[tuple[str, float, float], ...]]:
    """`read` with the computed metrics in place, and where the two disagreed."""
    values = dict(read.values)
    sources = dict(read.sources)
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
            differing.append((metric, float(old), value))
        values[metric] = value
        sources[metric] = source
    return Metrics(values=values, sources=sources), tuple(differing)


def _scan(config: Config, candidate: str, console: Console | None) -> Summary:
    from mlci.scan.run import scan

    return scan(config.evaluate, candidate, console=console).summary


def _remote(config: Config, read: Metrics, name: Path | str, console: Console) -> Evaluation:
    """Predictions in object storage (the candidate's, or the baseline's beside a local
    file): scanned in place by the engine (DuckDB by default), never downloaded, so a URL
    is not copied into the report's folder or the registry."""
    from mlci.core import summary_stats

    local = None if scheme(str(name)) else config.root / name
    where = str(name if local is None else local)
    summary = _scan(config, where, console)
    computed = summary_stats.compute_metrics(summary)
    shown = redact_url(where)
    metrics, _ = _merged(read, computed, f"{shown} (computed by mlci)")
    console.step("evaluate", f"{len(computed)} metrics computed from {shown}")
    return Evaluation(metrics, predictions=local, summary=summary, scanned=where)
