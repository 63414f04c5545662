"""Curves against scikit-learn; downsampling; reading training logs."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from mlci.core.curves import (
    ClassCurves,
    Curve,
    by_class,
    calibration,
    coarse,
    downsample,
    most_changed,
    pr_curves,
    read_training_log,
    residuals,
    roc_curves,
)
from mlci.core.ranking import Ranking
from mlci.core.stats import Predictions, compute_metrics
from mlci.errors import MetricsError


def classified(labels: list[Any], n: int = 300, seed: int = 0, ties: bool = False) -> Predictions:
    """Noisy predictions over `labels`; with `ties`, probabilities rounded to one decimal."""
    rng = np.random.default_rng(seed)
    k = len(labels)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[true]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        scores = np.round(scores, 1)
    classes = np.asarray(sorted(labels))
    return Predictions(classes[true], classes[scores.argmax(axis=1)], scores, tuple(classes), None)


CASES = {
    "binary": classified([0, 1]),
    "binary, tied scores": classified([0, 1], ties=True),
    "multiclass": classified([0, 1, 2, 3]),
    "strings": classified(["cat", "dog", "eel"], ties=True),
    "binary strings": classified(["no", "yes"], n=50, seed=3),
}


def positives(pred: Predictions) -> list[tuple[int, Any]]:
    """(column, label) of the classes that get a curve: the larger label for two classes."""
    if len(pred.classes) == 2:
        return [(1, pred.classes[1])]
    return list(enumerate(pred.classes))


@pytest.mark.parametrize("pred", CASES.values(), ids=CASES.keys())
def test_roc_points_and_areas_are_sklearns(pred: Predictions) -> None:
    curves = roc_curves(pred)
    assert len(curves) == len(positives(pred))
    assert pred.scores is not None
    for curve, (column, label) in zip(curves, positives(pred), strict=True):
        truth = pred.y_true == label
        fpr, tpr, _ = skm.roc_curve(truth, pred.scores[:, column])
        assert curve.name == f"class {label}"
        np.testing.assert_allclose(curve.x, fpr, rtol=0, atol=1e-12)
        np.testing.assert_allclose(curve.y, tpr, rtol=0, atol=1e-12)
        assert curve.area == pytest.approx(skm.roc_auc_score(truth, pred.scores[:, column]))


@pytest.mark.parametrize("pred", CASES.values(), ids=CASES.keys())
def test_pr_points_and_areas_are_sklearns(pred: Predictions) -> None:
    curves = pr_curves(pred)
    assert len(curves) == len(positives(pred))
    assert pred.scores is not None
    for curve, (column, label) in zip(curves, positives(pred), strict=True):
        truth = pred.y_true == label
        precision, recall, _ = skm.precision_recall_curve(truth, pred.scores[:, column])
        # sklearn lists recall falling; the curve lists it rising, from (0, 1).
        np.testing.assert_allclose(curve.x, recall[::-1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(curve.y, precision[::-1], rtol=0, atol=1e-12)
        expected = skm.average_precision_score(truth, pred.scores[:, column])
        assert curve.area == pytest.approx(expected)


def test_binary_roc_area_is_the_reported_roc_auc() -> None:
    pred = CASES["binary"]
    (curve,) = roc_curves(pred)
    assert curve.area == pytest.approx(compute_metrics(pred, "classification")["roc_auc"])


@pytest.mark.parametrize("make", [roc_curves, pr_curves])
def test_curves_with_points_are_thinned_but_keep_the_full_area(make: Any) -> None:
    """What a figure asks for: a few points to draw, the area of every point."""
    pred = classified([0, 1, 2], n=5000)
    full, thin = make(pred), make(pred, points=40)
    assert [c.name for c in thin] == [c.name for c in full]
    assert pred.scores is not None
    for column, (small, whole) in enumerate(zip(thin, full, strict=True)):
        assert len(whole) > 1000 and len(small) == 40 and small.area == whole.area
        assert (small.x[0], small.y[0], small.x[-1]) == (whole.x[0], whole.y[0], whole.x[-1])
        # Every point drawn is a point of the curve, at one of its thresholds.
        truth, score = pred.y_true == column, pred.scores[:, column]
        if make is roc_curves:
            xs, ys, _ = skm.roc_curve(truth, score, drop_intermediate=False)
        else:
            ys, xs, _ = skm.precision_recall_curve(truth, score)
        on_curve = {(round(x, 12), round(y, 12)) for x, y in zip(xs, ys, strict=True)}
        assert {
            (round(x, 12), round(y, 12)) for x, y in zip(small.x, small.y, strict=True)
        } <= on_curve


def test_a_figures_curve_comes_from_at_most_coarse_times_its_points_thresholds() -> None:
    """A million-row curve is not a million points thinned: its points at a grid of
    thresholds, the highest and lowest kept, each group's counts summed."""
    ranked = Ranking(np.arange(1, 101, dtype=np.uint8), np.arange(100, 0, -1, dtype=np.uint8))
    grouped = coarse(ranked, 10)
    assert len(grouped.positives) == 10
    assert int(grouped.positives.sum()) == int(ranked.positives.sum())
    assert int(grouped.negatives.sum()) == int(ranked.negatives.sum())
    assert grouped.positives[-1] == ranked.positives[-1]  # the highest score on its own
    assert coarse(ranked, 100) is ranked


