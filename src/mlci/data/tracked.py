"""A file DVC tracks, read as a past commit names it, without checking that commit out.

The git baseline reads the base commit's metrics, params and predictions. A file that a
stage writes (`eval/metrics.json`) is not in git: the commit's `dvc.lock` (or a `.dvc`
file) names its md5, and DVC reads that content from the cache, or from the remote when
the cache lacks it, as `dvc metrics diff` does. DVC's own API does the reading
(`dvc.api.read`), imported here only, and only for a file that the commit says DVC tracks.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlci.data.hashes import Dataset, datasets, short_hash
from mlci.data.remotes import find_dvc_root
from mlci.errors import ExternalError, UsageError


def read_at(root: Path, commit: str, name: str) -> bytes | None:
    """The content of `name` (relative to `root`) that DVC tracks at `commit`.

    None when the commit's DVC files do not name it (or there is no DVC project).
    Raises ExternalError when they do but neither the cache nor the remote has it.
    """
    dvc_root = find_dvc_root(root)
    if dvc_root is None:
        return None
    path = Path(os.path.relpath(root / name, dvc_root)).as_posix()
    output = _output_holding(dvc_root, commit, path)
    if output is None:
        return None
    return _read(dvc_root, commit, path, output)


def _output_holding(dvc_root: Path, commit: str, path: str) -> Dataset | None:
    """The output (a file, or a folder above it) that names `path` at `commit`."""
    for output in datasets(dvc_root, commit=commit, everything=True):
        if path == output.path or path.startswith(output.path + "/"):
            return output
    return None


def _read(dvc_root: Path, commit: str, path: str, output: Dataset) -> bytes:
    try:
        import dvc.api
        from dvc.exceptions import DvcException, PathMissingError
        from dvc_data.index.index import DataIndexError
    except ImportError:
        raise UsageError(
            f"{path} at {commit[:8]} is a DVC output ({output.source}), and reading it needs "
            f"DVC in this Python environment: pip install 'mlci[dvc]'"
        ) from None
    where = f"{path} at {commit[:8]} ({output.source}, md5 {short_hash(output.hash)})"
    try:
        content: bytes = dvc.api.read(path, repo=str(dvc_root), rev=commit, mode="rb")
    except PathMissingError:
        raise ExternalError(
            f"{where} is neither in git, the DVC cache nor on the DVC remote: run `dvc push` "
            f"on that commit, or give the remote's credentials to this job (an output "
            f"with `cache: false` must be committed to git)"
        ) from None
    except (DvcException, DataIndexError, OSError) as exc:
        # DataIndexError: a folder output whose listing neither the cache nor the remote
        # that commit names could give (its cause says why: an unreachable remote, say).
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise ExternalError(
            f"DVC could not read {where}: {exc}{cause}; run `dvc push` on that commit, or "
            f"give this job the remote and its credentials"
        ) from None
    return content
