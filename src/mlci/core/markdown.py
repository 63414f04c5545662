"""Reading Markdown that someone else wrote: where its code is, what a cut left open, and
how to show it in mlci's report without letting it inject HTML or mention people."""

from __future__ import annotations

import re

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def code_ranges(text: str) -> list[tuple[int, int]]:
    """The spans of fenced code blocks and inline code: nothing there is markup."""
    ranges: list[tuple[int, int]] = []
    offset = 0
    fence: str | None = None
    start = 0
    for line in text.splitlines(keepends=True):
        match = FENCE.match(line)
        if fence is None and match:
            fence, start = match.group(1), offset
        elif (
            fence is not None
            and match
            and match.group(1)[0] == fence[0]
            and len(match.group(1)) >= len(fence)
            and not line.strip()[len(match.group(1)) :]
        ):
            ranges.append((start, offset + len(line)))
            fence = None
        offset += len(line)
    if fence is not None:
        ranges.append((start, len(text)))
    for match in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", text, re.DOTALL):
        if not inside(match.start(), ranges):
            ranges.append((match.start(), match.end()))
    return sorted(ranges)


def inside(position: int, ranges: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in ranges)


def outside_code(ranges: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """The spans between `ranges` (sorted), up to `length`."""
    spans, position = [], 0
    for start, end in sorted(ranges):
        if start > position:
            spans.append((position, start))
        position = max(position, end)
    if position < length:
        spans.append((position, length))
    return spans


def open_fence(text: str) -> str | None:
    """The fence of a code block `text` leaves open, if any."""
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1).startswith(fence):
            fence = None
    return fence


def closing(text: str) -> str:
    """What closes the fenced block and the <details> that a cut of `text` left open."""
    tail = ""
    fence = open_fence(text)
    if fence is not None:
        tail += ("" if text.endswith("\n") else "\n") + fence + "\n"
    full = text + tail
    outside = "".join(full[a:b] for a, b in outside_code(code_ranges(full), len(full)))
    unclosed = len(re.findall(r"<details\b", outside)) - len(re.findall(r"</details>", outside))
    return tail + "\n</details>\n" * max(unclosed, 0)


def untrusted_markdown(text: str) -> str:
    """Markdown from a file the pull request controls, safe inside mlci's report.

    Markdown itself is kept (headings, lists, tables, links, images, code). Raw HTML is
    shown as text (`<` becomes `&lt;` outside code), so it cannot add scripts, forms,
    hidden comments such as mlci's sticky marker, or close the report's `<details>`;
    `@name` mentions get a zero-width space so nobody is pinged; a code block left open
    is closed, so the rest of the report renders.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parts = []
    position = 0
    for start, end in outside_code(code_ranges(text), len(text)):
        parts.append(text[position:start])
        segment = text[start:end].replace("<", "&lt;")
        parts.append(re.sub(r"(?<![\w/.@])@(?=[A-Za-z0-9])", "@&#8203;", segment))
        position = end
    parts.append(text[position:])
    safe = "".join(parts).rstrip("\n") + "\n"
    fence = open_fence(safe)
    return safe + (f"{fence}\n" if fence else "")
