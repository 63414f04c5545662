"""PNG images of the report's plots, drawn with matplotlib (`pip install 'mlci[plots]'`).

matplotlib is imported inside the functions, so mlci starts without it. Figures are made
with `matplotlib.figure.Figure` on an Agg canvas, never pyplot, so no GUI backend or global
figure is involved. The output is deterministic: the same inputs give the same bytes (fixed
size, dpi and style, no timestamp or version in the PNG's metadata), on one matplotlib
version. Text from users (class labels, column and curve names) is drawn as plain text:
no mathtext, control characters made spaces, long labels shortened; glyphs the font lacks
are drawn as boxes, without a warning.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlci.core.curves import ClassCurves, Curve, downsample
from mlci.core.mermaid import PALETTE
from mlci.core.predictions import Array, FloatArray
from mlci.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
MAX_ANNOTATED_CLASSES = 20  # more classes: cells too small to write counts in
MAX_CURVE_POINTS = 2_000  # per drawn line; more cannot be told apart at this size
MAX_SCATTER_POINTS = 20_000
MAX_PANELS = 6
# Counters and clocks in training logs: not worth a panel.
COUNTERS = frozenset({"epoch", "step", "global_step", "iteration", "iter", "batch", "time"})
# matplotlib's tab10, the colours mlci.core.mermaid's captions name.
_COLOURS = tuple(colour for _, colour in PALETTE)
_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs everywhere
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "text.parse_math": False,  # a label like "$x" or "\alpha" is text, not TeX
    "savefig.dpi": DPI,
    "path.simplify": True,
}
_TRAINING_PREFIX = re.compile(r"^(train|training|val|valid|validation|test|eval)[_/.]", re.I)
_TRAINING_SUFFIX = re.compile(
    r"[_/.](train|training|val|valid|validation|test|eval|epoch|step)$", re.I
)


# -- Public API --------------------------------------------------------------------------


def warm_up() -> None:
    """Import matplotlib and load its font and colour maps, so that the first PNG does
    not pay for them (`mlci.drawing`'s worker, while the gate computes)."""

    def draw(figure: Figure) -> None:
        figure.subplots().imshow(np.eye(2), cmap="Blues")
        figure.text(0.5, 0.5, "0")

    _render((1.0, 1.0), draw)


def confusion_matrix_png(
    classes: Sequence[object],
    candidate: Array,
    baseline: Array | None,
    *,
    normalize: bool,
) -> bytes:
    """Confusion matrices (rows: true label, columns: predicted), candidate's beside baseline's.

    `candidate` and `baseline` are (k, k) counts in `classes` order (`stats.confusion_matrix`).
    With `normalize`, each row is divided by its total (so the diagonal is each class's
    recall) and cells read as percentages; one colour scale serves both matrices.
    """
    k = len(classes)
    tables = [("candidate", _square(candidate, k, "candidate"))]
    if baseline is not None:
        tables.append(("baseline", _square(baseline, k, "baseline")))
    side = min(max(2.6 + 0.38 * k, 4.0), 9.0)
    size = (side * len(tables) + 1.0, side * 0.9 + 0.2 * (k > 4))

    def draw(figure: Figure) -> None:
        shown = [(title, _rates(table) if normalize else table) for title, table in tables]
        top = 1.0 if normalize else max(float(table.max()) for _, table in shown) or 1.0
        axes = figure.subplots(1, len(shown), squeeze=False)[0]
        for index, (ax, (title, table), (_, counts)) in enumerate(
            zip(axes, shown, tables, strict=True)
        ):
            ax.imshow(table, cmap="Blues", vmin=0.0, vmax=top)
            _confusion_axes(ax, title, classes, counts, row_labels=index == 0)
            if k <= MAX_ANNOTATED_CLASSES:
                _annotate(ax, table, counts, top, normalize=normalize, k=k)
        label = "share of the true class" if normalize else "rows"
        figure.colorbar(axes[0].images[0], ax=list(axes), shrink=0.8, label=label)

    return _render(size, draw)


def curves_png(
    title: str,
    curves: Sequence[Curve],
    *,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    area_label: str = "area",
) -> bytes:
    """Curves on one chart with a legend (area shown as `area_label` when a curve has one).

    `diagonal` draws the y = x reference (chance for ROC, perfect calibration) and fixes
    both axes to [0, 1].
    """

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        if diagonal:
            _diagonal(ax, "--")
        for index, curve in enumerate(curves):
            small = downsample(curve, MAX_CURVE_POINTS)
            ax.plot(
                small.x,
                small.y,
                label=_curve_label(curve, area_label),
                color=_COLOURS[index % len(_COLOURS)],
                linestyle=("-", "--", ":")[index // len(_COLOURS) % 3],
                marker="o" if len(small) <= 25 else None,
                markersize=3,
                linewidth=1.6,
            )
        ax.set_title(_text(title, 64))
        ax.set_xlabel(_text(x_label, 70))
        ax.set_ylabel(_text(y_label, 50))
        if curves:
            # Three columns of "class 9 (AUC 0.999)" fit the figure's width; four do not.
            columns = 1 if len(curves) <= 3 else 3
            size = "medium" if len(curves) <= 3 else "small"
            figure.legend(loc="outside lower center", ncols=columns, fontsize=size)
        else:
            _no_data(ax)

    rows = math.ceil(len(curves) / 3) if len(curves) > 3 else len(curves)
    return _render((6.0, 4.6 + 0.18 * min(rows, 8)), draw)


def class_curves_png(
    title: str,
    pairs: Sequence[ClassCurves],
    *,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    area_label: str = "area",
    note: str = "",
    styles_at: Literal["lower right", "lower left", "upper left"] = "lower right",
) -> bytes:
    """Two models' one-vs-rest curves: one colour per class, candidate solid, baseline dashed.

    The legend has one entry per class with both areas (`class 3: AUC 0.981 (baseline
    0.975)`, or which model has no curve); a small key at `styles_at` in the axes says
    which line style is which model. At most one class per colour of the palette (pick
    them with `curves.most_changed`); `note` (which classes those are) goes above the chart.
    """
    if len(pairs) > len(_COLOURS):
        raise ValueError(f"{len(pairs)} classes, but only {len(_COLOURS)} colours to tell apart")

    def draw(figure: Figure) -> None:
        from matplotlib.lines import Line2D

        ax = figure.subplots()
        if diagonal:
            _diagonal(ax, ":")  # dotted: dashed lines are the baseline's here
        entries = []
        for colour, pair in zip(_COLOURS, pairs, strict=False):
            # The baseline first, so the candidate's solid line lies on top where they meet.
            for curve, style, width in ((pair.baseline, "--", 1.3), (pair.candidate, "-", 1.6)):
                if curve is not None:
                    _class_line(ax, curve, colour, style, width)
            entries.append(Line2D([], [], color=colour, linewidth=2.5))
        ax.set_title(_text(title, 64))
        ax.set_xlabel(_text(x_label, 70))
        ax.set_ylabel(_text(y_label, 50))
        if not pairs:
            _no_data(ax)
            return
        styles = [
            Line2D([], [], color="#555555", linestyle="-", linewidth=1.6),
            Line2D([], [], color="#555555", linestyle="--", linewidth=1.3),
        ]
        ax.legend(
            styles, ["candidate", "baseline"], loc=styles_at, fontsize="medium", handlelength=3
        )
        figure.legend(entries, labels, loc="outside lower center", ncols=columns, fontsize="medium")
        if note:
            figure.suptitle(_text(note, 90), fontsize=8, color="#555555")

    labels = [_pair_label(pair, area_label) for pair in pairs]
    # Two columns of "class 3: AUC 0.981 (baseline 0.975)" fit the figure's width.
    columns = 2 if all(len(label) <= 42 for label in labels) else 1
    rows = math.ceil(len(pairs) / columns)
    return _render((6.4, 4.6 + 0.2 * rows + 0.2 * bool(note)), draw)


def residuals_png(y_pred: Sequence[float] | Array, residuals: Sequence[float] | Array) -> bytes:
    """Residuals (true - predicted) against the prediction, and their histogram.

    Above `MAX_SCATTER_POINTS` rows the scatter shows a fixed random sample (the title says
    so); the histogram counts every row. Rows with a NaN or infinity are left out.
    """
    predicted = np.asarray(y_pred, dtype=np.float64)
    errors = np.asarray(residuals, dtype=np.float64)
    if predicted.shape != errors.shape:
        raise ValueError(f"{len(predicted)} predictions but {len(errors)} residuals")
    finite = np.isfinite(predicted) & np.isfinite(errors)
    predicted, errors = predicted[finite], errors[finite]

    def draw(figure: Figure) -> None:
        scatter, histogram = figure.subplots(1, 2, width_ratios=(3, 1.2), sharey=True)
        shown = _sample(len(errors))
        scatter.scatter(
            predicted[shown],
            errors[shown],
            s=6,
            alpha=_alpha(len(shown)),
            color=_COLOURS[0],
            linewidths=0,
        )
        scatter.axhline(0.0, color="#555555", linewidth=1)
        sampled = f" ({len(shown):,} of {len(errors):,} rows)" if len(shown) < len(errors) else ""
        scatter.set_title(f"Residuals{sampled}")
        scatter.set_xlabel("predicted")
        scatter.set_ylabel("residual (true − predicted)")
        histogram.hist(errors, bins=40, orientation="horizontal", color=_COLOURS[0])
        histogram.axhline(0.0, color="#555555", linewidth=1)
        histogram.set_title("Distribution")
        histogram.set_xlabel("rows")
        if not len(errors):
            _no_data(scatter)

    return _render((7.5, 4.2), draw)


def training_curves_png(columns: Mapping[str, Sequence[float]], x: str = "epoch") -> bytes:
    """Per-epoch training curves, one panel per metric (`loss` with `val_loss`, ...).

    Columns are grouped by name without a train/val/test prefix or suffix (`val_loss`,
    `train/loss`, `loss_epoch` all go with `loss`). `x` is the horizontal axis; a log
    without it is plotted against 1, 2, 3, .... Counters and clocks (`COUNTERS`) get no
    panel; after `MAX_PANELS` panels the rest are named in a note. NaN cells (a row that
    logged other columns) are skipped.
    """
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"training log columns differ in length: {sorted(lengths)}")
    length = lengths.pop() if lengths else 0
    horizontal = np.asarray(columns.get(x, np.arange(1, length + 1)), dtype=np.float64)
    groups = _training_groups([name for name in columns if name != x])
    shown, hidden = groups[:MAX_PANELS], groups[MAX_PANELS:]
    per_row = min(3, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / per_row))

    def draw(figure: Figure) -> None:
        axes = figure.subplots(rows, per_row, squeeze=False).ravel()
        for ax, (key, names) in zip(axes, shown, strict=False):
            for index, name in enumerate(names):
                values = np.asarray(columns[name], dtype=np.float64)
                logged = np.isfinite(values) & np.isfinite(horizontal)
                ax.plot(
                    horizontal[logged],
                    values[logged],
                    label=_text(name, 30),
                    color=_COLOURS[index % len(_COLOURS)],
                    marker="o" if np.count_nonzero(logged) <= 30 else None,
                    markersize=3,
                )
            ax.set_title(_text(key, 40))
            ax.set_xlabel(_text(x, 30))
            if names != [key]:  # a lone line named as its panel needs no legend
                ax.legend(loc="best")
        for ax in axes[len(shown) :]:
            ax.set_axis_off()
        if not shown:
            _no_data(axes[0])
        if hidden:
            left_out = ", ".join(key for key, _ in hidden)
            figure.suptitle(f"not shown: {_text(left_out, 100)}", fontsize=8, color="#555555")

    return _render((3.6 * per_row + 0.4, 3.0 * rows + 0.3), draw)


