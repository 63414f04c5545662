"""The local forge: writes what would be posted to files under `.mlci/out/`.

Used outside CI and for dry runs, so a local run shows exactly the comment and the
commit status a pull request would get. In CI these files are written too, next to
the real comment, so the report is in the job's artifacts whatever the forge says.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlci.forges.base import CommentMode, NoLookups, status_state, sticky_marker

OUTSIDE_CI = "outside CI: reports go to .mlci/out/ (comment.md, status.json)"


class LocalForge(NoLookups):
    """The files a pull request's comment and status would be; one comment, whatever the
    thread, and nothing to look up."""

    name = "local files"
    max_comment_chars: int | None = None
    status_context = "mlci"  # the publisher sets status_context(model): mlci/<model>

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def upsert_comment(self, key: str, body: str, mode: CommentMode = "update") -> str:
        path = self.out_dir / "comment.md"
        path.write_text(f"{sticky_marker(key)}\n{body}", encoding="utf-8")
        return str(path)

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        path = self.out_dir / "status.json"
        state = "success" if status_state(verdict) == "success" else "failure"
        payload = {
            "sha": sha,
            "state": state,
            "context": self.status_context,
            "description": summary[:140],
        }
        if url:
            payload["target_url"] = url
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return str(path)

    def check_access(self) -> list[tuple[bool, str]]:
        return [(True, OUTSIDE_CI)]

    def aimed_at_pull_request(self, number: int) -> LocalForge:
        return self

    def aimed_at_issue(self, number: int) -> LocalForge:
        return self

    def aimed_at_commit(self, sha: str) -> LocalForge:
        return self
