"""The training subprocess: streamed output, exit codes, and a timeout that really stops it."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pytest

from mlci.errors import TrainingError, UsageError
from mlci.pipeline.train import run_training


def test_output_is_streamed_and_the_duration_recorded(tmp_path: Path) -> None:
    echo = io.StringIO()
    info = run_training("echo first && echo second", cwd=tmp_path, timeout_s=30, echo=echo)

    assert echo.getvalue().splitlines() == ["  │ first", "  │ second"]
    assert info.exit_code == 0
    assert info.command == "echo first && echo second"
    assert info.duration_s >= 0


def test_a_list_command_runs_without_a_shell(tmp_path: Path) -> None:
    echo = io.StringIO()
    run_training(
        (sys.executable, "-c", "print('$HOME && not a shell')"),
        cwd=tmp_path,
        timeout_s=30,
        echo=echo,
    )
    assert "$HOME && not a shell" in echo.getvalue()


def test_failure_raises_with_exit_code_and_the_last_lines(tmp_path: Path) -> None:
    script = "for i in range(100): print('line', i)\nraise SystemExit(7)"
    (tmp_path / "train.py").write_text(script)

    with pytest.raises(TrainingError) as failed:
        run_training(f"{sys.executable} train.py", cwd=tmp_path, timeout_s=30, echo=io.StringIO())

    assert failed.value.exit_code == 5
    assert "exited with code 7" in failed.value.message
    assert failed.value.output_tail[-1] == "line 99"
    assert len(failed.value.output_tail) == 30


def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    # The shell starts a child that would outlive a naive kill of the shell alone.
    marker = tmp_path / "still-running"
    command = f"sleep 30 & echo started; wait; touch {marker}"
    started = time.monotonic()

    with pytest.raises(TrainingError) as failed:
        run_training(command, cwd=tmp_path, timeout_s=0.5, echo=io.StringIO())

    assert time.monotonic() - started < 10
    assert "timed out after 0.5 s" in failed.value.message
    assert failed.value.output_tail == ("started",)
    time.sleep(0.2)
    assert not marker.exists()


def test_missing_program_in_a_list_command_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as failed:
        run_training(("no-such-trainer", "--fast"), cwd=tmp_path, timeout_s=5, echo=io.StringIO())
    assert "no-such-trainer was not found" in failed.value.message


def test_the_environment_given_is_the_one_used(tmp_path: Path) -> None:
    echo = io.StringIO()
    env = {**os.environ, "MLCI_TEST_VALUE": "from-the-test"}
    run_training("echo $MLCI_TEST_VALUE", cwd=tmp_path, timeout_s=5, echo=echo, env=env)
    assert "from-the-test" in echo.getvalue()


def test_a_silent_training_is_stopped_as_stalled_not_timed_out(tmp_path: Path) -> None:
    script = "import time\nprint('epoch 1', flush=True)\ntime.sleep(60)"
    (tmp_path / "train.py").write_text(script)
    started = time.monotonic()
    with pytest.raises(TrainingError) as caught:
        run_training(
            (sys.executable, "train.py"),
            cwd=tmp_path,
            timeout_s=60,
            stall_s=0.6,
            echo=io.StringIO(),
        )
    assert time.monotonic() - started < 20
    assert caught.value.stopped_by == "stall"
    assert "training stalled: no output for 0.6 s (train.stall_minutes)" in caught.value.message
    assert caught.value.output_tail == ("epoch 1",)


def test_a_progress_bar_without_newlines_is_not_a_stall(tmp_path: Path) -> None:
    # tqdm redraws with carriage returns only: that output still shows the training lives.
    script = (
        "import sys, time\n"
        "for i in range(12):\n"
        "    sys.stdout.write(f'\\r{i * 10}%'); sys.stdout.flush(); time.sleep(0.15)\n"
        "print()\nprint('done')"
    )
    (tmp_path / "train.py").write_text(script)
    echo = io.StringIO()
    info = run_training(
        (sys.executable, "train.py"), cwd=tmp_path, timeout_s=60, stall_s=0.6, echo=echo
    )
    assert info.duration_s > 1.0
    assert echo.getvalue().splitlines()[-1] == "  │ done"


def test_the_overall_timeout_still_fires_when_output_keeps_coming(tmp_path: Path) -> None:
    script = "import time\nwhile True:\n    print('step', flush=True); time.sleep(0.1)"
    (tmp_path / "train.py").write_text(script)
    with pytest.raises(TrainingError) as caught:
        run_training(
            (sys.executable, "train.py"),
            cwd=tmp_path,
            timeout_s=1.0,
            stall_s=0.5,
            echo=io.StringIO(),
        )
    assert caught.value.stopped_by == "timeout"
    assert "timed out after 1 s" in caught.value.message
