"""PNG plots: valid, deterministic, robust to hostile labels, and matplotlib stays optional."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from mlci import plots
from mlci.core.curves import (
    ClassCurves,
    Curve,
    by_class,
    calibration,
    pr_curves,
    read_training_log,
    roc_curves,
)
from mlci.core.stats import Predictions, confusion_matrix
from mlci.errors import UsageError

HOSTILE = '$\\frac{a}{b}$ <b>"x"</b>\n`rm -rf` 猫🐱 \x00\u202e\\alpha ' + "y" * 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def classified(labels: list[object], n: int = 200, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    k = len(labels)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[true]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = np.asarray(labels)
    return Predictions(classes[true], classes[scores.argmax(axis=1)], scores, tuple(labels), None)


BINARY = classified([0, 1])
MULTICLASS = classified(["cat", "dog", "eel", "fox", "gnu"], seed=1)


def roc_by_class(baseline: Predictions) -> bytes:
    """MULTICLASS's ROC curves, class by class, beside `baseline`'s on the same rows."""
    return plots.class_curves_png(
        "ROC",
        by_class(roc_curves(MULTICLASS), roc_curves(baseline)),
        x_label="FPR",
        y_label="TPR",
        diagonal=True,
        area_label="AUC",
    )


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def confusion(pred: Predictions) -> np.ndarray:
    return confusion_matrix(pred.y_true, pred.y_pred, pred.classes)


RENDERS: dict[str, Callable[[], bytes]] = {
    "confusion, binary, counts": lambda: plots.confusion_matrix_png(
        BINARY.classes, confusion(BINARY), None, normalize=False
    ),
    "confusion, multiclass, normalized, with baseline": lambda: plots.confusion_matrix_png(
        MULTICLASS.classes,
        confusion(MULTICLASS),
        confusion(classified(list(MULTICLASS.classes), seed=2)),
        normalize=True,
    ),
    "roc, binary": lambda: plots.curves_png(
        "ROC", roc_curves(BINARY), x_label="FPR", y_label="TPR", diagonal=True, area_label="AUC"
    ),
    "roc, multiclass, with baseline": lambda: roc_by_class(
        # A worse model on the same rows: each row gets the next row's scores.
        replace(MULTICLASS, scores=np.roll(MULTICLASS.scores, 1, axis=0))
    ),
    "pr, multiclass": lambda: plots.curves_png(
        "Precision-recall", pr_curves(MULTICLASS), x_label="Recall", y_label="Precision"
    ),
    "calibration, multiclass": lambda: plots.curves_png(
        "Calibration",
        [c for c in [calibration(MULTICLASS)] if c is not None],
        x_label="Confidence",
        y_label="Accuracy",
        diagonal=True,
    ),
    "residuals": lambda: plots.residuals_png([1.0, 2.0, 3.0, 4.0], [0.1, -0.2, 0.05, 0.3]),
    "training": lambda: plots.training_curves_png(
        read_training_log("epoch,loss,val_loss,accuracy\n0,1,1.1,0.5\n1,0.6,0.8,0.7\n", "csv")
    ),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    """Each of RENDERS drawn once, for the tests that only look at the result."""
    return {name: render() for name, render in RENDERS.items()}


@pytest.mark.parametrize("name", RENDERS)
def test_each_plot_is_a_deterministic_png_of_sensible_size(
    name: str, rendered: dict[str, bytes]
) -> None:
    png = rendered[name]
    width, height = png_size(png)
    assert 300 <= width <= 2000 and 250 <= height <= 1500
    assert 5_000 < len(png) < 500_000
    assert RENDERS[name]() == png
    assert b"matplotlib" not in png.lower()  # no "Software: matplotlib x.y" to differ by


def test_the_users_matplotlib_settings_do_not_change_the_image(
    rendered: dict[str, bytes],
) -> None:
    import matplotlib

    with matplotlib.rc_context(
        {"font.size": 20, "axes.facecolor": "black", "lines.linewidth": 5, "figure.dpi": 300}
    ):
        assert RENDERS["roc, binary"]() == rendered["roc, binary"]


def test_a_baseline_matrix_is_drawn_beside_the_candidates(rendered: dict[str, bytes]) -> None:
    alone = rendered["confusion, binary, counts"]
    pair = plots.confusion_matrix_png(
        BINARY.classes, confusion(BINARY), confusion(BINARY), normalize=True
    )
    assert png_size(pair)[0] > 1.6 * png_size(alone)[0]
    assert png_size(pair)[1] == png_size(alone)[1]


def test_many_classes_draw_without_annotations() -> None:
    pred = classified(list(range(30)), n=900)
    png = plots.confusion_matrix_png(pred.classes, confusion(pred), None, normalize=False)
    assert png_size(png)[0] <= 1000


def test_hostile_labels_are_drawn_as_text() -> None:
    # mathtext would raise on "\frac" outside math mode, and "\x00" or a missing glyph would
    # warn (an error under this suite's filterwarnings).
    labels = (HOSTILE, "ok", "$x$")
    table = np.arange(9).reshape(3, 3)
    assert png_size(plots.confusion_matrix_png(labels, table, np.zeros((3, 3)), normalize=True))
    named = [replace(curve, name=HOSTILE) for curve in roc_curves(BINARY)]
    chart = plots.curves_png(HOSTILE, named, x_label=HOSTILE, y_label=HOSTILE, area_label=HOSTILE)
    assert png_size(chart)
    assert png_size(plots.training_curves_png({HOSTILE: (1.0, 0.5), "val_" + HOSTILE: (1.0, 0.7)}))


def test_empty_and_non_finite_inputs_still_draw() -> None:
    assert png_size(plots.curves_png("nothing", [], x_label="x", y_label="y"))
    assert png_size(plots.residuals_png([], []))
    assert png_size(plots.residuals_png([1.0, np.nan, 2.0], [np.inf, 0.5, 0.1]))
    assert png_size(plots.training_curves_png({"epoch": (1.0, 2.0), "step": (10.0, 20.0)}))
    curve = Curve("gaps", (0.0, 0.5, 1.0), (0.0, np.nan, 1.0), area=np.nan)
    assert png_size(plots.curves_png("gaps", [curve], x_label="x", y_label="y"))


def test_large_inputs_are_sampled_and_stay_quick() -> None:
    rng = np.random.default_rng(0)
    predicted, errors = rng.normal(size=200_000), rng.normal(size=200_000)
    png = plots.residuals_png(predicted, errors)
    assert len(png) < 500_000
    x = np.sort(rng.random(100_000))
    big = Curve("big", tuple(x), tuple(np.sqrt(x)))
    assert png_size(plots.curves_png("big", [big], x_label="x", y_label="y", diagonal=True))


def test_many_curves_cycle_colours_and_styles(rendered: dict[str, bytes]) -> None:
    curves = [Curve(f"class {i}", (0.0, 1.0), (0.0, i / 24)) for i in range(25)]
    png = plots.curves_png("many", curves, x_label="x", y_label="y")
    assert png_size(png)[1] > png_size(rendered["roc, binary"])[1]  # room for the legend


def test_the_baselines_curves_change_the_picture(rendered: dict[str, bytes]) -> None:
    assert roc_by_class(MULTICLASS) != rendered["roc, multiclass, with baseline"]


def test_a_class_only_one_model_has_and_a_note_still_draw(rendered: dict[str, bytes]) -> None:
    cat, dog = roc_curves(MULTICLASS)[:2]
    pairs = [ClassCurves(HOSTILE, cat, None), ClassCurves("class dog", None, dog)]
    png = plots.class_curves_png(
        HOSTILE, pairs, x_label="x", y_label="y", area_label=HOSTILE, note=HOSTILE
    )
    assert png_size(png)
    assert png_size(plots.class_curves_png("nothing", [], x_label="x", y_label="y"))


def test_more_classes_than_colours_are_refused() -> None:
    pairs = [ClassCurves(f"class {i}", None, None) for i in range(11)]
    with pytest.raises(ValueError, match="11 classes, but only 10 colours"):
        plots.class_curves_png("many", pairs, x_label="x", y_label="y")


def test_training_columns_are_grouped_by_metric() -> None:
    names = ["epoch", "step", "loss", "val_loss", "train/acc", "val/acc", "lr", "loss_epoch"]
    assert plots._training_groups(names) == [
        ("loss", ["loss", "val_loss", "loss_epoch"]),
        ("acc", ["train/acc", "val/acc"]),
        ("lr", ["lr"]),
    ]


def test_training_curves_without_an_epoch_column_or_past_the_panel_limit() -> None:
    columns = {f"metric_{i}": (1.0, 0.5, 0.25) for i in range(plots.MAX_PANELS + 2)}
    png = plots.training_curves_png(columns)
    assert png_size(png)[1] >= 500  # two rows of panels


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"baseline confusion matrix is \(3, 3\), not 2x2"):
        plots.confusion_matrix_png((0, 1), np.eye(2), np.eye(3), normalize=False)
    with pytest.raises(ValueError, match="2 predictions but 1 residuals"):
        plots.residuals_png([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match=r"differ in length: \[1, 2\]"):
        plots.training_curves_png({"loss": (1.0, 0.5), "val_loss": (1.0,)})


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.style", None)
    with pytest.raises(UsageError, match=r"pip install 'mlci\[plots\]'"):
        plots.residuals_png([1.0], [0.0])


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, mlci.plots; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
