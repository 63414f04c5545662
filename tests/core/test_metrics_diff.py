"""The metrics diff: DVC's semantics, without its silent drops and float noise."""

from __future__ import annotations

from mlci.core.metrics import MetricChange, diff_metrics


def test_diff_like_dvc_but_exact_and_complete() -> None:
    old = {"accuracy": 0.78, "n": 200, "model_name": "linear", "lst.0": 1, "none": None}
    new = {"accuracy": 0.795, "auc": 0.77, "model_name": "tree", "lst.0": 1, "none": None}

    assert diff_metrics(old, new) == [
        MetricChange("accuracy", 0.78, 0.795, "changed", 0.015),
        MetricChange("auc", None, 0.77, "new"),
        MetricChange("lst.0", 1, 1, "unchanged", 0.0),
        MetricChange("model_name", "linear", "tree", "changed"),
        MetricChange("n", 200, None, "removed"),
        MetricChange("none", None, None, "unchanged"),
    ]


def test_booleans_are_not_differenced_and_null_is_a_change() -> None:
    rows = {r.name: r for r in diff_metrics({"ok": True, "loss": 0.2}, {"ok": False, "loss": None})}
    assert rows["ok"] == MetricChange("ok", True, False, "changed")
    assert rows["loss"] == MetricChange("loss", 0.2, None, "changed")


def test_no_baseline_means_everything_is_new() -> None:
    assert diff_metrics(None, {"a": 1}) == [MetricChange("a", None, 1, "new")]