# -- Rendering ---------------------------------------------------------------------------


def _render(size: tuple[float, float], draw: Callable[[Figure], None]) -> bytes:
    """Draw on a fresh Agg figure of `size` inches in mlci's fixed style; PNG bytes."""
    with _drawing():
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure)
        # Laid out once, then drawn once: with its layout engine set, savefig draws the
        # figure twice (a first pass only to lay it out) and lays it out in each.
        engine = figure.get_layout_engine()
        assert engine is not None  # the constrained layout set above
        engine.execute(figure)
        figure.set_layout_engine(None)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


@contextmanager
def _drawing() -> Iterator[None]:
    """matplotlib's default style plus mlci's, whatever the user's matplotlibrc says."""
    try:
        import matplotlib.style
    except ImportError:
        raise UsageError(
            "drawing the report's plots needs matplotlib: pip install 'mlci[plots]'"
        ) from None
    with warnings.catch_warnings(), matplotlib.style.context(["default", _STYLE]):
        # A label in a script DejaVu Sans lacks is drawn as boxes; no need to warn.
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        warnings.filterwarnings("ignore", message="Matplotlib currently does not support")
        yield


# -- Helpers -----------------------------------------------------------------------------


def _text(text: object, limit: int) -> str:
    """User text as one plain line of at most `limit` characters."""
    line = "".join(
        " " if unicodedata.category(char)[0] in "CZ" and char != " " else char for char in str(text)
    )
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _square(table: Array, k: int, name: str) -> FloatArray:
    values = np.asarray(table, dtype=np.float64)
    if values.shape != (k, k):
        raise ValueError(f"the {name} confusion matrix is {values.shape}, not {k}x{k}")
    return values