@pytest.mark.parametrize("pred", CASES.values(), ids=CASES.keys())
def test_every_curve_runs_left_to_right(pred: Predictions) -> None:
    for curve in [*roc_curves(pred), *pr_curves(pred)]:
        assert np.all(np.diff(curve.x) >= 0)
        assert (curve.x[0], curve.x[-1]) == (0.0, 1.0)


def test_a_class_missing_from_y_true_has_no_curve() -> None:
    pred = classified([0, 1, 2])
    keep = pred.y_true != 2
    assert pred.scores is not None
    pred = Predictions(pred.y_true[keep], pred.y_pred[keep], pred.scores[keep], pred.classes, None)
    assert [c.name for c in roc_curves(pred)] == ["class 0", "class 1"]
    assert [c.name for c in pr_curves(pred)] == ["class 0", "class 1"]


def test_one_class_in_y_true_has_no_roc_curve_but_a_pr_curve() -> None:
    pred = Predictions(
        np.array([1, 1, 1]),
        np.array([1, 0, 1]),
        np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]),
        (0, 1),
        None,
    )
    assert roc_curves(pred) == []
    (curve,) = pr_curves(pred)
    assert curve.y == (1.0, 1.0, 1.0, 1.0) and curve.area == 1.0


def test_no_scores_no_curves() -> None:
    pred = CASES["binary"]
    bare = Predictions(pred.y_true, pred.y_pred, None, pred.classes, None)
    assert roc_curves(bare) == [] and pr_curves(bare) == [] and calibration(bare) is None


@pytest.mark.parametrize("bins", [10, 5, 1])
@pytest.mark.parametrize("key", ["binary", "binary, tied scores", "binary strings"])
def test_binary_calibration_is_sklearns(key: str, bins: int) -> None:
    pred = CASES[key]
    assert pred.scores is not None
    observed, predicted = calibration_curve(
        pred.y_true == pred.classes[1], pred.scores[:, 1], n_bins=bins, strategy="uniform"
    )
    curve = calibration(pred, bins=bins)
    assert curve is not None and curve.name == f"class {pred.classes[1]}"
    np.testing.assert_allclose(curve.x, predicted, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.y, observed, rtol=0, atol=1e-12)
    assert curve.area is None


