"""DVC: remotes, pull, datasets, repro.

Pull the data a commit names, explain DVC's failures, record the datasets' hashes, and
tell when `dvc repro` reused its cache instead of training.

DVC runs as a subprocess (`python -m dvc` of this interpreter when it can import dvc, else
`dvc` on PATH): the remote's configuration and the datasets' hashes are read from DVC's
own files (`.dvc/config`, `*.dvc`, `dvc.lock`). Only `tracked` imports DVC, to read a
stage's output at a past commit through DVC's cache or remote.
Every DVC failure becomes an `MlciError` here, with the fix for the remote's kind.

remotes   Remote, RemoteKind: `.dvc/config` read without DVC
run       dvc as a subprocess under the process watchdog; the remote's plugin
pulling   pull() with progress, PullResult
diagnosis DVC's output as an error that names the fix
hashes    Dataset, datasets(), lineage(): the hashes a commit names
repro     ReproOutcome: did `dvc repro` train or reuse its cache?
check     check_remote() for `mlci doctor`
tracked   read_at(): a file DVC tracks, as a past commit's dvc.lock names it
"""

from __future__ import annotations

from mlci.core.redact import redact_url
from mlci.data.check import CHECK_TIMEOUT_S, check_remote
from mlci.data.diagnosis import diagnose
from mlci.data.hashes import datasets, lineage, lineage_key, short_hash
from mlci.data.pulling import human_bytes, pull
from mlci.data.remotes import Remote, find_dvc_root, read_remote
from mlci.data.repro import is_repro, read_repro_output
from mlci.data.run import dvc_command

__all__ = [
    "CHECK_TIMEOUT_S",
    "Remote",
    "check_remote",
    "datasets",
    "diagnose",
    "dvc_command",
    "find_dvc_root",
    "human_bytes",
    "is_repro",
    "lineage",
    "lineage_key",
    "pull",
    "read_remote",
    "read_repro_output",
    "redact_url",
    "short_hash",
]
