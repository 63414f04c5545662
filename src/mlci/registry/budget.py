"""The time the registry work of one run may take: every request, retry and wait together.

A registry that accepts the connection and never answers would otherwise hold a job for
(retries + 1) x MLFLOW_HTTP_REQUEST_TIMEOUT plus the backoff: about 490 s with the
defaults. The budget (`registry.timeout_minutes`) runs only while mlci talks to the
registry, not during the training between two reads; each request may take at most what
is left of it, and no retry starts once it is spent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


class DeadlineExceeded(Exception):
    """The registry work of this run took its whole budget; `message` says what was waited for."""


class Budget:
    """`seconds` of registry work (None: no limit), counted while `counting()` blocks run."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._spent = 0.0
        self._since: float | None = None  # when the outermost `counting()` began
        self._depth = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Charge the time of the block (nested blocks are charged once)."""
        self._depth += 1
        if self._depth == 1:
            self._since = self._clock()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._since is not None:
                self._spent += self._clock() - self._since
                self._since = None

    def left(self) -> float | None:
        """Seconds left, never below 0; None without a limit."""
        if self.seconds is None:
            return None
        running = self._clock() - self._since if self._since is not None else 0.0
        return max(self.seconds - self._spent - running, 0.0)

    def spent(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.0

    def describe(self) -> str:
        """The setting, for messages: `registry.timeout_minutes: 0.05`."""
        minutes = (self.seconds or 0.0) / 60
        return f"registry.timeout_minutes: {minutes:g}"

    def exceeded(self, waiting_for: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{waiting_for}, and the registry work of this run has used all of its time "
            f"({self.describe()}, every request and retry together)"
        )
