"""Golden files: compare a generated text with its file, or rewrite the file on request.

After an intended change, refresh them and review the diff:

    MLCI_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_workflow.py tests/test_init.py
    git diff tests/
"""

from __future__ import annotations

import os
from pathlib import Path


def compare_golden(path: Path, text: str) -> None:
    if os.environ.get("MLCI_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"{path} differs; if the change is intended, rerun with MLCI_UPDATE_GOLDEN=1 "
        "and review the diff"
    )
