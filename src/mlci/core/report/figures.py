"""Figures that need no image hosting: Markdown tables for the PR comment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


MAX_CONFUSION_CLASSES = 20  # rows and columns of a confusion figure; more: the ones that matter


@dataclass(frozen=True)
class ConfusionExcerpt:
    """The confusion matrices cut to the classes that matter, and a last row and column
    for the classes left out (so every row and the total keep their counts)."""

    classes: tuple[str, ...]
    candidate: np.ndarray
    baseline: np.ndarray | None
    note: str  # what was left out; "" when every class is shown


def confusion_excerpt(
    classes: Sequence[object],
    candidate: np.ndarray,
    baseline: np.ndarray | None,
    *,
    limit: int = MAX_CONFUSION_CLASSES,
) -> ConfusionExcerpt:
    """The `limit` classes whose rows and columns changed most against the baseline (with
    none, those most confused: the most rows wrongly predicted as them or from them), in
    the classes' order, and one more row and column adding up all the others."""
    names = tuple(str(label) for label in classes)
    if len(names) <= limit:
        return ConfusionExcerpt(names, candidate, baseline, "")
    wrong = candidate - np.diag(np.diag(candidate))
    confused = wrong.sum(axis=0) + wrong.sum(axis=1)
    if baseline is None:
        order = np.lexsort((-np.arange(len(names)), confused))[::-1]
        why = "the most confused (rows wrongly predicted as them or from them)"
    else:
        moved = np.abs(candidate - baseline)
        changed = moved.sum(axis=0) + moved.sum(axis=1)
        order = np.lexsort((-np.arange(len(names)), confused, changed))[::-1]
        why = "those whose predictions changed most against the baseline's"
    shown = np.sort(order[:limit])
    rest = len(names) - limit
    note = (
        f"{limit} of {len(names):,} classes shown, {why}; the last row and column, "
        f"'{rest:,} other classes', add up the {rest:,} left out."
    )
    return ConfusionExcerpt(
        (*(names[index] for index in shown), f"{rest:,} other classes"),
        _folded(candidate, shown),
        None if baseline is None else _folded(baseline, shown),
        note,
    )


def _folded(table: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """`table`'s rows and columns in `shown`, and one more of each summing the rest."""
    k = len(table)
    group = np.full(k, len(shown))
    group[shown] = np.arange(len(shown))
    size = len(shown) + 1
    folded = np.zeros((size, size), dtype=table.dtype)
    rows, columns = np.nonzero(table)
    np.add.at(folded, (group[rows], group[columns]), table[rows, columns])
    return folded


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
