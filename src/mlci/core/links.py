"""Links in Markdown: where each link destination is, outside code, and how to edit them.

Pure text functions: `mlci comment` uses them to host the local files a Markdown file
links, and the report to neutralise local links in report.sections.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from mlci.core.markdown import closing, code_ranges, inside
from mlci.core.report.escape import md_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


@dataclass(frozen=True)
class Link:
    """One link destination in the Markdown: where it is, and the construct around it."""

    start: int  # the whole construct: `![alt](dest)`, `[text](dest)`, `<img ...>`, a definition
    end: int
    dest_start: int
    dest_end: int
    dest: str
    image: bool
    text: str  # the alt text or link text ("" for definitions and <a>)
    kind: Literal["inline", "definition", "html"]
    close: tuple[int, int] | None = None  # where the </a> of an <a href> is


_INLINE = re.compile(
    r"(!?)\[((?:[^\[\]\\\n]|\\.|\[[^\[\]\n]*\])*)\]\(\s*"
    r"(<[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)"
    r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?\s*\)"
)
_DEFINITION = re.compile(r"^ {0,3}\[([^\]\n]+)\]:[ \t]*(<[^<>\n]*>|\S+)", re.MULTILINE)
_HTML = re.compile(
    r"<(img|a|source|video)\b[^>]*?\b(src|href)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)[^>]*>",
    re.IGNORECASE,
)
_CLOSE_A = re.compile(r"<(/?)a\b[^>]*>", re.IGNORECASE)  # the next <a> or </a>


def find_links(text: str) -> list[Link]:
    """Every link destination outside code, in order."""
    code = code_ranges(text)
    links: list[Link] = []
    for match in _INLINE.finditer(text):
        links.append(
            Link(
                match.start(),
                match.end(),
                match.start(3),
                match.end(3),
                match.group(3),
                bool(match.group(1)),
                match.group(2),
                "inline",
            )
        )
    for match in _DEFINITION.finditer(text):
        dest = match.group(2)
        links.append(
            Link(
                match.start(),
                match.end(),
                match.start(2),
                match.end(2),
                dest,
                dest.lower().strip("<>").endswith(IMAGE_SUFFIXES),
                match.group(1),
                "definition",
            )
        )
    for match in _HTML.finditer(text):
        value = match.group(3)
        quoted = value[:1] in ("'", '"')
        start = match.start(3) + (1 if quoted else 0)
        end = match.end(3) - (1 if quoted else 0)
        tag = match.group(1).lower()
        links.append(
            Link(
                match.start(),
                match.end(),
                start,
                end,
                html.unescape(text[start:end]),
                tag in ("img", "source", "video"),
                "",
                "html",
                _closing_a(text, match.end(), code) if tag == "a" else None,
            )
        )
    links = [link for link in links if not inside(link.start, code)]
    links.sort(key=lambda link: link.start)
    kept: list[Link] = []
    for link in links:  # an <img> inside [..](..) text: keep the outer one only
        if kept and link.start < kept[-1].end:
            continue
        kept.append(link)
    return kept


def _closing_a(text: str, after: int, code: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The span of the </a> that closes the <a> ending at `after`, if it has one."""
    for match in _CLOSE_A.finditer(text, after):
        if inside(match.start(), code):
            continue
        return match.span() if match.group(1) else None  # another <a>: this one is unclosed
    return None


def local_path(dest: str) -> str | None:
    """The file path a destination names, or None for remote links and anchors."""
    dest = dest.strip()
    if dest.startswith("<") and dest.endswith(">"):
        dest = dest[1:-1].strip()
    if not dest or dest.startswith(("#", "//", "{{")):
        return None
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", dest):
        return None  # http:, https:, mailto:, data:, ...
    path = re.split(r"[?#]", dest, maxsplit=1)[0]
    return urllib.parse.unquote(path) or None


def replace_link(link: Link, note: str) -> list[tuple[int, int, str]]:
    """The edits that put `note` in place of `link`: an <a>'s text stays, before the note."""
    if link.close is None:
        return [(link.start, link.end, note)]
    return [(link.start, link.end, ""), (*link.close, " " + note)]


def edit(text: str, edits: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end) span replaced; the spans do not overlap."""
    out: list[str] = []
    position = 0
    for start, end, value in sorted(edits):
        out += [text[position:start], value]
        position = end
    out.append(text[position:])
    return "".join(out)


def unhost_local_links(text: str) -> str:
    """`text` with each link to a local file replaced by a note (report.sections' Markdown).

    The pipeline report does not upload what a section links: a local image would be a
    broken image, so it says to list the image in report.sections instead.
    """
    edits: list[tuple[int, int, str]] = []
    for link in find_links(text):
        path = local_path(link.dest)
        if path is None or link.kind == "definition":
            continue
        name = md_text(path)
        if link.image:
            note = f"*🖼️ {name}: a local image; list it in report.sections to show it*"
        else:
            label = f"{link.text} " if link.kind == "inline" and link.text.strip() else ""
            note = f"{label}*({name}: a local file, not attached)*"
        edits += replace_link(link, note)
    return edit(text, edits)


def utf16_len(text: str) -> int:
    """Characters as GitHub counts them (UTF-16 code units): never fewer than code points."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, where: str) -> tuple[str, bool]:
    """`text` within `limit` UTF-16 units: cut at a paragraph, open blocks closed."""
    if utf16_len(text) <= limit:
        return text, False
    note = (
        f"\n\n> ✂️ Cut to fit the forge's limit of {limit:,} characters; the full text is {where}.\n"
    )
    budget = limit - utf16_len(note) - 200
    while True:
        keep = text[: max(budget, 0)]
        cut = keep.rfind("\n\n")
        if cut < len(keep) // 2:
            cut = keep.rfind("\n")
        keep = keep[: cut + 1] if cut > 0 else ""
        keep += closing(keep)
        if utf16_len(keep + note) <= limit or budget <= 0:
            return keep + note, True
        budget -= max(utf16_len(keep + note) - limit, 1000)