def _rates(table: FloatArray) -> FloatArray:
    totals = table.sum(axis=1, keepdims=True)
    rates = np.divide(table, totals, out=np.zeros_like(table), where=totals > 0)
    return np.asarray(rates, dtype=np.float64)


def _confusion_axes(
    ax: Axes, title: str, classes: Sequence[object], counts: FloatArray, *, row_labels: bool
) -> None:
    """Titles and class labels; the second matrix shares the first one's row labels."""
    k = len(classes)
    labels = [_text(label, 18 if k <= 10 else 10) for label in classes]
    # Upright while every label fits its column: up to 6 characters for a few classes,
    # 3 for more (class numbers such as 0-9 or 117 stay upright).
    slanted = any(len(label) > (6 if k <= 4 else 3) for label in labels)
    ax.set_title(f"{title} ({int(counts.sum()):,} rows)")
    ax.set_xticks(
        range(k), labels, rotation=40 if slanted else 0, ha="right" if slanted else "center"
    )
    ax.set_yticks(range(k), labels if row_labels else [])
    ax.set_xlabel("predicted")
    if row_labels:
        ax.set_ylabel("true")
    ax.grid(False)
    ax.tick_params(labelsize=8 if k <= 10 else 7)


def _annotate(
    ax: Axes, shown: FloatArray, counts: FloatArray, top: float, *, normalize: bool, k: int
) -> None:
    empty_rows = counts.sum(axis=1) == 0
    size = 9 if k <= 6 else (7 if k <= 12 else 5)
    for row in range(k):
        for column in range(k):
            value = shown[row, column]
            text = _cell_text(value, normalize=normalize, empty_row=bool(empty_rows[row]))
            colour = "white" if value > top * 0.55 else "#1f2328"
            # Inside its cell: the layout need not measure it (k² texts, measured per pass).
            ax.text(
                column,
                row,
                text,
                ha="center",
                va="center",
                color=colour,
                fontsize=size,
                in_layout=False,
            )


