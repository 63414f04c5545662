"""Figures that need no image hosting: Markdown tables for the PR comment."""

from __future__ import annotations

from collections.abc import Sequence

from mlci.core.curves import ClassCurves, Curve, most_changed
from mlci.core.report.escape import md_text


def confusion_markdown(
    classes: Sequence[object],
    candidate: Sequence[Sequence[int]],
    baseline: Sequence[Sequence[int]] | None = None,
) -> str:
    """The confusion matrix as two Markdown tables: counts, and each true class's share.

    Rows are true classes, columns predicted ones; with a baseline each cell reads
    `candidate (baseline)`. The diagonal (correct predictions) is bold.
    """
    names = [md_text(str(label)) for label in classes]
    header = "| true \\\\ predicted | " + " | ".join(names) + " |"
    rule = "|---|" + "--:|" * len(names)
    counts, shares = [header, rule], [header, rule]
    for i, name in enumerate(names):
        count_cells, share_cells = [], []
        total = sum(candidate[i]) or 1
        base_total = (sum(baseline[i]) or 1) if baseline is not None else 1
        for j in range(len(names)):
            count = f"{candidate[i][j]}"
            share = f"{candidate[i][j] / total:.0%}"
            if baseline is not None:
                count += f" ({baseline[i][j]})"
                share += f" ({baseline[i][j] / base_total:.0%})"
            if i == j:
                count, share = f"**{count}**", f"**{share}**"
            count_cells.append(count)
            share_cells.append(share)
        counts.append(f"| {name} | " + " | ".join(count_cells) + " |")
        shares.append(f"| {name} | " + " | ".join(share_cells) + " |")
    legend = "Cells: candidate (baseline). " if baseline is not None else ""
    return "\n".join(counts) + f"\n\n{legend}Share of each true class:\n\n" + "\n".join(shares)


MAX_AREA_ROWS = 50  # classes in a curve figure's table of areas; more: the most changed


def area_table_markdown(
    pairs: Sequence[ClassCurves], *, area_label: str, limit: int = MAX_AREA_ROWS
) -> str:
    """Each class's area under the candidate's and the baseline's curve, and the change.

    One row per class (`| 3 | 0.981 | 0.975 | +0.006 |`), class names escaped; "no curve"
    where a model has none. Over `limit` classes, the `limit` whose area changed most
    (`curves.most_changed`), and a line saying so.
    """
    rows = most_changed(pairs, limit)
    area = md_text(area_label)
    lines = [f"| class | candidate {area} | baseline {area} | change |", "|---|--:|--:|--:|"]
    for pair in rows:
        change = "–" if pair.change is None else f"{pair.change:+.3f}"
        label = md_text(pair.name.removeprefix("class "))
        lines.append(
            f"| {label} | {_area_cell(pair.candidate)} | {_area_cell(pair.baseline)} | {change} |"
        )
    if len(rows) < len(pairs):
        lines.insert(0, f"The {len(rows)} of {len(pairs)} classes whose {area} changed most:\n")
    return "\n".join(lines)


def _area_cell(curve: Curve | None) -> str:
    if curve is None:
        return "no curve"
    return "–" if curve.area is None else f"{curve.area:.3f}"
