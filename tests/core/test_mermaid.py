"""Mermaid xychart text: the shared grid Mermaid really draws, escaping, ranges, the caption."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mlci.core.curves import Curve
from mlci.core.mermaid import MAX_LINES, MAX_TEXT, PALETTE, clean_text, legend, line_chart

# What the xychart lexer accepts as a number (packages/mermaid/.../xychart.jison).
NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
HOSTILE = 'a"b\nc`d```e --> f;g%%{init: {"theme": "dark"}}%%h[i]j<script>k&l:m#n'


def diagonal(name: str = "chance", area: float | None = None) -> Curve:
    return Curve(name, (0.0, 1.0), (0.0, 1.0), area)


def statements(chart: str) -> list[str]:
    return [line.strip() for line in chart.splitlines()]


def line_values(chart: str) -> list[list[float]]:
    return [
        [float(v) for v in line[len("line [") : -1].split(", ")]
        for line in statements(chart)
        if line.startswith("line [")
    ]


def mermaid_positions(chart: str) -> list[float]:
    """The x positions Mermaid gives a line's values, as its xychartDb.ts computes them."""
    axis = next(line for line in statements(chart) if line.startswith("x-axis"))
    low, high = (float(v) for v in re.findall(NUMBER, axis.split('"')[-1])[-2:])
    count = len(line_values(chart)[0])
    step = (high - low) / (count - 1)
    positions, position = [], low
    while position <= high:  # for (let i = min; i <= max; i += step)
        positions.append(position)
        position += step
    return positions


def test_a_chart_reads_as_expected() -> None:
    chart = line_chart("ROC", [diagonal("candidate")], x_label="False positive rate", y_label="TPR")
    lines = chart.splitlines()
    assert lines[0].startswith("%%{init: {") and lines[0].endswith("}}%%")
    assert all(colour in lines[0] for _, colour in PALETTE)
    assert lines[1:5] == [
        "xychart-beta",
        '    title "ROC"',
        '    x-axis "False positive rate" 0 --> 1',
        '    y-axis "TPR" 0 --> 1',
    ]
    assert len(lines) == 6 and chart.endswith("]\n")


@pytest.mark.parametrize(
    "x_range", [(0.0, 1.0), (1.0, 37.0), (0.0, 0.5), (1.0, 5.0), (3.0, 100.0), (0.1, 0.3)]
)
def test_every_value_lands_on_a_position_mermaid_draws(x_range: tuple[float, float]) -> None:
    curves = [diagonal(), Curve("b", x_range, (0.2, 0.4))]
    chart = line_chart("t", curves, x_label="x", y_label="y", x_range=x_range)
    positions = mermaid_positions(chart)
    values = line_values(chart)
    assert 10 <= len(positions) <= 21
    assert all(len(line) == len(positions) for line in values)
    # Resampled at those positions: the second curve runs from 0.2 to 0.4 across the range.
    expected = np.interp(positions, x_range, (0.2, 0.4))
    np.testing.assert_allclose(values[1], expected, atol=1e-3)


def test_a_vertical_step_shows_its_top_and_values_are_clipped_to_the_y_range() -> None:
    roc = Curve("roc", (0.0, 0.0, 0.5, 1.0), (0.0, 0.8, 0.9, 1.0))
    rising = Curve("rising", (0.0, 1.0), (-0.5, 1.5))
    values = line_values(line_chart("t", [roc, rising], x_label="x", y_label="y"))
    assert values[0][0] == 0.8 and values[0][-1] == 1.0
    assert min(values[1]) == 0.0 and max(values[1]) == 1.0


def test_unsorted_points_and_non_finite_points_are_handled() -> None:
    curve = Curve("c", (1.0, float("nan"), 0.0, 0.5), (1.0, 0.3, 0.0, float("inf")))
    (values,) = line_values(line_chart("t", [curve], x_label="x", y_label="y"))
    assert values[0] == 0.0 and values[-1] == 1.0
    assert values == sorted(values)


