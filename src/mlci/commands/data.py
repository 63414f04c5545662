"""`mlci data pull` and `mlci data status`: keyword arguments in, exit code out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlci import git
from mlci.config import load_config, locate
from mlci.console import Console, columns
from mlci.core.metrics import diff_metrics
from mlci.core.redact import redact_url
from mlci.data import hashes, pulling, remotes
from mlci.errors import EXIT_OK, UsageError


def data_pull_command(*, config: Path | None, as_json: bool) -> int:
    loaded = load_config(locate(config))
    console = Console(sys.stderr)
    result = pulling.pull_configured(loaded.root, loaded.data, console=console)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(f"pulled: {result.summary()}\n")
    return EXIT_OK


def data_status_command(*, config: Path | None, ref: str | None, as_json: bool) -> int:
    loaded = load_config(locate(config))
    root = loaded.root
    dvc_root = remotes.find_dvc_root(root)
    if dvc_root is None:
        raise UsageError(f"{root} is not in a DVC project (no .dvc/ folder); run `dvc init`")
    remote = remotes.read_remote(dvc_root, loaded.data.remote)
    found = hashes.datasets(root)
    at_ref: dict[str, str] | None = None
    if ref is not None:
        at_ref = hashes.lineage(root, commit=_commit(root, ref))
    current = {hashes.lineage_key(d.path): d.hash for d in found}
    changes = {c.name: c for c in diff_metrics(at_ref, current)} if at_ref is not None else {}
    changed = None if at_ref is None else any(c.status != "unchanged" for c in changes.values())
    if as_json:
        payload: dict[str, object] = {
            "remote": None
            if remote.name is None
            else {
                "name": remote.name,
                "url": redact_url(remote.url or ""),
                "kind": remote.kind.scheme,
                "secrets": list(remote.kind.secrets),
            },
            "ref": ref,
            "changed": changed,
            "datasets": [
                {
                    "path": d.path,
                    "hash": d.hash,
                    "size": d.size,
                    "files": d.files,
                    "source": d.source,
                    **(
                        {}
                        if at_ref is None
                        else {
                            "ref_hash": at_ref.get(hashes.lineage_key(d.path)),
                            "status": changes[hashes.lineage_key(d.path)].status,
                        }
                    ),
                }
                for d in found
            ],
        }
        if at_ref is not None:
            payload["removed"] = sorted(set(at_ref) - set(current))
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_OK
    out = sys.stdout
    if remote.name is None:
        out.write("remote: none configured (dvc remote add -d NAME URL)\n")
    else:
        needs = ", ".join(remote.kind.secrets) or remote.kind.how
        out.write(f"remote: {remote.shown}, {remote.kind.scheme}; CI needs: {needs}\n")
    if not found:
        out.write("no datasets tracked yet (dvc add PATH, or dvc import)\n")
    else:
        header: tuple[str, ...] = ("dataset", "hash", "size", "from")
        rows = [header + ((f"at {ref}",) if ref else ())]
        for d in found:
            size = pulling.human_bytes(d.size) if d.size is not None else "—"
            if d.files:
                size += f", {d.files} files"
            row: tuple[str, ...] = (d.path, d.short, size, d.source)
            if at_ref is not None:
                change = changes[hashes.lineage_key(d.path)]
                same = change.status == "unchanged"
                row += ("same" if same else _ref_text(change.old),)
            rows.append(row)
        out.write("\n".join(columns(rows)) + "\n")
    if at_ref is not None:
        removed = sorted(set(at_ref) - set(current))
        if removed:
            out.write(f"removed since {ref}: {', '.join(removed)}\n")
        out.write(f"data changed since {ref}: {'yes' if changed else 'no'}\n")
    return EXIT_OK


def _ref_text(old: object) -> str:
    return "new" if not isinstance(old, str) else f"was {hashes.short_hash(old)}"


def _commit(root: Path, ref: str) -> str:
    commit = git.resolve_commit(root, ref)
    if commit is not None:
        return commit
    if git.is_shallow(root):
        raise UsageError(
            f"unknown git revision {ref!r}: this is a shallow clone; fetch the history, e.g. "
            f"`fetch-depth: 0` on actions/checkout (GitLab: GIT_DEPTH: 0), or "
            f"`git fetch --unshallow`"
        )
    raise UsageError(f"unknown git revision {ref!r}; fetch it (git fetch origin {ref}) first")
