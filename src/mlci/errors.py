"""mlci's exceptions and exit codes.

Each external system's exceptions are translated into one of these at the adapter that
talks to it, so the CLI maps every failure to an exit code in one place. A failed gate is
a value (`GateResult`), not an exception.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_EXTERNAL = 3
EXIT_INTERNAL = 4
EXIT_TRAINING = 5
# Stopped by a signal: 128 + its number, as a shell reports a command the signal ended.
EXIT_HANGUP = 129  # SIGHUP
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM


class MlciError(Exception):
    """A failure with a message for the user; the message names the fix."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(MlciError):
    """Wrong command-line use, missing files or bad input the user controls."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """mlci.yaml is missing, malformed or invalid."""


class MetricsError(UsageError):
    """A metrics file is missing or malformed."""


class ExternalError(MlciError):
    """An external system (git, the registry, a forge) failed or refused."""

    exit_code = EXIT_EXTERNAL


class Interrupted(MlciError):
    """The user or the CI stopped the run (Ctrl-C, SIGINT, SIGTERM, SIGHUP): for the report."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, *, exit_code: int = EXIT_INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StopSignal(KeyboardInterrupt):
    """A signal that stops mlci (SIGTERM, SIGHUP) arrived: unwound like Ctrl-C, so the
    training is stopped, the report written and a half-done promotion undone on the way."""

    def __init__(self, name: str, exit_code: int) -> None:
        super().__init__(name)
        self.name = name  # "SIGTERM"
        self.exit_code = exit_code


class TrainingError(MlciError):
    """The training command failed or timed out."""

    exit_code = EXIT_TRAINING

    def __init__(
        self, message: str, *, output_tail: tuple[str, ...] = (), stopped_by: str | None = None
    ) -> None:
        super().__init__(message)
        self.output_tail = output_tail
        self.stopped_by = stopped_by  # "timeout" or "stall" when mlci stopped the training


def shown(text: object) -> str:
    """`text` for a message: control, bidi and other invisible characters escaped as
    Python writes them (`\\x1b`, `\\u202e`), so a name from a file cannot rewrite the
    terminal or reverse the line it is shown in."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in value)
