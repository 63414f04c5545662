"""The job's secrets, read from its environment: the values mlci masks.

`secret_values(env)` is what `mlci.core.redact.mask` hides in everything mlci writes or
sends (docs/security.md#secrets): the values of variables whose names look secret
(`SECRET_NAME`), of the variables `MLCI_SECRETS` names, and the keys in the file
`GOOGLE_APPLICATION_CREDENTIALS` points at. Values shorter than `MIN_SECRET_CHARS` are
left alone. Masks registered with GitHub's `::add-mask::` stay in the runner: a step
cannot read them, so a value that only they hide must be named in `MLCI_SECRETS`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from mlci.core.redact import MIN_SECRET_CHARS, hidden_values

__all__ = [
    "LIST_VARIABLE",
    "MIN_SECRET_CHARS",
    "SECRET_NAME",
    "secret_values",
]

LIST_VARIABLE = "MLCI_SECRETS"
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|CONNECTION_STRING|APIKEY"
    r"|(^|_)(KEY|PAT)(_|$)",
    re.IGNORECASE,
)
# Names that match but hold a file's path or a list of names, not a secret.
_NOT_VALUES = re.compile(r"_(FILE|PATH|DIR)$|^GOOGLE_APPLICATION_CREDENTIALS$|^MLCI_SECRETS$", re.I)
_KEY_FILE_FIELDS = ("private_key", "private_key_id", "client_secret", "refresh_token")
_KEY_FILE_MAX_BYTES = 1_000_000


def secret_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values to mask for a job with `env` (default: this process's), longest first."""
    env = os.environ if env is None else env
    return hidden_values(_values(env))


def _values(env: Mapping[str, str]) -> Iterator[str]:
    named = set(re.split(r"[\s,]+", env.get(LIST_VARIABLE, "").strip())) - {""}
    for name, value in env.items():
        if name in named or (SECRET_NAME.search(name) and not _NOT_VALUES.search(name)):
            yield value
    yield from _key_file(env.get("GOOGLE_APPLICATION_CREDENTIALS"))


def _key_file(path: str | None) -> Iterator[str]:
    """The private parts of a Google credentials file: its path is no secret, its keys are."""
    if not path:
        return
    try:
        if path.lstrip().startswith("{"):  # the key itself, a common mistake: mask it too
            data = json.loads(path)
        else:
            with Path(path).open("rb") as source:
                data = json.loads(source.read(_KEY_FILE_MAX_BYTES + 1)[:_KEY_FILE_MAX_BYTES])
    except (OSError, ValueError):
        return
    if isinstance(data, dict):
        for name in _KEY_FILE_FIELDS:
            value = data.get(name)
            if isinstance(value, str):
                yield value
