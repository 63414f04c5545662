"""The report's PNGs drawn beside the numbers: `mlci.plots` in a worker process.

matplotlib's import and a gate's drawing take about 1.5 s of CPU (a million rows of ten
classes: two confusion-matrix PNGs, the ROC, precision-recall and calibration ones), all
of it in Python, so a thread would not run it beside the metrics. Where the machine has a
second core, `start()` (called by the pipeline as the run starts, after a training, for
predictions of 20,000 rows or more) opens one worker process that imports matplotlib at
once; `draw()` hands it a drawing and returns at once, and the PNG's bytes
are collected when the report needs them, so the drawing overlaps the metrics and curves
still being computed. One worker serves every run of the process (the test suite runs
hundreds) and ends with it.

On one core, or where the worker cannot start, dies or is stuck (TIMEOUT_SECONDS),
`draw()` draws in this process when the PNG is collected: the same bytes, later.
"""

from __future__ import annotations

import os
import signal
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

Drawing = Callable[[], bytes]  # a picklable call: functools.partial of an mlci.plots function

_worker: ProcessPoolExecutor | None = None
# A PNG takes about a second; a worker that has not answered in this long is stuck.
TIMEOUT_SECONDS = 120.0


def start(warm_up: Callable[[], object]) -> None:
    """Open the worker (once per process) where a second core would run it, and have it
    run `warm_up` (`plots.warm_up`: import matplotlib) now. Nothing where matplotlib is
    missing: the report says so."""
    global _worker
    if _worker is not None or _cores() < 2:
        return
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: pyarrow's and BLAS's threads may hold locks a fork would copy. A
    # spawned process runs the parent's main script again (as __mp_main__) unless it is a
    # module's __main__: a script that calls mlci without `if __name__ == "__main__"`
    # would run twice. It gets an empty __main__ instead while it starts (in submit).
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        _worker = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_ready
        )
        _worker.submit(warm_up)
    except (OSError, RuntimeError):  # no processes here (a sandbox, a limit): draw inline
        _worker = None
        return
    finally:
        sys.modules["__main__"] = main
    # At exit no drawing can be collected any more: the worker is killed, not shut down
    # (its interpreter's shutdown, which concurrent.futures waits for, took 70 ms a gate).
    _at_exit(_kill)


def draw(drawing: Drawing) -> Callable[[], bytes]:
    """Start `drawing` in the worker, if there is one; the returned call gives its bytes
    (drawn in this process if the worker is gone)."""
    future = _submit(drawing)
    if future is None:
        return drawing

    def result() -> bytes:
        from concurrent.futures import TimeoutError as Late  # TimeoutError's alias from 3.11
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result(timeout=TIMEOUT_SECONDS)
        except BrokenProcessPool:  # killed (out of memory?): the next run starts another
            _stop()
        except Late:  # stuck: stopped, or mlci could not exit (it waits for its worker)
            _kill()
        return drawing()

    return result


def _submit(drawing: Drawing) -> Future[bytes] | None:
    if _worker is None:
        return None
    from concurrent.futures.process import BrokenProcessPool

    try:
        return _worker.submit(drawing)
    except (BrokenProcessPool, RuntimeError):  # dead, or shut down at the interpreter's exit
        _stop()
        return None


def _kill() -> None:
    """Stop the worker in the middle of a drawing (shutdown would wait for it)."""
    processes = getattr(_worker, "_processes", None) or {}  # the executor's own
    for process in list(processes.values()):
        process.kill()
    _stop()


def _at_exit(call: Callable[[], None]) -> None:
    """Have `call` run as the interpreter exits, once however often it is asked, and
    before concurrent.futures waits for its executors (threading's exit hooks run before
    atexit's, the latest first; concurrent.futures registers its own when imported, as
    `start` did). A Python without that hook: atexit, after that wait."""
    import threading

    hook = getattr(threading, "_register_atexit", None)
    if hook is None:
        import atexit

        atexit.unregister(call)
        atexit.register(call)
    elif call not in _EXIT_HOOKS:
        _EXIT_HOOKS.append(call)
        hook(call)


_EXIT_HOOKS: list[Callable[[], None]] = []


def _stop(wait: bool = False) -> None:
    global _worker
    if _worker is not None:
        _worker.shutdown(wait=wait, cancel_futures=True)
    _worker = None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # macOS and Windows
        return os.cpu_count() or 1


def _ready() -> None:
    """In the worker: Ctrl-C is the parent's to handle (it stops the worker at its exit).
    Nice 10: the metrics come first, and each PNG waits for numbers from them anyway."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "nice"):
        os.nice(10)
