"""The local forge: writes what would be posted to files under `.mlci/out/`.

Used outside CI and for dry runs, so a local run shows exactly the comment and the
commit status a pull request would get.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlci.forges.base import sticky_marker


class LocalForge:
    max_comment_chars: int | None = None

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def upsert_comment(self, key: str, body: str) -> str:
        path = self.out_dir / "comment.md"
        path.write_text(f"{sticky_marker(key)}\n{body}", encoding="utf-8")
        return str(path)

    def set_status(self, sha: str | None, verdict: str, summary: str) -> str:
        path = self.out_dir / "status.json"
        state = {"pass": "success", "warn": "success"}.get(verdict, "failure")
        payload = {"sha": sha, "state": state, "context": "mlci", "description": summary[:140]}
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return str(path)