def test_hostile_text_cannot_break_out_of_the_chart() -> None:
    chart = line_chart(HOSTILE, [diagonal(HOSTILE), diagonal()], x_label=HOSTILE, y_label=HOSTILE)
    assert "`" not in chart and ";" not in chart and "<" not in chart
    assert chart.count("%%") == 2 and chart.startswith("%%{init:")  # only mlci's directive
    lines = chart.splitlines()
    assert len(lines) == 7  # directive, xychart-beta, title, 2 axes, 2 lines
    text = r'"[\w .-]{0,40}"'
    assert re.fullmatch(rf"    title {text}", lines[2])
    assert re.fullmatch(rf"    x-axis {text} 0 --> 1", lines[3])
    assert re.fullmatch(rf"    y-axis {text} 0 --> 1", lines[4])
    assert all(re.fullmatch(rf"    line \[{NUMBER}(, {NUMBER})*\]", line) for line in lines[5:])


def test_text_that_cleans_to_nothing_is_left_out() -> None:
    chart = line_chart('"""', [diagonal()], x_label="`", y_label="")
    assert "title" not in chart
    assert "    x-axis 0 --> 1" in chart and "    y-axis 0 --> 1" in chart


def test_clean_text_keeps_letters_digits_and_dot_dash_underscore() -> None:
    assert clean_text("val_loss (fold #2)") == "val_loss fold 2"
    assert clean_text("Katze 猫 1.5-x") == "Katze 猫 1.5-x"
    assert clean_text("  a\n\tb  ") == "a b"
    assert len(clean_text("x" * 100)) == MAX_TEXT


def test_numbers_never_use_an_exponent() -> None:
    tiny = Curve("tiny", (0.0, 1.0), (1e-9, 2e-9))
    huge = Curve("huge", (0.0, 1e12), (3e15, -4e15))
    for curve in (tiny, huge):
        chart = line_chart("t", [curve], x_label="x", y_label="y", x_range=None, y_range=None)
        assert "e" not in chart.split("xychart-beta")[1].replace("title", "").replace("line", "")
        assert all(np.isfinite(line_values(chart)[0]))


def test_ranges_from_the_data() -> None:
    losses = Curve("loss", (1.0, 2.0, 3.0, 4.0, 5.0), (0.9, 0.5, 0.35, 0.3, 0.28))
    chart = line_chart(
        "Loss", [losses], x_label="epoch", y_label="loss", x_range=None, y_range=None
    )
    assert '    x-axis "epoch" 1 --> 5' in chart
    assert '    y-axis "loss" 0.2 --> 0.95' in chart  # 5% more each side, rounded out
    flat = Curve("flat", (1.0, 2.0), (0.7, 0.7))
    assert "0.2 --> 1.2" in line_chart("t", [flat], x_label="x", y_label="y", y_range=None)


def test_at_most_max_lines_and_the_caption_says_how_many_more() -> None:
    curves = [diagonal(f"class {i}") for i in range(MAX_LINES + 2)]
    curves.insert(3, Curve("empty", (), ()))
    chart = line_chart("t", curves, x_label="x", y_label="y")
    assert len(line_values(chart)) == MAX_LINES
    caption = legend(curves)
    assert caption.startswith("blue: class 0, orange: class 1, green: class 2, red: class 3")
    assert caption.endswith("cyan: class 9 (2 more not drawn)")


def test_legend_names_colours_and_areas() -> None:
    curves = [diagonal("candidate", 0.9123), diagonal("", 0.5), diagonal(HOSTILE)]
    caption = legend(curves, area_label="AUC")
    assert caption.startswith("blue: candidate (AUC 0.912), orange: line 2 (AUC 0.500), green: ")
    assert "`" not in caption and "\n" not in caption and "<" not in caption


@pytest.mark.parametrize(
    ("curves", "options", "message"),
    [
        ([], {}, "at least one curve"),
        ([Curve("nan", (float("nan"),), (0.0,))], {}, "at least one curve"),
        ([diagonal()], {"x_range": (1.0, 1.0)}, "range must run from low to high"),
        ([diagonal()], {"y_range": (1.0, 0.0)}, "range must run from low to high"),
        ([diagonal()], {"y_range": (0.0, float("inf"))}, "range must run from low to high"),
    ],
)
def test_refuses_a_chart_it_cannot_draw(
    curves: list[Curve], options: dict[str, tuple[float, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        line_chart("t", curves, x_label="x", y_label="y", **options)
