"""`mlci gate` with evaluate.slices: a segment that got worse fails the gate, by name,
in the report and gate.json; a slice column missing from the predictions is exit 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mlci import git
from mlci.errors import EXIT_GATE_FAILED, EXIT_USAGE

CONFIG = """\
version: 1
model: {name: sliced}
evaluate:
  predictions: candidate.csv
  slices:
    - segment
    - {column: age, edges: [30, 50]}
gate:
  rules:
    - {metric: accuracy, max_drop: 0.02, confidence: 0.95, slices: true}
"""


def write_predictions(path: Path, truth: np.ndarray, pred: np.ndarray, **columns: object) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "y_true", "y_pred", *columns])
        for row in range(len(truth)):
            extra = [values[row] for values in columns.values()]  # type: ignore[index]
            writer.writerow([row, truth[row], pred[row], *extra])


def project(root: Path, config: str = CONFIG) -> Path:
    """Overall accuracy up a point; the 5% of rows in segment `hurt` down ten."""
    rng = np.random.default_rng(5)
    rows = 8_000
    segments = np.array([f"s{i % 9}" for i in range(rows)], dtype="U8")
    segments[: rows // 20] = "hurt"
    truth = rng.integers(0, 3, rows)
    difficulty = rng.random(rows)
    accuracy = np.where(segments == "hurt", 0.75, 0.8658)
    wrong = (truth + 1) % 3
    ages = rng.integers(18, 80, rows)
    root.mkdir()
    git.init_repo(root, branch="main")
    (root / ".gitignore").write_text(".mlci/\n")
    (root / "mlci.yaml").write_text(config)
    (root / "baseline.yaml").write_text("accuracy: 0.85\n")
    baseline = np.where(difficulty < 0.85, truth, wrong)
    candidate = np.where(difficulty < accuracy, truth, wrong)
    write_predictions(root / "baseline.csv", truth, baseline, segment=segments, age=ages)
    write_predictions(root / "candidate.csv", truth, candidate, segment=segments, age=ages)
    git.commit_all(root, "sliced")
    return root


def gate(root: Path) -> subprocess.CompletedProcess[str]:
    command = ["gate", "--baseline", "baseline.yaml", "--baseline-predictions", "baseline.csv"]
    return subprocess.run(
        [sys.executable, "-m", "mlci", *command],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_gate_fails_naming_the_segment_that_got_worse(tmp_path: Path) -> None:
    root = project(tmp_path / "p")

    result = gate(root)

    assert result.returncode == EXIT_GATE_FAILED, result.stderr
    assert "accuracy in segment=hurt (400 rows): dropped" in result.stdout
    data = json.loads((root / ".mlci/out/gate.json").read_text())
    (overall,) = data["results"]
    assert overall["verdict"] == "pass" and overall["change"] > 0
    failed = [r for r in data["slices"]["results"] if r["verdict"] == "fail"]
    assert [r["slice"] for r in failed] == [{"segment": "hurt"}]
    assert data["slices"]["correction"] == "Holm"
    report = (root / ".mlci/out/report.md").read_text()
    assert "### Slices" in report
    assert report.index("segment=hurt") < report.index("**Clearly better**")
    assert "<h2>Slices</h2>" in (root / ".mlci/out/report.html").read_text()


def test_a_slice_column_missing_from_the_predictions_is_exit_2_naming_it(
    tmp_path: Path,
) -> None:
    root = project(tmp_path / "p", CONFIG.replace("    - segment\n", "    - country\n"))

    result = gate(root)

    assert result.returncode == EXIT_USAGE
    assert "no country column for evaluate.slices" in result.stderr
    assert (root / ".mlci/out/gate.json").exists()


AUC_CONFIG = """\
version: 1
model: {name: ranked}
evaluate:
  predictions: candidate.csv
  slices: [segment]
gate:
  rules:
    - {metric: roc_auc, max_drop: 0.02, confidence: 0.95, slices: true}
"""


def test_a_roc_auc_rule_is_judged_per_slice_by_delong(tmp_path: Path) -> None:
    """The 5% of rows in segment `hurt` rank far worse; the whole holds. A segment of
    negatives only has no AUC: listed, not gated."""
    rng = np.random.default_rng(6)
    rows = 8_000
    segments = np.array([f"s{i % 9}" for i in range(rows)], dtype="U8")
    segments[: rows // 20] = "hurt"
    truth = rng.integers(0, 2, rows)
    segments[(segments == "s0") & (truth == 1)] = "s1"  # s0: negatives only
    root = tmp_path / "p"
    root.mkdir()
    git.init_repo(root, branch="main")
    (root / ".gitignore").write_text(".mlci/\n")
    (root / "mlci.yaml").write_text(AUC_CONFIG)
    (root / "baseline.yaml").write_text("roc_auc: 0.8\n")
    for name, separation in (
        ("baseline", 1.5),
        ("candidate", np.where(segments == "hurt", 0.3, 1.6)),
    ):
        score = np.round(1 / (1 + np.exp(-(rng.normal(size=rows) + separation * truth))), 4)
        pred = (score > 0.5).astype(int)
        write_predictions(root / f"{name}.csv", truth, pred, score=score, segment=segments)
    git.commit_all(root, "ranked")

    result = gate(root)

    assert result.returncode == EXIT_GATE_FAILED, result.stderr
    assert "roc_auc in segment=hurt (400 rows): dropped" in result.stdout
    data = json.loads((root / ".mlci/out/gate.json").read_text())
    (overall,) = data["results"]
    assert overall["verdict"] == "pass"
    by_slice = {r["slice"]["segment"]: r for r in data["slices"]["results"]}
    assert [name for name, r in by_slice.items() if r["verdict"] == "fail"] == ["hurt"]
    assert by_slice["hurt"]["interval"]["method"] == "paired delong normal, per slice"
    assert by_slice["s0"]["verdict"] == "skip" and by_slice["s0"]["candidate"] == "NaN"
    assert not [note for note in data["notes"] if "No per-slice estimate" in note]
    report = (root / ".mlci/out/report.md").read_text()
    assert "1 where the metric is undefined" in report
