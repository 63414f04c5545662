"""Running dvc as a subprocess under the process watchdog, and checking its plugins."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlci import process
from mlci.data.diagnosis import plugin_message
from mlci.data.remotes import Remote
from mlci.errors import MlciError, UsageError


def dvc_command() -> list[str]:
    """How to run dvc: this interpreter's when it has dvc, else `dvc` on PATH."""
    if importlib.util.find_spec("dvc") is not None:
        return [sys.executable, "-m", "dvc"]
    found = shutil.which("dvc")
    if found is None:
        raise UsageError(
            "data.dvc is true but DVC is not installed: pip install 'mlci[dvc]', with the "
            "remote's extra, e.g. pip install 'dvc[s3]'"
        )
    return [found]


@dataclass(frozen=True)
class _Ran:
    returncode: int
    output: str  # stdout and stderr, in the order DVC wrote them


def run_dvc(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None,
    timeout_s: float | None = None,
    stall_s: float | None = None,
    activity: process.Activity | None = None,
) -> _Ran:
    """Run dvc in its own process group; raises process.Stopped past the limits (None: off)."""
    child_env = {**(env if env is not None else os.environ), "DVC_NO_ANALYTICS": "1"}
    lines: list[bytes] = []
    child = process.start([*dvc_command(), *args], cwd=cwd, env=child_env)
    code = process.watch(
        child, timeout_s=timeout_s, stall_s=stall_s, on_line=lines.append, activity=activity
    )
    return _Ran(code, b"\n".join(lines).decode("utf-8", errors="replace"))


def plugin_missing(remote: Remote) -> MlciError | None:
    """Before pulling: the remote's plugin is not importable by the dvc that will run."""
    kind = remote.kind
    if kind.module is None or importlib.util.find_spec("dvc") is None:
        return None
    if importlib.util.find_spec(kind.module) is not None:
        return None
    return UsageError(plugin_message(remote, kind.module.replace("_", "-")))
