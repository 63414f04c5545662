"""The wrapper a training off the runner runs in: shipped with the project, stdlib only.

The engine starts `python _mlci_entry.py` in the project's folder on the remote machine
(mlci itself is not installed there), with the spec's name and, where the engine mounts
train.storage (SkyPilot: at /mlci-storage), that folder. It reads the run's spec (`SPEC`), runs
train.command with the run's environment, and stops it at the deadline itself: the
backstop when mlci, which stops the job at train.timeout_minutes, is gone. Then it copies
the outputs to `<storage>/<run_id>/` and writes `done.json` there (exit code, machine,
minutes), and exits with the training's exit code.

Storage is a folder every machine sees (a path, file://) or, where the cluster's Python
has pyarrow, s3:// gs:// az:// (hdfs://...) through pyarrow.fs. The runner reads the
outputs back with the same `fetch`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SPEC = "_mlci_run.json"
DONE = "done.json"
BACKSTOP_GRACE_S = 60.0  # past train.timeout_minutes: mlci normally stops the job first
_KILL_GRACE_S = 5.0
TIMED_OUT = 124  # the exit code of a training the wrapper stopped, as timeout(1) says


def main(argv: list[str]) -> int:
    """`_mlci_entry.py [SPEC [STORAGE]]`: STORAGE, where this machine sees train.storage."""
    spec = json.loads(Path(argv[1] if len(argv) > 1 else SPEC).read_text())
    storage = argv[2] if len(argv) > 2 else spec["storage"]
    started = time.time()
    exit_code = _run(spec["command"], spec["env"], spec["timeout_s"] + BACKSTOP_GRACE_S)
    done = {
        "exit_code": exit_code,
        "minutes": (time.time() - started) / 60,
        "hostname": socket.gethostname(),
        "gpu": _gpu(),
    }
    target = join(storage, spec["run_id"])
    for name in spec["outputs"]:
        if Path(name).exists():
            put(Path(name), join(target, name))
    write_text(join(target, DONE), json.dumps(done))
    return exit_code


def _run(command: str | list[str], env: dict[str, str], backstop_s: float) -> int:
    shell = isinstance(command, str)
    child = subprocess.Popen(
        command, shell=shell, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )  # fmt: skip
    try:
        return child.wait(timeout=backstop_s)
    except subprocess.TimeoutExpired:
        print(f"mlci: the training ran past {backstop_s:.0f} s: stopped", flush=True)
        _stop(child)
        return TIMED_OUT


def _stop(child: subprocess.Popen[bytes]) -> None:
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=_KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _gpu() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    found = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    names = [line.strip() for line in found.stdout.splitlines() if line.strip()]
    return f"{names[0]}:{len(names)}" if names else None


# -- storage: a folder, or a URL pyarrow.fs opens --------------------------------------------


def join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def local_path(location: str) -> Path | None:
    """The folder or file `location` names on this machine; None for a URL of a store."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # not C:\\ on Windows
        return None
    return Path(location)


def _filesystem(location: str) -> tuple[Any, str]:
    try:
        from pyarrow import fs  # type: ignore[import-untyped]
    except ImportError:
        raise RuntimeError(
            f"{location}: reading or writing this storage needs pyarrow (pip install pyarrow)"
        ) from None
    return fs.FileSystem.from_uri(location)  # type: ignore[no-any-return]


def put(source: Path, target: str) -> None:
    """Copy the file or folder `source` to `target` (a path or a storage URL)."""
    path = local_path(target)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, path, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, path)
        return
    from pyarrow import fs

    filesystem, where = _filesystem(target)
    fs.copy_files(str(source), where, destination_filesystem=filesystem)  # a file or a folder


def write_text(target: str, text: str) -> None:
    path = local_path(target)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    filesystem, where = _filesystem(target)
    with filesystem.open_output_stream(where) as stream:
        stream.write(text.encode())


def read_text(source: str) -> str | None:
    """The text at `source`, or None when there is none."""
    path = local_path(source)
    if path is not None:
        return path.read_text() if path.is_file() else None
    filesystem, where = _filesystem(source)
    try:
        with filesystem.open_input_stream(where) as stream:
            return bytes(stream.read()).decode()
    except FileNotFoundError:
        return None


def fetch(source: str, target: Path) -> bool:
    """Copy the file or folder at `source` to `target`; False when there is none."""
    path = local_path(source)
    if path is not None:
        if not path.exists():
            return False
        put(path, str(target))
        return True
    from pyarrow import fs

    filesystem, where = _filesystem(source)
    kind = filesystem.get_file_info(where).type
    if kind == fs.FileType.NotFound:
        return False
    # A folder's files go into `target` itself: pyarrow creates no folder on this side.
    (target if kind == fs.FileType.Directory else target.parent).mkdir(parents=True, exist_ok=True)
    fs.copy_files(where, str(target), source_filesystem=filesystem)
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv))