def _cell_text(value: float, *, normalize: bool, empty_row: bool) -> str:
    if not normalize:
        return f"{int(value):,}"
    return "–" if empty_row else f"{value:.0%}"


def _curve_label(curve: Curve, area_label: str) -> str:
    name = _text(curve.name, 40) or "(unnamed)"
    if curve.area is None or not math.isfinite(curve.area):
        return name
    return f"{name} ({_text(area_label, 20)} {curve.area:.3f})"


def _class_line(ax: Axes, curve: Curve, colour: str, style: str, width: float) -> None:
    small = downsample(curve, MAX_CURVE_POINTS)
    few = len(small) <= 25
    ax.plot(
        small.x,
        small.y,
        color=colour,
        linestyle=style,
        linewidth=width,
        marker="o" if few else None,
        markersize=3,
        markerfacecolor=colour if style == "-" else "none",
    )


def _pair_label(pair: ClassCurves, area_label: str) -> str:
    """`class 3: AUC 0.981 (baseline 0.975)`, or which model has no curve for the class."""
    name = _text(pair.name, 30) or "(unnamed)"
    area = _text(area_label, 20)
    if pair.candidate is None:
        return f"{name}: no candidate curve (baseline {area} {_area(pair.baseline)})"
    if pair.baseline is None:
        return f"{name}: {area} {_area(pair.candidate)} (no baseline curve)"
    return f"{name}: {area} {_area(pair.candidate)} (baseline {_area(pair.baseline)})"


def _area(curve: Curve | None) -> str:
    if curve is None or curve.area is None or not math.isfinite(curve.area):
        return "–"
    return f"{curve.area:.3f}"


def _sample(rows: int) -> Array:
    if rows <= MAX_SCATTER_POINTS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, MAX_SCATTER_POINTS, replace=False))


def _alpha(points: int) -> float:
    return float(min(0.8, max(0.15, 300 / math.sqrt(max(points, 1)) / 10)))


def _diagonal(ax: Axes, style: str) -> None:
    """The y = x reference (chance for ROC, perfect calibration), both axes on [0, 1]."""
    ax.plot([0, 1], [0, 1], linestyle=style, color="#999999", linewidth=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#555555")


def _training_groups(names: list[str]) -> list[tuple[str, list[str]]]:
    """(metric, its columns) in first-seen order, counters left out."""
    groups: dict[str, list[str]] = {}
    for name in names:
        if name.lower() in COUNTERS:
            continue
        key = _TRAINING_SUFFIX.sub("", _TRAINING_PREFIX.sub("", name)) or name
        groups.setdefault(key, []).append(name)
    return list(groups.items())
