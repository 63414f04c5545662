"""`mlci doctor`'s check that the DVC remote answers from here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlci import process
from mlci.data.diagnosis import answer_hint, diagnose, named_remote
from mlci.data.hashes import datasets
from mlci.data.remotes import Remote, find_dvc_root, read_remote
from mlci.data.run import plugin_missing, run_dvc
from mlci.errors import ExternalError, MlciError

CHECK_TIMEOUT_S = 60.0


def check_remote(
    root: Path,
    *,
    remote: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> tuple[bool, str]:
    """Whether the DVC remote can be read from here, and a line saying so (or the fix).

    Checks the project, the remote's configuration and plugin, then asks the remote with
    `dvc status --cloud` (which lists without downloading), for at most `timeout_s`.
    """
    from mlci.data import access  # urllib.request: here, not with mlci.data (mlci gate)

    try:
        dvc_root = find_dvc_root(root)
        if dvc_root is None:
            return False, f"{root} is not in a DVC project (no .dvc/ folder); run `dvc init`"
        configured = read_remote(dvc_root, remote)
        if configured.name is None:
            raise diagnose("No remote provided and no default remote set.", 1, configured)
        missing = plugin_missing(configured) or access.before_pull(configured, env)
        if missing is not None:
            raise missing
        args = ["status", "--cloud", "--json"] + (["--remote", remote] if remote else [])
        try:
            completed = run_dvc(args, cwd=root, env=env, timeout_s=timeout_s)
        except process.Stopped as stopped:
            raise ExternalError(
                f"{named_remote(configured)} did not answer `dvc status --cloud` within "
                f"{process.elapsed(stopped.seconds)}, so it was stopped: "
                f"{answer_hint(configured)}; `mlci run` would wait for it up to "
                f"data.timeout_minutes"
            ) from None
        output = completed.output
        if completed.returncode != 0 or "ERROR:" in output:
            raise diagnose(output, completed.returncode or 1, configured, env=env)
        asked = _ask_http(dvc_root, configured, output)
        if asked is not None:
            raise asked
    except MlciError as exc:
        return False, exc.message
    return True, f"DVC remote {configured.shown} answers ({configured.kind.scheme})"


def _ask_http(dvc_root: Path, remote: Remote, output: str) -> MlciError | None:
    """`dvc status --cloud` says "missing" where an HTTP remote refused: ask it again for
    the object of one dataset, with the remote's credentials."""
    if remote.kind.scheme != "http" or '"missing"' not in output:
        return None
    found = [d.hash for d in datasets(dvc_root) if d.hash]
    if not found:
        return None
    from mlci.data import access

    return access.http_problem(remote, named_remote(remote), found[0])
