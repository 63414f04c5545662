"""The report's figures, chosen from what the run provides (the report stage, `report.py`,
imports this module when there is something to draw: it computes with numpy).

Each figure has a Markdown form that needs no image hosting (a table, or a Mermaid chart
that GitHub and GitLab draw) and, with `report.plots` and matplotlib, PNG images that the
HTML report embeds and `.mlci/out/plots/` keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from mlci import drawing
from mlci.config import Config
from mlci.core import curves as curve_module
from mlci.core import mermaid, summary_stats
from mlci.core.predictions import Predictions
from mlci.core.report.figures import (
    area_table_markdown,
    confusion_excerpt,
    confusion_markdown,
)
from mlci.core.report.model import Figure
from mlci.core.stats import confusion_matrix
from mlci.core.summary import ClassificationSummary, Summary
from mlci.errors import MetricsError, UsageError


def build_figures(
    config: Config,
    candidate: Predictions | None,
    baseline: Predictions | None,
    summary: Summary | None = None,
    started: Started | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> tuple[tuple[Figure, ...], tuple[str, ...]]:
    """The figures for this run, and notes on what could not be drawn.

    `baseline`, when given, holds the baseline's predictions aligned row by row with the
    candidate's (`mlci.predictions.align`). Without the rows, a classification `summary`
    (paired or not) gives the same figures, the approximation named in their captions.
    `started`: the confusion matrices the gate started drawing (`start`). `meanwhile`:
    called once every PNG is started, before they are collected.
    """
    painter = _Painter.make(config.report.plots)
    figures: list[Figure] = []
    notes: list[str] = []
    if candidate is not None and config.evaluate.task == "classification":
        drawn, confusion, curves = _take(started, candidate, baseline, painter)
        figures += _classification(drawn, painter, confusion, curves)
    elif isinstance(summary, ClassificationSummary):
        figures += _classification(_from_summary(summary), painter)
    elif candidate is not None:
        figures.append(_residuals(candidate, painter))
    if config.report.training_log:
        try:
            figures.append(_training(config.root / config.report.training_log, painter))
        except MetricsError as exc:
            notes.append(f"No training curves: {exc.message}")
    if meanwhile is not None:
        meanwhile()
    figures = painter.collect(figures)
    if painter.missing:
        notes.append(painter.missing)
    return tuple(figures), tuple(notes)


@dataclasses.dataclass
class _Painter:
    """Makes PNGs when plots are on and matplotlib is there; else says why not, once.

    `draw` starts a figure's PNGs (in `mlci.drawing`'s worker where there is one) and
    `collect` puts them into the figures, so the numbers of later figures are computed
    while earlier ones are drawn."""

    enabled: bool
    missing: str = ""
    pending: dict[str, list[Callable[[], bytes]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, wanted: bool) -> _Painter:
        if not wanted:
            return cls(enabled=False)
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            note = "No PNG plots in report.html: matplotlib is missing (pip install 'mlci[plots]')."
            return cls(enabled=False, missing=note)
        return cls(enabled=True)

    def draw(self, key: str, *drawings: drawing.Drawing) -> None:
        """Start the PNGs of figure `key` (functools.partial of `mlci.plots` functions:
        they travel to the worker)."""
        if self.enabled:
            self.pending[key] = [drawing.draw(one) for one in drawings]

    def collect(self, figures: list[Figure]) -> list[Figure]:
        """The figures with their PNGs; none at all if one drawing failed (the note says why)."""
        try:
            drawn = {
                key: tuple(result() for result in results) for key, results in self.pending.items()
            }
        except UsageError as exc:
            self.enabled, self.missing = False, f"No PNG plots in report.html: {exc.message}"
            drawn = {}
        return [replace(figure, pngs=drawn.get(figure.key, ())) for figure in figures]


_Curves = tuple[list[curve_module.Curve], list[curve_module.Curve]]  # candidate's, baseline's


@dataclasses.dataclass(frozen=True)
class _Drawn:
    """What the classification figures draw: computed from the rows, or from a summary.
    The curves are computed figure by figure (`curves`, "roc" or "pr": both models';
    `calibration`), each figure's PNG started before the next one's curves; None
    without probabilities."""

    classes: tuple[object, ...]
    confusion: np.ndarray
    base_confusion: np.ndarray | None
    curves: Callable[[str], _Curves] | None = None
    calibration: Callable[[], _Calibrations] | None = None
    # per figure ("roc", "pr"), how its curves differ from the rows' (a summary's bins)
    approximation: dict[str, str] = dataclasses.field(default_factory=dict)


_Calibration = curve_module.Curve | None
_Calibrations = tuple[_Calibration, _Calibration]  # candidate's, baseline's
_ROW_CURVES = {"roc": curve_module.roc_curves, "pr": curve_module.pr_curves}


def _from_rows(candidate: Predictions, baseline: Predictions | None) -> _Drawn:
    classes = candidate.classes
    cand_cm = confusion_matrix(candidate.y_true, candidate.y_pred, classes)
    base_cm = None
    if baseline is not None:
        base_cm = confusion_matrix(baseline.y_true, baseline.y_pred, classes)
    if candidate.scores is None:
        return _Drawn(classes, cand_cm, base_cm)
    curves = partial(_curves_from_rows, candidate, baseline)
    calibration = partial(_calibration_from_rows, candidate, baseline)
    return _Drawn(classes, cand_cm, base_cm, curves, calibration)


def _curves_from_rows(candidate: Predictions, baseline: Predictions | None, key: str) -> _Curves:
    # As many points as a PNG draws: the areas are the full curves', the rest is not drawn.
    points, make = _max_curve_points(), _ROW_CURVES[key]
    base = make(baseline, points=points) if baseline is not None else []  # len() may be 0
    return make(candidate, points=points), base


def _calibration_from_rows(candidate: Predictions, baseline: Predictions | None) -> _Calibrations:
    base = curve_module.calibration(baseline) if baseline is not None else None
    return curve_module.calibration(candidate), base


def _max_curve_points() -> int:
    from mlci import plots

    return plots.MAX_CURVE_POINTS


def _from_summary(summary: ClassificationSummary) -> _Drawn:
    classes = summary.classes
    cand_cm = summary_stats.confusion(summary, baseline=False)
    base_cm = summary_stats.confusion(summary, baseline=True) if summary.paired else None
    if summary.candidate is None:
        return _Drawn(classes, cand_cm, base_cm)
    # the bounds of every curve drawn: the baseline's too
    found = [summary_stats.approximation(summary.side(baseline=side)) for side in (False, True)]
    drawn = (
        f"Drawn from score histograms ({found[0].method}) of {summary.rows:,} rows, above "
        f"evaluate.exact_rows: thresholds at the bins' edges,"
    )
    auc_bound = max(one.auc_bound for one in found)
    ap_bound = max(one.ap_bound for one in found)
    approximation = {
        "roc": f"{drawn} the classes' mean ROC area within ±{auc_bound:.2g} of the exact mean.",
        "pr": f"{drawn} each average precision (AP) within ±{ap_bound:.2g} of the exact one.",
    }
    curves = partial(_curves_from_summary, summary)
    calibration = partial(_calibration_from_summary, summary)
    return _Drawn(classes, cand_cm, base_cm, curves, calibration, approximation)


_SUMMARY_CURVES = {"roc": summary_stats.roc_curves, "pr": summary_stats.pr_curves}


def _curves_from_summary(summary: ClassificationSummary, key: str) -> _Curves:
    classes, own, other = summary.classes, summary.candidate, summary.baseline
    assert own is not None
    make = _SUMMARY_CURVES[key]
    return make(own, classes), make(other, classes) if other is not None else []


def _calibration_from_summary(summary: ClassificationSummary) -> _Calibrations:
    classes, own, other = summary.classes, summary.candidate, summary.baseline
    assert own is not None
    base = summary_stats.calibration(other, classes) if other is not None else None
    return summary_stats.calibration(own, classes), base


def _classification(
    drawn: _Drawn,
    painter: _Painter,
    confusion: Figure | None = None,
    curves: tuple[Figure, ...] | None = None,
) -> list[Figure]:
    """The confusion matrices (`confusion`: that figure, its PNGs started already), then
    the curve figures (`curves`: those, started by `start_curves`)."""
    figures = [confusion or _confusion_figure(drawn, painter)]
    return figures + list(_curve_figures(drawn, painter) if curves is None else curves)


def _curve_figures(drawn: _Drawn, painter: _Painter) -> list[Figure]:
    """The ROC, precision-recall and calibration figures, each one's PNG started as soon
    as its curves are computed; none without probabilities."""
    figures: list[Figure] = []
    if drawn.curves is None or drawn.calibration is None:
        return figures
    for key, title in (("roc", "ROC curve"), ("pr", "Precision-recall curve")):
        figure = _curve_figure(key, title, *drawn.curves(key), painter)
        figures.append(_named(figure, drawn.approximation.get(key, "")))
    calibration = _calibration(*drawn.calibration(), painter)
    if calibration is not None:  # a summary's is the rows' diagram: no approximation named
        figures.append(calibration)
    return figures


def _confusion_figure(drawn: _Drawn, painter: _Painter) -> Figure:
    from mlci import plots

    shown = confusion_excerpt(drawn.classes, drawn.confusion, drawn.base_confusion)
    classes, cand_cm, base_cm = shown.classes, shown.candidate, shown.baseline
    painter.draw(
        "confusion_matrix",
        partial(plots.confusion_matrix_png, classes, cand_cm, base_cm, normalize=False),
        partial(plots.confusion_matrix_png, classes, cand_cm, base_cm, normalize=True),
    )
    return Figure(
        key="confusion_matrix",
        title="Confusion matrix",
        markdown=confusion_markdown(classes, cand_cm.tolist(), _listed(base_cm)),
        caption=shown.note,
    )


@dataclasses.dataclass(frozen=True)
class Started:
    """The confusion matrices of a gate's rows, their PNGs started (`start`), and the
    curve figures, once `start_curves` started them too."""

    candidate: Predictions
    baseline: Predictions | None
    drawn: _Drawn
    figure: Figure
    painter: _Painter
    curves: tuple[Figure, ...] | None = None


def start(config: Config, candidate: Predictions, baseline: Predictions | None) -> Started:
    """The confusion matrices of a classification's rows, and their PNGs started, as soon
    as the gate has its rows (`report.Early`): the drawing worker draws them while the
    gate computes, and `build_figures` takes them for the same rows."""
    painter = _Painter.make(config.report.plots)
    drawn = _from_rows(candidate, baseline)
    return Started(candidate, baseline, drawn, _confusion_figure(drawn, painter), painter)


def start_curves(started: Started) -> Started:
    """`started` with the ROC, precision-recall and calibration figures' PNGs started too,
    as soon as the gate has its rows paired (`report.Early`, before the intervals): both
    models' classes are ranked for their ROC AUC first (`stats.rank_classes`, which the
    gate would do next), the curves read those rankings, and the worker draws them while
    the gate computes its intervals and flipped rows."""
    if started.curves is not None:
        return started
    if started.drawn.curves is not None:
        from mlci.core.stats import rank_classes

        for predictions in (started.candidate, started.baseline):
            if predictions is not None:
                rank_classes(predictions)
    curves = tuple(_curve_figures(started.drawn, started.painter))
    return replace(started, curves=curves)


def _take(
    started: Started | None,
    candidate: Predictions,
    baseline: Predictions | None,
    painter: _Painter,
) -> tuple[_Drawn, Figure | None, tuple[Figure, ...] | None]:
    """What `start` (and `start_curves`) made for these rows, its PNGs handed to
    `painter`; else computed now."""
    if started is None or started.candidate is not candidate or started.baseline is not baseline:
        return _from_rows(candidate, baseline), None, None
    painter.pending.update(started.painter.pending)
    return started.drawn, started.figure, started.curves


def _named(figure: Figure, approximation: str) -> Figure:
    """The figure with the approximation it was drawn with in its caption."""
    if not approximation:
        return figure
    return replace(figure, caption=f"{approximation} {figure.caption}".strip())


def _listed(table: np.ndarray | None) -> list[list[int]] | None:
    return None if table is None else [[int(v) for v in row] for row in table]


_AXES = {
    "roc": ("False positive rate", "True positive rate", "AUC", True),
    "pr": ("Recall", "Precision", "AP", False),
}


def _curve_figure(
    key: str,
    title: str,
    own: list[curve_module.Curve],
    other: list[curve_module.Curve],
    painter: _Painter,
) -> Figure:
    from mlci import plots

    x_label, y_label, area, diagonal = _AXES[key]
    if other and (len(own) > 1 or len(other) > 1):
        return _by_class_figure(key, title, curve_module.by_class(own, other), painter)
    curves = _compare(own, other)
    shown = [curve_module.downsample(curve, 200) for curve in curves]
    painter.draw(
        key,
        partial(
            plots.curves_png,
            title,
            curves,
            x_label=x_label,
            y_label=y_label,
            diagonal=diagonal,
            area_label=area,
        ),
    )
    return Figure(
        key=key,
        title=title,
        markdown=_chart(title, shown, x_label, y_label),
        caption=mermaid.legend(shown, area_label=area) if shown else "",
    )


def _by_class_figure(
    key: str, title: str, pairs: list[curve_module.ClassCurves], painter: _Painter
) -> Figure:
    """Multiclass with the baseline's predictions: both models' curves, class by class.

    The PNG draws each class in its colour, candidate solid and baseline dashed. Mermaid
    lines have no styles, so the chart draws the candidate's curves (in the same colours)
    and a table under it compares each class's area with the baseline's. Past one class
    per colour, both draw the classes whose area changed most, and the caption names them.
    """
    from mlci import plots

    x_label, y_label, area, diagonal = _AXES[key]
    drawn = curve_module.most_changed(pairs, len(mermaid.PALETTE))
    shown = [curve_module.downsample(p.candidate, 200) for p in drawn if p.candidate is not None]
    chosen = ""
    if len(drawn) < len(pairs):
        names = ", ".join(mermaid.clean_text(pair.name) for pair in drawn)
        chosen = f"{len(drawn)} of {len(pairs)} classes drawn, those whose {area} changed most"
        caption = f"{chosen}: {names}. " + mermaid.legend(shown, area_label=area)
    else:
        caption = mermaid.legend(shown, area_label=area)
    painter.draw(
        key,
        partial(
            plots.class_curves_png,
            title,
            drawn,
            x_label=x_label,
            y_label=y_label,
            diagonal=diagonal,
            area_label=area,
            note=chosen,
            styles_at="lower right" if key == "roc" else "lower left",
        ),
    )
    both = " (report.html's image draws both)" if painter.enabled else ""
    explained = (
        "The chart draws the candidate's curves: Mermaid has no dashed lines to tell the "
        f"baseline's apart{both}."
    )
    table = area_table_markdown(pairs, area_label=area)
    return Figure(
        key=key,
        title=title,
        markdown=f"{_chart(title, shown, x_label, y_label)}\n\n{explained} Per class:\n\n{table}",
        caption=caption,
    )


def _compare(
    candidate: list[curve_module.Curve], baseline: list[curve_module.Curve]
) -> list[curve_module.Curve]:
    """Binary: candidate beside baseline. Multiclass: the candidate's one-vs-rest curves
    (with the baseline's, `_by_class_figure` draws them)."""
    if len(candidate) == 1:
        named = [dataclasses.replace(candidate[0], name="candidate")]
        if len(baseline) == 1:
            named.append(dataclasses.replace(baseline[0], name="baseline"))
        return named
    return candidate


def _calibration(
    found: curve_module.Curve | None, base: curve_module.Curve | None, painter: _Painter
) -> Figure | None:
    from mlci import plots

    if found is None:
        return None
    curves = [dataclasses.replace(found, name="candidate")]
    if base is not None:
        curves.append(dataclasses.replace(base, name="baseline"))
    title, x_label, y_label = "Calibration", "Mean predicted probability", "Observed frequency"
    painter.draw(
        "calibration",
        partial(plots.curves_png, title, curves, x_label=x_label, y_label=y_label, diagonal=True),
    )
    return Figure(
        key="calibration",
        title=title,
        markdown=_chart(title, curves, x_label, y_label),
        caption=mermaid.legend(curves),
    )


def _chart(title: str, curves: list[curve_module.Curve], x_label: str, y_label: str) -> str:
    try:
        body = mermaid.line_chart(title, curves, x_label=x_label, y_label=y_label)
    except ValueError:
        return "(no points to draw)"
    return f"```mermaid\n{body}\n```"


def _residuals(candidate: Predictions, painter: _Painter) -> Figure:
    from mlci import plots

    predicted, residual = curve_module.residuals(candidate, max_points=20_000)
    values = np.asarray(residual, dtype=float)
    quantiles = np.quantile(values, [0.05, 0.5, 0.95]) if values.size else [np.nan] * 3
    rows = [
        ("mean", float(values.mean()) if values.size else float("nan")),
        ("standard deviation", float(values.std()) if values.size else float("nan")),
        ("5th percentile", float(quantiles[0])),
        ("median", float(quantiles[1])),
        ("95th percentile", float(quantiles[2])),
    ]
    table = "| residual (y_true - y_pred) | value |\n|---|--:|\n" + "\n".join(
        f"| {name} | {value:.4g} |" for name, value in rows
    )
    painter.draw("residuals", partial(plots.residuals_png, predicted, residual))
    return Figure(key="residuals", title="Residuals", markdown=table)


def _training(path: Path, painter: _Painter) -> Figure:
    from mlci import plots

    if not path.is_file():
        raise MetricsError(f"report.training_log: {path.name} was not found after training")
    fmt = "json" if path.suffix.lower() == ".json" else "csv"
    columns = curve_module.read_training_log(
        path.read_text(encoding="utf-8", errors="replace"), fmt, source=path.name
    )
    x_name = "epoch" if "epoch" in columns else "step" if "step" in columns else ""
    x_values = columns.get(x_name) or tuple(
        float(i) for i in range(len(next(iter(columns.values()), ())))
    )
    lines = [
        curve_module.Curve(name, tuple(x_values), tuple(values))
        for name, values in columns.items()
        if name != x_name
    ]
    try:
        body = mermaid.line_chart(
            "Training", lines, x_label=x_name or "row", y_label="value", x_range=None, y_range=None
        )
        markdown = f"```mermaid\n{body}\n```"
    except ValueError:
        markdown = "(no points to draw)"
    painter.draw("training", partial(plots.training_curves_png, columns, x=x_name or "epoch"))
    return Figure(
        key="training",
        title="Training curves",
        markdown=markdown,
        caption=mermaid.legend(lines),
    )
