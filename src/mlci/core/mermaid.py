"""Curves as Mermaid `xychart-beta` line charts, for Markdown that GitHub and GitLab render.

A pull-request comment cannot hold images without hosting them, but a ```mermaid block
is drawn by the forge. `line_chart` returns the block's body; the caller adds the fences
(the body holds no backtick, so a plain ``` fence is safe).

How the chart is built, and why:

- xychart puts the i-th value of every `line` at the i-th of n evenly spaced x positions
  of a numeric x-axis (`x-axis "label" min --> max`), so lines cannot carry their own x.
  Every curve is resampled onto one shared grid of at most `MAX_POINTS` x values: linear
  interpolation between its points, its first or last y held flat outside its x span,
  and, where it has several points at one x (a ROC curve's vertical steps), the largest y
  there. Mermaid builds that grid by adding (max - min) / (n - 1) to min while the sum
  stays <= max, which for some n stops one point short in floating point (21 points over
  [0, 1]); n is the largest count up to `MAX_POINTS` whose grid comes out whole.
- xychart draws no legend. The chart's colours are fixed by an `init` directive to
  `PALETTE` (matplotlib's, as in the HTML report's images), and `legend` returns the
  caption that names each colour's curve, to print under the block. At most `MAX_LINES`
  curves are drawn; the caption says how many more were left out.
- Text from users (title, axis labels, curve names) keeps only letters, digits, spaces
  and `._-`, cut to `MAX_TEXT` characters (`clean_text`), so it cannot close its quotes,
  end the statement (`;`, newline), open a comment or directive (`%%`) or the block.
- Numbers are written as plain decimals (the xychart lexer reads no exponents), values to
  a thousandth of the y axis' span and clipped to it.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlci.core.curves import Curve
    from mlci.core.predictions import FloatArray

MAX_POINTS = 21
MAX_LINES = 10
MAX_TEXT = 40
# matplotlib's "tab10" colours, with names people read in a caption.
PALETTE = (
    ("blue", "#1f77b4"),
    ("orange", "#ff7f0e"),
    ("green", "#2ca02c"),
    ("red", "#d62728"),
    ("purple", "#9467bd"),
    ("brown", "#8c564b"),
    ("pink", "#e377c2"),
    ("grey", "#7f7f7f"),
    ("olive", "#bcbd22"),
    ("cyan", "#17becf"),
)
_SAFE_PUNCTUATION = frozenset(" ._-")

Range = tuple[float, float]


def line_chart(
    title: str,
    curves: Sequence[Curve],
    *,
    x_label: str,
    y_label: str,
    x_range: Range | None = (0.0, 1.0),
    y_range: Range | None = (0.0, 1.0),
) -> str:
    """The body of a ```mermaid block: one xychart line per curve (see the module docstring).

    A range of None spans the curves' points (e.g. a training log's epochs and losses).
    Raises ValueError when no curve has a finite point, or a range is empty.
    """
    drawn = _drawn(curves)
    if not drawn:
        raise ValueError("a chart needs at least one curve with a finite point")
    x_low, x_high = _range(x_range, [curve.x for curve in drawn], widen=False)
    y_low, y_high = _range(y_range, [curve.y for curve in drawn], widen=True)
    grid = _grid(x_low, x_high)
    palette = ", ".join(colour for _, colour in PALETTE)
    config = {"themeVariables": {"xyChart": {"plotColorPalette": palette}}}
    lines = [f"%%{{init: {json.dumps(config)}}}%%", "xychart-beta"]
    if clean_text(title):
        lines.append(f'    title "{clean_text(title)}"')
    lines.append(f"    x-axis {_quoted(x_label)}{_number(x_low)} --> {_number(x_high)}")
    lines.append(f"    y-axis {_quoted(y_label)}{_number(y_low)} --> {_number(y_high)}")
    for curve in drawn:
        values = np.clip(_resample(curve, grid), y_low, y_high)
        lines.append(f"    line [{', '.join(_value(v, y_high - y_low) for v in values)}]")
    return "\n".join(lines) + "\n"


def legend(curves: Sequence[Curve], *, area_label: str = "area") -> str:
    """The caption naming each line's colour, in `line_chart`'s order (plain text).

    `blue: candidate (AUC 0.912), orange: baseline (AUC 0.887)`; a curve's area is shown
    when it has one, named `area_label`.
    """
    drawn = _drawn(curves)
    entries = []
    for index, curve in enumerate(drawn):
        name = clean_text(curve.name) or f"line {index + 1}"
        area = f" ({clean_text(area_label)} {curve.area:.3f})" if curve.area is not None else ""
        entries.append(f"{PALETTE[index][0]}: {name}{area}")
    text = ", ".join(entries)
    left_out = sum(1 for curve in curves if _has_points(curve)) - len(drawn)
    if left_out:
        text += f" ({left_out} more not drawn)"
    return text


def clean_text(text: str) -> str:
    """`text` with only letters, digits, spaces and `._-`, one space at a time, cut short."""
    kept = "".join(
        char if char in _SAFE_PUNCTUATION or unicodedata.category(char)[0] in "LN" else " "
        for char in text
    )
    return " ".join(kept.split())[:MAX_TEXT].strip()


# -- Helpers -----------------------------------------------------------------------------


def _drawn(curves: Sequence[Curve]) -> list[Curve]:
    """The curves the chart draws: those with a finite point, at most MAX_LINES."""
    return [curve for curve in curves if _has_points(curve)][:MAX_LINES]


def _has_points(curve: Curve) -> bool:
    return len(_finite_points(curve)[0]) > 0


def _finite_points(curve: Curve) -> tuple[FloatArray, FloatArray]:
    x, y = np.asarray(curve.x, dtype=np.float64), np.asarray(curve.y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    return x[finite], y[finite]


def _range(given: Range | None, values: list[tuple[float, ...]], *, widen: bool) -> Range:
    """The given range, or the values' span (`widen`: 5% more each side, rounded out)."""
    if given is not None:
        low, high = float(given[0]), float(given[1])
    else:
        finite = np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
        finite = finite[np.isfinite(finite)]
        low, high = float(finite.min()), float(finite.max())
        if high == low:
            low, high = low - max(abs(low) * 0.1, 0.5), high + max(abs(high) * 0.1, 0.5)
        elif widen:
            margin = (high - low) * 0.05
            low, high = _rounded_out(low - margin, high + margin)
    # Mermaid reads the bounds as written, so the grid is built from the written numbers.
    low, high = float(_number(low)), float(_number(high))
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"a chart's range must run from low to high, not {given}")
    return low, high


def _rounded_out(low: float, high: float) -> Range:
    """The range widened to multiples of half its span's order of magnitude."""
    step = 10.0 ** math.floor(math.log10(high - low)) / 2
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _grid(low: float, high: float) -> FloatArray:
    """The x positions Mermaid gives n values, for the largest n <= MAX_POINTS it gets right."""
    for count in range(MAX_POINTS, 1, -1):
        positions = _mermaid_positions(low, high, count)
        if len(positions) == count:
            break
    return np.asarray(positions)


def _mermaid_positions(low: float, high: float, count: int) -> list[float]:
    """Mermaid's `for (let i = min; i <= max; i += step)`, in the same float arithmetic."""
    step = (high - low) / (count - 1)
    positions: list[float] = []
    position = low
    while position <= high and len(positions) <= count:
        positions.append(position)
        position += step
    return positions


def _resample(curve: Curve, grid: FloatArray) -> FloatArray:
    x, y = _finite_points(curve)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    distinct, first = np.unique(x, return_index=True)
    highest = np.maximum.reduceat(y, first)  # the largest y at each x
    return np.asarray(np.interp(grid, distinct, highest), dtype=np.float64)


def _number(value: float) -> str:
    """A plain decimal (no exponent) to 6 significant digits, for an axis' bounds."""
    text = np.format_float_positional(
        float(value) + 0.0, precision=6, unique=True, fractional=False, trim="-"
    )
    return "0" if text == "-0" else text


def _value(value: float, span: float) -> str:
    """A plain decimal to a thousandth of the axis' span (a chart is ~500 pixels high)."""
    decimals = max(0, 3 - math.floor(math.log10(span)))
    text = np.format_float_positional(
        float(value) + 0.0, precision=decimals, unique=True, fractional=True, trim="-"
    )
    return "0" if text == "-0" else text


def _quoted(text: str) -> str:
    cleaned = clean_text(text)
    return f'"{cleaned}" ' if cleaned else ""
