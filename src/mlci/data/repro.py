"""Whether `dvc repro` trained or reused its cache, read from its output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReproOutcome:
    """What `dvc repro` did with each pipeline stage, read from its output."""

    ran: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # "Stage 'x' didn't change, skipping"
    restored: tuple[str, ...] = ()  # from the run cache, or pulled (`repro --pull`)

    @property
    def reused(self) -> bool:
        return not self.ran and bool(self.unchanged or self.restored)

    def describe(self) -> str | None:
        """ "training reused from cache ..." when no stage ran; None otherwise."""
        if not self.reused:
            return None
        parts = []
        if self.restored:
            parts.append(f"{_stages(self.restored)} restored from the run cache")
        if self.unchanged:
            parts.append(f"{_stages(self.unchanged)} unchanged")
        return f"training reused from cache: {'; '.join(parts)}"


def _stages(names: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"stage{'s' if len(names) > 1 else ''} {quoted}"


_REPRO_LINES = (
    (re.compile(r"^Running stage '(.+)':"), "ran"),
    (re.compile(r"^Stage '(.+)' didn't change, skipping"), "unchanged"),
    (re.compile(r"^Stage '(.+)' is cached - skipping run"), "restored"),
    (re.compile(r"^Pulling data for stage: '(.+)'"), "restored"),
)


def is_repro(command: str | tuple[str, ...]) -> bool:
    """Whether the training command is (or runs) `dvc repro`."""
    text = command if isinstance(command, str) else " ".join(command)
    return re.search(r"\bdvc\s+repro\b", text) is not None


def read_repro_output(lines: Iterable[str]) -> ReproOutcome:
    seen: dict[str, list[str]] = {"ran": [], "unchanged": [], "restored": []}
    for line in lines:
        for pattern, what in _REPRO_LINES:
            match = pattern.match(line.strip())
            if match and not match.group(1).endswith(".dvc") and match.group(1) not in seen[what]:
                seen[what].append(match.group(1))
    restored = tuple(s for s in seen["restored"] if s not in seen["ran"])
    return ReproOutcome(tuple(seen["ran"]), tuple(seen["unchanged"]), restored)
