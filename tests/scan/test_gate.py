"""`mlci gate` with evaluate.engine: the metrics and the paired intervals come from the
engine's scan, and agree with mlci reading the rows itself."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mlci import git
from mlci.cli import main
from tests.scan.data import write_classification

pytest.importorskip("duckdb")

CONFIG = """\
version: 1
model: {{name: scan}}
evaluate:
  predictions: cand.parquet{engine}
gate:
  resamples: 500
  rules:
    - {{metric: accuracy, direction: higher, max_drop: 0.5}}
report:
  plots: false
"""


def gate(root: Path, engine: str) -> dict[str, object]:
    root.mkdir()
    write_classification(root, rows=2000, partial=False)
    git.init_repo(root, branch="main")
    (root / "mlci.yaml").write_text(CONFIG.format(engine=engine))
    (root / ".gitignore").write_text(".mlci/\n")
    (root / "base.json").write_text(json.dumps({"accuracy": 0.5}))
    git.commit_all(root, "initial")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        code = main(["gate", "--baseline", "base.json", "--baseline-predictions", "base.parquet"])
    finally:
        os.chdir(cwd)
    assert code == 0
    result = json.loads((root / ".mlci" / "out" / "gate.json").read_text())
    assert isinstance(result, dict)
    return result


def test_duckdb_gate_agrees_with_mlci_reading_the_rows(tmp_path: Path) -> None:
    own = gate(tmp_path / "own", "")
    scanned = gate(tmp_path / "duckdb", "\n  engine: duckdb")
    rows, exact = scanned["rows"], own["rows"]
    assert isinstance(rows, dict) and isinstance(exact, dict)
    assert (
        (rows["candidate"], rows["baseline"])
        == (exact["candidate"], exact["baseline"])
        == (
            2000,
            2000,
        )
    )
    assert (rows["method"], exact["method"]) == ("binned, 1000 bins", "exact")
    ours, theirs = scanned["metrics"], own["metrics"]
    assert isinstance(ours, dict) and isinstance(theirs, dict)
    assert ours.keys() == theirs.keys()
    (note,) = scanned["notes"]
    assert note.startswith("2,000 rows scanned by evaluate.engine (duckdb)")
    bound = float(re.search(r"roc_auc within ±(\S+) of the exact", note).group(1))
    ap_bound = re.search(r"the candidate's average precisions \(PR\) within ±([^;]+);", note)
    assert ap_bound is not None and float(ap_bound.group(1)) == float(f"{rows['ap_bound']:.2g}")
    assert 0 < rows["ap_bound"] < 0.05 and exact["ap_bound"] == 0.0
    for name, value in ours.items():
        if name == "roc_auc":
            assert abs(value - theirs[name]) <= bound
        else:  # counts exact; the log loss summed in another order
            assert value == pytest.approx(theirs[name], rel=1e-12), name
    (mine,), (reference,) = scanned["results"], own["results"]
    assert mine["interval"]["method"] == reference["interval"]["method"] == "bootstrap"
    assert mine["interval"]["low"] == pytest.approx(reference["interval"]["low"], abs=0.01)
    assert mine["interval"]["high"] == pytest.approx(reference["interval"]["high"], abs=0.01)
