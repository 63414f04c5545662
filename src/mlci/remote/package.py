"""What goes up to the remote machine: the project's files, as one zip (Ray) or a folder
(SkyPilot's workdir).

The files git knows under the project's folder (tracked, and untracked but not ignored:
what the training would see on the runner), plus the data DVC pulled there (the outputs
of its .dvc files, present in the work tree), plus the wrapper and the run's spec
(mlci.remote.entry), and for a DVC project a `.dvc/config.local` that lets DVC run
without git (`core.no_scm`: no .git goes up). Never .git, .venv, .mlci or DVC's cache.
The zip is the same for the same files (fixed times, sorted names), so its hash names it
and an engine that has it already need not take it again.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import yaml

from mlci import git
from mlci.errors import MlciError, UsageError
from mlci.remote import entry

if TYPE_CHECKING:
    from mlci.remote.base import Plan

ENTRY = "_mlci_entry.py"
ENTRYPOINT = f"python {ENTRY}"  # the command an engine starts in the project's folder
_SKIPPED = (".git", ".venv", ".mlci", ".dvc/cache", ".dvc/tmp", "__pycache__")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# No .git goes up, and DVC refuses to work in a folder that is not a git repository ("…
# is not a git repository") unless it is told to do without: `dvc repro` needs this there.
_DVC_WITHOUT_GIT = b"""\
# Written by mlci into the files it sends to the remote machine, which get no .git:
# DVC runs without git there (docs/gpu.md).
[core]
    no_scm = true
"""


@dataclass(frozen=True)
class Package:
    """The zip of a run's files; `digest` names it."""

    data: bytes
    digest: str
    files: int


def build(plan: Plan, *, limit_bytes: int, limit_hint: str) -> Package:
    """The zip of `plan.workdir` for `plan`; a UsageError when it is over `limit_bytes`
    (the engine's limit; `limit_hint` says how to get under it)."""
    buffer = io.BytesIO()
    files = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in _contents(plan):
            _add(archive, name, content)
            files += 1
    data = buffer.getvalue()
    if len(data) > limit_bytes:
        raise UsageError(
            f"the project's files and data come to {len(data) / 2**20:.0f} MiB zipped, over "
            f"the {limit_bytes / 2**20:.0f} MiB the engine takes: {limit_hint}"
        )
    return Package(data=data, digest=hashlib.sha256(data).hexdigest()[:32], files=files)


def stage(plan: Plan, folder: Path) -> int:
    """Write the package's files into `folder` (made empty beforehand: nothing else goes
    up from it); the number of files."""
    files = 0
    for name, content in _contents(plan):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        files += 1
    return files


def _contents(plan: Plan) -> Iterator[tuple[str, bytes]]:
    """Each file of the package, by its path in it: the project's, the wrapper, the spec."""
    names = sorted(set(_tracked(plan.workdir)) | set(_dvc_data(plan.workdir)))
    for name in names:
        if not _skipped(name) and (plan.workdir / name).is_file():
            yield name, (plan.workdir / name).read_bytes()
    if ".dvc/config" in names:  # (.dvc/config.local is git-ignored: never in `names`)
        yield ".dvc/config.local", _DVC_WITHOUT_GIT
    yield ENTRY, Path(entry.__file__).read_bytes()
    yield entry.SPEC, json.dumps(_spec(plan), sort_keys=True).encode()


def _spec(plan: Plan) -> dict[str, object]:
    command = plan.command if isinstance(plan.command, str) else list(plan.command)
    return {
        "run_id": plan.run_id,
        "command": command,
        "env": dict(plan.env),
        "timeout_s": plan.timeout_s,
        "outputs": list(plan.outputs),
        "storage": plan.storage,
    }


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _skipped(name: str) -> bool:
    return any(name == part or name.startswith(part + "/") for part in _SKIPPED) or (
        "__pycache__" in PurePosixPath(name).parts
    )


def _tracked(root: Path) -> list[str]:
    try:
        return git.list_files(root)
    except MlciError:
        return [str(path.relative_to(root).as_posix()) for path in _walk(root)]


def _dvc_data(root: Path) -> Iterator[str]:
    """The files of the outputs of the .dvc files under `root` that are in the work tree."""
    for dvc_file in root.rglob("*.dvc"):
        if _skipped(dvc_file.relative_to(root).as_posix()):
            continue
        try:
            outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        for out in outs:
            if not isinstance(out, dict) or not isinstance(out.get("path"), str):
                continue
            path = (dvc_file.parent / out["path"]).resolve()
            if not path.is_relative_to(root.resolve()):
                continue  # outside the project: never sent up
            found = [path] if path.is_file() else list(_walk(path))
            yield from (file.relative_to(root.resolve()).as_posix() for file in found)


def _walk(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from (path for path in folder.rglob("*") if path.is_file())
