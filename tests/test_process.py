"""The deadline and stall limit shared by the training and `dvc pull` (mlci.process)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from mlci import process

SILENT = (sys.executable, "-c", "import time; time.sleep(1.5); print('done')")


def test_progress_the_caller_reports_keeps_a_silent_command_alive(tmp_path: Path) -> None:
    # As `dvc pull` does: no output, but data arriving in the cache (here: a ticking thread).
    activity = process.Activity()
    finished = threading.Event()

    def tick() -> None:
        while not finished.wait(0.1):
            activity.touch()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    lines: list[bytes] = []
    child = process.start(SILENT, cwd=tmp_path, env={})
    try:
        code = process.watch(
            child, timeout_s=30, stall_s=0.5, on_line=lines.append, activity=activity
        )
    finally:
        finished.set()

    assert (code, lines) == (0, [b"done"])


def test_without_that_progress_the_same_command_is_stopped_as_stalled(tmp_path: Path) -> None:
    child = process.start(SILENT, cwd=tmp_path, env={})
    started = time.monotonic()

    with pytest.raises(process.Stopped) as stopped:
        process.watch(child, timeout_s=30, stall_s=0.5, on_line=lambda raw: None)

    assert stopped.value.stalled
    assert 0.5 <= stopped.value.seconds < 1.5
    assert time.monotonic() - started < 1.5
    assert child.returncode is not None  # stopped, not left running
