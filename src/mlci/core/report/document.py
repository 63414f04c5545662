"""report.json: everything in the report, to render it again later (`mlci report`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from mlci.core.device import DeviceInfo, Where
from mlci.core.flipped_text import Flipped
from mlci.core.gate import (
    Baseline,
    Check,
    GateResult,
    Rows,
    Rule,
    RuleResult,
    SliceResult,
)
from mlci.core.intervals import Interval
from mlci.core.report.model import Figure, Promotion, ReportInput, ReportSection

DOCUMENT_VERSION = 1


def png_names(figure: Figure) -> list[str]:
    """The file names of a figure's PNGs in `.mlci/out/plots/`."""
    return [f"{figure.key}{'' if i == 0 else f'-{i + 1}'}.png" for i in range(len(figure.pngs))]


def section_png_name(index: int) -> str:
    """The file name of the image of report.sections[index] in `.mlci/out/plots/`."""
    return f"section-{index + 1}.png"


def to_document(report: ReportInput) -> dict[str, object]:
    """Everything in the report as JSON-ready data (PNGs by their names in plots/)."""
    data = dataclasses.asdict(report)
    for figure, source in zip(data["figures"], report.figures, strict=True):
        figure["pngs"] = png_names(source)
    for index, section in enumerate(data["sections"]):
        section["png"] = None if section["png"] is None else section_png_name(index)
    encoded = _encode(data)
    assert isinstance(encoded, dict)
    return {"document_version": DOCUMENT_VERSION, **encoded}


def from_document(document: Mapping[str, Any], read_png: Callable[[str], bytes]) -> ReportInput:
    """The ReportInput that `to_document` wrote; raises ValueError if it is not one."""
    if document.get("document_version") != DOCUMENT_VERSION:
        raise ValueError(f"not a version {DOCUMENT_VERSION} report document")
    data = _decode(dict(document))
    data.pop("document_version")
    gate = data.pop("gate")
    figures = data.pop("figures")
    promotion = data.pop("promotion")
    device = data.pop("device", None)
    where = data.pop("where", None)  # absent from older report.json files
    flipped = data.pop("flipped", None)  # absent from older report.json files
    sections = tuple(
        ReportSection(**{**item, "png": None if item["png"] is None else read_png(item["png"])})
        for item in data.pop("sections", [])
    )
    return ReportInput(
        sections=sections,
        device=None if device is None else DeviceInfo.from_json(device),
        where=None if where is None else Where.from_json(where),
        gate=None if gate is None else _gate_from(gate),
        figures=tuple(
            Figure(**{**f, "pngs": tuple(read_png(name) for name in f["pngs"])}) for f in figures
        ),
        promotion=None if promotion is None else Promotion(**promotion),
        output_tail=tuple(data.pop("output_tail")),
        flipped=None if flipped is None else _flipped_from(flipped),
        **data,
    )


def _flipped_from(data: dict[str, Any]) -> Flipped:
    rows = {key: tuple(map(tuple, data[key])) for key in ("worst", "best")}
    return Flipped(**{**data, "header": tuple(data["header"]), **rows})


def _gate_from(data: dict[str, Any]) -> GateResult:
    results = []
    for item in data["results"]:
        checks = tuple(_check(c) for c in item["checks"])
        results.append(
            RuleResult(
                **{
                    **item,
                    "rule": _rule(item["rule"]),
                    "checks": checks,
                    "interval": _interval(item["interval"]),
                }
            )
        )
    baseline = data["baseline"]
    rows = data.get("rows")  # absent from older report.json files: no row checks
    return GateResult(
        results=tuple(results),
        baseline=None if baseline is None else Baseline(**baseline),
        notes=tuple(data["notes"]),
        rows=None if rows is None else Rows(**rows),
        row_checks=tuple(_check(c) for c in data.get("row_checks", [])),
        slices=tuple(_slice(item) for item in data.get("slices", [])),
        slice_correction=data.get("slice_correction", ""),
    )


def _rule(data: dict[str, Any]) -> Rule:
    slices = data.get("slices", False)
    return Rule(**{**data, "slices": tuple(slices) if isinstance(slices, list) else slices})


def _slice(data: dict[str, Any]) -> SliceResult:
    label = tuple((str(column), str(value)) for column, value in data["slice"])
    return SliceResult(**{**data, "slice": label, "interval": _interval(data["interval"])})


def _check(data: dict[str, Any]) -> Check:
    return Check(**{**data, "interval": _interval(data["interval"])})


def _interval(data: dict[str, Any] | None) -> Interval | None:
    return None if data is None else Interval(**data)


def _encode(value: object) -> object:
    """JSON-ready: non-finite floats tagged, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$float"}:
            return float(value["$float"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value
