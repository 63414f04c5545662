"""The forge seam: what mlci needs from GitHub, GitLab, ... or the local files."""

from __future__ import annotations

from typing import Protocol


def sticky_marker(key: str) -> str:
    """The hidden first line that identifies mlci's comment for `key` (the model)."""
    safe = key.replace("--", "- -").replace(">", "")
    return f"<!-- mlci:report key={safe} -->"


class Forge(Protocol):
    max_comment_chars: int | None

    def upsert_comment(self, key: str, body: str) -> str:
        """Create or update the one comment for `key`; returns where it went."""
        ...

    def set_status(self, sha: str | None, verdict: str, summary: str) -> str:
        """Record the verdict on the commit; returns where it went."""
        ...