@pytest.mark.parametrize("key", ["multiclass", "strings"])
def test_multiclass_calibration_is_top_label_confidence_against_accuracy(key: str) -> None:
    pred = CASES[key]
    assert pred.scores is not None
    top = pred.scores.argmax(axis=1)
    correct = np.asarray(pred.classes)[top] == pred.y_true
    observed, predicted = calibration_curve(correct, pred.scores.max(axis=1), n_bins=10)
    curve = calibration(pred)
    assert curve is not None and curve.name == "top label"
    np.testing.assert_allclose(curve.x, predicted, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.y, observed, rtol=0, atol=1e-12)


def test_calibration_needs_a_bin() -> None:
    with pytest.raises(ValueError, match="bins must be at least 1"):
        calibration(CASES["binary"], bins=0)


def regressed(y_true: list[float], y_pred: list[float]) -> Predictions:
    return Predictions(np.asarray(y_true), np.asarray(y_pred), None, (), None)


def test_residuals_are_true_minus_predicted() -> None:
    assert residuals(regressed([3.0, 1.0], [2.5, 2.0])) == ((2.5, 2.0), (0.5, -1.0))


def test_residuals_sample_the_same_rows_in_order() -> None:
    pred = regressed(list(np.arange(1000.0)), list(np.arange(1000.0) * 2))
    first = residuals(pred, max_points=100)
    assert first == residuals(pred, max_points=100)
    assert len(first[0]) == 100 and list(first[0]) == sorted(first[0])
    assert all(r == -p / 2 for p, r in zip(*first, strict=True))


def test_residuals_refuse_a_classifier() -> None:
    with pytest.raises(ValueError, match="regression"):
        residuals(CASES["binary"])


def test_curve_needs_as_many_x_as_y() -> None:
    with pytest.raises(ValueError, match="2 x and 1 y"):
        Curve("broken", (0.0, 1.0), (0.0,))


# -- Downsampling ----------------------------------------------------------------------


def test_downsample_keeps_the_ends_and_the_corner() -> None:
    x = np.concatenate([np.zeros(500), np.linspace(0, 1, 501)[1:]])
    y = np.concatenate([np.linspace(0, 0.9, 500), np.linspace(0.9, 1, 501)[1:]])
    small = downsample(Curve("roc", tuple(x), tuple(y), area=0.95), points=20)
    assert len(small) == 20 and small.area == 0.95 and small.name == "roc"
    assert (small.x[0], small.y[0]) == (0.0, 0.0) and (small.x[-1], small.y[-1]) == (1.0, 1.0)
    near_corner = min(abs(a) + abs(b - 0.9) for a, b in zip(small.x, small.y, strict=True))
    assert near_corner < 0.01  # the knee of the curve survives
    assert all(np.diff(small.x) >= 0)


def test_downsample_leaves_a_short_curve_and_drops_non_finite_points() -> None:
    curve = Curve("c", (0.0, 0.5, 1.0), (0.1, math.nan, 0.3))
    assert downsample(curve, points=50) == Curve("c", (0.0, 1.0), (0.1, 0.3))
    assert downsample(Curve("c", (0.0, 1.0), (1.0, 0.0)), points=2).x == (0.0, 1.0)


def test_downsample_to_two_points_keeps_the_ends() -> None:
    curve = Curve("c", tuple(np.linspace(0, 1, 9)), tuple(np.linspace(1, 2, 9)))
    assert downsample(curve, points=2) == Curve("c", (0.0, 1.0), (1.0, 2.0))
    with pytest.raises(ValueError, match="at least 2 points"):
        downsample(curve, points=1)


# -- Training logs ---------------------------------------------------------------------


def test_keras_csv_log() -> None:
    text = "epoch,loss,val_loss\n0,0.9,1.0\n1,0.5,0.7\n\n2,0.3,0.6\n"
    assert read_training_log(text, "csv") == {
        "epoch": (0.0, 1.0, 2.0),
        "loss": (0.9, 0.5, 0.3),
        "val_loss": (1.0, 0.7, 0.6),
    }


def test_lightning_csv_log_with_empty_cells() -> None:
    text = "epoch,step,train_loss,val_loss\n0,9,0.8,\n0,9,,0.9\n"
    columns = read_training_log(text, "csv")
    assert columns["train_loss"][0] == 0.8 and math.isnan(columns["train_loss"][1])
    assert math.isnan(columns["val_loss"][0]) and columns["val_loss"][1] == 0.9


