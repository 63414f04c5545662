"""The report's figures: multiclass ROC and precision-recall curves against the baseline's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlci import plots
from mlci.config import parse_config
from mlci.core import mermaid
from mlci.core.curves import pr_curves, roc_curves
from mlci.core.report import Figure, md_text
from mlci.core.stats import Predictions
from mlci.pipeline.figures import build_figures

CONFIG = "model: {name: digits}\nevaluate: {metrics: [metrics.json], predictions: p.csv}\n"


def classified(labels: list[object], *, seed: int, strength: float, n: int = 400) -> Predictions:
    """Predictions over `labels` whose scores separate the classes by `strength`."""
    rng = np.random.default_rng(seed)
    k = len(labels)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + strength * np.eye(k)[true]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = np.asarray(labels)
    return Predictions(classes[true], classes[scores.argmax(axis=1)], scores, tuple(labels), None)


def curve_figures(
    candidate: Predictions, baseline: Predictions | None, *, plots_on: bool = True
) -> dict[str, Figure]:
    text = CONFIG + ("" if plots_on else "report: {plots: false}\n")
    config = parse_config(text, root=Path("/project"))
    figures, _ = build_figures(config, candidate, baseline)
    return {figure.key: figure for figure in figures if figure.key in ("roc", "pr")}


DIGITS = list(range(10))
CANDIDATE = classified(DIGITS, seed=1, strength=3.0)
BASELINE = classified(DIGITS, seed=1, strength=2.0)  # the same rows and truth, worse scores


@pytest.fixture(scope="module")
def compared() -> dict[str, Figure]:
    return curve_figures(CANDIDATE, BASELINE)


@pytest.mark.parametrize(
    ("key", "make", "area"), [("roc", roc_curves, "AUC"), ("pr", pr_curves, "AP")]
)
def test_each_classs_area_is_shown_beside_the_baselines(
    compared: dict[str, Figure], key: str, make: object, area: str
) -> None:
    figure = compared[key]
    assert callable(make)
    mine, theirs = make(CANDIDATE), make(BASELINE)
    assert f"| class | candidate {area} | baseline {area} | change |" in figure.markdown
    for label, ours, base in zip(DIGITS, mine, theirs, strict=True):
        change = ours.area - base.area
        row = f"| {label} | {ours.area:.3f} | {base.area:.3f} | {change:+.3f} |"
        assert row in figure.markdown
    assert "report.html's image draws both" in figure.markdown
    # The chart draws the candidate's ten curves, in the caption's colours.
    assert figure.markdown.count("    line [") == 10
    assert figure.caption == mermaid.legend(mine, area_label=area)
    assert len(figure.pngs) == 1


@pytest.fixture(scope="module")
def alone() -> dict[str, Figure]:
    return curve_figures(CANDIDATE, None)


def test_the_png_draws_the_baseline(compared: dict[str, Figure], alone: dict[str, Figure]) -> None:
    assert compared["roc"].pngs != alone["roc"].pngs
    assert compared["pr"].pngs != alone["pr"].pngs


def test_without_the_baselines_predictions_nothing_changes(alone: dict[str, Figure]) -> None:
    figure = alone["roc"]
    curves = roc_curves(CANDIDATE)
    assert "baseline" not in figure.markdown + figure.caption
    assert figure.caption == mermaid.legend(curves, area_label="AUC")
    expected = plots.curves_png(
        "ROC curve",
        curves,
        x_label="False positive rate",
        y_label="True positive rate",
        diagonal=True,
        area_label="AUC",
    )
    assert figure.pngs == (expected,)


def test_a_binary_model_still_shows_candidate_beside_baseline() -> None:
    figure = curve_figures(
        classified([0, 1], seed=2, strength=2),
        classified([0, 1], seed=2, strength=1),
        plots_on=False,
    )
    caption = figure["roc"].caption
    assert caption.startswith("blue: candidate (AUC ") and ", orange: baseline (AUC " in caption
    assert "| class |" not in figure["roc"].markdown


def test_a_class_only_one_model_scores_is_shown_and_labelled() -> None:
    labels: list[object] = ["cat", "dog", "eel"]
    candidate = classified(labels, seed=4, strength=2)
    full = classified(labels, seed=4, strength=1)
    baseline = Predictions(full.y_true, full.y_pred, full.scores[:, :2], ("cat", "dog"), None)  # type: ignore[index]

    figure = curve_figures(candidate, baseline, plots_on=False)["pr"]

    eel = pr_curves(candidate)[2]
    assert f"| eel | {eel.area:.3f} | no curve | – |" in figure.markdown
    assert figure.markdown.count("    line [") == 3


def test_hostile_class_names_are_escaped_in_the_table() -> None:
    labels: list[object] = ["<img src=x onerror=alert(1)>", "a|b", "@everyone", "`code`"]
    figure = curve_figures(
        classified(labels, seed=5, strength=2),
        classified(labels, seed=5, strength=1),
        plots_on=False,
    )["roc"]
    table = figure.markdown.split("Per class:", 1)[1]
    for label in labels:
        assert f"| {md_text(str(label))} | " in table
    assert "<img" not in table and "a|b" not in table and "@everyone" not in table


def test_past_ten_classes_the_most_changed_are_drawn_and_named() -> None:
    labels: list[object] = list(range(25))
    candidate = classified(labels, seed=3, strength=3.0, n=1500)
    rng = np.random.default_rng(9)
    scores = np.array(candidate.scores, dtype=np.float64)
    worse = [2, 7, 11, 19]  # the baseline scores these four classes badly
    scores[:, worse] = rng.uniform(size=(len(scores), len(worse)))
    baseline = Predictions(candidate.y_true, candidate.y_pred, scores, candidate.classes, None)

    figure = curve_figures(candidate, baseline, plots_on=False)["roc"]

    assert figure.caption.startswith("10 of 25 classes drawn, those whose AUC changed most: ")
    named = figure.caption.split(": ", 1)[1].split(". ", 1)[0].split(", ")
    assert len(named) == 10 and {f"class {i}" for i in worse} <= set(named)
    assert figure.markdown.count("    line [") == 10
    assert figure.markdown.count("\n| ") == 26  # the header and every class


def test_without_plots_the_markdown_does_not_promise_an_image() -> None:
    figure = curve_figures(CANDIDATE, BASELINE, plots_on=False)["roc"]
    assert figure.pngs == ()
    assert "report.html" not in figure.markdown
    assert "| 0 | " in figure.markdown


def test_a_confusion_matrix_of_many_classes_shows_those_that_changed_and_sums_the_rest() -> None:
    labels = [f"c{index}" for index in range(60)]
    rng = np.random.default_rng(7)
    true = rng.integers(0, 60, 6000)
    base = np.where(rng.random(6000) < 0.9, true, rng.integers(0, 60, 6000))
    cand = np.where(true == 17, 33, base)  # the candidate now calls every c17 a c33
    names = np.asarray(labels)
    candidate = Predictions(names[true], names[cand], None, tuple(labels), None)
    baseline = Predictions(names[true], names[base], None, tuple(labels), None)
    config = parse_config(CONFIG + "report: {plots: false}\n", root=Path("/project"))

    (figure,) = [f for f in build_figures(config, candidate, baseline)[0] if f.key != "roc"]

    counts = figure.markdown.split("\n\n")[0].splitlines()
    assert counts[0].split(" | ")[-1] == "40 other classes |"
    assert len(counts) == 2 + 21  # 20 classes and the others
    assert {"c17", "c33"} <= set(counts[0].split(" | "))
    assert figure.caption.startswith("20 of 60 classes shown")
    (row,) = [line for line in counts if line.startswith("| c17 |")]
    assert "**0 (" in row  # none right any more
    assert sum(int(cell.split(" (")[0].strip(" *")) for cell in row.split(" | ")[1:]) == (
        np.count_nonzero(true == 17)
    )


def _summarized(candidate: Predictions, baseline: Predictions | None):
    from mlci.core.summary import summarize_classification

    codes = {label: index for index, label in enumerate(candidate.classes)}
    coded = np.vectorize(codes.__getitem__)
    return summarize_classification(
        candidate.classes,
        coded(candidate.y_true),
        coded(candidate.y_pred),
        candidate.scores,
        baseline_predicted=None if baseline is None else coded(baseline.y_pred),
        baseline_scores=None if baseline is None else baseline.scores,
    )


@pytest.mark.parametrize("labels", [["cat", "dog", "emu"], [0, 1]])
def test_above_exact_rows_the_figures_come_from_the_summary_within_its_bound(
    labels: list[object],
) -> None:
    from mlci.core.summary_stats import approximation
    from mlci.pipeline.figures import _from_rows, _from_summary

    candidate = classified(labels, seed=1, strength=2.0, n=20_000)
    other = classified(labels, seed=2, strength=1.5, n=20_000)  # the same rows' y_true:
    baseline = Predictions(candidate.y_true, other.y_pred, other.scores, other.classes, None)
    summary = _summarized(candidate, baseline)
    drawn_exact, drawn_binned = _from_rows(candidate, baseline), _from_summary(summary)
    assert np.array_equal(drawn_exact.confusion, drawn_binned.confusion)
    assert drawn_exact.base_confusion is not None and drawn_binned.base_confusion is not None
    assert np.array_equal(drawn_exact.base_confusion, drawn_binned.base_confusion)
    exact, binned = drawn_exact, drawn_binned
    assert exact.curves is not None and binned.curves is not None
    assert exact.calibration is not None and binned.calibration is not None
    sides = [approximation(summary.side(baseline=side)) for side in (False, True)]
    bound = max(side.auc_bound for side in sides)
    ap_bound = max(side.ap_bound for side in sides)  # every curve's AP, both models'
    assert 0 < ap_bound < 0.01
    for key, tolerance in (("roc", len(labels) * bound), ("pr", ap_bound)):
        for ours, theirs in zip(exact.curves(key), binned.curves(key), strict=True):
            assert [c.name for c in ours] == [c.name for c in theirs]
            for one, other in zip(ours, theirs, strict=True):
                assert one.area is not None and other.area is not None
                assert other.area == pytest.approx(one.area, abs=tolerance)
    # calibration (two classes: p_1; three: the top label's): the same frequencies and
    # mean probabilities, both models
    for one, other in zip(exact.calibration(), binned.calibration(), strict=True):
        assert one is not None and other is not None and one.name == other.name
        assert one.y == other.y and other.x == pytest.approx(one.x, rel=1e-12, abs=0)
    config = parse_config(CONFIG, root=Path("/project"))
    figures, _ = build_figures(config, None, None, summary)
    keys = [figure.key for figure in figures]
    assert keys[:3] == ["confusion_matrix", "roc", "pr"]
    assert all(figure.pngs for figure in figures)
    assert "Drawn from score histograms (binned, 1000 bins)" in figures[1].caption
    assert f"mean ROC area within ±{bound:.2g} of the exact mean" in figures[1].caption
    assert f"each average precision (AP) within ±{ap_bound:.2g} of the" in figures[2].caption
    assert keys[3] == "calibration" and "Drawn from" not in figures[3].caption  # exact


def test_the_confusion_pngs_start_when_the_baseline_is_read_and_the_gate_keeps_them() -> None:
    """`Early.ahead` (the read-ahead's thread) pairs the rows and starts the confusion
    matrices' PNGs; the gate pairs the same rows again (`align` gives the same objects,
    also when it reorders by id) and keeps what was started."""
    from dataclasses import replace

    from mlci.core.predictions import take
    from mlci.pipeline.facts import Facts
    from mlci.pipeline.report import Early, add
    from mlci.predictions import align

    config = parse_config(CONFIG, root=Path("/project"))
    early = Early(config)
    early.ahead(CANDIDATE, BASELINE)
    started = early.started
    assert started is not None and started.candidate is CANDIDATE
    early.rows(*align(CANDIDATE, BASELINE))  # the gate, with the same rows
    kept = early.started
    assert kept is not None and kept.figure is started.figure  # not started again
    # ... and the curve figures started there, after both models' classes were ranked
    assert kept.curves is not None
    assert [figure.key for figure in kept.curves] == ["roc", "pr", "calibration"]
    assert set(kept.painter.pending) == {"confusion_matrix", "roc", "pr", "calibration"}
    figures = {f.key: f for f in add(config, Facts(), CANDIDATE, BASELINE, None, early).figures}
    assert figures["confusion_matrix"].pngs and all(
        png.startswith(b"\x89PNG") for png in figures["confusion_matrix"].pngs
    )
    # the same figures as drawn without starting early, PNGs byte for byte
    late = {f.key: f for f in add(config, Facts(), CANDIDATE, BASELINE).figures}
    assert list(late) == list(figures) == ["confusion_matrix", "roc", "pr", "calibration"]
    assert all(late[key] == figures[key] and late[key].pngs for key in late)

    ids = np.asarray([str(i) for i in range(len(CANDIDATE))])
    candidate = replace(CANDIDATE, ids=ids)
    shuffled = take(replace(BASELINE, ids=ids), np.arange(len(ids))[::-1])
    by_id = Early(config)
    by_id.ahead(candidate, shuffled)
    started = by_id.started
    assert started is not None and started.baseline is not shuffled  # reordered by id
    again = align(candidate, shuffled)
    assert again[0] is started.candidate and again[1] is started.baseline
    by_id.rows(*again)
    assert by_id.started is not None and by_id.started.figure is started.figure
