"""Flipped examples for the gate stage: the candidate's and the baseline's predictions
paired (by id, or row order), the rows that flipped counted and tested
(`core/flipped.py`), and every one of them for `.mlci/out/flipped.csv`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlci.config import Config
from mlci.core.flipped_text import Flipped
from mlci.errors import MetricsError

if TYPE_CHECKING:
    from mlci.core.flipped import CsvTable, Pairing
    from mlci.core.predictions import Predictions


@dataclass(frozen=True)
class Compared:
    summary: Flipped | None = None  # for the report and gate.json
    table: CsvTable | None = None  # for flipped.csv
    notes: tuple[str, ...] = ()


def compare(
    config: Config, candidate: Predictions | None, baseline: Predictions | None
) -> Compared:
    """The flipped rows, when both models' predictions are known; else nothing."""
    if candidate is None or baseline is None:
        return Compared()
    from mlci.core.flipped import Pairing, csv_table, find_flips, summarise
    from mlci.predictions import join

    try:
        joined = join(candidate, baseline)
    except MetricsError as exc:
        return Compared(notes=(f"No flipped examples: {exc.message}",))
    pairing = Pairing(joined.by_id, joined.only_candidate, joined.only_baseline)
    notes = _left_out(pairing, config.evaluate.id_column)
    if not len(joined.candidate):
        return Compared(notes=(*notes, "No flipped examples: the files share no id."))
    flips = find_flips(joined.candidate, joined.baseline, config.evaluate.task)
    shown = config.report.flipped_examples
    summary = summarise(joined.candidate, joined.baseline, flips, pairing, shown=shown)
    return Compared(summary, csv_table(joined.candidate, joined.baseline, flips), notes)


def _left_out(pairing: Pairing, id_column: str) -> tuple[str, ...]:
    if not (pairing.only_candidate or pairing.only_baseline):
        return ()
    return (
        f"Flipped examples: {pairing.only_candidate:,} of the candidate's rows and "
        f"{pairing.only_baseline:,} of the baseline's have an id ({id_column}) the other "
        "file lacks; they are left out of the counts.",
    )
