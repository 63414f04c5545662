"""`report.sections`: Markdown files and PNG images the training writes, read for the report.

The files come from the pull request's code, so they are untrusted: each must be inside
the project, is size-limited, and its Markdown is made safe when the report renders it
(`core.markdown.untrusted_markdown`). A listed file that is missing is a note in the
report, not a failed run: the gate has already given its verdict.
"""

from __future__ import annotations

from pathlib import Path

from mlci.core.links import unhost_local_links
from mlci.core.markdown import closing
from mlci.core.report.model import ReportSection

MAX_MARKDOWN_CHARS = 30_000  # per section: the comment's limit is 65,536 for everything
MAX_PNG_BYTES = 10_000_000  # GitHub's limit for an image attachment
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_sections(root: Path, paths: tuple[str, ...]) -> tuple[ReportSection, ...]:
    """One ReportSection per listed path, in order."""
    return tuple(_read(root, path) for path in paths)


def _read(root: Path, listed: str) -> ReportSection:
    path = (root / listed).resolve()
    if not path.is_relative_to(root.resolve()):
        return ReportSection(listed, note=f"{listed} is outside the project: not shown")
    if any(part.startswith(".") for part in path.relative_to(root.resolve()).parts):
        return ReportSection(listed, note=f"{listed} leads to a hidden file: not shown")
    if not path.is_file():
        return ReportSection(
            listed, note=f"{listed} was not found: the training did not write it (report.sections)"
        )
    if listed.lower().endswith(".png"):
        return _png(listed, path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return ReportSection(listed, note=f"{listed} cannot be read as UTF-8 text ({exc})")
    text = unhost_local_links(text)
    if len(text) > MAX_MARKDOWN_CHARS:
        keep = text[:MAX_MARKDOWN_CHARS]
        keep = keep[: keep.rfind("\n") + 1] if "\n" in keep else ""
        text = (
            keep
            + closing(keep)
            + f"\n*✂️ {listed} was cut at {MAX_MARKDOWN_CHARS:,} characters; the whole file "
            "is in the CI run's workspace*\n"
        )
    return ReportSection(listed, markdown=text)


def _png(listed: str, path: Path) -> ReportSection:
    size = path.stat().st_size
    if size > MAX_PNG_BYTES:
        return ReportSection(
            listed, note=f"{listed} is {size:,} bytes, over {MAX_PNG_BYTES:,}: not shown"
        )
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        return ReportSection(listed, note=f"{listed} is not a PNG image: not shown")
    return ReportSection(listed, png=data)
