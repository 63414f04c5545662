"""Reading Markdown that someone else wrote: where its code is, what a cut left open, and
how to show it in mlci's report without letting it inject HTML or mention people."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A fence after its container's indentation; a backtick fence's info string has no backtick
# (```x``` on one line is inline code, not a fence that hides the rest of the text).
_FENCE = re.compile(r"(`{3,}(?=[^`]*$)|~{3,})")
_LIST_ITEM = re.compile(r"([-+*]|\d{1,9}[.)])([ \t]+|$)")
_HEADING_OR_BREAK = re.compile(r"#{1,6}([ \t]|$)|([-*_])[ \t]*(\2[ \t]*){2,}$")


_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def code_ranges(text: str) -> list[tuple[int, int]]:
    """The spans of code blocks (fenced and indented) and inline code: nothing there is markup."""
    blocks = _BlockScanner().scan(text)
    ranges = list(blocks.code)
    for start, end in blocks.text:  # a code span stays inside its paragraph
        ranges += [match.span() for match in _CODE_SPAN.finditer(text, start, end)]
    return sorted(ranges)


@dataclass
class _Blocks:
    code: list[tuple[int, int]]  # fenced and indented code blocks
    text: list[list[int]]  # paragraphs and headings: where code spans can be
    open_fence: str | None  # the fence of a block left open at the end


class _BlockScanner:
    """CommonMark's block structure, as far as it decides what is code.

    A line indented four columns past its list item's content starts an indented code
    block, except where it would interrupt a paragraph (it continues the paragraph). A
    line indented less than a list item's content ends the item, and any code block in
    it, unless it continues a paragraph lazily. Block quotes are not followed: what they
    hold is never code here, so mlci errs on the side of escaping it.
    """

    def __init__(self) -> None:
        self.code: list[tuple[int, int]] = []
        self.text: list[list[int]] = []
        self.items: list[int] = []  # the content column of each open list item, innermost last
        self.paragraph = False  # the last line was paragraph text
        self.quoted = False  # that paragraph is in a block quote (not followed further)
        self.empty_item = False  # the last line was a list item with nothing after its marker
        self.fence: tuple[str, int, int] | None = None  # marker, container column, start
        self.indented: tuple[int, int, int] | None = None  # container column, start, end

    def scan(self, text: str) -> _Blocks:
        end = 0
        for line in text.splitlines(keepends=True):
            start, end = end, end + len(line)
            self._line(line.rstrip("\r\n"), start, end)
        if self.indented is not None:
            self.code.append(self.indented[1:])
        if self.fence is not None:
            self.code.append((self.fence[2], len(text)))
        return _Blocks(self.code, self.text, self.fence[0] if self.fence else None)

    def _line(self, body: str, start: int, end: int) -> None:
        width, content = _indentation(body), body.lstrip(" \t")
        if self.fence is not None and self._in_fence(width, content, start, end):
            return
        if not content:
            if self.empty_item:  # an item that starts with a blank line holds nothing
                self.items.pop()
            self.paragraph = self.empty_item = False
            return
        self.empty_item = False
        if self.indented is not None and self._in_indented(width, end):
            return
        inside = [column for column in self.items if column <= width]  # the items it is in
        deep = width - (inside[-1] if inside else 0) >= 4  # too deep to start a block
        lazy = len(inside) < len(self.items) or self.quoted
        if self.paragraph and (deep or not _interrupts(content, lazy=lazy)):
            self._continue(content, start, end, setext=not (deep or lazy))
            return
        while self.items and width < self.items[-1]:
            self.items.pop()
        self._block(width, content, start, end)

    def _continue(self, content: str, start: int, end: int, *, setext: bool) -> None:
        """A line that goes on with the paragraph, or ends it as a setext underline."""
        if re.match(r"<[A-Za-z/!?]", content):
            # Raw HTML there would start a block: no code span reaches across it.
            self.text.append([start, end])
        else:
            self.text[-1][1] = end
        self.paragraph = not (setext and re.fullmatch(r"(=+|-+)[ \t]*", content))

    def _in_fence(self, width: int, content: str, start: int, end: int) -> bool:
        """Whether the line belongs to the open fenced block (closing it, maybe)."""
        assert self.fence is not None
        if content and width < self.fence[1]:
            self.code.append((self.fence[2], start))  # its list item ends, and the block too
            self.fence = None
            return False
        if _closes(self.fence, width, content):
            self.code.append((self.fence[2], end))
            self.fence = None
        return True

    def _in_indented(self, width: int, end: int) -> bool:
        """Whether the line goes on with the indented code block (blank lines do)."""
        assert self.indented is not None
        column, start, last = self.indented
        if width - column >= 4:
            self.indented = (column, start, end)
            return True
        self.code.append((start, last))
        self.indented = None
        return False

    def _block(self, width: int, content: str, start: int, end: int) -> None:
        """A line that starts a block; a list item's first line holds one of its own."""
        while True:
            column = self.items[-1] if self.items else 0
            fence, item = _FENCE.match(content), _LIST_ITEM.match(content)
            self.paragraph = False
            if width - column >= 4:
                self.indented = (column, start, end)
            elif fence:
                self.fence = (fence.group(1), column, start)
            elif _HEADING_OR_BREAK.match(content):
                self.text.append([start, end])
            elif item:
                marker_end = width + len(item.group(1))
                after = _indentation(" " * marker_end + item.group(2))
                rest = content[item.end() :]
                spaces = after - marker_end
                self.items.append(marker_end + (spaces if rest and spaces <= 4 else 1))
                if rest:
                    width, content = after, rest
                    continue
                self.empty_item = True
            else:
                self.paragraph, self.quoted = True, content.startswith(">")
                self.text.append([start, end])
            return


def _closes(fence: tuple[str, int, int], width: int, content: str) -> bool:
    """Whether a line closes the fenced block: the same character, as long, nothing after."""
    match = _FENCE.match(content)
    return bool(
        match
        and width - fence[1] <= 3
        and match.group(1)[0] == fence[0][0]
        and len(match.group(1)) >= len(fence[0])
        and not content[len(match.group(1)) :].strip()
    )


def _interrupts(content: str, *, lazy: bool) -> bool:
    """Whether a line starts a block that can interrupt a paragraph.

    A list interrupts a paragraph only with a non-empty item, an ordered one only at 1,
    unless the line is outside the paragraph's container (lazy, were it a continuation).
    """
    item = _LIST_ITEM.match(content)
    if item is not None and (lazy or content[item.end() :]):
        return lazy or item.group(1) in ("-", "+", "*") or item.group(1)[:-1] == "1"
    return bool(
        _FENCE.match(content)
        or _FENCE.match(content)
        or _HEADING_OR_BREAK.match(content)
        or content.startswith(">")
    )


def _indentation(line: str) -> int:
    """The columns of `line`'s leading spaces and tabs (a tab stops at multiples of 4)."""
    column = 0
    for char in line:
        if char == " ":
            column += 1
        elif char == "\t":
            column += 4 - column % 4
        else:
            break
    return column


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
    return _BlockScanner().scan(text).open_fence


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
