"""Diagnostics on stderr: one line per stage, colour only on a terminal.

Every line is masked (`mlci.secrets`): a CI log is as public as a comment, and not every
CI hides its secrets in the log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from mlci.core.redact import mask_text
from mlci.secrets import secret_values

_COLOURS = {"ok": "32", "fail": "31", "warn": "33", "step": "36", "dim": "2"}


class Console:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.colour = isatty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        self.secrets = secret_values(os.environ)
        self.warned: set[str] = set()

    def paint(self, text: str, kind: str) -> str:
        return f"\033[{_COLOURS[kind]}m{text}\033[0m" if self.colour else text

    def step(self, stage: str, text: str) -> None:
        if not self.quiet:
            self._write(f"{self.paint('mlci', 'step')} {stage}: {text}")

    def warn(self, text: str) -> None:
        self._write(f"{self.paint('mlci: warning:', 'warn')} {text}")

    def warn_once(self, text: str) -> None:
        """`warn`, unless this console gave the same warning already: a run's stages share
        its console, and a setting one stage finds wrong another finds again."""
        if text not in self.warned:
            self.warned.add(text)
            self.warn(text)

    def error(self, text: str) -> None:
        self._write(f"{self.paint('mlci: error:', 'fail')} {text}")

    def _write(self, line: str) -> None:
        self.stream.write(mask_text(line, self.secrets) + "\n")
        self.stream.flush()


def columns(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows of cells as left-aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]
