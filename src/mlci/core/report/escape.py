"""Untrusted text made safe for Markdown: table cells, headings, code blocks.

Text a pull request controls (metric names, branch names, commands, error text, training
output) cannot break a table, inject HTML or mention people, and a code block's fence is
longer than any backtick run inside it.
"""

from __future__ import annotations

import html
import re


def md_text(text: str) -> str:
    """Escape untrusted text for Markdown (and the HTML that Markdown allows)."""
    escaped = html.escape(text, quote=False)
    # `$` too: GitHub renders the text between two dollar signs as math.
    escaped = re.sub(r"([\\`*_\[\]|~#!{}$])", r"\\\1", escaped)
    # A zero-width space after @ stops mentions (GitHub decodes &#64; and still pings).
    escaped = escaped.replace("@", "@&#8203;")
    return re.sub(r"[\r\n\t]+", " ", escaped)


def md_code_block(lines: tuple[str, ...] | list[str]) -> str:
    """The lines as a fenced code block, its fence longer than any backtick run inside."""
    body = "\n".join(lines)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"
