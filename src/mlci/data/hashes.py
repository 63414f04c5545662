"""The datasets DVC tracks and their hashes (lineage), from `*.dvc` and `dvc.lock`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from mlci import git
from mlci.core import yamlsafe
from mlci.data.remotes import find_dvc_root
from mlci.errors import MlciError, UsageError


@dataclass(frozen=True)
class Dataset:
    """A path DVC tracks as data, with the hash a commit names for it."""

    path: str  # from the DVC project's root, with /
    hash: str  # DVC's md5; "<md5>.dir" for a folder
    size: int | None = None
    files: int | None = None  # a folder's number of files
    source: str = ""  # the .dvc file or "dvc.lock (stage NAME)"

    @property
    def short(self) -> str:
        return short_hash(self.hash)


def short_hash(value: str) -> str:
    return value[:8] + ("/" if value.endswith(".dir") else "")


def datasets(
    root: Path, *, commit: str | None = None, everything: bool = False
) -> tuple[Dataset, ...]:
    """The datasets of the DVC project holding `root`, in the work tree or at `commit`.

    A dataset is data that no stage makes: an output of a `.dvc` file (`dvc add`,
    `dvc import`), or an input of a `dvc.lock` stage that no stage produces and git does
    not track (an external URL, a file outside the repository). Stage outputs (prepared
    data, features, models) are not: the training makes them again. Code, params and
    other files committed to git are not either: the git diff shows them. `everything`:
    what a pull may fetch instead, the `.dvc` outputs and the stage outputs.
    """
    dvc_root = find_dvc_root(root)
    if dvc_root is None:
        return ()
    if commit is None:
        names = _work_tree_files(dvc_root)
        read: Callable[[str], bytes | None] = lambda name: _read_disk(dvc_root / name)  # noqa: E731
    else:
        names = git.list_files(dvc_root, commit=commit)
        prefix = git.prefix(dvc_root)
        read = lambda name: git.read_file_at(dvc_root, commit, prefix + name)  # noqa: E731
    wanted = [n for n in names if n.endswith(".dvc") or PurePosixPath(n).name == "dvc.lock"]
    return _collect(wanted, read, tracked=names, everything=everything)


def _work_tree_files(dvc_root: Path) -> list[str]:
    """The work tree's files by git (which skips ignored folders), else by walking it."""
    try:
        return git.list_files(dvc_root)
    except MlciError:  # git missing, or a DVC project outside git (`dvc init --no-scm`)
        found = []
        for folder, subfolders, files in os.walk(dvc_root):
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            relative = Path(folder).relative_to(dvc_root)
            found += [(relative / name).as_posix() for name in files]
        return found


def _read_disk(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _load(name: str, content: bytes | None) -> dict[str, Any]:
    if content is None:
        return {}
    try:
        data = yamlsafe.load_bounded(content.decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        problem = yamlsafe.describe_error(exc)
        raise UsageError(
            f"{name}: not valid YAML ({problem}); fix it or run `dvc commit`"
        ) from None
    return data if isinstance(data, dict) else {}


def _join(folder: str, path: object, *, urls: bool = False) -> str | None:
    """`path` from the DVC project's root; a URL only with `urls` (an external input)."""
    if not isinstance(path, str) or "://" in path:
        return path if urls and isinstance(path, str) else None
    if PurePosixPath(path).is_absolute():
        return path if urls else None  # outside the project: only an input can be
    joined = PurePosixPath(folder) / path if folder not in ("", ".") else PurePosixPath(path)
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _entry(folder: str, item: object, source: str, *, urls: bool = False) -> Dataset | None:
    if not isinstance(item, dict):
        return None
    path = _join(folder, item.get("path"), urls=urls)
    digest = item.get("md5") or item.get("etag") or item.get("checksum")
    if path is None or not isinstance(digest, str):
        return None
    size, files = item.get("size"), item.get("nfiles")
    return Dataset(
        path=path,
        hash=digest,
        size=size if isinstance(size, int) else None,
        files=files if isinstance(files, int) else None,
        source=source,
    )


def _collect(
    names: list[str],
    read: Callable[[str], bytes | None],
    *,
    tracked: list[str],
    everything: bool,
) -> tuple[Dataset, ...]:
    found: dict[str, Dataset] = {}
    stage_outs: dict[str, Dataset] = {}
    stage_ins: dict[str, Dataset] = {}
    for name in sorted(names):
        folder = str(PurePosixPath(name).parent)
        data = _load(name, read(name))
        if name.endswith(".dvc"):
            for item in data.get("outs") or []:
                entry = _entry(folder, item, name)
                if entry is not None:
                    found.setdefault(entry.path, entry)
            continue
        stages = data.get("stages")
        for stage, lock in stages.items() if isinstance(stages, dict) else ():
            if not isinstance(lock, dict):
                continue
            for item in lock.get("outs") or []:
                entry = _entry(folder, item, f"{name} (stage {stage})")
                if entry is not None:
                    stage_outs.setdefault(entry.path, entry)
            for item in lock.get("deps") or []:
                entry = _entry(folder, item, f"{name} (input of stage {stage})", urls=True)
                if entry is not None:
                    stage_ins.setdefault(entry.path, entry)
    if everything:  # what a pull may fetch: an input from outside is never pulled
        for path, entry in stage_outs.items():
            found.setdefault(path, entry)
        return tuple(found[path] for path in sorted(found))
    # An input within a dataset, a stage's output or git's files, or holding one of them,
    # is none of its own (data/raw/a.csv of data/raw.dvc; src/ of src/train.py).
    made = {*found, *stage_outs, *tracked}
    holders = made | {folder for path in made for folder in _folders(path)}
    for path, entry in stage_ins.items():
        if path not in holders and not any(folder in made for folder in _folders(path)):
            found.setdefault(path, entry)
    return tuple(found[path] for path in sorted(found))


def _folders(path: str) -> list[str]:
    """The folders holding `path`: a/b/c -> a, a/b."""
    parts = path.split("/")
    return ["/".join(parts[:end]) for end in range(1, len(parts))]


def lineage_key(path: str) -> str:
    """A dataset's path as a registry tag may name it (MLflow's allowed characters)."""
    return re.sub(r"[^\w./\- :]", "_", path)


def lineage(root: Path, *, commit: str | None = None) -> dict[str, str]:
    """Dataset path -> hash, for the report and the registry ({} without DVC)."""
    return {lineage_key(d.path): d.hash for d in datasets(root, commit=commit)}


def stage_outputs(root: Path) -> set[str]:
    """The stage outputs of the work tree, named as `lineage` names a dataset.

    A registry version made before mlci told them apart has tags for some of them.
    """
    everything = datasets(root, everything=True)
    return {lineage_key(d.path) for d in everything if not d.source.endswith(".dvc")}
