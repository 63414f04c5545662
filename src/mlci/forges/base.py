"""The forge seam: what mlci needs from GitHub, GitLab, ... or the local files."""

from __future__ import annotations

from typing import Literal, Protocol

CommentMode = Literal["update", "new", "hide", "off"]


def sticky_marker(key: str) -> str:
    """The hidden first line that identifies mlci's comment for `key` (the model)."""
    safe = key.replace("--", "- -").replace(">", "")
    return f"<!-- mlci:report key={safe} -->"


def status_state(verdict: str) -> str:
    """A report status (pass, warn, fail, error) as a GitHub-style commit status state."""
    return {"pass": "success", "warn": "success", "fail": "failure"}.get(verdict, "error")


class Forge(Protocol):
    name: str  # shown in messages: "GitHub", "GitLab", "local files"
    max_comment_chars: int | None

    def upsert_comment(self, key: str, body: str, mode: CommentMode = "update") -> str:
        """Create or update the one comment for `key`; returns where it went."""
        ...

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        """Record the verdict on the commit; returns where it went."""
        ...
