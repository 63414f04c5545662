"""mlci.drawing: the report's PNGs drawn in a worker process beside the gate's numbers,
the same bytes as drawn in the process, and drawn in the process where no worker runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from mlci import drawing, plots

pytest.importorskip("matplotlib")

CLASSES = ("cat", "dog", "emu")
COUNTS = np.array([[50, 3, 1], [4, 40, 6], [0, 7, 30]])


def confusion() -> partial[bytes]:
    return partial(plots.confusion_matrix_png, CLASSES, COUNTS, COUNTS.T, normalize=True)


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the worker needs a second core")
def test_the_worker_draws_the_same_png_and_this_process_never_imports_matplotlib() -> None:
    out = run_python(
        """
        import sys
        from functools import partial
        import numpy as np
        from mlci import drawing, plots

        counts = np.array([[50, 3, 1], [4, 40, 6], [0, 7, 30]])
        made = partial(plots.confusion_matrix_png, ("cat", "dog", "emu"), counts, counts.T,
                       normalize=True)
        drawing.start(plots.warm_up)
        assert drawing._worker is not None
        png = drawing.draw(made)()
        print("matplotlib" in sys.modules, png[:8] == b"\\x89PNG\\r\\n\\x1a\\n")
        print(png == made())  # drawn here now: the same bytes
        """
    )
    assert out.split() == ["False", "True", "True"]


def test_on_one_core_no_worker_starts_and_the_png_is_drawn_here() -> None:
    out = run_python(
        """
        import os, sys
        from functools import partial
        import numpy as np
        from mlci import drawing, plots

        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        drawing.start(plots.warm_up)
        counts = np.eye(2, dtype=int)
        made = partial(plots.confusion_matrix_png, (0, 1), counts, None, normalize=False)
        png = drawing.draw(made)()
        print(drawing._worker is None, "matplotlib" in sys.modules, png[:4] == b"\\x89PNG")
        """
    )
    assert out.split() == ["True", "True", "True"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the worker needs a second core")
def test_a_killed_worker_costs_no_png_and_the_next_run_starts_another() -> None:
    drawing.start(plots.warm_up)
    assert drawing._worker is not None
    workers = list(drawing._worker._processes.values())  # the executor's own
    assert workers
    expected = confusion()()
    pending = drawing.draw(confusion())
    for worker in workers:
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=30)

    assert pending() == expected  # drawn here instead
    assert drawing._worker is None

    drawing.start(plots.warm_up)
    assert drawing._worker is not None
    assert drawing.draw(confusion())() == expected


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the worker needs a second core")
def test_a_script_without_a_main_guard_is_not_run_again_by_the_worker(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            from functools import partial
            import numpy as np
            from mlci import drawing, plots

            print("ran", flush=True)  # a spawned process would run this again
            drawing.start(plots.warm_up)
            made = partial(plots.confusion_matrix_png, (0, 1), np.eye(2, dtype=int), None,
                           normalize=False)
            print(drawing._worker is not None, drawing.draw(made)()[:4] == b"\\x89PNG")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ran", "True", "True"]


def slow_in_a_worker(parent: int) -> bytes:
    """Stuck in any process but `parent`."""
    if os.getpid() != parent:
        time.sleep(600)
    return b"drawn here"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the worker needs a second core")
def test_a_stuck_worker_is_killed_and_the_png_drawn_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "TIMEOUT_SECONDS", 5.0)
    drawing.start(plots.warm_up)
    assert drawing._worker is not None
    workers = list(drawing._worker._processes.values())  # the executor's own
    assert workers

    started = time.monotonic()
    assert drawing.draw(partial(slow_in_a_worker, os.getpid()))() == b"drawn here"

    assert time.monotonic() - started < 60
    assert drawing._worker is None
    for worker in workers:  # gone, so mlci's exit does not wait for it
        worker.join(timeout=30)
        assert not worker.is_alive()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the worker needs a second core")
def test_mlci_exits_without_waiting_for_a_drawing_nobody_collects(tmp_path: Path) -> None:
    """A run that stops before its report (an error) leaves drawings in the worker: at
    exit the worker is killed, not waited for, and no process is left behind."""
    script = tmp_path / "leave.py"
    script.write_text(
        textwrap.dedent(
            """
            import functools, json, time
            from mlci import drawing, plots

            def main():
                drawing.start(plots.warm_up)
                drawing.draw(functools.partial(time.sleep, 600))  # never collected
                print(json.dumps(list(drawing._worker._processes)), flush=True)

            if __name__ == "__main__":
                main()
            """
        )
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    assert done.stderr == ""
    for pid in json.loads(done.stdout):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the worker needs a second core")
@pytest.mark.parametrize(("rows", "started"), [(500, False), (30_000, True)])
def test_the_worker_starts_for_predictions_large_enough_to_pay_for_it(
    tmp_path: Path, rows: int, started: bool
) -> None:
    rng = np.random.default_rng(rows)
    truth = rng.integers(0, 3, rows)
    scores = rng.dirichlet(np.ones(3), rows)
    lines = ["y_true,y_pred,p_0,p_1,p_2"]
    lines += [
        f"{t},{int(np.argmax(p))},{p[0]:.4f},{p[1]:.4f},{p[2]:.4f}"
        for t, p in zip(truth.tolist(), scores, strict=True)
    ]
    (tmp_path / "predictions.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "base.json").write_text('{"accuracy": 0.0}')
    (tmp_path / "mlci.yaml").write_text(
        "version: 1\nmodel: {name: m}\nevaluate:\n  predictions: predictions.csv\n"
        "gate:\n  rules:\n    - {metric: accuracy, min: 0.0}\nreport:\n  plots: true\n"
    )
    script = (
        "import sys\nfrom mlci import drawing\nfrom mlci.cli import main\n"
        "code = main(['gate', '--config', sys.argv[1], '--baseline', sys.argv[2]])\n"
        "print(code, drawing._worker is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "mlci.yaml"), str(tmp_path / "base.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split()[-2:] == ["0", str(started)], done.stderr
    assert sorted(p.name for p in (tmp_path / ".mlci" / "out" / "plots").iterdir()) == [
        "calibration.png",
        "confusion_matrix-2.png",
        "confusion_matrix.png",
        "pr.png",
        "roc.png",
    ]


def test_every_png_is_started_before_the_gates_intervals_are_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlci.cli import main
    from mlci.core import stats

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 2_000)
    for name in ("candidate", "baseline"):
        scores = rng.dirichlet(np.ones(3), len(truth))
        rows = ["y_true,y_pred,p_0,p_1,p_2"] + [
            f"{t},{int(np.argmax(p))},{p[0]:.4f},{p[1]:.4f},{p[2]:.4f}"
            for t, p in zip(truth.tolist(), scores, strict=True)
        ]
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "base.json").write_text('{"accuracy": 0.0}')
    (tmp_path / "mlci.yaml").write_text(
        "version: 1\nmodel: {name: m}\nevaluate:\n  predictions: candidate.csv\n"
        "gate:\n  rules:\n    - {metric: accuracy, max_drop: 0.5}\nreport:\n  plots: true\n"
    )
    events: list[str] = []
    draw, paired = drawing.draw, stats.paired_difference_intervals

    def drawn(made: drawing.Drawing) -> object:
        events.append(getattr(made, "func", made).__name__)
        return draw(made)

    def intervals(*args: object, **kwargs: object) -> object:
        events.append("paired intervals")
        return paired(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(drawing, "draw", drawn)
    monkeypatch.setattr(stats, "paired_difference_intervals", intervals)
    args = [
        "gate",
        "--config",
        str(tmp_path / "mlci.yaml"),
        "--baseline",
        str(tmp_path / "base.json"),
    ]

    assert main([*args, "--baseline-predictions", str(tmp_path / "baseline.csv")]) == 0

    # the confusion matrices as the rows are paired, the curves once both models'
    # classes are ranked: all before the intervals (and drawn while they are computed)
    assert events == [
        "confusion_matrix_png",
        "confusion_matrix_png",
        "class_curves_png",
        "class_curves_png",
        "curves_png",
        "paired intervals",
    ]
    assert len(list((tmp_path / ".mlci" / "out" / "plots").iterdir())) == 5