def test_json_list_of_objects_and_object_of_lists_read_the_same() -> None:
    records = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_loss": None}]
    columns = read_training_log(json.dumps(records), "json")
    assert list(columns) == ["epoch", "loss", "val_loss"]
    assert columns["loss"] == (0.5, 0.25) and all(map(math.isnan, columns["val_loss"]))
    history = {"loss": [0.5, 0.25], "accuracy": [0.7, 0.8]}
    assert read_training_log(json.dumps(history), "json") == {
        "loss": (0.5, 0.25),
        "accuracy": (0.7, 0.8),
    }


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("epoch,loss\n1,0.5\n", "yaml", "unknown training log format 'yaml'; use one of csv"),
        ("", "csv", "has no epochs"),
        ("epoch,loss\n", "csv", "has no epochs"),
        ("1,0.5\n2,0.4\n", "csv", "holds numbers, not column names"),
        ("epoch,,loss\n1,2,3\n", "csv", "column 2 of the header has no name"),
        ("loss,loss\n1,2\n", "csv", "names column 'loss' twice"),
        ("epoch,loss\n1,0.5\n2\n", "csv", "line 3: 1 cells where the header names 2 columns"),
        ("epoch,loss\n1,low\n", "csv", "line 2: loss is 'low', not a number"),
        ('[{"loss": 0.5},', "json", "not valid JSON"),
        ('"loss"', "json", "list of objects .* not a string"),
        ('[{"loss": 0.5}, [0.4]]', "json", "item 2 of the list is a list"),
        ('[{"loss": "0.5"}]', "json", 'item 1: loss is "0.5", not a number'),
        ('[{"loss": true}]', "json", "loss is true, not a number"),
        ('{"loss": 0.5}', "json", "'loss' is a number; in an object of lists"),
        ('{"loss": [0.5, 0.4], "acc": [0.9]}', "json", r"different lengths \(loss 2, acc 1\)"),
        ("[]", "json", "has no epochs"),
    ],
)
def test_malformed_logs_say_what_and_where(text: str, fmt: str, message: str) -> None:
    with pytest.raises(MetricsError, match=message) as caught:
        read_training_log(text, fmt, source="logs/history.csv")
    assert caught.value.message.startswith("logs/history.csv")


def test_by_class_pairs_curves_by_name_and_keeps_one_sided_classes() -> None:
    a, b, c = (
        Curve(f"class {n}", (0.0, 1.0), (0.0, 1.0), area) for n, area in enumerate([0.9, 0.8, 0.7])
    )
    pairs = by_class([a, b], [replace(b, area=0.75), c])
    assert [(p.name, p.candidate, p.baseline) for p in pairs] == [
        ("class 0", a, None),
        ("class 1", b, replace(b, area=0.75)),
        ("class 2", None, c),
    ]
    assert [p.change for p in pairs] == [None, pytest.approx(0.05), None]
    assert by_class([a], []) == [ClassCurves("class 0", a, None)]


def test_most_changed_keeps_order_and_puts_one_sided_classes_first() -> None:
    def pair(name: str, mine: float | None, theirs: float | None) -> ClassCurves:
        def curve(area: float | None) -> Curve | None:
            return None if area is None else Curve(name, (0.0,), (0.0,), area)

        return ClassCurves(name, curve(mine), curve(theirs))

    pairs = [
        pair("a", 0.9, 0.9),
        pair("b", 0.9, 0.5),
        pair("c", None, 0.7),
        pair("d", 0.8, 0.9),
        pair("e", 0.6, 0.61),
    ]
    assert [p.name for p in most_changed(pairs, 3)] == ["b", "c", "d"]
    assert [p.name for p in most_changed(pairs, 1)] == ["c"]
    assert most_changed(pairs, 5) == pairs
